//! Routes of the `listen()` server: the seeds' `/execute`, `/health` and tool-result routes,
//! and the original SessionHandler's session routes with its bodies and status codes
//! (1.J), plus the cancel route and replay aliases its own client uses (C36 in docs/compatibility.md).
//! What a request may be and how it is answered is `rules.rs`'s (the JavaScript
//! SessionHandler asks the same rules); this file serves each route by them.
//! Every route but `/health` runs as the caller's principal (`auth`): sessions it creates
//! are its own, and `:id` routes reach only the sessions `access` lets it reach. Sessions
//! are found through the shared state (`cluster`): one another broker runs is answered from
//! the shared registry and log, and commands to it go to that broker.

// A finished error response is the natural error value of a request step.
#![allow(clippy::result_large_err)]

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value};

use super::access::{listed_sessions, session_for};
use super::auth::authenticate;
use super::body::read_json_object;
use super::callbacks::{Action, RequestInfo};
use super::filter::EventFilter;
use super::rate_limit::limit_requests;
use super::response::{Body, at_capacity, empty, error, json, refused, set_headers};
use super::rules::{
    self, FilterCaps, HttpError, Routed, SessionInfo, match_route, percent_decode, session_list_json,
    success_json,
};
use super::state::ServerState;
use super::stream::{Source, StreamOptions, ndjson_response};
use crate::cluster::{Command, CommandReply, CreateRefusal, SessionRef};
use crate::protocol::ids::generate_session_id;
use crate::protocol::json::JsonObject;
use crate::protocol::{ErrorCode, ErrorInfo, EventType};
use crate::session::encryption::{EncryptionRefusal, negotiate};
use crate::session::{ManagerError, Principal, SessionConfig};
use crate::tools::ToolReply;

/// Who sent a request: the principal it acts as, and the request as hooks see it.
struct Caller {
    principal: Principal,
    info: RequestInfo,
}

impl Caller {
    /// The session `id` if this caller may do `action` to it (else the 404 to answer).
    async fn session(
        &self,
        state: &ServerState,
        id: &str,
        action: Action,
    ) -> Result<SessionRef, Response<Body>> {
        session_for(state, &self.principal, &self.info, id, action).await
    }
}

pub(super) async fn handle(
    state: Arc<ServerState>,
    peer: SocketAddr,
    request: Request<Incoming>,
) -> Response<Body> {
    let origin = request.headers().get("origin").and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut response = route(&state, peer, request).await;
    set_headers(response.headers_mut(), state.config.cors.headers(origin.as_deref()));
    response
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == name).then(|| percent_decode(&value.replace('+', " ")))
    })
}

fn request_info(request: &Request<Incoming>, peer: SocketAddr) -> RequestInfo {
    RequestInfo {
        method: request.method().to_string(),
        path: request.uri().path().to_string(),
        headers: request
            .headers()
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_string(), v.to_string())))
            .collect(),
        ip: peer.ip().to_string(),
        principal: None,
    }
}

async fn route(state: &Arc<ServerState>, peer: SocketAddr, request: Request<Incoming>) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().trim_end_matches('/').to_string();
    let routed = match_route(method.as_str(), &path);

    if method == Method::OPTIONS {
        return empty(StatusCode::NO_CONTENT);
    }
    if let Some(response) =
        state.config.static_files.as_ref().and_then(|f| f.respond(&method, request.uri().path()))
    {
        return response;
    }
    if let Routed::Route { handler: "health", .. } = routed {
        return health(state);
    }

    let mut info = request_info(&request, peer);
    let timeout = state.config.callback_timeout;
    let principal = match (&state.config.auth, &state.authenticator) {
        (Some(auth), Some(authenticator)) => {
            match authenticate((auth, authenticator), timeout, state.shared.as_ref(), &info).await {
                Ok(principal) => principal,
                Err(response) => return response,
            }
        }
        _ => Principal::Anonymous,
    };
    info.principal = Some(principal.clone());
    if let (Some(limiter), Some(limits)) = (&state.limiter, &state.config.rate_limit) {
        let shared = state.shared.as_ref();
        if let Some(response) = limit_requests((limiter, limits), timeout, shared, &info, &principal).await {
            return response;
        }
    }
    let caller = Caller { principal, info };

    match routed {
        Routed::Route { handler, session_id } => {
            let id = session_id.as_deref().unwrap_or_default();
            match handler {
                "execute" => execute(state, &caller, request).await,
                "listSessions" => list_sessions(state, &caller).await,
                "createSession" => create_session(state, &caller, request).await,
                "getSession" => get_session(state, &caller, id).await,
                "terminateSession" => terminate_session(state, &caller, id).await,
                "streamSession" => stream_session(state, &caller, id, request).await,
                "cancelSession" => cancel_session(state, &caller, id, request).await,
                "submitToolResult" => submit_tool_result(state, &caller, id, request).await,
                _ => empty(StatusCode::NO_CONTENT),
            }
        }
        Routed::MethodNotAllowed => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            &format!("{method} is not supported on {path}"),
        ),
        Routed::NotFound => {
            error(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("Route not found: {method} {path}"))
        }
    }
}

