//! Where a session's events go besides its own history when several brokers share state
//! (the Redis journal of `cluster::redis`). A session with a journal shows its HTTP streams
//! only the events the journal has stored (`Session::mark_durable`), so an event a client
//! has seen survives the broker; in-process listeners (`onEvent`, `execute()`) still see
//! every event at once. A session without one (the default) behaves exactly as before.

use std::sync::Arc;

use super::session::Session;
use crate::protocol::StreamEvent;

pub trait EventJournal: Send + Sync {
    /// A session was created with this journal by the manager (in-process): register it
    /// before its first event is written. Routes that registered it themselves skip this.
    fn created(&self, session: &Arc<Session>);

    /// Every event the session emits, in seq order, called under the session's lock: it
    /// must only enqueue.
    fn append(&self, session: &Arc<Session>, event: &Arc<StreamEvent>);

    /// The session was terminated (`DELETE`, `terminateSession`): once its last events are
    /// stored, its shared record goes too.
    fn terminated(&self, session: &Arc<Session>);
}

impl std::fmt::Debug for dyn EventJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventJournal")
    }
}
