//! The HTTP API's request → response rules, shared by the `listen()` server (`routes.rs`)
//! and, through the binding (`src/http_rules.rs`), the JavaScript `SessionHandler` (the
//! original's framework-agnostic handler, `lib/http/session-handler.js`), which only adapts
//! its `req`/`res` and calls the broker it was given. Here: the route table, CORS headers,
//! the stream headers, where a replay starts, the checks of a request and their
//! `{code, message}` bodies and status codes, a request's filters and limits, and the
//! session-info JSON shape. Nothing here reads a socket or a session: the callers look
//! sessions up and answer.
//!
//! Where the two answer differently by contract (the `listen()` server is a server of its
//! own, the SessionHandler is the original's), the caller says which it is: see
//! `FilterCaps`, and `requested_limits` (the SessionHandler's) beside `template.rs` (the
//! server's). `__test__/http-parity.test.mjs` runs one table of requests through both.

use serde_json::Value;

use super::filter::{EventFilter, FilterError};
use crate::protocol::json::JsonObject;

/// One route of the API. `Original` routes are the original SessionHandler's `getRoutes()`;
/// `Extra` ones its `getExtraRoutes()` (the cancel route, C36 in docs/compatibility.md);
/// `ServerOnly` ones only the `listen()` server has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: &'static str,
    pub path: &'static str,
    /// The SessionHandler method that serves it (also the `listen()` server's name for it).
    pub handler: &'static str,
    pub kind: RouteKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    Original,
    Extra,
    ServerOnly,
}

const fn route(
    method: &'static str,
    path: &'static str,
    handler: &'static str,
    kind: RouteKind,
) -> RouteSpec {
    RouteSpec { method, path, handler, kind }
}

/// Every route, in the order the original lists its own.
pub const ROUTES: [RouteSpec; 13] = [
    route("GET", "/sessions", "listSessions", RouteKind::Original),
    route("POST", "/sessions", "createSession", RouteKind::Original),
    route("GET", "/sessions/:sessionId", "getSession", RouteKind::Original),
    route("GET", "/sessions/:sessionId/stream", "streamSession", RouteKind::Original),
    route("DELETE", "/sessions/:sessionId", "terminateSession", RouteKind::Original),
    route("OPTIONS", "/sessions", "handleCors", RouteKind::Original),
    route("OPTIONS", "/sessions/:sessionId", "handleCors", RouteKind::Original),
    route("OPTIONS", "/sessions/:sessionId/stream", "handleCors", RouteKind::Original),
    route("POST", "/sessions/:sessionId/cancel", "cancelSession", RouteKind::Extra),
    route("OPTIONS", "/sessions/:sessionId/cancel", "handleCors", RouteKind::Extra),
    route("POST", "/sessions/:sessionId/tool-result", "submitToolResult", RouteKind::ServerOnly),
    route("POST", "/execute", "execute", RouteKind::ServerOnly),
    route("GET", "/health", "health", RouteKind::ServerOnly),
];

/// What a method and path ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routed {
    /// A route, with its `:sessionId` (percent-decoded) when it has one.
    Route {
        handler: &'static str,
        session_id: Option<String>,
    },
    /// The path exists, not with this method.
    MethodNotAllowed,
    NotFound,
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

