//! One execution on a runtime worker, seen from the broker: the broker-side twin of an
//! engine process's run (`engine/process.rs`). The worker's events drive the session's
//! bridge (console output, tool calls), its `final` settles the run, and the session's
//! control reaches the worker as `cancel`. The session decides everything it decides in
//! embedded mode (tool-call limits and checks, truncation, deadlines), so both modes give
//! the same events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::messages::{self, WorkerEvent};
use super::socket::payload_cap;
use crate::engine::timer::{self, Ticket};
use crate::engine::{
    ConsoleLevel, ExecutionControl, ExecutionOutcome, ExecutionRequest, InterruptReason, ToolCallInfo,
};
use crate::protocol::json::JsonObject;
use crate::protocol::{ErrorCode, ErrorInfo};
use crate::tools::ToolReply;

/// The code of a run lost with its worker (the connection dropped, the worker died).
pub const RUNTIME_LOST: &str = "RUNTIME_LOST";

/// How long a stopped run waits for the worker's `final` before it ends without it. The
/// worker itself stops a script within 250 ms (it kills the engine process otherwise).
pub(crate) const REMOTE_STOP_GRACE: Duration = Duration::from_secs(2);

struct RunState {
    request: Option<ExecutionRequest>,
    calls: HashMap<String, ToolCallInfo>,
    _timeout: Option<Ticket>,
    escalation: Option<Ticket>,
    finished: bool,
}

/// What a run needs of the connection it was placed on (`client::Connection`): a way to
/// send frames to its worker, and to be registered for that worker's answers and freed.
pub(crate) trait RunConnection: Send + Sync {
    fn send(&self, text: String);
    /// The worker's `maxMessageBytes`: nothing larger is sent to it.
    fn peer_max(&self) -> usize;
    /// Routes the worker's frames for `run.wire_id` to `run`.
    fn register(&self, run: &Arc<RemoteRun>);
    /// Forgets `run` and frees its slot on the worker.
    fn unregister(&self, run: &RemoteRun);
    /// The worker's URL, for error messages.
    fn url(&self) -> String;
    /// Whether the worker said it is stopping.
    fn draining(&self) -> bool;
}

pub(crate) struct RemoteRun {
    pub wire_id: String,
    pub exec: u64,
    pub control: Arc<ExecutionControl>,
    connection: Weak<dyn RunConnection>,
    state: Mutex<RunState>,
}

/// What the broker asks of a worker's session: its limits only where the worker must act
/// (the script timeout, memory), and where frames must stay bounded; everything the broker's
/// session decides itself is switched off there, so that no rule is applied twice.
fn worker_limits(request: &ExecutionRequest, cap: u64) -> String {
    let l = &request.limits;
    JsonObject::new()
        .field("sessionTtlMs", &l.session_ttl_ms)
        .field("maxToolCalls", &u64::MAX)
        // 4 bytes over the session's cap: the session, not the worker, cuts the output and
        // says so (a UTF-8 character is at most 4 bytes, so the worker never cuts first).
        .field("maxStdoutBytes", &l.max_stdout_bytes.saturating_add(4).min(cap))
        // One over the session's: the session cuts the output by count too, and says so.
        .field("maxStdoutEvents", &l.max_stdout_events.saturating_add(1))
        .field("maxToolResultBytes", &cap)
        .field("toolTimeoutMs", &request.timeout.map_or(0, |t| t.as_millis() as u64))
        .field("heartbeatIntervalMs", &0)
        .field("deadlineMs", &0)
        .field("perToolDeadlineMs", &0)
        .field("cancelOnFirstError", &false)
        .field("memoryLimit", &request.sandbox.memory_limit_bytes)
        .finish()
}

fn worker_enclave(request: &ExecutionRequest, cap: u64) -> String {
    let s = &request.sandbox;
    JsonObject::new()
        .field("maxResultBytes", &(s.max_result_bytes as u64).min(cap))
        .field("maxSanitizeDepth", &s.max_depth)
        .opt_raw("globals", s.globals_json.as_deref())
        .finish()
}

pub(crate) fn lost(url: &str, reason: &str) -> ErrorInfo {
    ErrorInfo::new(RUNTIME_LOST, format!("The runtime worker at {url} was lost: {reason}"))
}

