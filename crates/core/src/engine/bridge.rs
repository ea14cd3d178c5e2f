//! What the engine needs from whoever owns an execution (the session): the
//! synchronous half of `callTool` (checks and events, in program order), the
//! settlement of each call, and console output.

use std::time::Instant;

use crate::protocol::ErrorInfo;
use crate::tools::{ReplyReceiver, ToolReply};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleLevel {
    Log,
    Info,
    Warn,
    Error,
    Debug,
}

impl ConsoleLevel {
    pub fn from_index(i: u32) -> ConsoleLevel {
        match i {
            1 => ConsoleLevel::Info,
            2 => ConsoleLevel::Warn,
            3 => ConsoleLevel::Error,
            4 => ConsoleLevel::Debug,
            _ => ConsoleLevel::Log,
        }
    }

    /// The level of a `log` event (`stdout` events are `Log`).
    pub fn from_name(name: &str) -> Option<ConsoleLevel> {
        match name {
            "info" => Some(ConsoleLevel::Info),
            "warn" => Some(ConsoleLevel::Warn),
            "error" => Some(ConsoleLevel::Error),
            "debug" => Some(ConsoleLevel::Debug),
            "log" => Some(ConsoleLevel::Log),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleLevel::Log => "log",
            ConsoleLevel::Info => "info",
            ConsoleLevel::Warn => "warn",
            ConsoleLevel::Error => "error",
            ConsoleLevel::Debug => "debug",
        }
    }
}

#[derive(Clone, Debug)]
pub struct ToolCallInfo {
    pub call_key: u64,
    pub call_id: String,
    pub name: String,
    pub started: Instant,
}

pub struct PendingToolCall {
    pub info: ToolCallInfo,
    pub reply: ReplyReceiver,
}

pub trait SandboxBridge: Send + Sync {
    /// Called synchronously from the sandbox's `callTool`. `Err` rejects the call at once
    /// (no events), as the original does for its in-sandbox checks.
    fn begin_tool_call(&self, name: &str, args_json: String) -> Result<PendingToolCall, ErrorInfo>;

    /// Called when a call settles (`Some`) or is abandoned because the run was interrupted
    /// (`None`). Returns what the sandbox should see.
    fn finish_tool_call(&self, info: &ToolCallInfo, reply: Option<ToolReply>) -> ToolReply;

    fn console(&self, level: ConsoleLevel, text: &str);

    /// A `stdout` chunk that arrives already rendered (a remote runtime's `console.log`
    /// output, its newline included): counted and emitted as the chunk it is.
    fn stdout_chunk(&self, chunk: &str) {
        self.console(ConsoleLevel::Log, chunk.strip_suffix('\n').unwrap_or(chunk));
    }
}
