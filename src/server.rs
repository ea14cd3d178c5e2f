//! `BindingHttpServer`: the core's HTTP server, with authentication, rate-limit keys and
//! access to other principals' sessions answered by the facade's JavaScript callbacks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use enclave_broker_core::cluster::SharedState;
use enclave_broker_core::http::auth::{DEFAULT_FAILURE_WINDOW, DEFAULT_MAX_FAILURES};
use enclave_broker_core::http::{
    Action, AuthConfig, AuthKind, AuthResult, AuthValidator, Authorizer, BoxFuture, Cors, HttpConfig,
    HttpServer, KeyGenerator, RateLimitConfig, RequestInfo, SessionCreated, SessionTemplate, StaticFiles,
};
use enclave_broker_core::runtime;
use enclave_broker_core::session::{Principal, Session};
use napi::bindgen_prelude::Either;
use napi_derive::napi;

use crate::cluster::BindingCluster;
use crate::config::{BindingSessionConfig, external_tools};
use crate::error::BindingError;
use crate::host::{self, HostMessage};
use crate::manager::BindingSessionManager;

#[napi(object)]
pub struct BindingHttpConfig {
    pub host: Option<String>,
    pub port: u32,
    pub max_body_bytes: Option<f64>,
    pub body_timeout_ms: Option<f64>,
    pub callback_timeout_ms: Option<f64>,
    pub cors: Option<bool>,
    pub allowed_origins: Option<Vec<String>>,
    pub cancel_on_disconnect: Option<bool>,
    /// Tell the facade of each session a route creates (`session created`), from the start.
    pub session_events: Option<bool>,
    /// `'bearer' | 'api-key' | 'custom'`; the facade answers `validate` callbacks.
    pub auth: Option<String>,
    /// Failed authentications per client address and window before `429 AUTH_THROTTLED`.
    pub auth_max_failures: Option<f64>,
    pub auth_failure_window_ms: Option<f64>,
    /// Whether the facade answers `authorize` callbacks (access to others' sessions).
    pub authorize: Option<bool>,
    pub rate_limit_window_ms: Option<f64>,
    pub rate_limit_max_requests: Option<f64>,
    /// Whether the facade answers `keyGenerator` callbacks.
    pub rate_limit_key_generator: Option<bool>,
    /// The broker's session defaults: the operator's bounds on what requests may ask.
    pub defaults: BindingSessionConfig,
    /// Tools the client runs itself (`POST /sessions/:id/tool-result`); `["*"]` for all.
    pub external_tools: Option<Vec<String>>,
    /// A folder of static files to serve at `static_files_mount` (the playground page).
    pub static_files_dir: Option<String>,
    pub static_files_mount: Option<String>,
}

struct JsValidator(u64);

impl AuthValidator for JsValidator {
    fn validate(&self, token: String, request: &RequestInfo) -> BoxFuture<Result<AuthResult, String>> {
        let (server, request) = (self.0, request.to_json());
        Box::pin(async move {
            let answer = host::call_js(server, "validate", token, request).await?;
            let value: serde_json::Value = serde_json::from_str(&answer).map_err(|e| e.to_string())?;
            let text = |key: &str| value[key].as_str().map(str::to_string);
            Ok(AuthResult {
                valid: value["valid"] == true,
                user_id: text("userId"),
                tenant_id: text("tenantId"),
            })
        })
    }
}

struct JsKeyGenerator(u64);

impl KeyGenerator for JsKeyGenerator {
    fn key(&self, request: &RequestInfo) -> BoxFuture<Result<String, String>> {
        let (server, request) = (self.0, request.to_json());
        Box::pin(async move { host::call_js(server, "keyGenerator", String::new(), request).await })
    }
}

struct JsAuthorizer(u64);

impl Authorizer for JsAuthorizer {
    fn authorize(
        &self,
        principal: &Principal,
        action: Action,
        sessions: Vec<String>,
        request: &RequestInfo,
    ) -> BoxFuture<Result<Vec<bool>, String>> {
        let argument = format!(
            "{{\"principal\":{},\"action\":\"{}\",\"sessions\":[{}]}}",
            principal.to_json(),
            action.as_str(),
            sessions.join(",")
        );
        let (server, request) = (self.0, request.to_json());
        Box::pin(async move {
            let answer = host::call_js(server, "authorize", argument, request).await?;
            serde_json::from_str::<Vec<bool>>(&answer).map_err(|e| e.to_string())
        })
    }
}

fn millis(value: Option<f64>, default_ms: u64) -> Duration {
    match value {
        Some(v) if v.is_finite() && v > 0.0 => Duration::from_millis(v as u64),
        _ => Duration::from_millis(default_ms),
    }
}

#[napi]
pub struct BindingHttpServer {
    key: u64,
    port: u32,
    server: Mutex<Option<HttpServer>>,
    /// Whether the facade wants `session created` (it has session listeners). Checked per
    /// session, so a server without listeners pays nothing for the feature.
    session_events: Arc<AtomicBool>,
}

#[napi]
impl BindingHttpServer {
    /// Binds and starts serving, or why it cannot: bad settings (a `TypeError`) or a bind
    /// error such as EADDRINUSE.
    #[napi]
    pub fn listen(
        manager: &BindingSessionManager,
        config: BindingHttpConfig,
        cluster: Option<&BindingCluster>,
    ) -> Either<BindingHttpServer, BindingError> {
        match Self::start(manager, config, cluster) {
            Ok(server) => Either::A(server),
            Err(e) => Either::B(e),
        }
    }
}

