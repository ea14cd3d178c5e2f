//! `BindingSessionManager`: a JS handle on a core `SessionManager`.

use std::sync::Arc;

use enclave_broker_core::session::SessionManager;
use napi::bindgen_prelude::{Either, Function};
use napi_derive::napi;

use crate::config::BindingSessionConfig;
use crate::error::BindingError;
use crate::host::{BindingToolCall, JsToolHost};
use crate::session::{BindingSession, info_json};

#[napi]
pub struct BindingSessionManager {
    manager: Arc<SessionManager>,
    tools: Arc<JsToolHost>,
}

fn list_json(infos: &[enclave_broker_core::session::SessionInfo]) -> String {
    format!("[{}]", infos.iter().map(info_json).collect::<Vec<_>>().join(","))
}

impl BindingSessionManager {
    pub(crate) fn core(&self) -> Arc<SessionManager> {
        self.manager.clone()
    }
}

#[napi]
impl BindingSessionManager {
    /// `tool_function` runs the tool calls of this manager's sessions (see `JsToolHost`).
    #[napi(constructor)]
    pub fn new(
        max_sessions: f64,
        tool_function: Function<BindingToolCall, ()>,
    ) -> napi::Result<BindingSessionManager> {
        let max =
            if max_sessions.is_finite() && max_sessions >= 0.0 { max_sessions as usize } else { usize::MAX };
        let tools = JsToolHost::new(tool_function)?;
        Ok(BindingSessionManager { manager: Arc::new(SessionManager::new(max, tools.clone())), tools })
    }

    /// Whether a session could be created now (see `SessionManager::make_room`): how many
    /// finished sessions were swept to make room, or why not (disposed, full).
    #[napi]
    pub fn make_room(&self) -> Either<u32, BindingError> {
        match self.manager.make_room() {
            Ok(swept) => Either::A(swept as u32),
            Err(e) => Either::B(e.into()),
        }
    }

    #[napi]
    pub fn create(&self, config: BindingSessionConfig) -> Either<BindingSession, BindingError> {
        let created = config.into_core().and_then(|config| self.manager.create(config).map_err(Into::into));
        match created {
            Ok(session) => Either::A(BindingSession::wrap(session)),
            Err(e) => Either::B(e),
        }
    }

    #[napi]
    pub fn get(&self, session_id: String) -> Option<BindingSession> {
        self.manager.get(&session_id).map(BindingSession::wrap)
    }

    #[napi]
    pub fn has(&self, session_id: String) -> bool {
        self.manager.has(&session_id)
    }

    #[napi]
    pub fn list_json(&self) -> String {
        list_json(&self.manager.list())
    }

    #[napi]
    pub fn list_active_json(&self) -> String {
        list_json(&self.manager.list_active())
    }

    /// Keys of the sessions currently held, in insertion order.
    #[napi]
    pub fn keys(&self) -> Vec<f64> {
        self.manager.sessions().iter().map(|s| s.key() as f64).collect()
    }

    #[napi]
    pub fn terminate(&self, session_id: String, reason: Option<String>) -> bool {
        self.manager.terminate(&session_id, reason.as_deref())
    }

    #[napi]
    pub fn remove(&self, session: &BindingSession) -> bool {
        self.manager.remove(&session.session)
    }

    #[napi]
    pub fn cleanup(&self) -> u32 {
        self.manager.cleanup() as u32
    }

    /// Cancels every session and releases the tool function.
    #[napi]
    pub fn dispose(&self) {
        self.manager.dispose();
        self.tools.close();
    }

    #[napi(getter)]
    pub fn is_disposed(&self) -> bool {
        self.manager.is_disposed()
    }

    #[napi(getter)]
    pub fn active_count(&self) -> u32 {
        self.manager.active_count() as u32
    }

    #[napi(getter)]
    pub fn total_count(&self) -> u32 {
        self.manager.total_count() as u32
    }
}

