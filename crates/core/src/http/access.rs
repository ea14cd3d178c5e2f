//! Tenancy: a session is reachable over HTTP by its owner, and by another principal only
//! when the operator's `authorize(principal, action, session)` says so. Anyone else gets
//! the `404` of a session that does not exist, so ids cannot be probed.

// A finished error response is the natural error value of a request step.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use hyper::{Response, StatusCode};

use super::callbacks::{Action, RequestInfo};
use super::response::{Body, error};
use super::server::ServerState;
use crate::protocol::json::JsonObject;
use crate::session::{Principal, Session};

pub(super) fn not_found(id: &str) -> Response<Body> {
    error(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("Session {id} not found"))
}

/// The session as `authorize` sees it: `{sessionId, state, createdAt, expiresAt, owner}`.
fn session_json(session: &Session) -> String {
    JsonObject::new()
        .field("sessionId", session.id())
        .field("state", session.state().as_str())
        .num("createdAt", session.created_at())
        .num("expiresAt", session.expires_at())
        .raw("owner", &session.owner().to_json())
        .finish()
}

/// Which of `foreign` (sessions `principal` does not own) the operator lets it reach. No
/// hook, a hook that fails, times out or answers the wrong shape: none.
async fn granted(
    state: &ServerState,
    principal: &Principal,
    info: &RequestInfo,
    action: Action,
    foreign: &[Arc<Session>],
) -> Vec<bool> {
    let denied = || vec![false; foreign.len()];
    let Some(authorizer) = state.config.authorizer.as_ref().filter(|_| !foreign.is_empty()) else {
        return denied();
    };
    let sessions = foreign.iter().map(|s| session_json(s)).collect();
    let asked = authorizer.authorize(principal, action, sessions, info);
    match tokio::time::timeout(state.config.callback_timeout, asked).await {
        Ok(Ok(answers)) if answers.len() == foreign.len() => answers,
        _ => denied(),
    }
}

/// The session `id` if `principal` may do `action` to it, else the `404` of a missing one.
pub(super) async fn session_for(
    state: &ServerState,
    principal: &Principal,
    info: &RequestInfo,
    id: &str,
    action: Action,
) -> Result<Arc<Session>, Response<Body>> {
    let Some(session) = state.manager.get(id) else { return Err(not_found(id)) };
    if session.owner() == principal {
        return Ok(session);
    }
    let foreign = [session];
    match granted(state, principal, info, action, &foreign).await.first() {
        Some(true) => {
            let [session] = foreign;
            Ok(session)
        }
        _ => Err(not_found(id)),
    }
}

/// The sessions `GET /sessions` shows `principal`: its own, and those `authorize` grants for
/// `list`, in the registry's order.
pub(super) async fn listed_sessions(
    state: &ServerState,
    principal: &Principal,
    info: &RequestInfo,
) -> Vec<Arc<Session>> {
    let all = state.manager.sessions();
    if state.config.authorizer.is_none() {
        return all.into_iter().filter(|s| s.owner() == principal).collect();
    }
    let foreign: Vec<Arc<Session>> = all.iter().filter(|s| s.owner() != principal).cloned().collect();
    let answers = granted(state, principal, info, Action::List, &foreign).await;
    let allowed: std::collections::HashSet<u64> =
        foreign.iter().zip(answers).filter(|(_, ok)| *ok).map(|(s, _)| s.key()).collect();
    all.into_iter().filter(|s| s.owner() == principal || allowed.contains(&s.key())).collect()
}
