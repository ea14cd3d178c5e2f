//! The reply of one tool call. Whoever answers first wins (the host's handler, the per-tool
//! deadline, a client's submission); later answers are ignored. The waiting side either
//! awaits it (inside the engine) or hands it a callback (in the broker), so an answer is
//! acted on by the thread that produced it, without a hop through a runtime.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::ToolReply;

type Callback = Box<dyn FnOnce(ToolReply) + Send>;

enum State {
    Waiting { waker: Option<Waker>, callback: Option<Callback> },
    Filled(ToolReply),
    Taken,
}

struct Slot(Mutex<State>);

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The answering side; cloneable, first send wins.
#[derive(Clone)]
pub struct ReplySender(Arc<Slot>);

/// The waiting side: a future, or a callback via `on_reply`.
pub struct ReplyReceiver {
    slot: Arc<Slot>,
    /// Kept alive while the call waits (e.g. its deadline timer, disarmed on drop).
    _guard: Option<Box<dyn Any + Send>>,
}

pub fn reply_channel() -> (ReplySender, ReplyReceiver) {
    let slot = Arc::new(Slot(Mutex::new(State::Waiting { waker: None, callback: None })));
    (ReplySender(slot.clone()), ReplyReceiver { slot, _guard: None })
}

impl ReplySender {
    /// Delivers `reply` unless the call was already answered (then it is handed back).
    pub fn send(&self, reply: ToolReply) -> Result<(), ToolReply> {
        let mut state = self.0.lock();
        let (waker, callback) = match &mut *state {
            State::Waiting { waker, callback } => (waker.take(), callback.take()),
            _ => return Err(reply),
        };
        match callback {
            Some(callback) => {
                *state = State::Taken;
                drop(state);
                callback(reply);
            }
            None => {
                *state = State::Filled(reply);
                drop(state);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
        }
        Ok(())
    }

    pub fn is_answered(&self) -> bool {
        !matches!(*self.0.lock(), State::Waiting { .. })
    }
}

impl ReplyReceiver {
    /// Keeps `guard` alive until the receiver is dropped.
    pub fn hold(mut self, guard: impl Any + Send) -> Self {
        self._guard = Some(Box::new(guard));
        self
    }

    /// Runs `callback` with the reply, at once if it already came.
    pub fn on_reply(self, callback: impl FnOnce(ToolReply) + Send + 'static) {
        let guard = self._guard;
        let callback: Callback = Box::new(move |reply| {
            drop(guard);
            callback(reply);
        });
        let mut state = self.slot.lock();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Filled(reply) => {
                drop(state);
                callback(reply);
            }
            State::Waiting { .. } => *state = State::Waiting { waker: None, callback: Some(callback) },
            State::Taken => {}
        }
    }
}

impl Future for ReplyReceiver {
    type Output = ToolReply;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ToolReply> {
        let mut state = self.slot.lock();
        match std::mem::replace(&mut *state, State::Taken) {
            State::Filled(reply) => Poll::Ready(reply),
            State::Waiting { callback, .. } => {
                *state = State::Waiting { waker: Some(cx.waker().clone()), callback };
                Poll::Pending
            }
            State::Taken => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn the_first_answer_wins_and_reaches_a_callback() {
        let (tx, rx) = reply_channel();
        let (seen, got) = mpsc::channel();
        rx.on_reply(move |reply| seen.send(reply).unwrap());
        assert!(tx.send(ToolReply::Ok(Some("1".into()))).is_ok());
        assert!(tx.send(ToolReply::Ok(Some("2".into()))).is_err());
        assert_eq!(got.recv().unwrap(), ToolReply::Ok(Some("1".into())));
    }

    #[test]
    fn a_reply_sent_before_the_callback_is_delivered_on_registration() {
        let (tx, rx) = reply_channel();
        tx.send(ToolReply::Ok(None)).unwrap();
        let (seen, got) = mpsc::channel();
        rx.on_reply(move |reply| seen.send(reply).unwrap());
        assert_eq!(got.recv().unwrap(), ToolReply::Ok(None));
    }

    #[test]
    fn awaiting_works_too() {
        let (tx, rx) = reply_channel();
        std::thread::spawn(move || tx.send(ToolReply::Ok(Some("x".into()))).unwrap());
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(rt.block_on(rx), ToolReply::Ok(Some("x".into())));
    }
}