/// Longest tool name a script may call, in UTF-8 bytes (registries refuse longer ones).
#[napi]
pub const MAX_TOOL_NAME_BYTES: u32 = enclave_broker_core::engine::MAX_TOOL_NAME_BYTES as u32;

/// The source of the value codec the sandbox uses (it defines `createValueCodec`): the
/// facade evaluates the same text, so tool results and return values are copied by one rule.
#[napi]
pub fn value_codec_source() -> &'static str {
    enclave_broker_core::engine::VALUE_CODEC_SOURCE
}

/// Where the `enclave-engine` binary is; the facade finds it next to the addon.
#[napi]
pub fn set_engine_executable(path: String) {
    enclave_broker_core::engine::set_executable(path);
}

/// Starts engine processes ahead of demand (each with an isolate and its first context).
#[napi]
pub fn prewarm_engine(processes: u32) {
    enclave_broker_core::engine::prewarm(processes as usize);
}

/// Starts an engine process for sessions made from `config` (a broker's defaults) unless
/// one exists. A config the core refuses starts nothing: creating a session from it reports
/// the error.
#[napi]
pub fn prewarm_engine_for(config: BindingSessionConfig) {
    if let Ok(config) = config.into_core() {
        enclave_broker_core::engine::prewarm_for(&config.sandbox);
    }
}

/// Sets the engine pool's memory budget (bytes) and how many executions may wait for it
/// (`runtimePool.memoryBudget` / `maxQueued`); absent values are kept.
#[napi]
pub fn configure_engine_pool(memory_budget: Option<f64>, max_queued: Option<f64>) {
    let whole = |v: Option<f64>| v.filter(|v| v.is_finite() && *v >= 0.0).map(|v| v as usize);
    enclave_broker_core::engine::configure(whole(memory_budget), whole(max_queued));
}

/// Sets how many isolates each engine process started from now on hosts
/// (`runtimePool.isolatesPerEngine`); returns the value in force.
#[napi]
pub fn configure_engine_isolates(isolates: u32) -> u32 {
    enclave_broker_core::engine::configure_isolates(isolates as usize) as u32
}

#[napi(object)]
pub struct EngineStats {
    pub processes: u32,
    /// Processes running no execution.
    pub idle: u32,
    /// Executions running now, one per isolate.
    pub running: u32,
    /// Isolates each engine process started from now on hosts.
    pub isolates_per_engine: u32,
    /// Processes that ended (a V8 fatal error, a kill) while they ran executions.
    pub crashed: f64,
    /// Executions that ended because their process did.
    pub lost_executions: f64,
    pub queued: u32,
    pub executions: f64,
    pub killed: f64,
    /// Stopped executions that did not stop in time and were ended without waiting for their
    /// isolate (a builtin that ignores V8's termination).
    pub detached: f64,
    /// Bytes the memory ceilings of running executions may add up to.
    pub memory_budget: f64,
    /// Sum of the memory ceilings of the executions running now.
    pub admitted_bytes: f64,
    pub max_queued: f64,
    /// The confinement layers of the engine processes (null until one has started).
    pub sandbox: Option<Vec<String>>,
}

#[napi]
pub fn engine_stats() -> EngineStats {
    let s = enclave_broker_core::engine::pool_stats();
    EngineStats {
        processes: s.processes as u32,
        idle: s.idle as u32,
        running: s.running as u32,
        isolates_per_engine: s.isolates_per_engine as u32,
        crashed: s.crashed as f64,
        lost_executions: s.lost_executions as f64,
        queued: s.queued as u32,
        executions: s.executions as f64,
        killed: s.killed as f64,
        detached: s.detached as f64,
        memory_budget: s.budget.memory_bytes as f64,
        admitted_bytes: s.admitted_bytes as f64,
        max_queued: s.budget.max_queued as f64,
        sandbox: enclave_broker_core::engine::sandbox_report(),
    }
}
