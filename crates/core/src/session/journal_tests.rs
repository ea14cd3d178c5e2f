//! A session with a journal (shared state) against a recording journal.
use std::sync::{Arc, Mutex};

use crate::protocol::{ErrorCode, ErrorInfo, EventType, StreamEvent};
use crate::session::manager::tests::{NoTools, named};
use crate::session::{EventJournal, Session, SessionManager};

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
    assert!(session.final_result().unwrap().error.as_ref().is_some_and(|e| e.code == "REDIS_UNAVAILABLE"));
    manager.terminate_session(&session, None);
    assert_eq!(journal.log.lock().unwrap().last().unwrap(), "terminated s1");
    // Without a journal a session is as before: everything it emits is visible.
    manager.detach_journal();
    let plain = manager.create(named("s2")).unwrap();
    plain.cancel(None);
    assert_eq!(plain.events_page(0, 10).len(), 2);
    assert_eq!(journal.log.lock().unwrap().len(), 4);
}
