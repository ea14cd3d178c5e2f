//! The engine process's side of the pipe to the broker: one writer for frames, the
//! executions in progress (so an interrupt reaches the one it names), and the tool replies
//! they await.
//! `RemoteBridge` is the sandbox's view of the session, which lives in the broker.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::engine::bridge::{ConsoleLevel, PendingToolCall, SandboxBridge, ToolCallInfo};
use crate::engine::control::ExecutionControl;
use crate::engine::outcome::InterruptReason;
use crate::engine::wire::{FromEngine, write_frame};
use crate::protocol::{ErrorCode, ErrorInfo};
use crate::tools::{ReplySender, ToolReply, reply_channel};

pub(crate) struct Link {
    out: Mutex<BufWriter<File>>,
    /// The executions in progress, by id, so that a stop reaches the one it names.
    executions: Mutex<HashMap<u64, Arc<ExecutionControl>>>,
    replies: Mutex<HashMap<(u64, u32), ReplySender>>,
}

impl Link {
    /// Frames go to fd 1; nothing else in this process writes there (V8 reports to fd 2).
    pub fn to_stdout() -> Arc<Link> {
        let out = stdout_file();
        Arc::new(Link {
            out: Mutex::new(BufWriter::new(out)),
            executions: Mutex::new(HashMap::new()),
            replies: Mutex::new(HashMap::new()),
        })
    }

    /// Sends a frame; a broker that went away ends this process. Isolate threads send
    /// concurrently: each frame leaves whole, in one write.
    pub fn send(&self, message: &FromEngine) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if write_frame(&mut *out, &message.to_frame()).is_err() {
            std::process::exit(0);
        }
    }

    /// Registers `exec` when its Execute frame is read, before any later frame (its stop)
    /// can be: a stop always finds the execution it names, or finds it ended.
    pub fn begin(&self, exec: u64, control: Arc<ExecutionControl>) {
        self.executions.lock().unwrap_or_else(|p| p.into_inner()).insert(exec, control);
    }

    pub fn end(&self, exec: u64) {
        self.executions.lock().unwrap_or_else(|p| p.into_inner()).remove(&exec);
        self.replies.lock().unwrap_or_else(|p| p.into_inner()).retain(|(e, _), _| *e != exec);
    }

    /// Stops `exec` if it has not ended.
    pub fn interrupt(&self, exec: u64, reason: InterruptReason) {
        let control = self.executions.lock().unwrap_or_else(|p| p.into_inner()).get(&exec).cloned();
        if let Some(control) = control {
            control.interrupt(reason);
        }
    }

    /// Tells the broker that `exec` reached its heap limit, while V8 may still be inside a
    /// builtin that finishes before it notices the termination.
    pub fn limit_reached(&self, exec: u64, report: &str) {
        self.send(&FromEngine::MemoryLimitReached { exec, report: report.to_string() });
    }

    pub fn deliver(&self, exec: u64, index: u32, reply: ToolReply) {
        let sender = self.replies.lock().unwrap_or_else(|p| p.into_inner()).remove(&(exec, index));
        if let Some(sender) = sender {
            let _ = sender.send(reply);
        }
    }
}

/// Standard output as a plain file, without std's line buffering.
#[cfg(unix)]
fn stdout_file() -> File {
    use std::os::fd::FromRawFd;
    // SAFETY: fd 1 stays open for the life of the process and is owned by this writer.
    unsafe { File::from_raw_fd(1) }
}

#[cfg(windows)]
fn stdout_file() -> File {
    use std::os::windows::io::{AsRawHandle, FromRawHandle};
    // SAFETY: the standard output handle stays open for the life of the process and is
    // owned by this writer from here on.
    unsafe { File::from_raw_handle(std::io::stdout().as_raw_handle()) }
}

fn cancelled() -> ToolReply {
    ToolReply::Err(ErrorInfo::new(ErrorCode::SESSION_CANCELLED, "Session cancelled"))
}

pub(crate) struct RemoteBridge {
    exec: u64,
    link: Arc<Link>,
    next: AtomicU32,
}

impl RemoteBridge {
    pub fn new(exec: u64, link: Arc<Link>) -> RemoteBridge {
        RemoteBridge { exec, link, next: AtomicU32::new(0) }
    }
}

impl SandboxBridge for RemoteBridge {
    /// The broker decides (limits, events) when the frame arrives, in program order with the
    /// script's console output; a refusal comes back as an error reply.
    fn begin_tool_call(&self, name: &str, args_json: String) -> Result<PendingToolCall, ErrorInfo> {
        let index = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = reply_channel();
        self.link.replies.lock().unwrap_or_else(|p| p.into_inner()).insert((self.exec, index), tx);
        self.link.send(&FromEngine::CallTool { exec: self.exec, index, name: name.to_string(), args_json });
        Ok(PendingToolCall {
            info: ToolCallInfo {
                call_key: u64::from(index),
                call_id: String::new(),
                name: name.to_string(),
                started: Instant::now(),
            },
            reply: rx,
        })
    }

    /// The broker already settled the call (and emitted its events) before replying.
    fn finish_tool_call(&self, _info: &ToolCallInfo, reply: Option<ToolReply>) -> ToolReply {
        reply.unwrap_or_else(cancelled)
    }

    fn console(&self, level: ConsoleLevel, text: &str) {
        self.link.send(&FromEngine::Console { exec: self.exec, level, text: text.to_string() });
    }
}
