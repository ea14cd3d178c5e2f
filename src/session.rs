//! `BindingSession`: a JS handle on a core session. Several handles may point at one
//! session; they share its forwarder, so events reach the facade once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use enclave_broker_core::protocol::ErrorInfo;
use enclave_broker_core::protocol::json::JsonObject;
use enclave_broker_core::session::{Session, SessionInfo};
use enclave_broker_core::tools::ToolReply;
use napi::bindgen_prelude::{Either, Function};
use napi_derive::napi;

use crate::config::BindingSessionConfig;
use crate::error::BindingError;
use crate::host::{self, BindingToolCall, Forwarder, HostMessage, JsToolHost};

fn forwarders() -> &'static Mutex<HashMap<u64, Weak<Forwarder>>> {
    static FORWARDERS: OnceLock<Mutex<HashMap<u64, Weak<Forwarder>>>> = OnceLock::new();
    FORWARDERS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn forwarder_for(session: &Arc<Session>) -> Arc<Forwarder> {
    let mut map = forwarders().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(existing) = map.get(&session.key()).and_then(Weak::upgrade) {
        return existing;
    }
    map.retain(|_, f| f.strong_count() > 0);
    let forwarder = Forwarder::new(session.key());
    map.insert(session.key(), Arc::downgrade(&forwarder));
    let subscribed = forwarder.clone();
    // The session owns the subscriber (and so the forwarder) for as long as it lives.
    session.subscribe(Arc::new(move |event| subscribed.push(event)));
    forwarder
}

pub(crate) fn info_json(info: &SessionInfo) -> String {
    JsonObject::new()
        .field("sessionId", &info.session_id)
        .field("state", info.state.as_str())
        .num("createdAt", info.created_at)
        .num("expiresAt", info.expires_at)
        .field("isExpired", &info.is_expired)
        .finish()
}

/// One JSON line per event, joined by `\n` (JSON never contains a raw newline).
fn lines(events: &[Arc<enclave_broker_core::protocol::StreamEvent>]) -> String {
    events.iter().map(|e| e.json()).collect::<Vec<_>>().join("\n")
}

#[napi]
pub struct BindingSession {
    pub(crate) session: Arc<Session>,
    forwarder: Arc<Forwarder>,
}

impl BindingSession {
    pub(crate) fn wrap(session: Arc<Session>) -> BindingSession {
        let forwarder = forwarder_for(&session);
        BindingSession { session, forwarder }
    }
}

#[napi]
impl BindingSession {
    /// A session outside any manager (`new BrokerSession(registry, config)`), whose tool
    /// calls go to `tool_function` (released with the session).
    #[napi]
    pub fn create(
        config: BindingSessionConfig,
        tool_function: Function<BindingToolCall, ()>,
    ) -> napi::Result<Either<BindingSession, BindingError>> {
        Ok(match config.into_core() {
            Ok(config) => {
                Either::A(BindingSession::wrap(Session::new(config, JsToolHost::new(tool_function)?)))
            }
            Err(e) => Either::B(e),
        })
    }

    #[napi(getter)]
    pub fn key(&self) -> f64 {
        self.session.key() as f64
    }

    #[napi(getter)]
    pub fn session_id(&self) -> String {
        self.session.id().to_string()
    }

    #[napi(getter)]
    pub fn created_at(&self) -> f64 {
        self.session.created_at()
    }

    #[napi(getter)]
    pub fn expires_at(&self) -> f64 {
        self.session.expires_at()
    }

    #[napi(getter)]
    pub fn state(&self) -> String {
        self.session.state().as_str().to_string()
    }

    #[napi(getter)]
    pub fn seq(&self) -> f64 {
        self.session.seq() as f64
    }

    /// The limits the session runs with, as JSON (`BrokerSession.limits`).
    #[napi]
    pub fn limits_json(&self) -> String {
        self.session.limits().to_json(self.session.sandbox().effective_memory_limit())
    }

    #[napi(getter)]
    pub fn has_started(&self) -> bool {
        self.session.has_started()
    }

    #[napi]
    pub fn is_expired(&self) -> bool {
        self.session.is_expired()
    }

    #[napi]
    pub fn is_terminal(&self) -> bool {
        self.session.is_terminal()
    }

    /// Starts the run; the facade hears `done` through the host channel. Returns the seq of
    /// the last event the start itself emitted (`session_init`); a session that cannot run
    /// (already run, disposed) answers why.
    #[napi]
    pub fn execute(&self, code: String) -> Either<f64, BindingError> {
        let emitted = match self.session.execute(code) {
            Ok(emitted) => emitted,
            Err(e) => return Either::B(e.into()),
        };
        let key = self.session.key();
        self.session.on_finished(move |result| {
            host::send_done(key, result.to_json());
        });
        Either::A(emitted as f64)
    }

