//! `SessionManager`: the registry of live sessions with `maxSessions` and cleanup.
//! Sessions are kept in insertion order; a duplicate session id replaces the previous
//! entry without touching the old session (quirk Q7).

use std::sync::{Arc, Mutex, MutexGuard};

use super::session::{Session, SessionConfig};
use super::state::SessionState;
use crate::tools::ToolHost;

#[derive(Clone, Debug, PartialEq)]
pub struct SessionInfo {
    pub session_id: String,
    pub state: SessionState,
    pub created_at: f64,
    pub expires_at: f64,
    pub is_expired: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManagerError {
    Disposed,
    MaxSessions(usize),
}

impl std::fmt::Display for ManagerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManagerError::Disposed => f.write_str("Session manager is disposed"),
            ManagerError::MaxSessions(max) => write!(
                f,
                "Maximum sessions reached ({max}). Wait for existing sessions to complete or increase maxSessions."
            ),
        }
    }
}

impl std::error::Error for ManagerError {}

struct Inner {
    sessions: Vec<Arc<Session>>,
    disposed: bool,
}

pub struct SessionManager {
    key: u64,
    max_sessions: usize,
    host: Arc<dyn ToolHost>,
    inner: Mutex<Inner>,
}

impl SessionManager {
    pub fn new(max_sessions: usize, host: Arc<dyn ToolHost>) -> Self {
        Self {
            key: super::session::next_key(),
            max_sessions,
            host,
            inner: Mutex::new(Inner { sessions: Vec::new(), disposed: false }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Process-unique key; sessions created here carry it as their owner key.
    pub fn key(&self) -> u64 {
        self.key
    }

    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    pub fn is_disposed(&self) -> bool {
        self.lock().disposed
    }

    pub fn create(&self, mut config: SessionConfig) -> Result<Arc<Session>, ManagerError> {
        config.owner_key = self.key;
        let mut inner = self.lock();
        if inner.disposed {
            return Err(ManagerError::Disposed);
        }
        if inner.sessions.len() >= self.max_sessions {
            return Err(ManagerError::MaxSessions(self.max_sessions));
        }
        let session = Session::new(config, self.host.clone());
        match inner.sessions.iter().position(|s| s.id() == session.id()) {
            Some(i) => inner.sessions[i] = session.clone(),
            None => inner.sessions.push(session.clone()),
        }
        Ok(session)
    }

    pub fn get(&self, session_id: &str) -> Option<Arc<Session>> {
        self.lock().sessions.iter().find(|s| s.id() == session_id).cloned()
    }

    pub fn has(&self, session_id: &str) -> bool {
        self.get(session_id).is_some()
    }

    /// Removes the entry if it still holds this very session.
    pub fn remove(&self, session: &Arc<Session>) -> bool {
        let mut inner = self.lock();
        let before = inner.sessions.len();
        inner.sessions.retain(|s| !Arc::ptr_eq(s, session));
        inner.sessions.len() != before
    }

    pub fn sessions(&self) -> Vec<Arc<Session>> {
        self.lock().sessions.clone()
    }

    pub fn list(&self) -> Vec<SessionInfo> {
        self.sessions().iter().map(|s| info(s)).collect()
    }

    pub fn list_active(&self) -> Vec<SessionInfo> {
        self.sessions().iter().filter(|s| !s.is_terminal()).map(|s| info(s)).collect()
    }

    pub fn active_count(&self) -> usize {
        self.sessions().iter().filter(|s| !s.is_terminal()).count()
    }

    pub fn total_count(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Cancels with `reason ?? 'Terminated by session manager'`, disposes, removes.
    pub fn terminate(&self, session_id: &str, reason: Option<&str>) -> bool {
        let Some(session) = self.get(session_id) else { return false };
        session.cancel(Some(reason.unwrap_or("Terminated by session manager")));
        session.dispose();
        self.remove(&session);
        true
    }

    /// Disposes and removes every expired or terminal session; returns how many.
    pub fn cleanup(&self) -> usize {
        let doomed: Vec<Arc<Session>> = {
            let mut inner = self.lock();
            let (doomed, kept) = inner.sessions.drain(..).partition(|s| s.is_expired() || s.is_terminal());
            inner.sessions = kept;
            doomed
        };
        for session in &doomed {
            session.dispose();
        }
        doomed.len()
    }

    /// Cancels every session with `'Session manager disposed'` and clears the map.
    pub fn dispose(&self) {
        let sessions: Vec<Arc<Session>> = {
            let mut inner = self.lock();
            inner.disposed = true;
            inner.sessions.drain(..).collect()
        };
        for session in sessions {
            session.cancel(Some("Session manager disposed"));
            session.dispose();
        }
    }
}

pub fn info(session: &Session) -> SessionInfo {
    SessionInfo {
        session_id: session.id().to_string(),
        state: session.state(),
        created_at: session.created_at(),
        expires_at: session.expires_at(),
        is_expired: session.is_expired(),
    }
}