/// `%XX` escapes decoded (invalid UTF-8 replaced).
pub fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| hex(bytes[i + 1]).zip(hex(bytes[i + 2])))
            .flatten();
        if let Some((hi, lo)) = escaped {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn segments_match(pattern: &str, segments: &[String]) -> Option<Option<String>> {
    let mut parts = pattern.split('/').filter(|s| !s.is_empty());
    let mut id = None;
    for segment in segments {
        match parts.next()? {
            ":sessionId" => id = Some(segment.clone()),
            part if part == segment => {}
            _ => return None,
        }
    }
    parts.next().is_none().then_some(id)
}

/// The route `method` and `path` name (a trailing `/` and `%XX` escapes allowed).
pub fn match_route(method: &str, path: &str) -> Routed {
    let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let mut path_exists = false;
    for spec in &ROUTES {
        if let Some(session_id) = segments_match(spec.path, &segments) {
            if spec.method == method {
                return Routed::Route { handler: spec.handler, session_id };
            }
            path_exists = true;
        }
    }
    if path_exists { Routed::MethodNotAllowed } else { Routed::NotFound }
}

/// Which cross-origin requests may read the answers (the original SessionHandler's
/// `cors` and `allowedOrigins`).
#[derive(Clone, Debug)]
pub struct Cors {
    pub enabled: bool,
    pub allowed_origins: Vec<String>,
    /// Also allow the credential headers (`Authorization`, `X-API-Key`): the `listen()`
    /// server authenticates requests itself; the SessionHandler allows the original's three.
    pub credentials: bool,
}

impl Cors {
    /// The CORS headers of a response to a request from `origin`: with `*` allowed, the
    /// wildcard set; for an allowed origin, that origin with `Vary: Origin`; else none.
    pub fn headers(&self, origin: Option<&str>) -> Vec<(&'static str, String)> {
        if !self.enabled {
            return Vec::new();
        }
        let mut headers = Vec::with_capacity(5);
        if self.allowed_origins.iter().any(|o| o == "*") {
            headers.push(("Access-Control-Allow-Origin", "*".to_string()));
        } else {
            let Some(origin) =
                origin.filter(|o| !o.is_empty() && self.allowed_origins.iter().any(|a| a == o))
            else {
                return headers;
            };
            headers.push(("Access-Control-Allow-Origin", origin.to_string()));
            headers.push(("Vary", "Origin".to_string()));
        }
        headers.push(("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS".to_string()));
        let allowed = if self.credentials {
            "Content-Type, Accept, Last-Event-ID, Authorization, X-API-Key"
        } else {
            "Content-Type, Accept, Last-Event-ID"
        };
        headers.push(("Access-Control-Allow-Headers", allowed.to_string()));
        headers.push(("Access-Control-Max-Age", "86400".to_string()));
        headers
    }
}

/// The header that names the session of an NDJSON event stream.
pub const SESSION_ID_HEADER: &str = "X-Session-ID";

/// The other headers of an NDJSON event stream.
pub const STREAM_HEADERS: [(&str, &str); 3] =
    [("Content-Type", "application/x-ndjson"), ("Cache-Control", "no-cache"), ("Connection", "keep-alive")];

/// JavaScript's `parseInt(text, 10)`: leading whitespace, a sign, then the longest run of
/// digits; None when there are none.
fn parse_int(text: &str) -> Option<f64> {
    let trimmed = text.trim_start();
    let (negative, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let end = digits.bytes().take_while(u8::is_ascii_digit).count();
    if end == 0 {
        return None;
    }
    let value: f64 = digits[..end].parse().ok()?;
    Some(if negative { -value } else { value })
}

fn seq(value: f64) -> u64 {
    if value.is_finite() && value >= 0.0 { value.min(u64::MAX as f64) as u64 } else { 0 }
}

/// The first seq a stream sends: `fromSeq` (inclusive) as the original; else `from`
/// (inclusive), or `Last-Event-ID` (the last seq the client has, so the next one). Each is
/// read as JavaScript's `parseInt` reads it (`4abc` is 4); one that is not a non-negative
/// number means the start.
pub fn replay_start(from_seq: Option<&str>, from: Option<&str>, last_event_id: Option<&str>) -> u64 {
    if let Some(from_seq) = from_seq {
        return parse_int(from_seq).map_or(0, seq);
    }
    if let Some(from) = from {
        return parse_int(from).map_or(0, seq);
    }
    match last_event_id.and_then(parse_int) {
        Some(last) if last >= 0.0 => seq(last).saturating_add(1),
        _ => 0,
    }
}

/// A refused request: its status and `{code, message}` body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl HttpError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> HttpError {
        HttpError { status, code, message: message.into() }
    }

    pub fn body(&self) -> String {
        JsonObject::new().field("code", self.code).field("message", &self.message).finish()
    }

    pub fn invalid_request(message: impl Into<String>) -> HttpError {
        HttpError::new(400, "INVALID_REQUEST", message)
    }

    pub fn not_found(session_id: &str) -> HttpError {
        HttpError::new(404, "NOT_FOUND", format!("Session {session_id} not found"))
    }

    pub fn missing_session_id() -> HttpError {
        HttpError::invalid_request("Missing sessionId")
    }

    pub fn unauthorized() -> HttpError {
        HttpError::new(401, "UNAUTHORIZED", "No principal for this request")
    }

    pub fn disposed() -> HttpError {
        HttpError::new(503, "SERVICE_UNAVAILABLE", "Broker is disposed")
    }

    pub fn session_exists(session_id: &str) -> HttpError {
        HttpError::new(409, "SESSION_EXISTS", format!("Session {session_id} already exists"))
    }

    pub fn session_create_error(message: impl Into<String>) -> HttpError {
        HttpError::new(500, "SESSION_CREATE_ERROR", message)
    }

    pub fn list_failed() -> HttpError {
        HttpError::new(500, "INTERNAL_ERROR", "Failed to list sessions")
    }

    /// The stream route's filter that cannot be used.
    pub fn invalid_filter() -> HttpError {
        HttpError::new(400, "INVALID_FILTER", "Invalid filter configuration")
    }

    /// The broker running a shared session refused a command in its state.
    pub fn invalid_state(message: impl Into<String>) -> HttpError {
        HttpError::new(409, "INVALID_STATE", message)
    }

    /// The broker running a shared session did not answer (a `503` with `Retry-After`).
    pub fn broker_unavailable(message: impl Into<String>) -> HttpError {
        HttpError::new(503, "BROKER_UNAVAILABLE", message)
    }
}

