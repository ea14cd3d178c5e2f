//! The HTTP API's rules (`enclave_broker_core::http::rules`), the ones the `listen()` server
//! applies, for the JavaScript `SessionHandler` (`lib/http/session-handler.js`): the route
//! table, CORS and stream headers, where a replay starts, the checks of a request with their
//! refusals (`{status, code, message}` data, which the handler writes as the response), the
//! request's filter and limits, and the session-info JSON. The handler only adapts its
//! duck-typed `req`/`res` and calls the broker it was given.

use enclave_broker_core::http::rules::{
    self, Cors, FilterCaps, HttpError, LIMIT_FIELDS, ROUTES, RouteKind, SESSION_ID_HEADER, STREAM_HEADERS,
    SessionInfo,
};
use enclave_broker_core::session::Principal;
use napi::ValueType;
use napi::bindgen_prelude::{Either, Unknown};
use napi_derive::napi;
use serde_json::Value;

use crate::event_filter::BindingEventFilter;

#[napi(object)]
pub struct BindingRoute {
    pub method: String,
    pub path: String,
    /// The SessionHandler method that serves it.
    pub handler: String,
}

#[napi(object)]
pub struct BindingHeader {
    pub name: String,
    pub value: String,
}

/// A refused request: the response's status and its `{code, message}` body.
#[napi(object)]
pub struct BindingHttpRefusal {
    pub status: u32,
    pub code: String,
    pub message: String,
}

impl From<HttpError> for BindingHttpRefusal {
    fn from(e: HttpError) -> BindingHttpRefusal {
        BindingHttpRefusal { status: e.status.into(), code: e.code.into(), message: e.message }
    }
}

/// A key of `POST /sessions {config}` and the session limit it sets.
#[napi(object)]
pub struct BindingLimitField {
    pub field: String,
    pub limit: String,
}

fn headers(pairs: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>) -> Vec<BindingHeader> {
    pairs.into_iter().map(|(name, value)| BindingHeader { name: name.into(), value: value.into() }).collect()
}

/// The original's `getRoutes()` (`extra` false) or the routes it lacks (`getExtraRoutes()`).
#[napi]
pub fn http_routes(extra: bool) -> Vec<BindingRoute> {
    let kind = if extra { RouteKind::Extra } else { RouteKind::Original };
    ROUTES
        .iter()
        .filter(|spec| spec.kind == kind)
        .map(|spec| BindingRoute {
            method: spec.method.into(),
            path: spec.path.into(),
            handler: spec.handler.into(),
        })
        .collect()
}

/// The CORS headers of a response to a request from `origin`, in the order they are set.
#[napi]
pub fn http_cors_headers(
    enabled: bool,
    allowed_origins: Vec<String>,
    origin: Option<String>,
) -> Vec<BindingHeader> {
    let cors = Cors { enabled, allowed_origins, credentials: false };
    headers(cors.headers(origin.as_deref()))
}

/// The headers of an NDJSON event stream: the fixed ones, and the name of the one that
/// carries the session's id.
#[napi(object)]
pub struct BindingStreamHeaders {
    pub fixed: Vec<BindingHeader>,
    pub session_id: String,
}

#[napi]
pub fn http_stream_headers() -> BindingStreamHeaders {
    BindingStreamHeaders { fixed: headers(STREAM_HEADERS), session_id: SESSION_ID_HEADER.into() }
}

/// The first seq a stream sends, from `?fromSeq=`, `?from=` and `Last-Event-ID` (each as
/// `String(value)`, or absent).
#[napi]
pub fn http_replay_start(
    from_seq: Option<String>,
    from: Option<String>,
    last_event_id: Option<String>,
) -> f64 {
    rules::replay_start(from_seq.as_deref(), from.as_deref(), last_event_id.as_deref()) as f64
}

/// The refusal of a request body whose `code` is `code` (any JavaScript value), if any.
#[napi]
pub fn http_code_refusal(code: Unknown<'_>) -> napi::Result<Option<BindingHttpRefusal>> {
    // Only the value's kind matters to the rule, not the script itself.
    let seen = (code.get_type()? == ValueType::String).then(|| Value::String(String::new()));
    Ok(rules::code_field(seen.as_ref()).err().map(BindingHttpRefusal::from))
}

