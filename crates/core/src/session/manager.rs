//! `SessionManager`: the registry of live sessions with `maxSessions` and cleanup.
//! Sessions are kept in insertion order. Through `create` (the embedder's API) a duplicate
//! session id replaces the previous entry in place without touching the old session
//! (quirk Q7 in docs/compatibility.md); `create_new` (what servers use, where a client chose the id) refuses it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use super::session::{EventJournal, Session, SessionConfig, SessionRuntime};
use super::state::SessionState;
use crate::engine::Executor;
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
    /// `create_new` with the id of a session the registry holds.
    Exists(String),
}

impl std::fmt::Display for ManagerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManagerError::Disposed => f.write_str("Session manager is disposed"),
            ManagerError::MaxSessions(max) => write!(
                f,
                "Maximum sessions reached ({max}). Wait for existing sessions to complete or increase maxSessions."
            ),
            ManagerError::Exists(id) => write!(f, "Session {id} already exists"),
        }
    }
}

impl std::error::Error for ManagerError {}

/// Sessions by id (servers look sessions up on every request) and in insertion order
/// (`list()` answers in the order the original's `Map` would).
#[derive(Default)]
struct Registry {
    by_id: HashMap<String, (u64, Arc<Session>)>,
    order: BTreeMap<u64, String>,
    next: u64,
}

impl Registry {
    fn len(&self) -> usize {
        self.by_id.len()
    }

    fn insert(&mut self, session: Arc<Session>) {
        let id = session.id().to_string();
        if let Some(entry) = self.by_id.get_mut(&id) {
            entry.1 = session;
            return;
        }
        self.next += 1;
        self.order.insert(self.next, id.clone());
        self.by_id.insert(id, (self.next, session));
    }

    fn get(&self, id: &str) -> Option<&Arc<Session>> {
        self.by_id.get(id).map(|(_, session)| session)
    }

    fn remove_if(&mut self, id: &str, keep: impl FnOnce(&Arc<Session>) -> bool) -> Option<Arc<Session>> {
        let (order, session) = self.by_id.get(id)?;
        if keep(session) {
            return None;
        }
        self.order.remove(order);
        self.by_id.remove(id).map(|(_, session)| session)
    }

    fn ordered(&self) -> Vec<Arc<Session>> {
        self.order.values().filter_map(|id| self.get(id).cloned()).collect()
    }

    fn drain(&mut self) -> Vec<Arc<Session>> {
        let all = self.ordered();
        *self = Registry::default();
        all
    }
}

struct Inner {
    sessions: Registry,
    disposed: bool,
    /// Where sessions created from now on store their events for other brokers.
    journal: Option<Arc<dyn EventJournal>>,
}

pub struct SessionManager {
    key: u64,
    max_sessions: usize,
    host: Arc<dyn ToolHost>,
    /// Where its sessions run (the local engine pool unless a runtime is set).
    runtime: Mutex<SessionRuntime>,
    inner: Mutex<Inner>,
}

impl SessionManager {
    pub fn new(max_sessions: usize, host: Arc<dyn ToolHost>) -> Self {
        Self {
            key: super::session::next_key(),
            max_sessions,
            host,
            runtime: Mutex::new(SessionRuntime::default()),
            inner: Mutex::new(Inner { sessions: Registry::default(), disposed: false, journal: None }),
        }
    }