impl BindingHttpServer {
    fn start(
        manager: &BindingSessionManager,
        config: BindingHttpConfig,
        cluster: Option<&BindingCluster>,
    ) -> Result<BindingHttpServer, BindingError> {
        let cluster = match cluster {
            None => None,
            Some(cluster) => Some(cluster.core().ok_or_else(|| {
                BindingError::error("NOT_CONNECTED", "The broker is not connected to Redis")
            })?),
        };
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let key = NEXT.fetch_add(1, Ordering::Relaxed);
        let session_events = Arc::new(AtomicBool::new(config.session_events.unwrap_or(false)));
        let auth = match config.auth.as_deref() {
            None => None,
            Some(kind) => Some(AuthConfig {
                kind: match kind {
                    "bearer" => AuthKind::Bearer,
                    "api-key" => AuthKind::ApiKey,
                    "custom" => AuthKind::Custom,
                    other => {
                        return Err(BindingError::type_error(
                            "INVALID_AUTH_TYPE",
                            format!(
                                "authentication.type must be 'bearer', 'api-key' or 'custom', got {other:?}"
                            ),
                        ));
                    }
                },
                validator: Arc::new(JsValidator(key)),
                max_failures: config
                    .auth_max_failures
                    .filter(|n| n.is_finite() && *n >= 1.0)
                    .map_or(DEFAULT_MAX_FAILURES, |n| n as u64),
                failure_window: millis(
                    config.auth_failure_window_ms,
                    DEFAULT_FAILURE_WINDOW.as_millis() as u64,
                ),
            }),
        };
        let rate_limit = config.rate_limit_max_requests.map(|max| RateLimitConfig {
            window: millis(config.rate_limit_window_ms, 60_000),
            max_requests: max.max(0.0) as u64,
            key_generator: config
                .rate_limit_key_generator
                .unwrap_or(false)
                .then(|| Arc::new(JsKeyGenerator(key)) as Arc<dyn KeyGenerator>),
        });
        let external_tools = external_tools(config.external_tools);
        let static_files = match (&config.static_files_dir, &config.static_files_mount) {
            (Some(dir), Some(mount)) => {
                Some(StaticFiles::load(std::path::Path::new(dir), mount).map_err(|e| {
                    BindingError::type_error(
                        "INVALID_STATIC_FILES",
                        format!("static files in {dir} cannot be served: {e}"),
                    )
                })?)
            }
            _ => None,
        };
        let operator = config.defaults.into_core()?;
        let defaults = HttpConfig::default();
        let core_config = HttpConfig {
            host: config.host.unwrap_or(defaults.host),
            port: u16::try_from(config.port).map_err(|_| {
                BindingError::type_error("INVALID_PORT", format!("Invalid port {}", config.port))
            })?,
            max_body_bytes: config.max_body_bytes.map_or(defaults.max_body_bytes, |b| b.max(0.0) as usize),
            body_timeout: millis(config.body_timeout_ms, defaults.body_timeout.as_millis() as u64),
            callback_timeout: millis(
                config.callback_timeout_ms,
                defaults.callback_timeout.as_millis() as u64,
            ),
            cors: Cors {
                enabled: config.cors.unwrap_or(true),
                allowed_origins: config.allowed_origins.unwrap_or_else(|| vec!["*".into()]),
                credentials: true,
            },
            cancel_on_disconnect: config.cancel_on_disconnect.unwrap_or(false),
            auth,
            authorizer: config
                .authorize
                .unwrap_or(false)
                .then(|| Arc::new(JsAuthorizer(key)) as Arc<dyn Authorizer>),
            rate_limit,
            template: SessionTemplate {
                limits: operator.limits,
                sandbox: operator.sandbox,
                external_tools,
                sidecar: operator.sidecar,
            },
            on_session_created: Some({
                let wanted = session_events.clone();
                Arc::new(move |session: &Arc<Session>| {
                    if wanted.load(Ordering::Acquire) {
                        let session_id = session.id().to_string();
                        host::send(HostMessage::SessionCreated { server_key: key, session_id });
                    }
                }) as SessionCreated
            }),
            static_files,
            credential_salt: cluster.as_ref().and_then(|c| c.credential_salt()),
            shared: cluster.map(|c| c as Arc<dyn SharedState>),
        };
        let server =
            HttpServer::start(core_config, manager.core()).map_err(|e| BindingError::listen_failed(&e))?;
        let port = u32::from(server.local_addr().port());
        Ok(BindingHttpServer { key, port, server: Mutex::new(Some(server)), session_events })
    }
}

#[napi]
impl BindingHttpServer {
    #[napi(getter)]
    pub fn key(&self) -> f64 {
        self.key as f64
    }

    /// Turns `session created` messages on or off (the broker gained or lost session listeners).
    #[napi]
    pub fn set_session_events(&self, enabled: bool) {
        self.session_events.store(enabled, Ordering::Release);
    }

    #[napi(getter)]
    pub fn port(&self) -> u32 {
        self.port
    }

    /// Starts closing; the facade hears `server closed` through the host channel.
    #[napi]
    pub fn close(&self, grace_ms: f64) {
        let server = self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        let key = self.key;
        match server {
            None => {
                host::send(HostMessage::ServerClosed(key));
            }
            Some(server) => {
                runtime::service().spawn(async move {
                    server.close(Duration::from_millis(grace_ms.max(0.0) as u64)).await;
                    host::send(HostMessage::ServerClosed(key));
                });
            }
        }
    }
}
