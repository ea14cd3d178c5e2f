//! The v2 stream event: `{protocolVersion:2, sessionId, seq, type, payload}` in exactly
//! that key order, with no timestamp. Events are immutable once emitted, so each one is
//! rendered to its JSON line once and shared (`Arc`) by history, JS listeners and HTTP.

use super::PROTOCOL_VERSION;
use super::json::JsonObject;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    SessionInit,
    Stdout,
    Log,
    ToolCall,
    ToolResultApplied,
    Final,
    Heartbeat,
    Error,
    Encrypted,
    PartialResult,
    ToolProgress,
    DeadlineExceeded,
    CatalogChanged,
}

impl EventType {
    pub const ALL: [EventType; 13] = [
        EventType::SessionInit,
        EventType::Stdout,
        EventType::Log,
        EventType::ToolCall,
        EventType::ToolResultApplied,
        EventType::Final,
        EventType::Heartbeat,
        EventType::Error,
        EventType::Encrypted,
        EventType::PartialResult,
        EventType::ToolProgress,
        EventType::DeadlineExceeded,
        EventType::CatalogChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SessionInit => "session_init",
            EventType::Stdout => "stdout",
            EventType::Log => "log",
            EventType::ToolCall => "tool_call",
            EventType::ToolResultApplied => "tool_result_applied",
            EventType::Final => "final",
            EventType::Heartbeat => "heartbeat",
            EventType::Error => "error",
            EventType::Encrypted => "enc",
            EventType::PartialResult => "partial_result",
            EventType::ToolProgress => "tool_progress",
            EventType::DeadlineExceeded => "deadline_exceeded",
            EventType::CatalogChanged => "catalog_changed",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

#[derive(Debug)]
pub struct StreamEvent {
    seq: u64,
    kind: EventType,
    line: String,
    payload_start: usize,
}

impl StreamEvent {
    pub fn new(session_id: &str, seq: u64, kind: EventType, payload_json: &str) -> Self {
        let mut line = String::with_capacity(80 + session_id.len() + payload_json.len());
        line.push_str("{\"protocolVersion\":");
        line.push_str(&PROTOCOL_VERSION.to_string());
        line.push_str(",\"sessionId\":");
        super::json::push_json_string(&mut line, session_id);
        line.push_str(",\"seq\":");
        line.push_str(&seq.to_string());
        line.push_str(",\"type\":\"");
        line.push_str(kind.as_str());
        line.push_str("\",\"payload\":");
        let payload_start = line.len();
        line.push_str(payload_json);
        line.push('}');
        Self { seq, kind, line, payload_start }
    }

    /// An event line as stored by another broker (`seq` and `kind` kept beside it): the
    /// event itself, or the envelope of an encrypted one, whose `kind` stays the inner
    /// event's so type filters still apply. `None` if the line has no payload.
    pub fn from_line(seq: u64, kind: EventType, line: String) -> Option<Self> {
        // Inside the JSON strings before it a quote is escaped, so the first match is the key.
        const PAYLOAD: &str = ",\"payload\":";
        let payload_start = line.find(PAYLOAD)? + PAYLOAD.len();
        line.ends_with('}').then_some(Self { seq, kind, line, payload_start })
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn kind(&self) -> EventType {
        self.kind
    }

    /// The event as one JSON line (no trailing newline).
    pub fn json(&self) -> &str {
        &self.line
    }

    pub fn payload_json(&self) -> &str {
        &self.line[self.payload_start..self.line.len() - 1]
    }
}

/// Builders for each payload, in the original's key order.
pub mod payload {
    use super::JsonObject;

    /// `encryption` is the negotiated `(keyId, ServerHello JSON)`, if any.
    pub fn session_init(session_id: &str, expires_at_iso: &str, encryption: Option<(&str, &str)>) -> String {
        let encryption = match encryption {
            None => "{\"enabled\":false}".to_string(),
            Some((key_id, server_hello_json)) => JsonObject::new()
                .raw("enabled", "true")
                .field("keyId", key_id)
                .raw("serverHello", server_hello_json)
                .finish(),
        };
        JsonObject::new()
            .field("cancelUrl", &format!("/sessions/{session_id}/cancel"))
            .field("expiresAt", expires_at_iso)
            .raw("encryption", &encryption)
            .finish()
    }

    pub fn tool_call(call_id: &str, tool_name: &str, args_json: &str) -> String {
        JsonObject::new()
            .field("callId", call_id)
            .field("toolName", tool_name)
            .raw("args", args_json)
            .finish()
    }

    pub fn tool_progress(
        call_id: &str,
        phase: &str,
        elapsed_ms: f64,
        bytes_received: Option<f64>,
        total_bytes: Option<f64>,
    ) -> String {
        JsonObject::new()
            .field("callId", call_id)
            .field("phase", phase)
            .num("elapsedMs", elapsed_ms)
            .opt_num("bytesReceived", bytes_received)
            .opt_num("totalBytes", total_bytes)
            .finish()
    }

    pub fn tool_result_applied(call_id: &str) -> String {
        JsonObject::new().field("callId", call_id).finish()
    }

    pub fn heartbeat(ts_iso: &str) -> String {
        JsonObject::new().field("ts", ts_iso).finish()
    }

    pub fn deadline_exceeded(elapsed_ms: f64, budget_ms: f64) -> String {
        JsonObject::new().num("elapsedMs", elapsed_ms).num("budgetMs", budget_ms).finish()
    }

    pub fn error(code: &str, message: &str, recoverable: bool, details_json: Option<&str>) -> String {
        JsonObject::new()
            .field("code", code)
            .field("message", message)
            .field("recoverable", &recoverable)
            .opt_raw("details", details_json)
            .finish()
    }

    pub fn stdout(chunk: &str) -> String {
        JsonObject::new().field("chunk", chunk).finish()
    }

    pub fn log(level: &str, message: &str, data_json: Option<&str>) -> String {
        JsonObject::new().field("level", level).field("message", message).opt_raw("data", data_json).finish()
    }

    pub fn partial_result(
        path_json: &str,
        data_json: Option<&str>,
        error_json: Option<&str>,
        has_next: bool,
    ) -> String {
        JsonObject::new()
            .raw("path", path_json)
            .opt_raw("data", data_json)
            .opt_raw("error", error_json)
            .field("hasNext", &has_next)
            .finish()
    }

    pub fn final_stats(duration_ms: f64, tool_call_count: u64, stdout_bytes: u64) -> String {
        JsonObject::new()
            .num("durationMs", duration_ms)
            .field("toolCallCount", &tool_call_count)
            .field("stdoutBytes", &stdout_bytes)
            .finish()
    }

    pub fn final_ok(result_json: Option<&str>, errors_json: Option<&str>, stats_json: &str) -> String {
        JsonObject::new()
            .field("ok", &true)
            .opt_raw("result", result_json)
            .opt_raw("errors", errors_json)
            .raw("stats", stats_json)
            .finish()
    }

    /// `name` is written only for a runtime worker's broker (see `SessionRuntime`).
    pub fn final_err(
        code: &str,
        message: &str,
        name: Option<&str>,
        errors_json: Option<&str>,
        stats_json: &str,
    ) -> String {
        let error =
            JsonObject::new().field("code", code).field("message", message).opt_field("name", name).finish();
        JsonObject::new()
            .field("ok", &false)
            .raw("error", &error)
            .opt_raw("errors", errors_json)
            .raw("stats", stats_json)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_exact_key_order() {
        let e =
            StreamEvent::new("s_x", 3, EventType::ToolResultApplied, &payload::tool_result_applied("c_1"));
        assert_eq!(
            e.json(),
            r#"{"protocolVersion":2,"sessionId":"s_x","seq":3,"type":"tool_result_applied","payload":{"callId":"c_1"}}"#
        );
        assert_eq!(e.payload_json(), r#"{"callId":"c_1"}"#);
        assert_eq!(e.seq(), 3);
    }

    #[test]
    fn payload_shapes_match_the_original() {
        assert_eq!(
            payload::session_init("s_a", "2025-01-01T00:00:00.000Z", None),
            r#"{"cancelUrl":"/sessions/s_a/cancel","expiresAt":"2025-01-01T00:00:00.000Z","encryption":{"enabled":false}}"#
        );
        assert_eq!(
            payload::session_init("s_a", "2025-01-01T00:00:00.000Z", Some(("k_1", r#"{"keyId":"k_1"}"#))),
            r#"{"cancelUrl":"/sessions/s_a/cancel","expiresAt":"2025-01-01T00:00:00.000Z","encryption":{"enabled":true,"keyId":"k_1","serverHello":{"keyId":"k_1"}}}"#
        );
        assert_eq!(
            payload::tool_progress("c_1", "connecting", 0.0, None, None),
            r#"{"callId":"c_1","phase":"connecting","elapsedMs":0}"#
        );
        let stats = payload::final_stats(5.0, 1, 0);
        assert_eq!(
            payload::final_ok(Some("3"), None, &stats),
            r#"{"ok":true,"result":3,"stats":{"durationMs":5,"toolCallCount":1,"stdoutBytes":0}}"#
        );
        assert_eq!(
            payload::final_err("TIMEOUT", "t", None, None, &stats),
            r#"{"ok":false,"error":{"code":"TIMEOUT","message":"t"},"stats":{"durationMs":5,"toolCallCount":1,"stdoutBytes":0}}"#
        );
        assert_eq!(
            payload::error("SESSION_CANCELLED", "stop", false, None),
            r#"{"code":"SESSION_CANCELLED","message":"stop","recoverable":false}"#
        );
    }

    #[test]
    fn stored_lines_read_back_as_events() {
        let e = StreamEvent::new("s_\",\"payload\":x", 4, EventType::Log, &payload::log("info", "hi", None));
        let back = StreamEvent::from_line(4, EventType::Log, e.json().to_string()).unwrap();
        assert_eq!(back.payload_json(), e.payload_json());
        assert_eq!((back.seq(), back.kind()), (4, EventType::Log));
        assert!(StreamEvent::from_line(1, EventType::Log, "{}".into()).is_none());
    }

    #[test]
    fn event_type_names_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("nope"), None);
    }
}
