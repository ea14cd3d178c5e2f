//! One client connection of a runtime worker (a broker, or any client of the original's
//! protocol). Each `execute` becomes a core [`Session`] of its own, run on this process's
//! engine pool, whose events go back on the connection; its tool calls wait for the
//! client's `tool_result`. The worker holds no tool handlers and no secrets.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use serde_json::{Map, Value};
use tokio_tungstenite::tungstenite::Message;

use super::messages::{self, RuntimeRequest};
use super::socket::{Outbox, Refusal, payload_cap};
use super::worker_slots::WorkerSlots;
use crate::engine::{DEFAULT_MAX_DEPTH, DEFAULT_MAX_RESULT_BYTES, DEFAULT_MEMORY_LIMIT, SandboxOptions};
use crate::protocol::event::payload;
use crate::protocol::{ErrorCode, EventType, PartialLimits, SessionLimits, StreamEvent};
use crate::session::{Session, SessionConfig, SessionRuntime};
use crate::tools::{ToolCall, ToolHost, ToolReply, ToolReplySender};

/// Codes of an `execute` the worker refuses (an `error` event, then `final`).
pub struct RefusalCode;

impl RefusalCode {
    /// The worker runs `maxSessions` sessions already; a broker places the run elsewhere.
    pub const RUNTIME_BUSY: &'static str = "RUNTIME_BUSY";
    /// The worker is stopping; a broker places the run elsewhere.
    pub const RUNTIME_STOPPING: &'static str = "RUNTIME_STOPPING";
    /// This connection already runs a session with that id.
    pub const SESSION_EXISTS: &'static str = "SESSION_EXISTS";
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Results that arrived before their call was registered are kept, at most this many.
const MAX_EARLY_RESULTS: usize = 1024;

/// Tool calls of this connection's sessions, answered by the client's `tool_result`.
#[derive(Default)]
struct RemoteTools {
    waiting: Mutex<Waiting>,
}

#[derive(Default)]
struct Waiting {
    by_call_id: HashMap<String, (u64, ToolReplySender)>,
    call_ids: HashMap<u64, String>,
    /// A `tool_result` can overtake its call's registration: the session emits `tool_call`
    /// (which the client may answer at once) just before it hands the call to the host.
    early: HashMap<String, ToolReply>,
}

impl RemoteTools {
    fn deliver(&self, call_id: String, reply: ToolReply) {
        let mut waiting = lock(&self.waiting);
        match waiting.by_call_id.remove(&call_id) {
            Some((call_key, sender)) => {
                waiting.call_ids.remove(&call_key);
                drop(waiting);
                let _ = sender.send(reply);
            }
            None if waiting.early.len() < MAX_EARLY_RESULTS => {
                waiting.early.insert(call_id, reply);
            }
            None => {}
        }
    }
}

impl ToolHost for RemoteTools {
    fn call(&self, call: ToolCall, reply: ToolReplySender) {
        let mut waiting = lock(&self.waiting);
        if let Some(early) = waiting.early.remove(&call.call_id) {
            drop(waiting);
            let _ = reply.send(early);
            return;
        }
        waiting.call_ids.insert(call.call_key, call.call_id.clone());
        waiting.by_call_id.insert(call.call_id, (call.call_key, reply));
    }

    /// The client runs the handler and owns its cancellation: nothing to do here.
    fn abort(&self, _call_key: u64) {}

    fn abandon(&self, call_key: u64) {
        let mut waiting = lock(&self.waiting);
        if let Some(call_id) = waiting.call_ids.remove(&call_key) {
            waiting.by_call_id.remove(&call_id);
        }
    }
}

struct Running {
    session: Arc<Session>,
    /// Set when one of its events was too large to send: nothing more of it is sent.
    cut: bool,
}

pub(crate) struct WorkerConnection {
    worker: Weak<WorkerSlots>,
    outbox: Outbox,
    tools: Arc<RemoteTools>,
    sessions: Mutex<HashMap<String, Running>>,
    weak_self: Weak<WorkerConnection>,
}

impl WorkerConnection {
    pub fn new(worker: &Arc<WorkerSlots>, outbox: Outbox) -> Arc<WorkerConnection> {
        Arc::new_cyclic(|weak_self| WorkerConnection {
            worker: Arc::downgrade(worker),
            outbox,
            tools: Arc::new(RemoteTools::default()),
            sessions: Mutex::new(HashMap::new()),
            weak_self: weak_self.clone(),
        })
    }

    pub fn send(&self, text: String) {
        let _ = self.outbox.send(Message::text(text));
    }

    pub fn send_close(&self, message: Message) {
        let _ = self.outbox.send(message);
    }

    pub fn sessions(&self) -> Vec<Arc<Session>> {
        lock(&self.sessions).values().map(|r| r.session.clone()).collect()
    }