    /// Tells the facade (`session finished`) once the session has its final result, however
    /// it ends: run, cancel, deadline, terminate or dispose.
    /// A session dropped without a result (never run, then removed) sends an empty result,
    /// so the facade can forget its watcher.
    #[napi]
    pub fn watch_finished(&self) {
        let notice = FinishNotice { session_key: self.session.key(), sent: false };
        self.session.on_finished(move |result| notice.send(result.to_json()));
    }

    /// Returns the final result JSON when the cancel finished the session at once.
    #[napi]
    pub fn cancel(&self, reason: Option<String>) -> Option<String> {
        let started = self.session.has_started();
        self.session.cancel(reason.as_deref());
        if started {
            return None;
        }
        self.session.final_result().map(|r| r.to_json())
    }

    #[napi]
    pub fn dispose(&self) {
        self.session.dispose();
    }

    /// Events with `seq > after` (at most `max` of them), one JSON line each, joined by `\n`.
    #[napi]
    pub fn events_after(&self, after: f64, max: Option<u32>) -> String {
        let max = max.map_or(usize::MAX, |m| m as usize);
        lines(&self.session.events_page(after.max(0.0) as u64, max))
    }

    /// Turns event forwarding on or off; returns the seq at that moment.
    #[napi]
    pub fn set_forwarding(&self, enabled: bool) -> f64 {
        self.forwarder.set_enabled(enabled);
        self.session.seq() as f64
    }

    /// The facade delivered every event up to `delivered`: true if it should keep pulling,
    /// false once the next event will wake it up again (see `Forwarder`).
    #[napi]
    pub fn rearm_forwarding(&self, delivered: f64) -> bool {
        self.forwarder.rearm(delivered.max(0.0) as u64, || self.session.seq())
    }

    #[napi]
    pub fn emit_tool_progress(
        &self,
        call_id: String,
        phase: String,
        elapsed_ms: f64,
        bytes_received: Option<f64>,
        total_bytes: Option<f64>,
    ) {
        self.session.emit_tool_progress(&call_id, &phase, elapsed_ms, bytes_received, total_bytes);
    }

    #[napi]
    pub fn emit_partial_result(
        &self,
        path_json: String,
        data_json: Option<String>,
        error_json: Option<String>,
        has_next: bool,
    ) {
        self.session.emit_partial_result(&path_json, data_json.as_deref(), error_json.as_deref(), has_next);
    }

    #[napi]
    pub fn emit_log(&self, level: String, message: String, data_json: Option<String>) {
        self.session.emit_log(&level, &message, data_json.as_deref());
    }

    #[napi]
    pub fn emit_stdout(&self, chunk: String) {
        self.session.emit_stdout(&chunk);
    }

    #[napi]
    pub fn partial_errors_json(&self) -> String {
        format!("[{}]", self.session.partial_errors().join(","))
    }

    #[napi]
    pub fn stats_json(&self) -> String {
        self.session.stats().to_json()
    }

    #[napi]
    pub fn final_result_json(&self) -> Option<String> {
        self.session.final_result().map(|r| r.to_json())
    }

    /// A client's result for an external tool call (`submitToolResult`).
    #[napi]
    pub fn submit_tool_result(
        &self,
        call_id: String,
        ok: bool,
        json: Option<String>,
        code: Option<String>,
        message: Option<String>,
    ) -> Option<BindingError> {
        let reply = if ok {
            ToolReply::Ok(json)
        } else {
            ToolReply::Err(ErrorInfo::new(
                code.as_deref().unwrap_or("TOOL_ERROR"),
                message.unwrap_or_default(),
            ))
        };
        self.session.submit_tool_result(&call_id, reply).err().map(Into::into)
    }

    /// Call ids of external tool calls waiting for a result.
    #[napi]
    pub fn waiting_call_ids(&self) -> Vec<String> {
        self.session.waiting_call_ids()
    }

    #[napi]
    pub fn info_json(&self) -> String {
        info_json(&enclave_broker_core::session::manager::info(&self.session))
    }
}

/// `session finished` for one watcher: sent with the result, or empty if dropped unsent.
struct FinishNotice {
    session_key: u64,
    sent: bool,
}

impl FinishNotice {
    fn send(mut self, result_json: String) {
        self.sent = true;
        host::send(HostMessage::SessionFinished { session_key: self.session_key, result_json });
    }
}

impl Drop for FinishNotice {
    fn drop(&mut self) {
        if !self.sent {
            host::send(HostMessage::SessionFinished {
                session_key: self.session_key,
                result_json: String::new(),
            });
        }
    }
}