/// A request body's `code` (the value of its `code` key): a string, else `400 INVALID_REQUEST`.
pub fn code_field(code: Option<&Value>) -> Result<&str, HttpError> {
    match code {
        Some(Value::String(code)) => Ok(code),
        _ => Err(HttpError::invalid_request("Missing or invalid \"code\" field")),
    }
}

/// How much filter a request may carry. The `listen()` server takes at most
/// `MAX_FILTER_BYTES` of JSON and `MAX_FILTER_PATTERNS` patterns (`400 FILTER_TOO_LARGE`),
/// and refuses at once a filter that would throw on every event; the SessionHandler, as
/// the original, takes any filter its `EventFilter` constructor takes (the embedder's
/// Express app bounds the body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterCaps {
    Server,
    Original,
}

fn compile(config: &Value, caps: FilterCaps) -> Result<EventFilter, FilterError> {
    let filter = match caps {
        FilterCaps::Server => EventFilter::from_config(config)?,
        FilterCaps::Original => EventFilter::uncapped(config)?,
    };
    if let (FilterCaps::Server, Some(message)) = (caps, filter.may_throw()) {
        return Err(FilterError::Invalid(message.to_string()));
    }
    Ok(filter)
}

fn too_large(message: String) -> HttpError {
    HttpError::new(400, "FILTER_TOO_LARGE", message)
}

/// JavaScript's truthiness of a JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `POST /sessions`'s `filter` (falsy: none). One the original's `EventFilter` constructor
/// refuses is `500 SESSION_CREATE_ERROR` with its `TypeError`'s text, as the original
/// (whose constructor throws inside its `try`); past the server's caps `400 FILTER_TOO_LARGE`.
pub fn body_filter(filter: Option<&Value>, caps: FilterCaps) -> Result<Option<EventFilter>, HttpError> {
    let Some(config) = filter.filter(|f| truthy(f)) else { return Ok(None) };
    match compile(config, caps) {
        Ok(filter) => Ok(Some(filter)),
        Err(FilterError::TooLarge(message)) => Err(too_large(message)),
        Err(FilterError::Invalid(message)) => Err(HttpError::session_create_error(message)),
    }
}