    /// One text frame from the client. `Err` closes the connection (malformed frame).
    pub fn on_text(&self, text: &str) -> Result<(), Refusal> {
        match messages::parse_request(text).map_err(Refusal::malformed)? {
            RuntimeRequest::Execute { session_id, code, limits, enclave } => {
                self.execute(session_id, code, limits.as_deref(), enclave.as_deref())
            }
            RuntimeRequest::Cancel { session_id, reason } => {
                let session = lock(&self.sessions).get(&session_id).map(|r| r.session.clone());
                if let Some(session) = session {
                    session.cancel(reason.as_deref());
                }
            }
            RuntimeRequest::ToolResult { call_id, reply, .. } => self.tools.deliver(call_id, reply),
            RuntimeRequest::Ping { timestamp } => self.send(messages::pong(timestamp)),
            RuntimeRequest::Unknown => {}
        }
        Ok(())
    }

    /// The connection ended: its sessions are cancelled (nobody can answer their tools).
    pub fn closed(&self) {
        for session in self.sessions() {
            session.cancel(Some("Runtime connection closed"));
            session.dispose();
        }
    }

    fn refuse(&self, session_id: &str, code: &str, message: &str) {
        let error =
            StreamEvent::new(session_id, 1, EventType::Error, &payload::error(code, message, true, None));
        let stats = payload::final_stats(0.0, 0, 0);
        let fin = StreamEvent::new(
            session_id,
            2,
            EventType::Final,
            &payload::final_err(code, message, None, None, &stats),
        );
        self.send(error.json().to_string());
        self.send(fin.json().to_string());
    }

    fn execute(&self, session_id: String, code: String, limits: Option<&str>, enclave: Option<&str>) {
        let Some(worker) = self.worker.upgrade() else { return };
        if worker.stopping.load(Ordering::Acquire) {
            return self.refuse(&session_id, RefusalCode::RUNTIME_STOPPING, "The runtime worker is stopping");
        }
        if lock(&self.sessions).contains_key(&session_id) {
            let message = format!("Session {session_id} already exists");
            return self.refuse(&session_id, RefusalCode::SESSION_EXISTS, &message);
        }
        let config = match session_config(&worker, &session_id, limits, enclave) {
            Ok(config) => config,
            Err(message) => return self.refuse(&session_id, ErrorCode::VALIDATION_ERROR, &message),
        };
        if !worker.claim_slot() {
            let message = format!("Maximum sessions reached ({})", worker.config.max_sessions);
            return self.refuse(&session_id, RefusalCode::RUNTIME_BUSY, &message);
        }
        let runtime = SessionRuntime { executor: crate::engine::local(), error_names: true };
        let session = Session::with_runtime(config, self.tools.clone(), runtime);
        lock(&self.sessions).insert(session_id.clone(), Running { session: session.clone(), cut: false });
        let forward = self.weak_self.clone();
        let id = session_id.clone();
        session.subscribe(Arc::new(move |event: &Arc<StreamEvent>| {
            if let Some(connection) = forward.upgrade() {
                connection.forward(&id, event);
            }
        }));
        let finished = self.weak_self.clone();
        let done_session = Arc::downgrade(&session);
        session.on_finished(move |_| {
            if let Some(connection) = finished.upgrade() {
                let mut sessions = lock(&connection.sessions);
                let ours = sessions
                    .get(&session_id)
                    .is_some_and(|r| done_session.upgrade().is_some_and(|s| Arc::ptr_eq(&s, &r.session)));
                if ours {
                    sessions.remove(&session_id);
                }
            }
            worker.release_slot();
        });
        // Cannot fail: the session is new and not disposed.
        let _ = session.execute(code);
    }

    /// Sends one event of a session. An event larger than a frame may be (a huge tool name,
    /// say) ends that session instead of the connection: its stream ends with a `final`
    /// saying so, and the session is cancelled.
    fn forward(&self, session_id: &str, event: &Arc<StreamEvent>) {
        let Some(worker) = self.worker.upgrade() else { return };
        let max = worker.config.max_message_bytes;
        if event.json().len() <= max {
            if !lock(&self.sessions).get(session_id).is_some_and(|r| r.cut) {
                self.send(event.json().to_string());
            }
            return;
        }
        let session = {
            let mut sessions = lock(&self.sessions);
            let Some(running) = sessions.get_mut(session_id).filter(|r| !r.cut) else { return };
            running.cut = true;
            running.session.clone()
        };
        let message = format!(
            "A {} event of {} bytes exceeds the runtime channel's maxMessageBytes ({max})",
            event.kind().as_str(),
            event.json().len()
        );
        let stats = payload::final_stats(0.0, session.tool_call_count(), session.stdout_bytes());
        let fin = StreamEvent::new(
            session_id,
            event.seq(),
            EventType::Final,
            &payload::final_err(ErrorCode::EXECUTION_ERROR, &message, Some("Error"), None, &stats),
        );
        self.send(fin.json().to_string());
        // Cancelling re-enters the session, which is emitting this very event.
        crate::runtime::service().spawn(async move { session.cancel(None) });
    }
}

fn limit_number(map: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(_) => Err(format!("Invalid session limit \"{key}\": expected a non-negative number")),
    }
}

fn object(json: Option<&str>, what: &str) -> Result<Map<String, Value>, String> {
    match json.map(serde_json::from_str::<Value>) {
        None => Ok(Map::new()),
        Some(Ok(Value::Object(map))) => Ok(map),
        Some(_) => Err(format!("\"{what}\" must be an object")),
    }
}