    /// Runs the executions of sessions created from now on with `executor` (extracted mode).
    pub fn set_executor(&self, executor: Arc<dyn Executor>) {
        self.runtime.lock().unwrap_or_else(|p| p.into_inner()).executor = executor;
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

    /// Sessions created after this share their events through `journal` (false if the
    /// manager already has one).
    pub fn attach_journal(&self, journal: Arc<dyn EventJournal>) -> bool {
        let mut inner = self.lock();
        if inner.journal.is_some() {
            return false;
        }
        inner.journal = Some(journal);
        true
    }

    /// Sessions created from now on keep their events to themselves again.
    pub fn detach_journal(&self) {
        self.lock().journal = None;
    }

    /// When the registry is full, finished and expired sessions are swept first (as
    /// `cleanup()` would): the error tells users to wait for sessions to complete, and
    /// servers keep finished sessions for replay, which must not lock out new work.
    pub fn create(&self, config: SessionConfig) -> Result<Arc<Session>, ManagerError> {
        self.insert(config, true)
    }

    /// As `create`, but an id the registry already holds is refused (`Exists`), checked
    /// under the same lock as the insertion.
    pub fn create_new(&self, config: SessionConfig) -> Result<Arc<Session>, ManagerError> {
        self.insert(config, false)
    }

    /// Whether a session could be created now: refused when the manager is disposed, or
    /// full of sessions that have not finished (a full manager first sweeps finished and
    /// expired ones, as `cleanup()` would). Returns how many were swept. The facade asks
    /// this before it reads a session's config, where the original checked capacity.
    pub fn make_room(&self) -> Result<usize, ManagerError> {
        let full = {
            let inner = self.lock();
            if inner.disposed {
                return Err(ManagerError::Disposed);
            }
            inner.sessions.len() >= self.max_sessions
        };
        let swept = if full { self.cleanup() } else { 0 };
        if self.lock().sessions.len() >= self.max_sessions {
            return Err(ManagerError::MaxSessions(self.max_sessions));
        }
        Ok(swept)
    }

    fn insert(&self, mut config: SessionConfig, replace: bool) -> Result<Arc<Session>, ManagerError> {
        config.owner_key = self.key;
        match self.make_room() {
            // Checked again below, under the lock that inserts.
            Ok(_) | Err(ManagerError::MaxSessions(_)) => {}
            Err(e) => return Err(e),
        }
        let mut inner = self.lock();
        if inner.disposed {
            return Err(ManagerError::Disposed);
        }
        if let Some(id) =
            config.session_id.as_deref().filter(|id| !replace && inner.sessions.get(id).is_some())
        {
            return Err(ManagerError::Exists(id.to_string()));
        }
        if inner.sessions.len() >= self.max_sessions {
            return Err(ManagerError::MaxSessions(self.max_sessions));
        }
        // A route that registered the session itself brings the journal; others are
        // announced to it before anyone can reach the session.
        let announce = match (&config.journal, &inner.journal) {
            (None, Some(journal)) => {
                config.journal = Some(journal.clone());
                true
            }
            _ => false,
        };
        let runtime = self.runtime.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let session = Session::with_runtime(config, self.host.clone(), runtime);
        if let (true, Some(journal)) = (announce, session.journal()) {
            journal.created(&session);
        }
        inner.sessions.insert(session.clone());
        Ok(session)
    }

    pub fn get(&self, session_id: &str) -> Option<Arc<Session>> {
        self.lock().sessions.get(session_id).cloned()
    }

    pub fn has(&self, session_id: &str) -> bool {
        self.lock().sessions.get(session_id).is_some()
    }

    /// Removes the entry if it still holds this very session.
    pub fn remove(&self, session: &Arc<Session>) -> bool {
        self.lock().sessions.remove_if(session.id(), |held| !Arc::ptr_eq(held, session)).is_some()
    }

    pub fn sessions(&self) -> Vec<Arc<Session>> {
        self.lock().sessions.ordered()
    }

    pub fn list(&self) -> Vec<SessionInfo> {
        self.sessions().iter().map(|s| info(s)).collect()
    }

    pub fn list_active(&self) -> Vec<SessionInfo> {
        self.sessions().iter().filter(|s| !s.is_terminal()).map(|s| info(s)).collect()
    }

    pub fn active_count(&self) -> usize {
        self.lock().sessions.by_id.values().filter(|(_, s)| !s.is_terminal()).count()
    }

    pub fn total_count(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Cancels with `reason ?? 'Terminated by session manager'`, disposes, removes.
    pub fn terminate(&self, session_id: &str, reason: Option<&str>) -> bool {
        let Some(session) = self.get(session_id) else { return false };
        self.terminate_session(&session, reason);
        true
    }

    /// `terminate` of this very session (one a caller has already looked up and checked).
    pub fn terminate_session(&self, session: &Arc<Session>, reason: Option<&str>) {
        session.cancel(Some(reason.unwrap_or("Terminated by session manager")));
        session.dispose();
        self.remove(session);
        if let Some(journal) = session.journal() {
            journal.terminated(session);
        }
    }

    /// Disposes and removes every expired or terminal session; returns how many.
    pub fn cleanup(&self) -> usize {
        let doomed: Vec<Arc<Session>> = {
            let mut inner = self.lock();
            let ids: Vec<String> = inner
                .sessions
                .by_id
                .iter()
                .filter(|(_, (_, s))| s.is_expired() || s.is_terminal())
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| inner.sessions.remove_if(id, |_| false)).collect()
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
            inner.sessions.drain()
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tools::{ToolCall, ToolReplySender};

    pub(crate) struct NoTools;

    impl ToolHost for NoTools {
        fn call(&self, _call: ToolCall, _reply: ToolReplySender) {}
        fn abort(&self, _call_key: u64) {}
    }

    fn manager(max: usize) -> SessionManager {
        SessionManager::new(max, Arc::new(NoTools))
    }

    pub(crate) fn named(id: &str) -> SessionConfig {
        SessionConfig { session_id: Some(id.to_string()), ..SessionConfig::default() }
    }

    fn ids(manager: &SessionManager) -> Vec<String> {
        manager.list().into_iter().map(|i| i.session_id).collect()
    }

    #[test]
    fn keeps_insertion_order_and_replaces_duplicates_in_place() {
        let m = manager(10);
        let first_a = m.create(named("a")).unwrap();
        m.create(named("b")).unwrap();
        let second_a = m.create(named("a")).unwrap();
        m.create(named("c")).unwrap();
        assert_eq!(ids(&m), ["a", "b", "c"]);
        assert!(Arc::ptr_eq(&m.get("a").unwrap(), &second_a));
        // The replaced session is no longer the entry, so removing it changes nothing.
        assert!(!m.remove(&first_a));
        assert!(m.remove(&second_a));
        assert_eq!(ids(&m), ["b", "c"]);
        assert!(!m.has("a"));
    }

    #[test]
    fn create_new_refuses_an_id_in_use_and_leaves_the_holder_alone() {
        let m = manager(10);
        let first = m.create_new(named("a")).unwrap();
        let Err(refused) = m.create_new(named("a")) else { panic!("an id in use was accepted") };
        assert_eq!(refused, ManagerError::Exists("a".into()));
        assert_eq!(refused.to_string(), "Session a already exists");
        assert!(Arc::ptr_eq(&m.get("a").unwrap(), &first));
        // Generated ids never collide.
        m.create_new(SessionConfig::default()).unwrap();
        assert_eq!(m.total_count(), 2);
        m.terminate_session(&first, None);
        assert!(first.is_terminal());
        m.create_new(named("a")).unwrap();
    }

    #[test]
    fn a_full_manager_sweeps_finished_sessions_before_refusing() {
        let m = manager(2);
        let done = m.create(named("done")).unwrap();
        m.create(named("waiting")).unwrap();
        done.cancel(Some("finished"));
        // Full, but one session is terminal: it is disposed and removed to make room.
        m.create(named("new")).unwrap();
        assert_eq!(ids(&m), ["waiting", "new"]);
        // Full of sessions that have not finished: the original's error.
        let Err(err) = m.create(named("more")) else { panic!("a full manager accepted a session") };
        assert_eq!(err, ManagerError::MaxSessions(2));
        assert_eq!(
            err.to_string(),
            "Maximum sessions reached (2). Wait for existing sessions to complete or increase maxSessions."
        );
        assert_eq!(m.total_count(), 2);
        assert_eq!(m.active_count(), 2);
    }

    #[test]
    fn dispose_cancels_everything_and_refuses_new_sessions() {
        let m = manager(5);
        let s = m.create(named("x")).unwrap();
        m.dispose();
        assert!(s.is_terminal());
        assert_eq!(m.total_count(), 0);
        assert!(matches!(m.create(named("y")), Err(ManagerError::Disposed)));
    }
}