/// `{status, uptime, sessions: {active, total}}` (this broker's sessions), with shared
/// state also `redis: {status, address, broker, bufferedEvents, bufferedBytes, error?}`;
/// `status` is `degraded` while Redis is away (new sessions are refused then).
fn health(state: &ServerState) -> Response<Body> {
    let sessions = JsonObject::new()
        .field("active", &state.manager.active_count())
        .field("total", &state.manager.total_count())
        .finish();
    let shared = state.shared.health();
    let status = match &shared {
        Some((_, false)) => "degraded",
        _ => "ok",
    };
    json(
        StatusCode::OK,
        JsonObject::new()
            .field("status", status)
            .num("uptime", state.started.elapsed().as_secs_f64())
            .raw("sessions", &sessions)
            .opt_raw("redis", shared.as_ref().map(|(json, _)| json.as_str()))
            .finish(),
    )
}

fn invalid(message: &str) -> Response<Body> {
    refused(&HttpError::invalid_request(message))
}

/// The body's `encryption` request (seed handshake) applied to `config`. The session id is
/// fixed first when a handshake happens: it salts the key derivation.
fn with_encryption(
    body: &Map<String, Value>,
    mut config: SessionConfig,
) -> Result<SessionConfig, Response<Body>> {
    let Some(request) = body.get("encryption") else { return Ok(config) };
    let session_id = config.session_id.clone().unwrap_or_else(generate_session_id);
    match negotiate(Some(request), &session_id) {
        Ok(None) => Ok(config),
        Ok(Some(encryption)) => {
            config.session_id = Some(session_id);
            config.encryption = Some(Arc::new(encryption));
            Ok(config)
        }
        Err(EncryptionRefusal::Invalid(message)) => Err(invalid(&message)),
        Err(EncryptionRefusal::Handshake(e)) => Err(error(StatusCode::BAD_REQUEST, e.code, &e.message)),
    }
}

fn code_field(body: &Map<String, Value>) -> Result<String, Response<Body>> {
    rules::code_field(body.get("code")).map(str::to_string).map_err(|e| refused(&e))
}