/// The request's limits over the worker's `defaultLimits`, key by key.
fn partial_limits(defaults: &PartialLimits, json: Option<&str>) -> Result<PartialLimits, String> {
    let map = object(json, "limits")?;
    let n = |key: &str, default: Option<f64>| -> Result<Option<f64>, String> {
        Ok(limit_number(&map, key)?.or(default))
    };
    let cancel_on_first_error = match map.get("cancelOnFirstError") {
        None | Some(Value::Null) => defaults.cancel_on_first_error,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err("Invalid session limit \"cancelOnFirstError\": expected a boolean".into()),
    };
    Ok(PartialLimits {
        session_ttl_ms: n("sessionTtlMs", defaults.session_ttl_ms)?,
        max_tool_calls: n("maxToolCalls", defaults.max_tool_calls)?,
        max_stdout_bytes: n("maxStdoutBytes", defaults.max_stdout_bytes)?,
        max_stdout_events: n("maxStdoutEvents", defaults.max_stdout_events)?,
        max_tool_result_bytes: n("maxToolResultBytes", defaults.max_tool_result_bytes)?,
        // An explicit key of the request beats either alias of the defaults.
        tool_timeout_ms: n("toolTimeoutMs", None)?
            .or(limit_number(&map, "timeout")?)
            .or(defaults.tool_timeout_ms),
        heartbeat_interval_ms: n("heartbeatIntervalMs", defaults.heartbeat_interval_ms)?,
        deadline_ms: n("deadlineMs", defaults.deadline_ms)?,
        per_tool_deadline_ms: n("perToolDeadlineMs", defaults.per_tool_deadline_ms)?,
        cancel_on_first_error,
        timeout: defaults.timeout,
        memory_limit: n("memoryLimit", defaults.memory_limit)?,
    })
}

fn session_config(
    worker: &WorkerSlots,
    session_id: &str,
    limits: Option<&str>,
    enclave: Option<&str>,
) -> Result<SessionConfig, String> {
    let mut limits = SessionLimits::resolve(&partial_limits(&worker.config.default_limits, limits)?)
        .map_err(|e| e.to_string())?;
    // Whatever the client asks, nothing the session sends may exceed a frame.
    let cap = payload_cap(worker.config.max_message_bytes) as u64;
    limits.max_tool_result_bytes = limits.max_tool_result_bytes.min(cap);
    limits.max_stdout_bytes = limits.max_stdout_bytes.min(cap);
    let enclave = object(enclave, "enclave")?;
    let bytes = |key: &str| -> Result<Option<usize>, String> {
        match enclave.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) if n.as_f64().is_some_and(|v| v > 0.0) => {
                Ok(n.as_f64().map(|v| if v >= usize::MAX as f64 { usize::MAX } else { v as usize }))
            }
            Some(_) => Err(format!("enclave.{key} must be a positive number")),
        }
    };
    let memory = limits.memory_limit_bytes.map(|b| b as usize).or(bytes("memoryLimit")?);
    let globals_json = match enclave.get("globals") {
        None | Some(Value::Null) => None,
        Some(Value::Object(globals)) => Some(Value::Object(globals.clone()).to_string()),
        Some(_) => return Err("enclave.globals must be an object".into()),
    };
    let sandbox = SandboxOptions {
        memory_limit_bytes: memory.unwrap_or(DEFAULT_MEMORY_LIMIT),
        max_result_bytes: bytes("maxResultBytes")?.unwrap_or(DEFAULT_MAX_RESULT_BYTES).min(cap as usize),
        max_depth: match enclave.get("maxSanitizeDepth") {
            None | Some(Value::Null) => DEFAULT_MAX_DEPTH,
            Some(Value::Number(n)) if n.as_u64().is_some() => {
                n.as_u64().unwrap_or(0).min(u64::from(u32::MAX)) as u32
            }
            Some(_) => return Err("enclave.maxSanitizeDepth must be a non-negative integer".into()),
        },
        globals_json,
    };
    Ok(SessionConfig {
        session_id: Some(session_id.to_string()),
        limits,
        sandbox,
        ..SessionConfig::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_limits_override_the_workers_defaults_key_by_key() {
        let defaults =
            PartialLimits { max_tool_calls: Some(7.0), timeout: Some(500.0), ..Default::default() };
        let l = SessionLimits::resolve(&partial_limits(&defaults, Some(r#"{"maxStdoutBytes":9}"#)).unwrap())
            .unwrap();
        assert_eq!((l.max_tool_calls, l.tool_timeout_ms, l.max_stdout_bytes), (7, 500, 9));
        let l = SessionLimits::resolve(
            &partial_limits(&defaults, Some(r#"{"toolTimeoutMs":20,"maxToolCalls":1}"#)).unwrap(),
        )
        .unwrap();
        assert_eq!((l.max_tool_calls, l.tool_timeout_ms), (1, 20));
        assert!(partial_limits(&defaults, Some(r#"{"maxToolCalls":"x"}"#)).is_err());
        assert!(partial_limits(&defaults, Some("[]")).is_err());
    }
}
