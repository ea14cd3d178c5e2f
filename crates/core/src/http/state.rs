//! What the `listen()` server knows while it runs: its configuration and the state every
//! request shares (sessions, the shared state of other brokers, limiters, open streams).
//! Routes and the accept loop both read it; it depends on neither.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::auth::{AuthConfig, Authenticator};
use super::callbacks::Authorizer;
use super::rate_limit::{RateLimitConfig, RateLimiter};
use super::rules::Cors;
use super::static_files::StaticFiles;
use super::template::SessionTemplate;
use crate::cluster::SharedState;
use crate::session::{Session, SessionManager};

pub struct HttpConfig {
    pub host: String,
    pub port: u16,
    pub max_body_bytes: usize,
    /// How long a client may take to send its body.
    pub body_timeout: Duration,
    /// How long `validate` / `keyGenerator` may take.
    pub callback_timeout: Duration,
    pub cors: Cors,
    /// Cancel a session when the client of its `POST` stream disconnects.
    pub cancel_on_disconnect: bool,
    pub auth: Option<AuthConfig>,
    /// Lets a principal reach sessions it does not own (see `access`).
    pub authorizer: Option<Arc<dyn Authorizer>>,
    pub rate_limit: Option<RateLimitConfig>,
    pub template: SessionTemplate,
    /// Told of every session a route creates, before it runs (the seed's broker events).
    pub on_session_created: Option<SessionCreated>,
    /// Files served beside the API (the playground page), see `static_files.rs`.
    pub static_files: Option<StaticFiles>,
    /// State shared with other brokers (the `redis` option); this process's own without it.
    pub shared: Option<Arc<dyn SharedState>>,
    /// The salt of credential principals, when brokers must agree on it (shared state);
    /// random per server otherwise.
    pub credential_salt: Option<[u8; 32]>,
}

pub type SessionCreated = Arc<dyn Fn(&Arc<Session>) + Send + Sync>;

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            host: "0.0.0.0".into(),
            port: 0,
            max_body_bytes: 1 << 20,
            body_timeout: Duration::from_secs(10),
            callback_timeout: Duration::from_secs(10),
            cors: Cors { enabled: true, allowed_origins: vec!["*".into()], credentials: true },
            cancel_on_disconnect: false,
            auth: None,
            authorizer: None,
            rate_limit: None,
            template: SessionTemplate::default(),
            on_session_created: None,
            static_files: None,
            shared: None,
            credential_salt: None,
        }
    }
}

pub(super) struct ServerState {
    pub config: HttpConfig,
    pub manager: Arc<SessionManager>,
    /// Sessions, their logs and counters as every broker sharing the state sees them.
    pub shared: Arc<dyn SharedState>,
    pub limiter: Option<RateLimiter>,
    pub authenticator: Option<Authenticator>,
    pub started: Instant,
    pub streams: Mutex<HashMap<u64, (Arc<Session>, usize)>>,
}

impl ServerState {
    /// Counts an open stream of `session` (released by the returned guard function).
    pub fn stream_opened(self: &Arc<Self>, session: &Arc<Session>) -> Box<dyn FnOnce() + Send> {
        let key = session.key();
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .and_modify(|(_, n)| *n += 1)
            .or_insert((session.clone(), 1));
        let state = self.clone();
        Box::new(move || {
            let mut streams = state.streams.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, n)) = streams.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    streams.remove(&key);
                }
            }
        })
    }

    pub fn open_streams(&self) -> Vec<Arc<Session>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner()).values().map(|(s, _)| s.clone()).collect()
    }
}