/// The stream route's `?filter=` (JSON; empty: none): anything unusable is
/// `400 INVALID_FILTER` (`Invalid filter configuration`); past the server's caps
/// `400 FILTER_TOO_LARGE`.
pub fn query_filter(text: Option<&str>, caps: FilterCaps) -> Result<Option<EventFilter>, HttpError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else { return Ok(None) };
    let config: Value = serde_json::from_str(text).map_err(|_| HttpError::invalid_filter())?;
    match compile(&config, caps) {
        Ok(filter) => Ok(Some(filter)),
        Err(FilterError::TooLarge(message)) => Err(too_large(message)),
        Err(FilterError::Invalid(_)) => Err(HttpError::invalid_filter()),
    }
}

/// The keys of `POST /sessions {config}` the SessionHandler passes on as the session's
/// limits, as the original: `config`'s key and the limit it sets. (The `listen()` server
/// reads `config` through `template.rs`, which only tightens the operator's limits.)
pub const LIMIT_FIELDS: [(&str, &str); 3] = [
    ("maxExecutionMs", "sessionTtlMs"),
    ("maxToolCalls", "maxToolCalls"),
    ("heartbeatIntervalMs", "heartbeatIntervalMs"),
];

/// A session as `GET /sessions` and `GET /sessions/:id` show it.
pub struct SessionInfo<'a> {
    pub session_id: &'a str,
    pub state: &'a str,
    pub created_at: f64,
    pub expires_at: f64,
    pub duration: f64,
    pub tool_call_count: f64,
}

impl SessionInfo<'_> {
    /// `{sessionId, state, createdAt, expiresAt, stats: {duration, toolCallCount}}`.
    pub fn json(&self) -> String {
        let stats = JsonObject::new()
            .num("duration", self.duration)
            .num("toolCallCount", self.tool_call_count)
            .finish();
        JsonObject::new()
            .field("sessionId", self.session_id)
            .field("state", self.state)
            .num("createdAt", self.created_at)
            .num("expiresAt", self.expires_at)
            .raw("stats", &stats)
            .finish()
    }
}

/// `GET /sessions`'s body: `{sessions, total}` of session-info JSON texts. Listed sessions
/// report `toolCallCount: 0`, as the original (Q11 in docs/compatibility.md).
pub fn session_list_json(sessions: &[String]) -> String {
    JsonObject::new()
        .raw("sessions", &format!("[{}]", sessions.join(",")))
        .field("total", &sessions.len())
        .finish()
}

