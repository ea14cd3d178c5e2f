//! The handle through which anyone (watchdog, session cancel, heap-limit callback) stops
//! one running execution. The first reason wins. Terminating V8 is only ever done while
//! the execution is still attached to its isolate, so a late request can never hit the
//! next execution that reuses the same isolate.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use deno_core::v8;
use tokio::sync::Notify;

use super::outcome::InterruptReason;

#[derive(Default)]
struct Attachment {
    isolate: Option<v8::IsolateHandle>,
    finished: bool,
}

#[derive(Default)]
pub struct ExecutionControl {
    reason: AtomicU8,
    attachment: Mutex<Attachment>,
    wake: Notify,
}

impl ExecutionControl {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the execution for `reason` unless it already stopped for another one.
    pub fn interrupt(&self, reason: InterruptReason) {
        if self.reason.compare_exchange(0, reason.to_u8(), Ordering::AcqRel, Ordering::Acquire).is_err() {
            return;
        }
        let attachment = self.attachment.lock().unwrap_or_else(|p| p.into_inner());
        if attachment.finished {
            return;
        }
        if let Some(isolate) = &attachment.isolate {
            isolate.terminate_execution();
        }
        // Wakes the engine thread if it is waiting on tool replies rather than running JS.
        self.wake.notify_one();
    }

    pub fn reason(&self) -> Option<InterruptReason> {
        InterruptReason::from_u8(self.reason.load(Ordering::Acquire))
    }

    pub fn is_finished(&self) -> bool {
        self.attachment.lock().unwrap_or_else(|p| p.into_inner()).finished
    }

    pub(crate) async fn interrupted(&self) {
        loop {
            let notified = self.wake.notified();
            if self.reason().is_some() {
                return;
            }
            notified.await;
        }
    }

    pub(crate) fn attach(&self, isolate: v8::IsolateHandle) {
        let mut attachment = self.attachment.lock().unwrap_or_else(|p| p.into_inner());
        attachment.isolate = Some(isolate);
        if self.reason().is_some() {
            // Interrupted before the run even started: make the first JS entry stop.
            if let Some(isolate) = &attachment.isolate {
                isolate.terminate_execution();
            }
        }
    }

    /// Marks the run finished; afterwards no interrupt touches the isolate.
    pub(crate) fn finish(&self) {
        let mut attachment = self.attachment.lock().unwrap_or_else(|p| p.into_inner());
        attachment.finished = true;
        attachment.isolate = None;
    }
}
