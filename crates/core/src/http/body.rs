//! Reading a request body with a size cap and a deadline, so an oversized body or a client
//! that sends half a body and stops costs the server nothing but a clear 4xx.

// A finished error response is the natural error value of a request step.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{Map, Value};

use super::response::{Body, error};

pub async fn read_json_object(
    request: Request<Incoming>,
    max_bytes: usize,
    timeout: Duration,
) -> Result<Map<String, Value>, Response<Body>> {
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            &format!("Request body exceeds the {max_bytes} byte limit"),
        )
    };
    let declared = request
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max_bytes as u64) {
        return Err(too_large());
    }
    let collected =
        tokio::time::timeout(timeout, Limited::new(request.into_body(), max_bytes).collect()).await;
    let bytes = match collected {
        Err(_) => {
            return Err(error(
                StatusCode::REQUEST_TIMEOUT,
                "REQUEST_TIMEOUT",
                &format!("Request body was not received within {}ms", timeout.as_millis()),
            ));
        }
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            return Err(too_large());
        }
        Ok(Err(_)) => {
            return Err(error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "Request body could not be read"));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "Request body must be a JSON object")),
        Err(_) => Err(error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "Malformed JSON body")),
    }
}
