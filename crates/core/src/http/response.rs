//! Response building: JSON bodies, the `{code, message}` error shape and CORS headers
//! (the original's SessionHandler puts CORS headers on every response).

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

use crate::protocol::json::JsonObject;

pub type Body = BoxBody<Bytes, Infallible>;

pub fn json(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json; charset=utf-8"));
    response
}

pub fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json(status, JsonObject::new().field("code", code).field("message", message).finish())
}

/// `429` with a `Retry-After` of `seconds`.
pub fn too_many_requests(code: &str, message: &str, seconds: u128) -> Response<Body> {
    let mut response = error(StatusCode::TOO_MANY_REQUESTS, code, message);
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert("retry-after", value);
    }
    response
}

/// The code of every refusal for lack of room (`maxConcurrentSessions` reached; any later
/// capacity limit answers through `at_capacity` too, so clients handle one shape).
pub const AT_CAPACITY: &str = "AT_CAPACITY";

/// `503 {code: 'AT_CAPACITY', message}` with `Retry-After: 1`: the request was fine, the
/// server has no room for it now.
pub fn at_capacity(message: &str) -> Response<Body> {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, AT_CAPACITY, message);
    response.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
    response
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Empty::new().boxed());
    *response.status_mut() = status;
    response
}

#[derive(Clone, Debug)]
pub struct Cors {
    pub enabled: bool,
    pub allowed_origins: Vec<String>,
}

impl Cors {
    pub fn apply(&self, origin: Option<&str>, headers: &mut HeaderMap) {
        if !self.enabled {
            return;
        }
        if self.allowed_origins.iter().any(|o| o == "*") {
            headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
        } else {
            let Some(origin) = origin.filter(|o| self.allowed_origins.iter().any(|a| a == o)) else { return };
            let Ok(value) = HeaderValue::from_str(origin) else { return };
            headers.insert("access-control-allow-origin", value);
            headers.insert("vary", HeaderValue::from_static("Origin"));
        }
        headers
            .insert("access-control-allow-methods", HeaderValue::from_static("GET, POST, DELETE, OPTIONS"));
        headers.insert(
            "access-control-allow-headers",
            HeaderValue::from_static("Content-Type, Accept, Last-Event-ID, Authorization, X-API-Key"),
        );
        headers.insert("access-control-max-age", HeaderValue::from_static("86400"));
    }
}
