//! The runtime channel's messages, one JSON object per WebSocket text frame.
//!
//! Broker → worker, the original runtime's `RuntimeRequest` (`libs/runtime/src/types.ts`):
//! `execute {sessionId, code, limits?}`, `cancel {sessionId, reason?}`,
//! `tool_result {sessionId, callId, success, value?, error?}` and `ping {timestamp}`; the
//! `@enclave-vm/types` forms `tool_result_submit {sessionId, payload: {callId, ok, result?,
//! error?}}` and `cancel {sessionId, payload: {reason?}}` are accepted too. Where the
//! original is silent this adds: `execute.enclave {memoryLimit?, maxResultBytes?,
//! maxSanitizeDepth?, globals?}` and `error.name` of a tool error.
//!
//! Worker → broker: the v2 stream events of each session (`session_init` … `final`), as the
//! original's executor forwards them; `final.payload.error.name` (an addition) names the
//! error. Plus `runtime_ready {protocolVersion, maxSessions, activeSessions,
//! maxMessageBytes}` first on every connection, `runtime_stopping` when the worker begins a
//! graceful stop, and `pong {timestamp}` for each `ping`.
//!
//! A frame that is not a JSON object with a string `type`, or a known type without its
//! required fields, is malformed: the receiving side closes that connection. Unknown types
//! are ignored (newer peers may send more).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::protocol::json::{JsonObject, push_json_string};
use crate::protocol::{ErrorCode, ErrorInfo, PROTOCOL_VERSION};
use crate::tools::ToolReply;

/// A `RawValue` that is present even when it is JSON `null` (an `Option` field would
/// turn `null` into `None`, and `value: null` is not `undefined`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize, Default)]
struct WireError {
    code: Option<String>,
    message: Option<String>,
    name: Option<String>,
}

impl WireError {
    fn into_info(self) -> ErrorInfo {
        ErrorInfo::named(
            self.code.as_deref().unwrap_or(ErrorCode::EXECUTION_ERROR),
            self.name.as_deref().unwrap_or("Error"),
            self.message.unwrap_or_default(),
        )
    }
}

// ------------------------------------------------------------------- broker → worker

#[derive(Debug, PartialEq)]
pub enum RuntimeRequest {
    Execute {
        session_id: String,
        code: String,
        /// JSON of `limits` (a partial `SessionLimits`), if given.
        limits: Option<String>,
        /// JSON of `enclave`, if given.
        enclave: Option<String>,
    },
    Cancel {
        session_id: String,
        reason: Option<String>,
    },
    ToolResult {
        session_id: String,
        call_id: String,
        reply: ToolReply,
    },
    Ping {
        timestamp: Option<f64>,
    },
    /// A type this worker does not know (ignored).
    Unknown,
}

#[derive(Deserialize)]
struct RawRequest<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
    code: Option<String>,
    #[serde(default, borrow, deserialize_with = "present")]
    limits: Option<&'a RawValue>,
    #[serde(default, borrow, deserialize_with = "present")]
    enclave: Option<&'a RawValue>,
    reason: Option<String>,
    #[serde(rename = "callId")]
    call_id: Option<String>,
    success: Option<bool>,
    #[serde(default, borrow, deserialize_with = "present")]
    value: Option<&'a RawValue>,
    error: Option<WireError>,
    #[serde(default, borrow, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
    timestamp: Option<f64>,
}

#[derive(Deserialize)]
struct RawSubmit<'a> {
    #[serde(rename = "callId")]
    call_id: Option<String>,
    ok: Option<bool>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    error: Option<WireError>,
    reason: Option<String>,
}

fn tool_reply(success: bool, value: Option<&RawValue>, error: Option<WireError>) -> ToolReply {
    if success {
        ToolReply::Ok(value.map(|v| v.get().to_string()))
    } else {
        ToolReply::Err(error.unwrap_or_default().into_info())
    }
}

fn required<T>(value: Option<T>, kind: &str, field: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("\"{kind}\" message without \"{field}\""))
}

