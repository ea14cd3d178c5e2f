//! Error codes reported in `final.payload.error.code` and `SessionFinalResult.error.code`
//! (our error-code decision, docs/compatibility.md), and the `{code, message, name}` triple that carries them.

pub struct ErrorCode;

impl ErrorCode {
    pub const VALIDATION_ERROR: &'static str = "VALIDATION_ERROR";
    pub const TIMEOUT: &'static str = "TIMEOUT";
    pub const MEMORY_LIMIT_EXCEEDED: &'static str = "MEMORY_LIMIT_EXCEEDED";
    pub const MAX_TOOL_CALLS_EXCEEDED: &'static str = "MAX_TOOL_CALLS_EXCEEDED";
    pub const TOOL_ERROR: &'static str = "TOOL_ERROR";
    pub const UNKNOWN_TOOL: &'static str = "UNKNOWN_TOOL";
    pub const EXECUTION_ERROR: &'static str = "EXECUTION_ERROR";
    pub const SESSION_CANCELLED: &'static str = "SESSION_CANCELLED";
    pub const DEADLINE_EXCEEDED: &'static str = "DEADLINE_EXCEEDED";
    pub const TOOL_RESULT_TOO_LARGE: &'static str = "TOOL_RESULT_TOO_LARGE";
    pub const TOOL_ARGS_TOO_LARGE: &'static str = "TOOL_ARGS_TOO_LARGE";
    pub const RESULT_TOO_LARGE: &'static str = "RESULT_TOO_LARGE";
    /// `callTool` with a name longer than `engine::MAX_TOOL_NAME_BYTES`.
    pub const TOOL_NAME_TOO_LONG: &'static str = "TOOL_NAME_TOO_LONG";
    /// The engine pool's memory budget is in use and its queue is full (`engine::budget`).
    pub const ENGINE_CAPACITY_EXCEEDED: &'static str = "ENGINE_CAPACITY_EXCEEDED";
    /// The engine process running the script died for a reason other than a limit.
    pub const ENGINE_CRASHED: &'static str = "ENGINE_CRASHED";
    /// Shared state (the `redis` option): the broker running the session stopped renewing
    /// its lease, and another broker finished the session.
    pub const BROKER_LOST: &'static str = "BROKER_LOST";
    /// Shared state: Redis cannot be reached (new sessions are refused with it; a session
    /// whose events no longer fit the outage buffer fails with it).
    pub const REDIS_UNAVAILABLE: &'static str = "REDIS_UNAVAILABLE";
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
    pub name: String,
}

impl ErrorInfo {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_string(), message: message.into(), name: "Error".to_string() }
    }

    pub fn named(code: &str, name: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_string(), message: message.into(), name: name.to_string() }
    }
}
