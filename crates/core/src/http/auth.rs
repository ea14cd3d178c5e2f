//! Authentication of the `listen()` server: the credential from the request's headers, the
//! embedder's `validate()`, and the principal the request acts as. Failed attempts are
//! counted per client address, and past the limit `validate()` is not even called.

// A finished error response is the natural error value of a request step.
#![allow(clippy::result_large_err)]

use std::sync::Arc;
use std::time::Duration;

use hyper::{Response, StatusCode};
use sha2::{Digest, Sha256};

use super::callbacks::{AuthResult, AuthValidator, RequestInfo};
use super::rate_limit::FailureThrottle;
use super::response::{Body, error};
use crate::cluster::SharedState;
use crate::session::Principal;

/// Failed authentications an address may make per window before it is throttled.
pub const DEFAULT_MAX_FAILURES: u64 = 20;
pub const DEFAULT_FAILURE_WINDOW: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthKind {
    /// `Authorization: Bearer <token>`
    Bearer,
    /// `X-API-Key: <key>`
    ApiKey,
    /// The `Authorization` value (without a `Bearer ` prefix), else `X-API-Key`, else "".
    Custom,
}

pub struct AuthConfig {
    pub kind: AuthKind,
    pub validator: Arc<dyn AuthValidator>,
    /// Failed attempts per address and window before `429 AUTH_THROTTLED`.
    pub max_failures: u64,
    pub failure_window: Duration,
}

/// What the server keeps to authenticate: the failure counts and the salt of credential
/// hashes (random per server, so a hash says nothing outside it; with shared state, one
/// salt for every broker, so a credential is the same principal on each).
pub(super) struct Authenticator {
    throttle: FailureThrottle,
    salt: [u8; 32],
}

impl Authenticator {
    pub fn new(config: &AuthConfig, shared_salt: Option<[u8; 32]>) -> Authenticator {
        let salt = shared_salt.unwrap_or_else(|| {
            let mut salt = [0u8; 32];
            salt[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            salt[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
            salt
        });
        Authenticator {
            throttle: FailureThrottle::new(config.failure_window, config.max_failures.max(1)),
            salt,
        }
    }

    fn credential_hash(&self, credential: &str) -> String {
        let digest = Sha256::new().chain_update(self.salt).chain_update(credential.as_bytes()).finalize();
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The principal `validate()` vouched for: its `userId` (with its `tenantId`), else the
    /// credential itself, as a hash.
    fn principal(&self, result: &AuthResult, credential: &str) -> Principal {
        match &result.user_id {
            Some(user_id) if !user_id.is_empty() => {
                Principal::User { user_id: user_id.clone(), tenant_id: result.tenant_id.clone() }
            }
            _ => Principal::Credential(self.credential_hash(credential)),
        }
    }
}

fn unauthorized(message: &str) -> Response<Body> {
    error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
}

/// The credential the configured scheme reads, or why there is none.
fn credential(kind: AuthKind, info: &RequestInfo) -> Result<String, &'static str> {
    let authorization = info.header("authorization");
    let api_key = info.header("x-api-key");
    match kind {
        AuthKind::Bearer => match authorization {
            None => Err("Missing bearer token"),
            Some(value) => match value.split_once(' ') {
                Some((scheme, token))
                    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
                {
                    Ok(token.trim().to_string())
                }
                _ => Err("Authorization header must be 'Bearer <token>'"),
            },
        },
        AuthKind::ApiKey => match api_key {
            Some(key) if !key.is_empty() => Ok(key.to_string()),
            _ => Err("Missing X-API-Key header"),
        },
        AuthKind::Custom => Ok(match (authorization, api_key) {
            (Some(value), _) => match value.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim().to_string(),
                _ => value.to_string(),
            },
            (None, Some(key)) => key.to_string(),
            (None, None) => String::new(),
        }),
    }
}

/// The caller's principal: `Anonymous` without authentication; otherwise the validated one,
/// or a `401` (counted against the address) or a `429` (the address failed too often).
pub(super) async fn authenticate(
    (auth, authenticator): (&AuthConfig, &Authenticator),
    callback_timeout: Duration,
    shared: &dyn SharedState,
    info: &RequestInfo,
) -> Result<Principal, Response<Body>> {
    if let Some(refusal) = authenticator.throttle.refusal(&info.ip) {
        return Err(refusal);
    }
    let outcome = match credential(auth.kind, info) {
        Err(message) => Err(message),
        Ok(credential) => {
            let validation = auth.validator.validate(credential.clone(), info);
            match tokio::time::timeout(callback_timeout, validation).await {
                Err(_) => Err("Authentication timed out"),
                Ok(Err(_)) => Err("Authentication failed"),
                Ok(Ok(result)) if !result.valid => Err("Invalid credentials"),
                Ok(Ok(result)) => Ok(authenticator.principal(&result, &credential)),
            }
        }
    };
    match outcome {
        Ok(principal) => Ok(principal),
        Err(message) => {
            authenticator.throttle.record_failure(shared, &info.ip).await;
            Err(unauthorized(message))
        }
    }
}
