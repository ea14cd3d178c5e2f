//! The boundary between the core and whoever runs tool handlers (the JS facade through
//! the binding, or Rust in tests). The core decides *whether* a call happens and emits
//! its events; the host runs the handler and replies once.

pub mod pattern;
mod reply;

pub use pattern::{PatternError, ToolPattern};
pub use reply::{ReplyReceiver, ReplySender, reply_channel};

use crate::protocol::ErrorInfo;

/// A tool call the core has accepted and wants the host to run.
#[derive(Debug)]
pub struct ToolCall {
    /// Process-unique key of the call (for replies and aborts).
    pub call_key: u64,
    /// Process-unique key of the session (session ids may repeat, see quirk Q7 in docs/compatibility.md).
    pub session_key: u64,
    pub session_id: String,
    /// `c_` + UUID, as in the `tool_call` event.
    pub call_id: String,
    pub name: String,
    /// The arguments as JSON text (already a copy made inside the sandbox).
    pub args_json: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ToolReply {
    /// The handler's value as JSON text; `None` for `undefined`.
    Ok(Option<String>),
    Err(ErrorInfo),
}

pub type ToolReplySender = ReplySender;

pub trait ToolHost: Send + Sync {
    /// Runs `call` and eventually sends one reply. Must not block. A call the host never
    /// answers ends at the session's per-tool deadline.
    fn call(&self, call: ToolCall, reply: ToolReplySender);

    /// Asks the host to abort the handler's `signal` (per-tool deadline, cancel). The call
    /// stays open: a value the handler still returns is delivered (as the original).
    fn abort(&self, call_key: u64);

    /// The core no longer waits for this call (its run ended): abort the signal and forget
    /// the reply channel, which may never be answered.
    fn abandon(&self, call_key: u64) {
        self.abort(call_key);
    }
}
