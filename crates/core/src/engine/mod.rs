//! The engine. Scripts run in engine processes (`enclave-engine`, built from this crate),
//! each hosting several V8 isolates (`isolates_per_engine`, one thread each), and each
//! isolate runs one execution at a time in a fresh context prepared ahead of demand. A
//! context is never reused; an isolate that hit a limit is replaced. Running outside the
//! host process means that nothing V8 does for a hostile script (a fatal error, a builtin
//! that ignores termination) can stop the host: the worst case is that one process, and the
//! executions it ran, end.

mod bridge;
pub mod budget;
pub mod confine;
mod control;
mod job;
mod outcome;
// Elsewhere than on Unix the pipe cannot be made non-blocking: a writer thread takes the frames.
#[cfg_attr(not(unix), path = "pipe_writer_portable.rs")]
mod pipe_writer;
mod pool;
mod pool_events;
mod process;
pub(crate) mod timer;
pub mod wire;

#[cfg(feature = "v8")]
pub mod child;

use std::sync::Arc;
use std::time::Duration;

use crate::protocol::SessionLimits;

pub use bridge::{ConsoleLevel, PendingToolCall, SandboxBridge, ToolCallInfo};
pub use budget::{AtCapacity, BudgetConfig};
pub use control::ExecutionControl;
pub use outcome::{ExecutionOutcome, InterruptReason};
pub use pool::{
    PoolStats, check_capacity, configure, configure_isolates, pool_stats, prewarm, prewarm_for,
    sandbox_report, set_executable,
};

/// What a script is compiled inside: the body of an async function, so top-level `await`
/// and `return` work (the engine's `child/wrap.rs` wraps; the sidecar's rewrite parses the
/// script the same way, `sidecar/transform.rs`).
pub const WRAPPER_HEAD: &str = "(async function () {\n";
pub const WRAPPER_TAIL: &str = "\n})";

/// Default V8 heap limit for a script (issue: `memoryLimit`, default 128 MiB).
pub const DEFAULT_MEMORY_LIMIT: usize = 128 * 1024 * 1024;
/// Smallest heap an isolate can run with; smaller `memoryLimit`s are raised to this.
pub const MIN_MEMORY_LIMIT: usize = 16 * 1024 * 1024;
/// Default cap on the JSON size of a script's return value.
pub const DEFAULT_MAX_RESULT_BYTES: usize = 5 * 1024 * 1024;
/// Default depth limit for values crossing the boundary (the original's STANDARD level).
pub const DEFAULT_MAX_DEPTH: u32 = 20;
/// Longest tool name a script may call, in UTF-8 bytes: a longer one is refused in the
/// sandbox (`TOOL_NAME_TOO_LONG`) before it is copied out, and cannot be registered.
pub const MAX_TOOL_NAME_BYTES: usize = 1024;
/// Most of an uncaught error's message that leaves the sandbox, in UTF-8 bytes; the rest
/// is cut and the cut said. (Its stack never leaves: only console output can carry it,
/// and that is capped by `maxStdoutBytes`.)
pub const MAX_ERROR_MESSAGE_BYTES: usize = 16 * 1024;
/// Most of an uncaught error's name that leaves the sandbox, in UTF-8 bytes.
pub const MAX_ERROR_NAME_BYTES: usize = 256;

/// The value codec (`child/value-codec.js`): how a JavaScript value becomes plain JSON data
/// crossing the sandbox boundary. Every sandbox context runs it (the prelude includes it) and
/// so does the host facade (`lib/value-codec.js` evaluates this text), so both sides copy
/// values by one rule.
pub const VALUE_CODEC_SOURCE: &str = include_str!("child/value-codec.js");

/// How long an engine process may take to honour a stop before it is killed.
pub(crate) const STOP_GRACE: Duration = Duration::from_millis(250);

/// What an engine process uses beyond its isolates: the binary, V8's shared parts, the
/// reader thread.
const PROCESS_BASE: usize = 256 << 20;
/// What each isolate uses beyond its heap and ArrayBuffers: its thread's stack, V8's tables
/// for it, its context, its part of the allocator.
const ISOLATE_BASE: usize = 16 << 20;

