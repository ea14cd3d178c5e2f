//! `BindingCluster`: a broker's membership of the shared state in Redis (the `redis`
//! option). It shares the manager's sessions from the start; connecting and leaving run on
//! the service runtime, and the facade hears how they went through the host channel
//! (`cluster ready` after each attempt until one succeeds, `cluster closed`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use enclave_broker_core::cluster::redis::inbox::run_here;
use enclave_broker_core::cluster::redis::{ClusterSettings, RedisCluster, RedisEndpoint, RedisTls};
use enclave_broker_core::cluster::{Command, CommandReply, SessionRef, SharedState};
use enclave_broker_core::protocol::json::JsonObject;
use enclave_broker_core::protocol::{ErrorInfo, EventType};
use enclave_broker_core::runtime;
use enclave_broker_core::tools::ToolReply;
use napi::bindgen_prelude::Either;
use napi_derive::napi;
use serde_json::Value;

use crate::error::BindingError;
use crate::host::{self, HostMessage};
use crate::manager::BindingSessionManager;

/// Where Redis is (a URL, or a client's options read by the facade) and how to use it.
#[napi(object)]
pub struct BindingRedisConfig {
    pub url: Option<String>,
    pub host: Option<String>,
    pub port: Option<u32>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: Option<f64>,
    pub tls: Option<bool>,
    pub tls_insecure: Option<bool>,
    pub tls_ca: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub key_prefix: Option<String>,
    pub lease_ms: Option<f64>,
    pub buffer_bytes: Option<f64>,
    pub command_timeout_ms: Option<f64>,
}

impl BindingRedisConfig {
    fn endpoint(&self) -> RedisEndpoint {
        let tls = (self.tls == Some(true)).then(|| RedisTls {
            insecure: self.tls_insecure.unwrap_or(false),
            ca_pem: self.tls_ca.clone(),
            cert_pem: self.tls_cert.clone(),
            key_pem: self.tls_key.clone(),
        });
        RedisEndpoint {
            url: self.url.clone(),
            host: self.host.clone(),
            port: self.port.and_then(|p| u16::try_from(p).ok()),
            username: self.username.clone(),
            password: self.password.clone(),
            db: self.db.map(|d| d as i64),
            tls,
        }
    }

    fn settings(&self) -> ClusterSettings {
        let defaults = ClusterSettings::default();
        let millis = |v: Option<f64>, default: Duration| {
            v.filter(|v| v.is_finite() && *v > 0.0).map_or(default, |v| Duration::from_millis(v as u64))
        };
        ClusterSettings {
            key_prefix: self.key_prefix.clone().unwrap_or(defaults.key_prefix),
            lease: millis(self.lease_ms, defaults.lease),
            buffer_bytes: self
                .buffer_bytes
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map_or(defaults.buffer_bytes, |v| v as usize),
            command_timeout: millis(self.command_timeout_ms, defaults.command_timeout),
        }
    }
}

#[napi]
pub struct BindingCluster {
    key: u64,
    cluster: std::sync::Mutex<Option<Arc<RedisCluster>>>,
}