pub fn parse_request(text: &str) -> Result<RuntimeRequest, String> {
    let raw: RawRequest = serde_json::from_str(text).map_err(|e| format!("malformed message: {e}"))?;
    let kind = raw.kind.as_ref();
    Ok(match kind {
        "execute" => RuntimeRequest::Execute {
            session_id: required(raw.session_id, kind, "sessionId")?,
            code: required(raw.code, kind, "code")?,
            limits: raw.limits.filter(|l| l.get() != "null").map(|l| l.get().to_string()),
            enclave: raw.enclave.filter(|e| e.get() != "null").map(|e| e.get().to_string()),
        },
        "cancel" => {
            let reason = match (raw.reason, raw.payload) {
                (Some(reason), _) => Some(reason),
                (None, Some(payload)) => {
                    serde_json::from_str::<RawSubmit>(payload.get()).ok().and_then(|p| p.reason)
                }
                (None, None) => None,
            };
            RuntimeRequest::Cancel { session_id: required(raw.session_id, kind, "sessionId")?, reason }
        }
        "tool_result" => RuntimeRequest::ToolResult {
            session_id: required(raw.session_id, kind, "sessionId")?,
            call_id: required(raw.call_id, kind, "callId")?,
            reply: tool_reply(required(raw.success, kind, "success")?, raw.value, raw.error),
        },
        "tool_result_submit" => {
            let payload = required(raw.payload, kind, "payload")?;
            let submit: RawSubmit =
                serde_json::from_str(payload.get()).map_err(|e| format!("malformed payload: {e}"))?;
            RuntimeRequest::ToolResult {
                session_id: required(raw.session_id, kind, "sessionId")?,
                call_id: required(submit.call_id, kind, "payload.callId")?,
                reply: tool_reply(required(submit.ok, kind, "payload.ok")?, submit.result, submit.error),
            }
        }
        "ping" => RuntimeRequest::Ping { timestamp: raw.timestamp },
        _ => RuntimeRequest::Unknown,
    })
}

pub fn execute(session_id: &str, code: &str, limits_json: &str, enclave_json: &str) -> String {
    JsonObject::new()
        .field("type", "execute")
        .field("sessionId", session_id)
        .field("code", code)
        .raw("limits", limits_json)
        .raw("enclave", enclave_json)
        .finish()
}

pub fn cancel(session_id: &str, reason: &str) -> String {
    JsonObject::new().field("type", "cancel").field("sessionId", session_id).field("reason", reason).finish()
}

pub fn tool_result(session_id: &str, call_id: &str, reply: &ToolReply) -> String {
    let message = JsonObject::new()
        .field("type", "tool_result")
        .field("sessionId", session_id)
        .field("callId", call_id);
    match reply {
        ToolReply::Ok(value) => message.field("success", &true).opt_raw("value", value.as_deref()).finish(),
        ToolReply::Err(e) => {
            let error = JsonObject::new()
                .field("code", &e.code)
                .field("message", &e.message)
                .field("name", &e.name)
                .finish();
            message.field("success", &false).raw("error", &error).finish()
        }
    }
}

// ------------------------------------------------------------------- worker → broker

pub fn ready(max_sessions: usize, active_sessions: usize, max_message_bytes: usize) -> String {
    JsonObject::new()
        .field("type", "runtime_ready")
        .field("protocolVersion", &PROTOCOL_VERSION)
        .field("maxSessions", &max_sessions)
        .field("activeSessions", &active_sessions)
        .field("maxMessageBytes", &max_message_bytes)
        .finish()
}

pub fn stopping() -> String {
    "{\"type\":\"runtime_stopping\"}".to_string()
}

pub fn pong(timestamp: Option<f64>) -> String {
    JsonObject::new().field("type", "pong").opt_num("timestamp", timestamp).finish()
}

/// What the broker reads from a session's events: only what drives its own session.
#[derive(Debug, PartialEq)]
pub enum WorkerEvent {
    Stdout(String),
    Log {
        level: String,
        message: String,
    },
    ToolCall {
        call_id: String,
        name: String,
        args_json: String,
    },
    /// The script's value (`None` for `undefined`), or its error.
    Final(Result<Option<String>, ErrorInfo>),
    /// Events the broker's session makes itself (`session_init`, `tool_progress`,
    /// `tool_result_applied`, `heartbeat`, `error`, ...).
    Other,
}

#[derive(Debug, PartialEq)]
pub enum WorkerMessage {
    Ready {
        max_sessions: usize,
        max_message_bytes: usize,
    },
    Stopping,
    Event {
        session_id: String,
        event: WorkerEvent,
    },
    /// `pong` and types this broker does not know.
    Other,
}