fn type_list(value: &Value, key: &str) -> Result<Option<Vec<EventType>>, String> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| {
                t.as_str()
                    .and_then(EventType::parse)
                    .ok_or_else(|| format!("filter.{key} has an unknown event type: {t}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(format!("filter.{key} must be an array of event types")),
    }
}

/// A `503` refusal, with `Retry-After: 1`.
fn unavailable(e: &HttpError) -> Response<Body> {
    let mut response = refused(e);
    response.headers_mut().insert("retry-after", hyper::header::HeaderValue::from_static("1"));
    response
}

/// Why a session was refused, as the response.
fn refusal(e: &CreateRefusal) -> Response<Body> {
    match e {
        CreateRefusal::Manager(ManagerError::Disposed) => refused(&HttpError::disposed()),
        CreateRefusal::Manager(e @ ManagerError::MaxSessions(_)) => at_capacity(&e.to_string()),
        CreateRefusal::Manager(ManagerError::Exists(id)) => refused(&HttpError::session_exists(id)),
        CreateRefusal::Unavailable(message) => {
            unavailable(&HttpError::new(503, ErrorCode::REDIS_UNAVAILABLE, message.as_str()))
        }
    }
}

/// A command's answer from the broker running a shared session, as the response.
fn command_response(id: &str, reply: CommandReply, done: impl FnOnce() -> Response<Body>) -> Response<Body> {
    match reply {
        CommandReply::Done => done(),
        CommandReply::InvalidState(message) => refused(&HttpError::invalid_state(message)),
        CommandReply::NotFound => super::access::not_found(id),
        CommandReply::Unavailable(message) => unavailable(&HttpError::broker_unavailable(message)),
    }
}

/// Creates the caller's session (honouring maxSessions, refusing an id in use, applying
/// the body's `encryption` request) and starts it, streaming from the first event.
async fn start_streaming(
    state: &Arc<ServerState>,
    caller: &Caller,
    mut config: SessionConfig,
    body: &Map<String, Value>,
    code: String,
    filters: Vec<EventFilter>,
) -> Response<Body> {
    config.owner = caller.principal.clone();
    let config = match with_encryption(body, config) {
        Ok(config) => config,
        Err(response) => return response,
    };
    // The engine pool's queue is full: refused before a session exists (see engine::budget).
    if let Err(full) = crate::engine::check_capacity(config.sandbox.effective_memory_limit()) {
        let mut response =
            error(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ENGINE_CAPACITY_EXCEEDED, &full.to_string());
        response.headers_mut().insert("retry-after", hyper::header::HeaderValue::from_static("1"));
        return response;
    }
    let session = match state.shared.create(config).await {
        Ok(session) => session,
        Err(e) => return refusal(&e),
    };
    if let Some(created) = &state.config.on_session_created {
        created(&session);
    }
    if let Err(e) = session.execute(code) {
        return refused(&HttpError::session_create_error(e.to_string()));
    }
    let on_disconnect: Option<Box<dyn FnOnce() + Send>> = if state.config.cancel_on_disconnect {
        let session = session.clone();
        Some(Box::new(move || session.cancel(Some("Client disconnected"))))
    } else {
        None
    };
    let on_end = state.stream_opened(&session);
    ndjson_response(
        Source::Local(session),
        StreamOptions { after_seq: 0, filters, on_disconnect, on_end: Some(on_end) },
    )
}

async fn read_body(
    state: &ServerState,
    request: Request<Incoming>,
) -> Result<Map<String, Value>, Response<Body>> {
    read_json_object(request, state.config.max_body_bytes, state.config.body_timeout).await
}

/// `POST /execute {code, timeout?, maxToolCalls?, context?, filter?: {types?, blockedTypes?}}`
async fn execute(state: &Arc<ServerState>, caller: &Caller, request: Request<Incoming>) -> Response<Body> {
    let body = match read_body(state, request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let code = match code_field(&body) {
        Ok(code) => code,
        Err(response) => return response,
    };
    let filters = match body.get("filter") {
        None | Some(Value::Null) => Vec::new(),
        Some(filter @ Value::Object(_)) => {
            match (type_list(filter, "types"), type_list(filter, "blockedTypes")) {
                (Ok(types), Ok(blocked)) => EventFilter::from_type_lists(types, blocked),
                (Err(e), _) | (_, Err(e)) => return error(StatusCode::BAD_REQUEST, "INVALID_FILTER", &e),
            }
        }
        Some(_) => return error(StatusCode::BAD_REQUEST, "INVALID_FILTER", "filter must be an object"),
    };
    let config = match state.config.template.for_execute(&body) {
        Ok(config) => config,
        Err(message) => return invalid(&message),
    };
    start_streaming(state, caller, config, &body, code, filters).await
}

/// `POST /sessions {code, sessionId?, config?, filter?}` (the original's create + stream).
/// A `sessionId` already in use is `409 SESSION_EXISTS` (never a replacement).
async fn create_session(
    state: &Arc<ServerState>,
    caller: &Caller,
    request: Request<Incoming>,
) -> Response<Body> {
    let body = match read_body(state, request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let code = match code_field(&body) {
        Ok(code) => code,
        Err(response) => return response,
    };
    if state.manager.is_disposed() {
        return refused(&HttpError::disposed());
    }
    let filters = match rules::body_filter(body.get("filter"), FilterCaps::Server) {
        Ok(filter) => filter.into_iter().collect::<Vec<_>>(),
        Err(e) => return refused(&e),
    };
    let config = match state.config.template.for_create(&body) {
        Ok(config) => config,
        Err(message) => return invalid(&message),
    };
    start_streaming(state, caller, config, &body, code, filters).await
}

fn session_json(session: &SessionRef, tool_call_count: u64) -> String {
    SessionInfo {
        session_id: session.id(),
        state: session.state().as_str(),
        created_at: session.created_at(),
        expires_at: session.expires_at(),
        duration: crate::protocol::json::now_epoch_ms() - session.created_at(),
        tool_call_count: tool_call_count as f64,
    }
    .json()
}

async fn list_sessions(state: &ServerState, caller: &Caller) -> Response<Body> {
    let sessions = listed_sessions(state, &caller.principal, &caller.info).await;
    // As the original, the list reports toolCallCount 0 (quirk Q11 in docs/compatibility.md).
    let items: Vec<String> = sessions.iter().map(|s| session_json(s, 0)).collect();
    json(StatusCode::OK, session_list_json(&items))
}

async fn get_session(state: &ServerState, caller: &Caller, id: &str) -> Response<Body> {
    match caller.session(state, id, Action::Read).await {
        Ok(session) => json(StatusCode::OK, session_json(&session, session.tool_call_count())),
        Err(response) => response,
    }
}

async fn terminate_session(state: &ServerState, caller: &Caller, id: &str) -> Response<Body> {
    let session = match caller.session(state, id, Action::Delete).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let done = || json(StatusCode::OK, success_json(id));
    match session {
        SessionRef::Local(session) => {
            state.manager.terminate_session(&session, None);
            done()
        }
        SessionRef::Shared(record) => {
            command_response(id, state.shared.command(&record, Command::Delete).await, done)
        }
    }
}

/// Where a replay starts (`rules::replay_start`).
fn replay_start(request: &Request<Incoming>) -> u64 {
    let query = request.uri().query();
    let last = request.headers().get("last-event-id").and_then(|v| v.to_str().ok());
    rules::replay_start(query_param(query, "fromSeq").as_deref(), query_param(query, "from").as_deref(), last)
}

async fn stream_session(
    state: &Arc<ServerState>,
    caller: &Caller,
    id: &str,
    request: Request<Incoming>,
) -> Response<Body> {
    let session = match caller.session(state, id, Action::Stream).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let query_filter = query_param(request.uri().query(), "filter");
    let filters = match rules::query_filter(query_filter.as_deref(), FilterCaps::Server) {
        Ok(filter) => filter.into_iter().collect::<Vec<_>>(),
        Err(e) => return refused(&e),
    };
    let from = replay_start(&request);
    let options =
        |on_end| StreamOptions { after_seq: from.saturating_sub(1), filters, on_disconnect: None, on_end };
    match session {
        SessionRef::Local(session) => {
            let on_end = state.stream_opened(&session);
            ndjson_response(Source::Local(session), options(Some(on_end)))
        }
        SessionRef::Shared(record) => {
            // Another broker holds the key: its log has the envelopes, never the content.
            let options = options(None);
            if record.encrypted && options.filters.iter().any(EventFilter::reads_content) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "FILTER_NOT_SUPPORTED",
                    "Content filters on an encrypted session are applied only by the broker running it",
                );
            }
            let session_id = record.id.clone();
            ndjson_response(Source::Shared { session_id, feed: state.shared.feed(record) }, options)
        }
    }
}

async fn cancel_session(
    state: &ServerState,
    caller: &Caller,
    id: &str,
    request: Request<Incoming>,
) -> Response<Body> {
    let body = match read_body(state, request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let session = match caller.session(state, id, Action::Cancel).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let reason = match body.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(reason)) => Some(reason.clone()),
        Some(_) => return invalid("\"reason\" must be a string"),
    };
    let done = || json(StatusCode::OK, success_json(id));
    match session {
        SessionRef::Local(session) => {
            session.cancel(reason.as_deref());
            done()
        }
        SessionRef::Shared(record) => {
            command_response(id, state.shared.command(&record, Command::Cancel { reason }).await, done)
        }
    }
}

