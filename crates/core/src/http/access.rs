//! Tenancy: a session is reachable over HTTP by its owner, and by another principal only
//! when the operator's `authorize(principal, action, session)` says so. Anyone else gets
//! the `404` of a session that does not exist, so ids cannot be probed. With shared state
//! the owner is read from the shared registry, so the rules hold on every broker.

// A finished error response is the natural error value of a request step.
#![allow(clippy::result_large_err)]

use hyper::Response;

use super::callbacks::{Action, RequestInfo};
use super::response::{Body, refused};
use super::rules::HttpError;
use super::state::ServerState;
use crate::cluster::SessionRef;
use crate::session::Principal;

pub(super) fn not_found(id: &str) -> Response<Body> {
    refused(&HttpError::not_found(id))
}

/// Which of `foreign` (sessions `principal` does not own) the operator lets it reach. No
/// hook, a hook that fails, times out or answers the wrong shape: none.
async fn granted(
    state: &ServerState,
    principal: &Principal,
    info: &RequestInfo,
    action: Action,
    foreign: &[SessionRef],
) -> Vec<bool> {
    let denied = || vec![false; foreign.len()];
    let Some(authorizer) = state.config.authorizer.as_ref().filter(|_| !foreign.is_empty()) else {
        return denied();
    };
    let sessions = foreign.iter().map(SessionRef::authorize_json).collect();
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
) -> Result<SessionRef, Response<Body>> {
    let Some(session) = state.shared.find(id).await else { return Err(not_found(id)) };
    if session.is_owned_by(principal) {
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
) -> Vec<SessionRef> {
    if state.config.authorizer.is_none() {
        return state.shared.list(Some(principal)).await;
    }
    let all = state.shared.list(None).await;
    let foreign: Vec<SessionRef> = all.iter().filter(|s| !s.is_owned_by(principal)).cloned().collect();
    let answers = granted(state, principal, info, Action::List, &foreign).await;
    let allowed: std::collections::HashSet<&str> =
        foreign.iter().zip(answers).filter(|(_, ok)| *ok).map(|(s, _)| s.id()).collect();
    all.iter().filter(|s| s.is_owned_by(principal) || allowed.contains(s.id())).cloned().collect()
}