#[derive(Deserialize)]
struct RawWorkerMessage<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
    #[serde(default, borrow, deserialize_with = "present")]
    payload: Option<&'a RawValue>,
    #[serde(rename = "maxSessions")]
    max_sessions: Option<f64>,
    #[serde(rename = "maxMessageBytes")]
    max_message_bytes: Option<f64>,
}

#[derive(Deserialize)]
struct RawPayload<'a> {
    chunk: Option<String>,
    level: Option<String>,
    message: Option<String>,
    #[serde(rename = "callId")]
    call_id: Option<String>,
    #[serde(rename = "toolName")]
    tool_name: Option<String>,
    #[serde(default, borrow, deserialize_with = "present")]
    args: Option<&'a RawValue>,
    ok: Option<bool>,
    #[serde(default, borrow, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    error: Option<WireError>,
}

fn count(value: Option<f64>, kind: &str, field: &str) -> Result<usize, String> {
    match value {
        Some(v) if v.is_finite() && v >= 0.0 => Ok(v as usize),
        _ => Err(format!("\"{kind}\" message without a valid \"{field}\"")),
    }
}

pub fn parse_worker_message(text: &str) -> Result<WorkerMessage, String> {
    let raw: RawWorkerMessage = serde_json::from_str(text).map_err(|e| format!("malformed message: {e}"))?;
    let kind = raw.kind.as_ref();
    fn payload_of<'a>(payload: Option<&'a RawValue>, kind: &str) -> Result<RawPayload<'a>, String> {
        let payload = required(payload, kind, "payload")?;
        serde_json::from_str(payload.get()).map_err(|e| format!("malformed \"{kind}\" payload: {e}"))
    }
    let event = |payload| payload_of(payload, kind);
    let event = match kind {
        "runtime_ready" => {
            return Ok(WorkerMessage::Ready {
                max_sessions: count(raw.max_sessions, kind, "maxSessions")?,
                max_message_bytes: count(raw.max_message_bytes, kind, "maxMessageBytes")?,
            });
        }
        "runtime_stopping" => return Ok(WorkerMessage::Stopping),
        "stdout" => WorkerEvent::Stdout(required(event(raw.payload)?.chunk, kind, "payload.chunk")?),
        "log" => {
            let p = event(raw.payload)?;
            WorkerEvent::Log {
                level: required(p.level, kind, "payload.level")?,
                message: required(p.message, kind, "payload.message")?,
            }
        }
        "tool_call" => {
            let p = event(raw.payload)?;
            WorkerEvent::ToolCall {
                call_id: required(p.call_id, kind, "payload.callId")?,
                name: required(p.tool_name, kind, "payload.toolName")?,
                args_json: required(p.args, kind, "payload.args")?.get().to_string(),
            }
        }
        "final" => {
            let p = event(raw.payload)?;
            WorkerEvent::Final(if required(p.ok, kind, "payload.ok")? {
                Ok(p.result.map(|r| r.get().to_string()))
            } else {
                Err(required(p.error, kind, "payload.error")?.into_info())
            })
        }
        "session_init"
        | "tool_progress"
        | "tool_result_applied"
        | "heartbeat"
        | "error"
        | "partial_result"
        | "deadline_exceeded" => WorkerEvent::Other,
        _ => return Ok(WorkerMessage::Other),
    };
    Ok(WorkerMessage::Event { session_id: required(raw.session_id, kind, "sessionId")?, event })
}