impl BindingCluster {
    pub(crate) fn core(&self) -> Option<Arc<RedisCluster>> {
        self.cluster.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[napi]
impl BindingCluster {
    /// Shares `manager`'s sessions through Redis from now on and starts connecting. Bad
    /// settings throw here; unreachable Redis is reported as `cluster ready` with its error.
    #[napi]
    pub fn start(
        manager: &BindingSessionManager,
        config: BindingRedisConfig,
    ) -> Either<BindingCluster, BindingError> {
        let key = next_key();
        let attempts = Box::new(move |outcome: Result<(), String>| {
            host::send(HostMessage::ClusterReady { key, error: outcome.err().unwrap_or_default() });
        });
        match RedisCluster::start(config.endpoint(), config.settings(), manager.core(), attempts) {
            Ok(cluster) => Either::A(BindingCluster { key, cluster: std::sync::Mutex::new(Some(cluster)) }),
            Err(message) => Either::B(BindingError::type_error("INVALID_REDIS_OPTIONS", message)),
        }
    }

    #[napi(getter)]
    pub fn key(&self) -> f64 {
        self.key as f64
    }

    /// This broker's id among the brokers sharing the state.
    #[napi(getter)]
    pub fn broker_id(&self) -> Option<String> {
        self.core().map(|c| c.broker_id().to_string())
    }

    /// Leaves: waits up to `timeout_ms` for buffered events to be stored, then drops the
    /// lease. The facade hears `cluster closed`.
    #[napi]
    pub fn close(&self, timeout_ms: f64) {
        let cluster = self.cluster.lock().unwrap_or_else(|p| p.into_inner()).take();
        let key = self.key;
        runtime::service().spawn(async move {
            if let Some(cluster) = cluster {
                cluster.close(Duration::from_millis(timeout_ms.max(0.0) as u64)).await;
            }
            host::send(HostMessage::ClusterClosed(key));
        });
    }
}

/// The session as the facade's `SessionHandler` reads it from the shared state.
fn session_json(session: &SessionRef) -> String {
    JsonObject::new()
        .field("sessionId", session.id())
        .field("state", session.state().as_str())
        .num("createdAt", session.created_at())
        .num("expiresAt", session.expires_at())
        .field("toolCallCount", &session.tool_call_count())
        .raw("owner", &session.owner_json())
        .field("local", &matches!(session, SessionRef::Local(_)))
        .finish()
}

/// `{op: 'cancel' | 'delete' | 'toolResult', reason?, callId?, result?, error?: {code?, message}}`
fn command_of(request: &Value) -> Result<Command, String> {
    let text = |key: &str| request.get(key).and_then(Value::as_str).map(str::to_string);
    Ok(match request.get("op").and_then(Value::as_str) {
        Some("cancel") => Command::Cancel { reason: text("reason") },
        Some("delete") => Command::Delete,
        Some("toolResult") => Command::ToolResult {
            call_id: text("callId").ok_or("a tool result needs a callId")?,
            reply: match request.get("error") {
                Some(Value::Object(error)) => ToolReply::Err(ErrorInfo::new(
                    error.get("code").and_then(Value::as_str).unwrap_or("TOOL_ERROR"),
                    error.get("message").and_then(Value::as_str).unwrap_or_default(),
                )),
                _ => ToolReply::Ok(request.get("result").map(Value::to_string)),
            },
        },
        _ => return Err("unknown command".into()),
    })
}

fn reply_json(reply: CommandReply) -> String {
    let (status, message) = match reply {
        CommandReply::Done => ("done", String::new()),
        CommandReply::InvalidState(message) => ("invalid", message),
        CommandReply::NotFound => ("notFound", String::new()),
        CommandReply::Unavailable(message) => ("unavailable", message),
    };
    JsonObject::new().field("status", status).field("message", &message).finish()
}

async fn answer(cluster: Arc<RedisCluster>, op: &str, argument: String) -> Result<String, String> {
    match op {
        "find" => Ok(cluster.find(&argument).await.map_or_else(|| "null".to_string(), |s| session_json(&s))),
        "list" => {
            let owner = (!argument.is_empty()).then_some(argument.as_str());
            let sessions = cluster.listed(owner).await;
            Ok(format!("[{}]", sessions.iter().map(session_json).collect::<Vec<_>>().join(",")))
        }
        "command" => {
            let request: Value = serde_json::from_str(&argument).map_err(|e| e.to_string())?;
            let id = request.get("sessionId").and_then(Value::as_str).ok_or("a command needs a sessionId")?;
            let command = command_of(&request)?;
            let reply = match cluster.find(id).await {
                None => CommandReply::NotFound,
                Some(SessionRef::Local(_)) => run_here(cluster.manager(), id, command),
                Some(SessionRef::Shared(record)) => cluster.command(&record, command).await,
            };
            Ok(reply_json(reply))
        }
        other => Err(format!("unknown request {other}")),
    }
}

fn next_key() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

#[napi]
impl BindingCluster {
    /// Asks the shared state (`find` an id, `list` an owner key's sessions or all, run a
    /// `command`); the answer comes as `cluster answer` with the returned key.
    #[napi]
    pub fn request(&self, op: String, argument: String) -> f64 {
        let key = next_key();
        let cluster = self.core();
        runtime::service().spawn(async move {
            let outcome = match cluster {
                None => Err("The broker has left the shared state".to_string()),
                Some(cluster) => answer(cluster, &op, argument).await,
            };
            let (ok, text) = match outcome {
                Ok(text) => (true, text),
                Err(text) => (false, text),
            };
            host::send(HostMessage::ClusterAnswer { key, ok, text });
        });
        key as f64
    }

    /// Streams the shared log of session `id` after `after_seq` as `cluster events` (NDJSON
    /// lines; `done` at its `final`, or when the session is gone) until `unfollow`.
    #[napi]
    pub fn follow(&self, id: String, after_seq: f64) -> f64 {
        let key = next_key();
        let Some(cluster) = self.core() else {
            host::send(HostMessage::ClusterEvents { key, lines: String::new(), done: true });
            return key as f64;
        };
        let task = runtime::service().spawn(async move {
            let record = match cluster.find(&id).await {
                Some(SessionRef::Shared(record)) => record,
                _ => {
                    host::send(HostMessage::ClusterEvents { key, lines: String::new(), done: true });
                    return;
                }
            };
            let mut feed = cluster.feed(record);
            let mut after = after_seq.max(0.0) as u64;
            loop {
                let page = feed.next(after, 64).await;
                let done = page.last().is_none_or(|e| e.kind() == EventType::Final);
                after = page.last().map_or(after, |e| e.seq());
                let lines = page.iter().map(|e| e.json()).collect::<Vec<_>>().join("\n");
                host::send(HostMessage::ClusterEvents { key, lines, done });
                if done {
                    break;
                }
            }
            followers().lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        });
        followers().lock().unwrap_or_else(|p| p.into_inner()).insert(key, task.abort_handle());
        key as f64
    }

    /// Stops following (the client went away).
    #[napi]
    pub fn unfollow(&self, key: f64) {
        if let Some(task) = followers().lock().unwrap_or_else(|p| p.into_inner()).remove(&(key as u64)) {
            task.abort();
        }
    }
}

fn followers() -> &'static std::sync::Mutex<HashMap<u64, tokio::task::AbortHandle>> {
    static FOLLOWERS: OnceLock<std::sync::Mutex<HashMap<u64, tokio::task::AbortHandle>>> = OnceLock::new();
    FOLLOWERS.get_or_init(Default::default)
}
