//! The state the `listen()` server shares, behind one trait: which sessions exist and who
//! owns them, their event logs, commands to the broker running a session, rate-limit
//! counters and health. [`InMemory`] is one process's state, exactly as without the
//! `redis` option; [`redis::RedisCluster`] shares it between brokers through Redis, so any
//! instance behind a load balancer can answer for any session.

pub mod memory;
pub mod record;
pub mod redis;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use memory::InMemory;
pub use record::SharedRecord;

use crate::protocol::StreamEvent;
use crate::protocol::json::JsonObject;
use crate::session::{ManagerError, Principal, Session, SessionConfig, SessionState};
use crate::tools::ToolReply;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A session as a route finds it: running in this process, or known from the shared
/// registry (another broker runs it, or it finished and this process let it go).
#[derive(Clone)]
pub enum SessionRef {
    Local(Arc<Session>),
    Shared(Arc<SharedRecord>),
}

impl SessionRef {
    pub fn id(&self) -> &str {
        match self {
            SessionRef::Local(session) => session.id(),
            SessionRef::Shared(record) => &record.id,
        }
    }

    pub fn is_owned_by(&self, principal: &Principal) -> bool {
        match self {
            SessionRef::Local(session) => session.owner() == principal,
            SessionRef::Shared(record) => record.owner_key == principal.key(),
        }
    }

    pub fn state(&self) -> SessionState {
        match self {
            SessionRef::Local(session) => session.state(),
            SessionRef::Shared(record) => record.state,
        }
    }

    pub fn created_at(&self) -> f64 {
        match self {
            SessionRef::Local(session) => session.created_at(),
            SessionRef::Shared(record) => record.created_at,
        }
    }

    pub fn expires_at(&self) -> f64 {
        match self {
            SessionRef::Local(session) => session.expires_at(),
            SessionRef::Shared(record) => record.expires_at,
        }
    }

    pub fn tool_call_count(&self) -> u64 {
        match self {
            SessionRef::Local(session) => session.tool_call_count(),
            SessionRef::Shared(record) => record.tool_call_count,
        }
    }

    /// The owner as the operator's hooks see it (`{id, type, userId?, tenantId?}`).
    pub fn owner_json(&self) -> String {
        match self {
            SessionRef::Local(session) => session.owner().to_json(),
            SessionRef::Shared(record) => record.owner_json.clone(),
        }
    }

    /// The session as `authorize` sees it: `{sessionId, state, createdAt, expiresAt, owner}`.
    pub fn authorize_json(&self) -> String {
        JsonObject::new()
            .field("sessionId", self.id())
            .field("state", self.state().as_str())
            .num("createdAt", self.created_at())
            .num("expiresAt", self.expires_at())
            .raw("owner", &self.owner_json())
            .finish()
    }
}

/// Why a session could not be created.
#[derive(Debug)]
pub enum CreateRefusal {
    Manager(ManagerError),
    /// The shared state cannot be reached (`503 REDIS_UNAVAILABLE`).
    Unavailable(String),
}

/// What a route asks the broker running a session to do.
#[derive(Debug)]
pub enum Command {
    Cancel { reason: Option<String> },
    Delete,
    ToolResult { call_id: String, reply: ToolReply },
}

/// How the broker running a session answered a command.
#[derive(Debug, PartialEq)]
pub enum CommandReply {
    Done,
    /// The session cannot take it now (`409 INVALID_STATE`, with the message).
    InvalidState(String),
    NotFound,
    /// Nobody answered for the session (`503`, with the message).
    Unavailable(String),
}

/// A shared session's event log, read from `after` on: each call waits until there are
/// events past the cursor, and returns none when the log ended without a `final` (the
/// session was deleted or expired) or the cursor is at or past its `final`.
pub trait EventFeed: Send {
    fn next(&mut self, after: u64, max: usize) -> BoxFuture<'_, Vec<Arc<StreamEvent>>>;
}

/// A counter decision: allowed, or limited with the time left in the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    Allowed,
    Limited(Duration),
}

pub trait SharedState: Send + Sync {
    /// Creates and registers a session (its id unique across every broker sharing the state).
    fn create(&self, config: SessionConfig) -> BoxFuture<'_, Result<Arc<Session>, CreateRefusal>>;

    fn find<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<SessionRef>>;

    /// Sessions `principal` owns, or with `None` every session, in creation order.
    fn list<'a>(&'a self, owner: Option<&'a Principal>) -> BoxFuture<'a, Vec<SessionRef>>;

    /// Sends `command` to the broker running a shared session and waits for its answer.
    fn command<'a>(&'a self, session: &'a SharedRecord, command: Command) -> BoxFuture<'a, CommandReply>;

    /// A shared session's event log for a stream.
    fn feed(&self, session: Arc<SharedRecord>) -> Box<dyn EventFeed>;

    /// Counts one hit of `key` in `bucket` (a fixed window of `window`, at most `max`
    /// hits) across every broker; `None` when this state does not count (count locally).
    fn count<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        window: Duration,
        max: u64,
    ) -> BoxFuture<'a, Option<Count>>;

    /// What `GET /health` adds (`"redis": {...}`), if anything, and whether the state can
    /// take new sessions.
    fn health(&self) -> Option<(String, bool)>;
}
