//! Extracted mode: `BindingRuntimeWorker` (the `enclave-runtime` service, served from Rust)
//! and `BindingRuntimeClient` (a broker's connections to its workers).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use enclave_broker_core::protocol::json::JsonObject;
use enclave_broker_core::remote::{ClientConfig, RuntimeClient, RuntimeWorker, WorkerConfig};
use enclave_broker_core::runtime;
use napi::bindgen_prelude::Either;
use napi_derive::napi;

use crate::config::BindingLimits;
use crate::config::partial;
use crate::error::BindingError;
use crate::host::{self, HostMessage};
use crate::manager::BindingSessionManager;

fn millis(value: Option<f64>, default: Duration) -> Duration {
    match value {
        Some(v) if v.is_finite() && v >= 0.0 => Duration::from_millis(v as u64),
        _ => default,
    }
}

fn count(value: Option<f64>, default: usize) -> usize {
    match value {
        Some(v) if v.is_finite() && v >= 0.0 => v as usize,
        Some(v) if v == f64::INFINITY => usize::MAX,
        _ => default,
    }
}

#[napi(object)]
pub struct BindingWorkerConfig {
    pub host: Option<String>,
    pub port: u32,
    pub ws_path: Option<String>,
    pub max_sessions: Option<f64>,
    pub default_limits: Option<BindingLimits>,
    pub heartbeat_interval_ms: Option<f64>,
    pub connection_timeout_ms: Option<f64>,
    /// Accepted tokens; none = no authentication.
    pub tokens: Option<Vec<String>>,
    pub max_message_bytes: Option<f64>,
}

#[napi(object)]
pub struct BindingWorkerStats {
    pub active_sessions: u32,
    pub total_sessions: f64,
    pub connections: u32,
    pub uptime_ms: f64,
}

#[napi]
pub struct BindingRuntimeWorker {
    key: u64,
    port: u32,
    worker: Mutex<Option<RuntimeWorker>>,
}

#[napi]
impl BindingRuntimeWorker {
    /// Binds and starts serving, or why it cannot (a bad port, a bind error such as
    /// EADDRINUSE).
    #[napi]
    pub fn start(config: BindingWorkerConfig) -> Either<BindingRuntimeWorker, BindingError> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let defaults = WorkerConfig::default();
        let Ok(port) = u16::try_from(config.port) else {
            return Either::B(BindingError::type_error(
                "INVALID_PORT",
                format!("Invalid port {}", config.port),
            ));
        };
        let core = WorkerConfig {
            host: config.host.unwrap_or(defaults.host),
            port,
            ws_path: config.ws_path.unwrap_or(defaults.ws_path),
            max_sessions: count(config.max_sessions, defaults.max_sessions),
            default_limits: config.default_limits.map(partial).unwrap_or_default(),
            heartbeat: millis(config.heartbeat_interval_ms, defaults.heartbeat),
            connection_timeout: millis(config.connection_timeout_ms, defaults.connection_timeout),
            tokens: config.tokens.unwrap_or_default(),
            max_message_bytes: count(config.max_message_bytes, defaults.max_message_bytes),
        };
        let worker = {
            let _entered = runtime::service().enter();
            RuntimeWorker::start(core)
        };
        let worker = match worker {
            Ok(worker) => worker,
            Err(e) => return Either::B(BindingError::listen_failed(&e)),
        };
        let port = u32::from(worker.local_addr().port());
        Either::A(BindingRuntimeWorker {
            key: NEXT.fetch_add(1, Ordering::Relaxed),
            port,
            worker: Mutex::new(Some(worker)),
        })
    }

    #[napi(getter)]
    pub fn key(&self) -> f64 {
        self.key as f64
    }

    #[napi(getter)]
    pub fn port(&self) -> u32 {
        self.port
    }

    #[napi]
    pub fn stats(&self) -> BindingWorkerStats {
        let worker = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        let stats = worker.as_ref().map(|w| w.stats()).unwrap_or(enclave_broker_core::remote::WorkerStats {
            active_sessions: 0,
            total_sessions: 0,
            connections: 0,
            uptime_ms: 0,
        });
        BindingWorkerStats {
            active_sessions: stats.active_sessions as u32,
            total_sessions: stats.total_sessions as f64,
            connections: stats.connections as u32,
            uptime_ms: stats.uptime_ms as f64,
        }
    }

    /// `[{sessionId, state, createdAt, expiresAt}]` of the sessions running now.
    #[napi]
    pub fn sessions_json(&self) -> String {
        let worker = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        let sessions = worker.as_ref().map(|w| w.sessions()).unwrap_or_default();
        let items: Vec<String> = sessions
            .iter()
            .map(|s| {
                JsonObject::new()
                    .field("sessionId", s.id())
                    .field("state", s.state().as_str())
                    .num("createdAt", s.created_at())
                    .num("expiresAt", s.expires_at())
                    .finish()
            })
            .collect();
        format!("[{}]", items.join(","))
    }

    /// Starts a graceful stop; the facade hears `worker stopped` through the host channel.
    #[napi]
    pub fn stop(&self, grace_ms: f64) {
        let worker = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        let key = self.key;
        match worker {
            None => {
                host::send(HostMessage::WorkerStopped(key));
            }
            Some(worker) => {
                runtime::service().spawn(async move {
                    worker.stop(Duration::from_millis(grace_ms.max(0.0) as u64)).await;
                    host::send(HostMessage::WorkerStopped(key));
                });
            }
        }
    }
}