/// A JSON string literal of `s` (for callers building messages by hand).
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_originals_request_shapes_parse() {
        let execute = r#"{"type":"execute","sessionId":"s_1","code":"return 1 + 1"}"#;
        assert_eq!(
            parse_request(execute).unwrap(),
            RuntimeRequest::Execute {
                session_id: "s_1".into(),
                code: "return 1 + 1".into(),
                limits: None,
                enclave: None
            }
        );
        let result = r#"{"type":"tool_result","sessionId":"s_1","callId":"c_1","success":true,"value":null}"#;
        assert_eq!(
            parse_request(result).unwrap(),
            RuntimeRequest::ToolResult {
                session_id: "s_1".into(),
                call_id: "c_1".into(),
                reply: ToolReply::Ok(Some("null".into()))
            }
        );
        let failed = r#"{"type":"tool_result","sessionId":"s_1","callId":"c_1","success":false,"error":{"message":"no"}}"#;
        assert_eq!(
            parse_request(failed).unwrap(),
            RuntimeRequest::ToolResult {
                session_id: "s_1".into(),
                call_id: "c_1".into(),
                reply: ToolReply::Err(ErrorInfo::new(ErrorCode::EXECUTION_ERROR, "no"))
            }
        );
        let submit = r#"{"protocolVersion":2,"sessionId":"s_1","type":"tool_result_submit","payload":{"callId":"c_2","ok":true,"result":{"a":1}}}"#;
        assert_eq!(
            parse_request(submit).unwrap(),
            RuntimeRequest::ToolResult {
                session_id: "s_1".into(),
                call_id: "c_2".into(),
                reply: ToolReply::Ok(Some(r#"{"a":1}"#.into()))
            }
        );
        let cancel = r#"{"protocolVersion":2,"sessionId":"s_1","type":"cancel","payload":{"reason":"r"}}"#;
        assert_eq!(
            parse_request(cancel).unwrap(),
            RuntimeRequest::Cancel { session_id: "s_1".into(), reason: Some("r".into()) }
        );
        assert_eq!(
            parse_request(r#"{"type":"ping","timestamp":5}"#).unwrap(),
            RuntimeRequest::Ping { timestamp: Some(5.0) }
        );
        assert_eq!(parse_request(r#"{"type":"future"}"#).unwrap(), RuntimeRequest::Unknown);
    }

    #[test]
    fn malformed_requests_are_errors() {
        for bad in [
            "nope",
            "[]",
            "{}",
            r#"{"type":1}"#,
            r#"{"type":"execute","sessionId":"s"}"#,
            r#"{"type":"tool_result","sessionId":"s","callId":"c"}"#,
        ] {
            assert!(parse_request(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn broker_messages_round_trip_through_the_worker_parser() {
        let reply = ToolReply::Err(ErrorInfo::named("E", "TypeError", "m"));
        assert_eq!(
            parse_request(&tool_result("s", "c", &reply)).unwrap(),
            RuntimeRequest::ToolResult { session_id: "s".into(), call_id: "c".into(), reply }
        );
        assert_eq!(
            parse_request(&tool_result("s", "c", &ToolReply::Ok(None))).unwrap(),
            RuntimeRequest::ToolResult {
                session_id: "s".into(),
                call_id: "c".into(),
                reply: ToolReply::Ok(None)
            }
        );
        assert!(matches!(
            parse_request(&execute("s", "1", "{}", "{}")).unwrap(),
            RuntimeRequest::Execute { .. }
        ));
        assert_eq!(
            parse_request(&cancel("s", "why")).unwrap(),
            RuntimeRequest::Cancel { session_id: "s".into(), reason: Some("why".into()) }
        );
    }

    #[test]
    fn worker_events_parse() {
        let call = r#"{"protocolVersion":2,"sessionId":"s","seq":2,"type":"tool_call","payload":{"callId":"c","toolName":"t","args":{"x":[1]}}}"#;
        assert_eq!(
            parse_worker_message(call).unwrap(),
            WorkerMessage::Event {
                session_id: "s".into(),
                event: WorkerEvent::ToolCall {
                    call_id: "c".into(),
                    name: "t".into(),
                    args_json: r#"{"x":[1]}"#.into()
                }
            }
        );
        let fin = r#"{"protocolVersion":2,"sessionId":"s","seq":3,"type":"final","payload":{"ok":false,"error":{"code":"X","message":"m","name":"TypeError"},"stats":{}}}"#;
        assert_eq!(
            parse_worker_message(fin).unwrap(),
            WorkerMessage::Event {
                session_id: "s".into(),
                event: WorkerEvent::Final(Err(ErrorInfo::named("X", "TypeError", "m")))
            }
        );
        let undefined = r#"{"protocolVersion":2,"sessionId":"s","seq":3,"type":"final","payload":{"ok":true,"stats":{}}}"#;
        assert_eq!(
            parse_worker_message(undefined).unwrap(),
            WorkerMessage::Event { session_id: "s".into(), event: WorkerEvent::Final(Ok(None)) }
        );
        assert_eq!(
            parse_worker_message(&ready(10, 0, 64)).unwrap(),
            WorkerMessage::Ready { max_sessions: 10, max_message_bytes: 64 }
        );
        assert!(parse_worker_message(r#"{"type":"tool_call","sessionId":"s","payload":{}}"#).is_err());
        assert!(parse_worker_message("{").is_err());
    }
}
