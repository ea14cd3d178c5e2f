//! Response building: JSON bodies and the `{code, message}` error shape (CORS headers and
//! the refusals themselves are `rules.rs`'s).

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use super::rules::HttpError;
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

/// The response of a request the rules refuse.
pub fn refused(e: &HttpError) -> Response<Body> {
    json(StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST), e.body())
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

/// Sets `headers` from `(name, value)` pairs written as the rules write them (`rules.rs`);
/// a value that is not a valid header value (an origin with a control character) is left out.
pub fn set_headers<V: AsRef<str>>(
    headers: &mut HeaderMap,
    pairs: impl IntoIterator<Item = (&'static str, V)>,
) {
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value.as_ref()))
        {
            headers.insert(name, value);
        }
    }
}