/// Default isolates per engine process (`ENCLAVE_BROKER_ISOLATES_PER_ENGINE`,
/// `runtimePool.isolatesPerEngine`). README "Engine processes and isolates" says why.
pub const DEFAULT_ISOLATES_PER_ENGINE: usize = 16;
/// Most isolates one engine process may host.
pub const MAX_ISOLATES_PER_ENGINE: usize = 256;

/// The most memory an engine process with `isolates` isolates of `memory_limit` may use:
/// each isolate's heap and ArrayBuffers up to the limit plus its own part, and the process's.
/// Past it, the process is killed.
pub(crate) fn memory_ceiling(memory_limit: usize, isolates: usize) -> usize {
    let isolates = isolates.max(1);
    memory_limit
        .saturating_mul(2)
        .saturating_add(ISOLATE_BASE)
        .saturating_mul(isolates)
        .saturating_add(PROCESS_BASE)
}

/// One execution's share of its process's ceiling (its isolate's, and its part of the
/// process's): what the pool's memory budget admits it with.
pub(crate) fn execution_ceiling(memory_limit: usize, isolates: usize) -> usize {
    memory_limit.saturating_mul(2).saturating_add(ISOLATE_BASE).saturating_add(PROCESS_BASE / isolates.max(1))
}

/// How far an isolate's heap limit is raised once V8 nears `memory_limit` (the script is
/// being stopped; see `child::isolate`): past it V8 aborts the process.
#[cfg_attr(not(feature = "v8"), allow(dead_code))]
pub(crate) fn heap_ceiling(memory_limit: usize) -> usize {
    memory_limit.saturating_mul(2).saturating_add(PROCESS_BASE)
}

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
    /// The session this execution belongs to (a remote runtime runs it under this id).
    pub session_id: String,
    /// The session's limits: the engine needs only `timeout` below, but a remote runtime
    /// runs the execution as a session of its own and sizes its caps from these.
    pub limits: SessionLimits,
    pub code: String,
    pub sandbox: SandboxOptions,
    /// Script timeout, counted from `submit` (queueing included); `None` runs until done or
    /// interrupted.
    pub timeout: Option<Duration>,
    pub bridge: Arc<dyn SandboxBridge>,
    /// Called exactly once when the run is over.
    pub done: DoneCallback,
}

impl ExecutionRequest {
    /// Ends the request with `outcome` (its `done` runs here, once).
    pub(crate) fn settle(mut self, outcome: ExecutionOutcome) {
        let done = std::mem::replace(&mut self.done, Box::new(|_| {}));
        done(outcome);
    }

    /// Ends a request that was stopped while it waited to run: it never ran, so it ends as
    /// interrupted for its control's reason.
    pub(crate) fn settle_unstarted(self, control: &ExecutionControl) {
        let reason = control.reason().unwrap_or(InterruptReason::Stopped);
        control.finish();
        self.settle(ExecutionOutcome::Interrupted { reason, detail: None });
    }
}

/// Queues an execution on the engine pool. `control` can interrupt it at any time.
pub fn submit(request: ExecutionRequest, control: Arc<ExecutionControl>) {
    pool::global().submit(request, control);
}

/// Where a session's executions run: the local engine pool ([`local`]), or a runtime worker
/// on another machine (`remote::RuntimeClient`). This is the one seam between a session and
/// whatever runs its script: `request.bridge` receives tool calls and console output in
/// program order, `request.done` is called exactly once, and `control` stops the run.
pub trait Executor: Send + Sync {
    fn submit(&self, request: ExecutionRequest, control: Arc<ExecutionControl>);
}

struct LocalEngine;

impl Executor for LocalEngine {
    fn submit(&self, request: ExecutionRequest, control: Arc<ExecutionControl>) {
        submit(request, control);
    }
}

/// The engine pool of this process, as an [`Executor`].
pub fn local() -> Arc<dyn Executor> {
    static LOCAL: std::sync::OnceLock<Arc<dyn Executor>> = std::sync::OnceLock::new();
    LOCAL.get_or_init(|| Arc::new(LocalEngine)).clone()
}