/// A worker's answer to `execute` that means "not here", not "failed".
pub(crate) fn is_refusal(error: &ErrorInfo) -> bool {
    matches!(error.code.as_str(), "RUNTIME_BUSY" | "RUNTIME_STOPPING")
}

impl RemoteRun {
    /// Sends `request` to the worker behind `connection`. `Err` hands the request back when
    /// it cannot be sent there (its script is larger than the worker takes).
    pub fn start(
        connection: &Arc<dyn RunConnection>,
        wire_id: String,
        exec: u64,
        request: ExecutionRequest,
        control: Arc<ExecutionControl>,
    ) -> Result<Arc<RemoteRun>, Box<(ExecutionRequest, ErrorInfo)>> {
        let cap = payload_cap(connection.peer_max()) as u64;
        let execute = messages::execute(
            &wire_id,
            &request.code,
            &worker_limits(&request, cap),
            &worker_enclave(&request, cap),
        );
        if execute.len() > connection.peer_max() {
            let error = ErrorInfo::new(
                ErrorCode::VALIDATION_ERROR,
                format!(
                    "The script and its globals ({} bytes) exceed the runtime worker's maxMessageBytes ({})",
                    execute.len(),
                    connection.peer_max()
                ),
            );
            return Err(Box::new((request, error)));
        }
        let timeout = request.timeout.map(|t| {
            let control = control.clone();
            timer::arm(Instant::now() + t, move || control.interrupt(InterruptReason::Timeout))
        });
        let run = Arc::new(RemoteRun {
            wire_id,
            exec,
            control: control.clone(),
            connection: Arc::downgrade(connection),
            state: Mutex::new(RunState {
                request: Some(request),
                calls: HashMap::new(),
                _timeout: timeout,
                escalation: None,
                finished: false,
            }),
        });
        connection.register(&run);
        connection.send(execute);
        let stop = Arc::downgrade(&run);
        control.attach(Box::new(move |reason| {
            if let Some(run) = stop.upgrade() {
                run.stop(reason);
            }
        }));
        Ok(run)
    }

    /// The worker cancelled the run without being asked: it is stopping, or lost its client.
    fn ended_by_worker(&self, message: &str) -> ErrorInfo {
        let (url, stopping) = self.connection.upgrade().map(|c| (c.url(), c.draining())).unwrap_or_default();
        let why = if stopping { "stopped before the run finished" } else { "ended the run" };
        ErrorInfo::new(RUNTIME_LOST, format!("The runtime worker at {url} {why} ({message})"))
    }

    fn lock(&self) -> MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bridge(&self) -> Option<Arc<dyn crate::engine::SandboxBridge>> {
        let state = self.lock();
        if state.finished { None } else { state.request.as_ref().map(|r| r.bridge.clone()) }
    }

    /// The session stopped the run: the worker is asked to cancel it; without its `final`
    /// within the grace period, the run ends here.
    fn stop(self: &Arc<Self>, reason: InterruptReason) {
        let Some(connection) = self.connection.upgrade() else { return };
        let text = match reason {
            InterruptReason::Timeout => "Script timeout",
            InterruptReason::MemoryLimit => "Memory limit",
            InterruptReason::Stopped => "Session was cancelled",
        };
        connection.send(messages::cancel(&self.wire_id, text));
        let run = Arc::downgrade(self);
        let escalation = timer::arm(Instant::now() + REMOTE_STOP_GRACE, move || {
            if let Some(run) = run.upgrade() {
                run.finish(ExecutionOutcome::Interrupted { reason, detail: None });
            }
        });
        let mut state = self.lock();
        if !state.finished {
            state.escalation = Some(escalation);
        }
    }

