//! `BindingCluster`: a broker's membership of the shared state in Redis (the `redis`
//! option). Connecting and leaving run on the service runtime; the facade hears the outcome
//! through the host channel (`cluster ready`, `cluster closed`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use enclave_broker_core::cluster::redis::{ClusterSettings, RedisCluster, RedisEndpoint, RedisTls};
use enclave_broker_core::runtime;
use napi::Status;
use napi_derive::napi;

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
    cluster: Arc<Mutex<Option<Arc<RedisCluster>>>>,
}

impl BindingCluster {
    pub(crate) fn core(&self) -> Option<Arc<RedisCluster>> {
        self.cluster.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[napi]
impl BindingCluster {
    /// Starts connecting `manager`'s sessions to Redis; the facade hears `cluster ready`
    /// (with an error message if Redis could not be reached).
    #[napi(factory)]
    pub fn connect(
        manager: &BindingSessionManager,
        config: BindingRedisConfig,
    ) -> napi::Result<BindingCluster> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let key = NEXT.fetch_add(1, Ordering::Relaxed);
        let (endpoint, settings, manager) = (config.endpoint(), config.settings(), manager.core());
        // Invalid addresses fail here, synchronously.
        endpoint.client().map_err(|e| napi::Error::new(Status::InvalidArg, e))?;
        let slot = Arc::new(Mutex::new(None));
        let filled = slot.clone();
        runtime::service().spawn(async move {
            let error = match RedisCluster::connect(endpoint, settings, manager).await {
                Ok(cluster) => {
                    *filled.lock().unwrap_or_else(|p| p.into_inner()) = Some(cluster);
                    String::new()
                }
                Err(error) => error,
            };
            host::send(HostMessage::ClusterReady { key, error });
        });
        Ok(BindingCluster { key, cluster: slot })
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
