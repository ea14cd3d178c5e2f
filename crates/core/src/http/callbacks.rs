//! What the server asks of its embedder: credential validation, rate-limit keys and
//! access to other principals' sessions (the user's JavaScript functions, in the addon).

use std::future::Future;
use std::pin::Pin;

use crate::protocol::json::JsonObject;
use crate::session::Principal;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A request as the embedder's callbacks see it.
#[derive(Clone, Debug)]
pub struct RequestInfo {
    pub method: String,
    pub path: String,
    /// Lower-case names; values that are not valid UTF-8 are left out.
    pub headers: Vec<(String, String)>,
    pub ip: String,
    /// The caller, once authenticated (the `keyGenerator` sees it).
    pub principal: Option<Principal>,
}

impl RequestInfo {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn to_json(&self) -> String {
        let mut headers = serde_json::Map::new();
        for (name, value) in &self.headers {
            headers.insert(name.clone(), serde_json::Value::String(value.clone()));
        }
        JsonObject::new()
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &headers)
            .field("ip", &self.ip)
            .opt_raw("principal", self.principal.as_ref().map(Principal::to_json).as_deref())
            .finish()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuthResult {
    pub valid: bool,
    pub user_id: Option<String>,
    pub tenant_id: Option<String>,
}

pub trait AuthValidator: Send + Sync {
    fn validate(&self, token: String, request: &RequestInfo) -> BoxFuture<Result<AuthResult, String>>;
}

pub trait KeyGenerator: Send + Sync {
    fn key(&self, request: &RequestInfo) -> BoxFuture<Result<String, String>>;
}

/// What a caller wants to do with a session it does not own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    List,
    Read,
    Stream,
    Cancel,
    Delete,
    ToolResult,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::List => "list",
            Action::Read => "read",
            Action::Stream => "stream",
            Action::Cancel => "cancel",
            Action::Delete => "delete",
            Action::ToolResult => "tool-result",
        }
    }
}

/// The operator's `authorize(principal, action, session)`: asked only about sessions the
/// principal does not own, all of one request's at once.
pub trait Authorizer: Send + Sync {
    /// For each session (its JSON), whether `principal` may do `action` to it.
    fn authorize(
        &self,
        principal: &Principal,
        action: Action,
        sessions: Vec<String>,
        request: &RequestInfo,
    ) -> BoxFuture<Result<Vec<bool>, String>>;
}