#[napi(object)]
pub struct BindingClientConfig {
    pub urls: Vec<String>,
    pub token: Option<String>,
    pub connect_timeout_ms: Option<f64>,
    pub heartbeat_interval_ms: Option<f64>,
    pub reconnect_initial_delay_ms: Option<f64>,
    pub reconnect_max_delay_ms: Option<f64>,
    pub max_message_bytes: Option<f64>,
}

#[napi]
pub struct BindingRuntimeClient {
    client: Arc<RuntimeClient>,
}

#[napi]
impl BindingRuntimeClient {
    /// Starts connecting to the workers in the background, or why the URLs cannot be used.
    #[napi]
    pub fn connect(config: BindingClientConfig) -> Either<BindingRuntimeClient, BindingError> {
        let defaults = ClientConfig::default();
        let core = ClientConfig {
            urls: config.urls,
            token: config.token,
            connect_timeout: millis(config.connect_timeout_ms, defaults.connect_timeout),
            heartbeat: millis(config.heartbeat_interval_ms, defaults.heartbeat),
            reconnect_initial: millis(config.reconnect_initial_delay_ms, defaults.reconnect_initial),
            reconnect_max: millis(config.reconnect_max_delay_ms, defaults.reconnect_max),
            max_message_bytes: count(config.max_message_bytes, defaults.max_message_bytes),
        };
        match RuntimeClient::connect(core) {
            Ok(client) => Either::A(BindingRuntimeClient { client: Arc::new(client) }),
            Err(message) => Either::B(BindingError::type_error("INVALID_RUNTIME_URL", message)),
        }
    }

    /// Why a URL cannot be used (not `ws://`, no host, ...), or nothing when all can.
    #[napi]
    pub fn check_urls(urls: Vec<String>) -> Option<BindingError> {
        urls.iter().find_map(|url| {
            enclave_broker_core::remote::normalize_url(url)
                .err()
                .map(|message| BindingError::type_error("INVALID_RUNTIME_URL", message))
        })
    }

    /// `[{url, state, activeSessions, maxSessions, draining, totalSessions, lastError?}]`.
    #[napi]
    pub fn status_json(&self) -> String {
        let items: Vec<String> = self
            .client
            .status()
            .iter()
            .map(|e| {
                JsonObject::new()
                    .field("url", &e.url)
                    .field("state", e.state.as_str())
                    .field("activeSessions", &e.active_sessions)
                    .field("maxSessions", &e.max_sessions)
                    .field("draining", &e.draining)
                    .field("totalSessions", &e.total_sessions)
                    .opt_field("lastError", e.last_error.as_ref())
                    .finish()
            })
            .collect();
        format!("[{}]", items.join(","))
    }

    /// Runs the manager's sessions created from now on on these workers.
    #[napi]
    pub fn attach(&self, manager: &BindingSessionManager) {
        manager.core().set_executor(self.client.clone());
    }

    #[napi]
    pub fn close(&self) {
        self.client.close();
    }
}
