//! The handle through which anyone (the timeout, a session's cancel, the memory guard)
//! stops one execution. The first reason wins. The stop is delivered through the
//! execution's current *terminator* (the engine process's interrupt, or inside that process
//! V8's terminate_execution), and only while the execution is attached to it, so a late
//! request can never hit the next execution that reuses the same engine.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::Notify;

use super::outcome::InterruptReason;

type Hook = Box<dyn FnOnce() + Send>;
pub(crate) type Terminator = Box<dyn Fn(InterruptReason) + Send + Sync>;

#[derive(Default)]
struct Attachment {
    terminator: Option<Terminator>,
    finished: bool,
}

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
        if let Some(terminate) = &attachment.terminator {
            terminate(reason);
        }
        self.wake.notify_one();
    }

    pub fn reason(&self) -> Option<InterruptReason> {
        InterruptReason::from_u8(self.reason.load(Ordering::Acquire))
    }

    pub fn is_finished(&self) -> bool {
        self.attachment.lock().unwrap_or_else(|p| p.into_inner()).finished
    }

    /// Resolves once the execution has been interrupted (awaited inside the engine process).
    #[cfg(feature = "v8")]
    pub(crate) async fn interrupted(&self) {
        loop {
            let notified = self.wake.notified();
            if self.reason().is_some() {
                return;
            }
            notified.await;
        }
    }

    /// Set while the execution waits in a queue.
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

    /// Attaches the execution to what runs it. An interrupt that came first is delivered now.
    pub(crate) fn attach(&self, terminator: Terminator) {
        let mut attachment = self.attachment.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reason) = self.reason() {
            terminator(reason);
        }
        attachment.terminator = Some(terminator);
    }

    /// Marks the run finished; afterwards no interrupt reaches its engine.
    pub(crate) fn finish(&self) {
        let mut attachment = self.attachment.lock().unwrap_or_else(|p| p.into_inner());
        attachment.finished = true;
        attachment.terminator = None;
    }
}