/// The body of a done `DELETE` or cancel: `{success: true, sessionId}`.
pub fn success_json(session_id: &str) -> String {
    JsonObject::new().field("success", &true).field("sessionId", session_id).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_with_ids_and_wrong_methods() {
        let routed = |m, p| match_route(m, p);
        assert_eq!(
            routed("GET", "/sessions/s%5F1/stream/"),
            Routed::Route { handler: "streamSession", session_id: Some("s_1".into()) }
        );
        assert_eq!(routed("POST", "/sessions"), Routed::Route { handler: "createSession", session_id: None });
        assert_eq!(routed("PUT", "/sessions/x"), Routed::MethodNotAllowed);
        assert_eq!(routed("GET", "/nope"), Routed::NotFound);
        assert_eq!(routed("GET", "/sessions/a/b/c"), Routed::NotFound);
    }

    #[test]
    fn replay_starts_as_the_original_parses() {
        assert_eq!(replay_start(Some("4abc"), None, None), 4);
        assert_eq!(replay_start(Some(" 7"), None, None), 7);
        assert_eq!(replay_start(Some("x"), Some("5"), None), 0);
        assert_eq!(replay_start(Some("-3"), None, None), 0);
        assert_eq!(replay_start(None, Some("5"), Some("9")), 5);
        assert_eq!(replay_start(None, Some("x"), Some("9")), 0);
        assert_eq!(replay_start(None, None, Some("4")), 5);
        assert_eq!(replay_start(None, None, Some("-1")), 0);
        assert_eq!(replay_start(None, None, Some("garbage")), 0);
        assert_eq!(replay_start(None, None, Some("99999999999999999999999")), u64::MAX);
    }

    #[test]
    fn cors_follows_the_allowed_origins() {
        let cors = |origins: &[&str]| Cors {
            enabled: true,
            allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            credentials: false,
        };
        assert_eq!(cors(&["*"]).headers(None).len(), 4);
        let echo = cors(&["https://a"]).headers(Some("https://a"));
        assert_eq!(echo[0], ("Access-Control-Allow-Origin", "https://a".to_string()));
        assert_eq!(echo[1], ("Vary", "Origin".to_string()));
        assert!(cors(&["https://a"]).headers(Some("https://b")).is_empty());
        assert!(cors(&["https://a"]).headers(None).is_empty());
        assert!(Cors { enabled: false, ..cors(&["*"]) }.headers(Some("https://a")).is_empty());
    }

    #[test]
    fn filters_are_capped_only_on_the_server() {
        let throws: Value = serde_json::json!({"mode": "include", "rules": "x"});
        assert_eq!(body_filter(Some(&throws), FilterCaps::Server).unwrap_err().code, "SESSION_CREATE_ERROR");
        assert!(body_filter(Some(&throws), FilterCaps::Original).unwrap().is_some());
        let big =
            serde_json::json!({"mode": "include", "rules": [{"types": {"types": ["x".repeat(20_000)]}}]});
        assert_eq!(body_filter(Some(&big), FilterCaps::Server).unwrap_err().code, "FILTER_TOO_LARGE");
        assert!(body_filter(Some(&big), FilterCaps::Original).unwrap().is_some());
        for falsy in [Value::Null, Value::Bool(false), serde_json::json!(0), serde_json::json!("")] {
            assert!(body_filter(Some(&falsy), FilterCaps::Server).unwrap().is_none());
        }
        let refused = body_filter(Some(&serde_json::json!({"mode": "include"})), FilterCaps::Original);
        assert_eq!(
            refused.unwrap_err(),
            HttpError::session_create_error("this.config.rules is not iterable")
        );
        for bad in ["{not json", "null", r#"{"mode":"include"}"#] {
            assert_eq!(
                query_filter(Some(bad), FilterCaps::Original).unwrap_err(),
                HttpError::invalid_filter()
            );
        }
        assert!(query_filter(Some(""), FilterCaps::Server).unwrap().is_none());
        assert!(
            query_filter(Some(r#"{"mode":"include","rules":"x"}"#), FilterCaps::Original).unwrap().is_some()
        );
        assert_eq!(
            query_filter(Some(r#"{"mode":"include","rules":"x"}"#), FilterCaps::Server).unwrap_err(),
            HttpError::invalid_filter()
        );
    }

    #[test]
    fn session_info_has_the_original_shape() {
        let info = SessionInfo {
            session_id: "s_1",
            state: "running",
            created_at: 1000.0,
            expires_at: 2000.5,
            duration: 12.0,
            tool_call_count: 3.0,
        };
        assert_eq!(
            info.json(),
            r#"{"sessionId":"s_1","state":"running","createdAt":1000,"expiresAt":2000.5,"stats":{"duration":12,"toolCallCount":3}}"#
        );
        assert_eq!(session_list_json(&[]), r#"{"sessions":[],"total":0}"#);
        assert_eq!(success_json("s_1"), r#"{"success":true,"sessionId":"s_1"}"#);
    }
}
