//! What the server asks of its embedder: credential validation and rate-limit keys
//! (the user's JavaScript functions, in the addon).

use std::future::Future;
use std::pin::Pin;

use crate::protocol::json::JsonObject;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A request as the embedder's callbacks see it.
#[derive(Clone, Debug)]
pub struct RequestInfo {
    pub method: String,
    pub path: String,
    /// Lower-case names; values that are not valid UTF-8 are left out.
    pub headers: Vec<(String, String)>,
    pub ip: String,
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
