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

type Hook = Box<dyn FnOnce() + Send>;

#[derive(Default)]
pub struct ExecutionControl {
    reason: AtomicU8,
    attachment: Mutex<Attachment>,
    wake: Notify,
    /// Runs on interrupt while the execution is still queued (it settles it at once).
    queued_hook: Mutex<Option<Hook>>,
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
        let hook = self.queued_hook.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(hook) = hook {
            hook();
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

    /// Set while the execution waits in the pool's queue.
    pub(crate) fn set_queued_hook(&self, hook: Hook) {
        *self.queued_hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(hook);
        if self.reason().is_some() {
            // Interrupted between queueing and now: settle it right away.
            if let Some(hook) = self.queued_hook.lock().unwrap_or_else(|p| p.into_inner()).take() {
                hook();
            }
        }
    }

    pub(crate) fn clear_queued_hook(&self) {
        self.queued_hook.lock().unwrap_or_else(|p| p.into_inner()).take();
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
