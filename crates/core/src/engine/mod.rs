//! The engine: a pool of engine threads, each owning one V8 isolate (a deno_core
//! `JsRuntime`) and running one execution at a time in a fresh context prepared ahead of
//! demand. A context is never reused; an isolate that hit a limit is discarded.

mod bridge;
mod buffer_budget;
mod control;
mod isolate;
mod outcome;
mod platform;
mod pool;
mod run;
mod sandbox;
mod watchdog;
mod worker;
pub mod wrap;

use std::sync::Arc;
use std::time::Duration;

pub use bridge::{ConsoleLevel, PendingToolCall, ReplyFuture, SandboxBridge, ToolCallInfo};
pub use control::ExecutionControl;
pub use outcome::{ExecutionOutcome, InterruptReason};
pub use pool::{PoolStats, pool_stats, prewarm};

/// Default V8 heap limit for a script (issue: `memoryLimit`, default 128 MiB).
pub const DEFAULT_MEMORY_LIMIT: usize = 128 * 1024 * 1024;
/// Smallest heap an isolate can run with; smaller `memoryLimit`s are raised to this.
pub const MIN_MEMORY_LIMIT: usize = 16 * 1024 * 1024;
/// Default cap on the JSON size of a script's return value.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 5 * 1024 * 1024;
/// Default depth limit for values crossing the boundary (the original's STANDARD level).
pub const DEFAULT_MAX_DEPTH: u32 = 20;

#[derive(Clone, Debug, PartialEq)]
pub struct SandboxOptions {
    pub memory_limit_bytes: usize,
    pub max_result_bytes: usize,
    pub max_depth: u32,
    /// JSON object of custom globals (`enclave.globals`), copied into the sandbox.
    pub globals_json: Option<String>,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT,
            max_result_bytes: DEFAULT_MAX_RESULT_BYTES,
            max_depth: DEFAULT_MAX_DEPTH,
            globals_json: None,
        }
    }
}

impl SandboxOptions {
    /// The heap limit actually given to V8.
    pub fn effective_memory_limit(&self) -> usize {
        self.memory_limit_bytes.max(MIN_MEMORY_LIMIT)
    }
}

pub type DoneCallback = Box<dyn FnOnce(ExecutionOutcome) + Send>;

pub struct ExecutionRequest {
    pub code: String,
    pub sandbox: SandboxOptions,
    /// Script timeout; `None` runs until done or interrupted.
    pub timeout: Option<Duration>,
    pub bridge: Arc<dyn SandboxBridge>,
    /// Called exactly once, on the engine thread, when the run is over.
    pub done: DoneCallback,
}

/// Queues an execution on the engine pool. `control` can interrupt it at any time.
pub fn submit(request: ExecutionRequest, control: Arc<ExecutionControl>) {
    pool::global().submit(request, control);
}