    /// One of the worker's events for this run.
    pub fn on_event(self: &Arc<Self>, event: WorkerEvent) {
        match event {
            WorkerEvent::Stdout(chunk) => {
                if let Some(bridge) = self.bridge() {
                    bridge.stdout_chunk(&chunk);
                }
            }
            WorkerEvent::Log { level, message } => {
                if let Some(bridge) = self.bridge() {
                    bridge.console(ConsoleLevel::from_name(&level).unwrap_or(ConsoleLevel::Info), &message);
                }
            }
            WorkerEvent::ToolCall { call_id, name, args_json } => self.call_tool(call_id, &name, args_json),
            WorkerEvent::Final(Ok(value)) => self.finish(ExecutionOutcome::Returned(value)),
            WorkerEvent::Final(Err(error)) => {
                let outcome = match error.code.as_str() {
                    ErrorCode::TIMEOUT => {
                        ExecutionOutcome::Interrupted { reason: InterruptReason::Timeout, detail: None }
                    }
                    ErrorCode::MEMORY_LIMIT_EXCEEDED => ExecutionOutcome::memory_limit(error.message),
                    // Cancelled without the broker asking: the worker ended it (it is stopping).
                    ErrorCode::SESSION_CANCELLED => match self.control.reason() {
                        Some(reason) => ExecutionOutcome::Interrupted { reason, detail: None },
                        None => ExecutionOutcome::Threw(self.ended_by_worker(&error.message)),
                    },
                    _ => ExecutionOutcome::Threw(error),
                };
                self.finish(outcome);
            }
            WorkerEvent::Other => {}
        }
    }

    fn call_tool(self: &Arc<Self>, call_id: String, name: &str, args_json: String) {
        let Some(connection) = self.connection.upgrade() else { return };
        let mut state = self.lock();
        if state.finished {
            return;
        }
        let Some(bridge) = state.request.as_ref().map(|r| r.bridge.clone()) else { return };
        // The session decides and emits its events now, in the order the frames arrived.
        match bridge.begin_tool_call(name, args_json) {
            Err(error) => {
                drop(state);
                connection.send(messages::tool_result(&self.wire_id, &call_id, &ToolReply::Err(error)));
            }
            Ok(pending) => {
                state.calls.insert(call_id.clone(), pending.info);
                drop(state);
                let run = self.clone();
                pending.reply.on_reply(move |reply| run.settle_call(&call_id, reply));
            }
        }
    }

    fn settle_call(&self, call_id: &str, reply: ToolReply) {
        let Some(connection) = self.connection.upgrade() else { return };
        let mut state = self.lock();
        if state.finished {
            return;
        }
        let Some(info) = state.calls.remove(call_id) else { return };
        let Some(bridge) = state.request.as_ref().map(|r| r.bridge.clone()) else { return };
        // Under the lock, so the call's `tool_result_applied` cannot follow the run's `final`.
        let reply = bridge.finish_tool_call(&info, Some(reply));
        drop(state);
        let mut message = messages::tool_result(&self.wire_id, call_id, &reply);
        if message.len() > connection.peer_max() {
            let error = ErrorInfo::new(
                ErrorCode::TOOL_RESULT_TOO_LARGE,
                format!(
                    "Tool response exceeds the runtime worker's maxMessageBytes ({} bytes)",
                    connection.peer_max()
                ),
            );
            message = messages::tool_result(&self.wire_id, call_id, &ToolReply::Err(error));
        }
        connection.send(message);
    }

    /// Ends the run with `outcome`, once; calls still in flight are abandoned first, so
    /// every `tool_call` in the session's stream is closed before its `final`.
    pub fn finish(&self, outcome: ExecutionOutcome) {
        let (request, calls) = {
            let mut state = self.lock();
            if state.finished {
                return;
            }
            state.finished = true;
            state.escalation = None;
            state._timeout = None;
            (state.request.take(), std::mem::take(&mut state.calls))
        };
        if let Some(connection) = self.connection.upgrade() {
            connection.unregister(self);
        }
        let Some(mut request) = request else { return };
        for info in calls.values() {
            request.bridge.finish_tool_call(info, None);
        }
        self.control.finish();
        let done = std::mem::replace(&mut request.done, Box::new(|_| {}));
        done(outcome);
    }

    /// The worker refused the run (busy or stopping): it is taken back, unstarted, to be
    /// placed again.
    pub fn take_back(&self) -> Option<ExecutionRequest> {
        let mut state = self.lock();
        if state.finished || !state.calls.is_empty() {
            return None;
        }
        state.finished = true;
        state.escalation = None;
        state._timeout = None;
        let request = state.request.take();
        drop(state);
        if let Some(connection) = self.connection.upgrade() {
            connection.unregister(self);
        }
        request
    }

    /// The connection is gone: the run ends as lost, unless it was being stopped anyway.
    pub fn connection_lost(&self, url: &str, reason: &str) {
        let outcome = match self.control.reason() {
            Some(reason) => ExecutionOutcome::Interrupted { reason, detail: None },
            None => ExecutionOutcome::Threw(lost(url, reason)),
        };
        self.finish(outcome);
    }
}
