//! One process's state: the session manager is the registry, nothing is shared, and the
//! server counts its own requests. This is the broker without the `redis` option.

use std::sync::Arc;
use std::time::Duration;

use super::{
    BoxFuture, Command, CommandReply, Count, CreateRefusal, EventFeed, SessionRef, SharedRecord, SharedState,
};
use crate::session::{Principal, Session, SessionConfig, SessionManager};

pub struct InMemory {
    manager: Arc<SessionManager>,
}

impl InMemory {
    pub fn new(manager: Arc<SessionManager>) -> InMemory {
        InMemory { manager }
    }
}

/// A feed of nothing: in one process every session is local.
struct NoFeed;

impl EventFeed for NoFeed {
    fn next(&mut self, _after: u64, _max: usize) -> BoxFuture<'_, Vec<Arc<crate::protocol::StreamEvent>>> {
        Box::pin(async { Vec::new() })
    }
}

impl SharedState for InMemory {
    fn create(&self, config: SessionConfig) -> BoxFuture<'_, Result<Arc<Session>, CreateRefusal>> {
        let created = self.manager.create_new(config).map_err(CreateRefusal::Manager);
        Box::pin(async move { created })
    }

    fn find<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<SessionRef>> {
        let found = self.manager.get(id).map(SessionRef::Local);
        Box::pin(async move { found })
    }

    fn list<'a>(&'a self, owner: Option<&'a Principal>) -> BoxFuture<'a, Vec<SessionRef>> {
        let sessions = self
            .manager
            .sessions()
            .into_iter()
            .filter(|s| owner.is_none_or(|owner| s.owner() == owner))
            .map(SessionRef::Local)
            .collect();
        Box::pin(async move { sessions })
    }

    fn command<'a>(&'a self, _session: &'a SharedRecord, _command: Command) -> BoxFuture<'a, CommandReply> {
        Box::pin(async { CommandReply::NotFound })
    }

    fn feed(&self, _session: Arc<SharedRecord>) -> Box<dyn EventFeed> {
        Box::new(NoFeed)
    }

    fn count<'a>(
        &'a self,
        _bucket: &'a str,
        _key: &'a str,
        _window: Duration,
        _max: u64,
    ) -> BoxFuture<'a, Option<Count>> {
        Box::pin(async { None })
    }

    fn health(&self) -> Option<(String, bool)> {
        None
    }
}
