//! The memory limit a run hit, recorded the moment it happens: by V8's near-heap-limit
//! callback, by a garbage collection that finds the heap over the limit (V8 grants some
//! single allocations past it without calling back), by the ArrayBuffer budget refusing an
//! allocation, or by ICU memory outgrowing what is left of the budget. The first report
//! wins, the broker is told at once (so a builtin that ignores termination is stopped as
//! out of memory, and a race with the script's completion, a later GC or a timeout cannot
//! change the outcome), and the script is terminated. An isolate with a recorded hit never
//! runs another script.

use std::ffi::c_void;
use std::sync::OnceLock;

use deno_core::v8;

/// Bytes as the MB figure of the error messages.
pub(crate) fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1_048_576.0
}

/// V8's interrupt callback (the `v8` crate does not export its name).
pub(crate) type Interrupt = unsafe extern "C" fn(v8::UnsafeRawIsolatePtr, *mut c_void);

/// Told, from wherever the hit happens (V8's callbacks, an allocator), with the report.
pub(crate) type LimitReached = Box<dyn Fn(&str) + Send + Sync>;

pub(crate) struct LimitHit {
    report: OnceLock<String>,
    isolate: OnceLock<v8::IsolateHandle>,
    on_reached: LimitReached,
}

impl LimitHit {
    pub fn new(on_reached: LimitReached) -> LimitHit {
        LimitHit { report: OnceLock::new(), isolate: OnceLock::new(), on_reached }
    }

    pub fn set_isolate(&self, handle: v8::IsolateHandle) {
        let _ = self.isolate.set(handle);
    }

    /// Records a hit (the first report is kept) and stops the script.
    pub fn record(&self, report: impl FnOnce() -> String) {
        let mut first = false;
        let kept = self.report.get_or_init(|| {
            first = true;
            report()
        });
        if first {
            (self.on_reached)(kept);
        }
        if let Some(isolate) = self.isolate.get() {
            isolate.terminate_execution();
        }
    }

    /// Asks V8 to run `callback(data)` on the isolate's thread at its next safe point.
    pub fn interrupt(&self, callback: Interrupt, data: *mut c_void) -> bool {
        self.isolate.get().is_some_and(|isolate| isolate.request_interrupt(callback, data))
    }

    /// The report of the hit, if one was recorded.
    pub fn report(&self) -> Option<&str> {
        self.report.get().map(String::as_str)
    }
}
