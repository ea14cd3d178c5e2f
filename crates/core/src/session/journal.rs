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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::protocol::{ErrorCode, ErrorInfo, EventType};
    use crate::session::SessionManager;
    use crate::session::manager::tests::{NoTools, named};

    #[derive(Default)]
    struct Recorder {
        log: Mutex<Vec<String>>,
    }

    impl EventJournal for Recorder {
        fn created(&self, session: &Arc<Session>) {
            self.log.lock().unwrap().push(format!("created {}", session.id()));
        }
        fn append(&self, _session: &Arc<Session>, event: &Arc<StreamEvent>) {
            self.log.lock().unwrap().push(format!("{} {}", event.seq(), event.kind().as_str()));
        }
        fn terminated(&self, session: &Arc<Session>) {
            self.log.lock().unwrap().push(format!("terminated {}", session.id()));
        }
    }

    #[test]
    fn streams_see_what_the_journal_stored_and_everything_once_detached() {
        let manager = SessionManager::new(10, Arc::new(NoTools));
        let journal = Arc::new(Recorder::default());
        assert!(manager.attach_journal(journal.clone()));
        assert!(!manager.attach_journal(Arc::new(Recorder::default())));
        let session = manager.create(named("s1")).unwrap();
        session.fail(ErrorInfo::new(ErrorCode::REDIS_UNAVAILABLE, "gone"));
        assert_eq!(*journal.log.lock().unwrap(), ["created s1", "1 error", "2 final"]);
        // Emitted, but not stored yet: streams see nothing, not even the end.
        assert!(session.events_page(0, 10).is_empty());
        assert_eq!(session.final_seq(), None);
        session.mark_durable(1);
        assert_eq!(session.events_page(0, 10).len(), 1);
        assert_eq!(session.durable_seq(), 1);
        session.detach();
        assert_eq!(
            session.events_page(0, 10).iter().map(|e| e.kind()).collect::<Vec<_>>(),
            [EventType::Error, EventType::Final]
        );
        assert_eq!(session.final_seq(), Some(2));
        assert!(
            session.final_result().unwrap().error.as_ref().is_some_and(|e| e.code == "REDIS_UNAVAILABLE")
        );
        manager.terminate_session(&session, None);
        assert_eq!(journal.log.lock().unwrap().last().unwrap(), "terminated s1");
        // Without a journal a session is as before: everything it emits is visible.
        manager.detach_journal();
        let plain = manager.create(named("s2")).unwrap();
        plain.cancel(None);
        assert_eq!(plain.events_page(0, 10).len(), 2);
        assert_eq!(journal.log.lock().unwrap().len(), 4);
    }
}