fn filter_answer(
    answer: Result<Option<enclave_broker_core::http::filter::EventFilter>, HttpError>,
) -> Option<Either<BindingEventFilter, BindingHttpRefusal>> {
    match answer {
        Ok(filter) => filter.map(|f| Either::A(BindingEventFilter::from_core(f.into_core()))),
        Err(e) => Some(Either::B(e.into())),
    }
}

/// `POST /sessions`'s `filter` (as JSON, or absent): none, the filter, or the refusal. JSON
/// the core cannot read (a lone surrogate, nesting past 128 levels) is refused as the
/// `listen()` server refuses such a body, `400 INVALID_REQUEST`.
#[napi]
pub fn http_body_filter(
    filter_json: Option<String>,
) -> Option<Either<BindingEventFilter, BindingHttpRefusal>> {
    let config = match filter_json.map(|json| serde_json::from_str::<Value>(&json)).transpose() {
        Ok(config) => config,
        Err(e) => {
            let message = format!("\"filter\" is not readable JSON: {e}");
            return Some(Either::B(HttpError::invalid_request(message).into()));
        }
    };
    filter_answer(rules::body_filter(config.as_ref(), FilterCaps::Original))
}

/// The stream route's `?filter=` (as `String(value)`, or absent): none, the filter, or the refusal.
#[napi]
pub fn http_query_filter(text: Option<String>) -> Option<Either<BindingEventFilter, BindingHttpRefusal>> {
    filter_answer(rules::query_filter(text.as_deref(), FilterCaps::Original))
}

/// The keys of `POST /sessions {config}` that become the session's limits.
#[napi]
pub fn http_limit_fields() -> Vec<BindingLimitField> {
    LIMIT_FIELDS
        .iter()
        .map(|(field, limit)| BindingLimitField { field: (*field).into(), limit: (*limit).into() })
        .collect()
}

/// A refusal by its name (`notFound`, `missingSessionId`, `unauthorized`, `disposed`,
/// `sessionExists`, `sessionCreateError`, `listFailed`, `invalidState`, `brokerUnavailable`)
/// and its subject (the session id, or the message). An unknown name is API misuse.
#[napi]
pub fn http_refusal(name: String, subject: Option<String>) -> napi::Result<BindingHttpRefusal> {
    let subject = subject.unwrap_or_default();
    let refusal = match name.as_str() {
        "notFound" => HttpError::not_found(&subject),
        "missingSessionId" => HttpError::missing_session_id(),
        "unauthorized" => HttpError::unauthorized(),
        "disposed" => HttpError::disposed(),
        "sessionExists" => HttpError::session_exists(&subject),
        "sessionCreateError" => HttpError::session_create_error(subject),
        "listFailed" => HttpError::list_failed(),
        "invalidState" => HttpError::invalid_state(subject),
        "brokerUnavailable" => HttpError::broker_unavailable(subject),
        _ => return Err(napi::Error::new(napi::Status::InvalidArg, format!("no HTTP refusal named {name}"))),
    };
    Ok(refusal.into())
}

/// `GET /sessions/:id`'s body, as JSON (the facts as arguments: cheaper to pass than an object).
#[napi]
pub fn http_session_info(
    session_id: String,
    state: String,
    created_at: f64,
    expires_at: f64,
    duration: f64,
    tool_call_count: f64,
) -> String {
    let (session_id, state) = (session_id.as_str(), state.as_str());
    SessionInfo { session_id, state, created_at, expires_at, duration, tool_call_count }.json()
}

/// `GET /sessions`'s body, as JSON, from the session-info JSON of each listed session.
#[napi]
pub fn http_session_list(sessions: Vec<String>) -> String {
    rules::session_list_json(&sessions)
}

/// A done `DELETE` or cancel's body, as JSON.
#[napi]
pub fn http_success(session_id: String) -> String {
    rules::success_json(&session_id)
}

/// The shared registry's key of the principal whose id is `user_id` (a SessionHandler's
/// principals are users without a tenant), as the core keys the sessions it records.
#[napi]
pub fn http_principal_key(user_id: String) -> String {
    Principal::User { user_id, tenant_id: None }.key()
}