/// `POST /sessions/:id/tool-result {callId, result?, error?: {message, code?}}`
async fn submit_tool_result(
    state: &ServerState,
    caller: &Caller,
    id: &str,
    request: Request<Incoming>,
) -> Response<Body> {
    let body = match read_body(state, request).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let session = match caller.session(state, id, Action::ToolResult).await {
        Ok(session) => session,
        Err(response) => return response,
    };
    let Some(Value::String(call_id)) = body.get("callId") else {
        return invalid("Missing or invalid \"callId\" field");
    };
    let reply = match body.get("error") {
        None | Some(Value::Null) => ToolReply::Ok(body.get("result").map(|value| value.to_string())),
        Some(Value::Object(e)) => {
            let Some(Value::String(message)) = e.get("message") else {
                return invalid("\"error.message\" must be a string");
            };
            let code = match e.get("code") {
                None | Some(Value::Null) => "TOOL_ERROR".to_string(),
                Some(Value::String(code)) => code.clone(),
                Some(_) => return invalid("\"error.code\" must be a string"),
            };
            ToolReply::Err(ErrorInfo::new(&code, message.clone()))
        }
        Some(_) => return invalid("\"error\" must be an object"),
    };
    let done = || json(StatusCode::OK, JsonObject::new().field("success", &true).finish());
    match session {
        SessionRef::Local(session) => match session.submit_tool_result(call_id, reply) {
            Ok(()) => done(),
            Err(e) => refused(&HttpError::invalid_state(e.to_string())),
        },
        SessionRef::Shared(record) => {
            let command = Command::ToolResult { call_id: call_id.clone(), reply };
            command_response(id, state.shared.command(&record, command).await, done)
        }
    }
}
