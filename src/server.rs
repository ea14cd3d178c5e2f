//! `BindingHttpServer`: the core's HTTP server, with authentication and rate-limit keys
//! answered by the facade's JavaScript callbacks.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use enclave_broker_core::http::{
    AuthConfig, AuthKind, AuthResult, AuthValidator, BoxFuture, Cors, HttpConfig, HttpServer, KeyGenerator,
    RateLimitConfig, RequestInfo, SessionCreated, SessionTemplate, StaticFiles,
};
use enclave_broker_core::protocol::PartialLimits;
use enclave_broker_core::runtime;
use enclave_broker_core::session::Session;
use napi::Status;
use napi_derive::napi;

use crate::config::{BindingLimits, BindingSessionConfig, external_tools};
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
    pub rate_limit_window_ms: Option<f64>,
    pub rate_limit_max_requests: Option<f64>,
    /// Whether the facade answers `keyGenerator` callbacks.
    pub rate_limit_key_generator: Option<bool>,
    /// The broker's session defaults (its `limits` only when it gave some).
    pub defaults: BindingSessionConfig,
    pub has_limits: bool,
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

fn millis(value: Option<f64>, default_ms: u64) -> Duration {
    match value {
        Some(v) if v.is_finite() && v > 0.0 => Duration::from_millis(v as u64),
        _ => Duration::from_millis(default_ms),
    }
}

fn partial(limits: &BindingLimits) -> PartialLimits {
    PartialLimits {
        session_ttl_ms: limits.session_ttl_ms,
        max_tool_calls: limits.max_tool_calls,
        max_stdout_bytes: limits.max_stdout_bytes,
        max_tool_result_bytes: limits.max_tool_result_bytes,
        tool_timeout_ms: limits.tool_timeout_ms,
        heartbeat_interval_ms: limits.heartbeat_interval_ms,
        deadline_ms: limits.deadline_ms,
        per_tool_deadline_ms: limits.per_tool_deadline_ms,
        cancel_on_first_error: limits.cancel_on_first_error,
        timeout: limits.timeout,
        memory_limit: limits.memory_limit,
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
    /// Binds and starts serving; bind errors (e.g. EADDRINUSE) are thrown here.
    #[napi(factory)]
    pub fn listen(
        manager: &BindingSessionManager,
        config: BindingHttpConfig,
    ) -> napi::Result<BindingHttpServer> {
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
                        return Err(napi::Error::new(
                            Status::InvalidArg,
                            format!(
                                "authentication.type must be 'bearer', 'api-key' or 'custom', got {other:?}"
                            ),
                        ));
                    }
                },
                validator: Arc::new(JsValidator(key)),
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
                    napi::Error::new(
                        Status::InvalidArg,
                        format!("static files in {dir} cannot be served: {e}"),
                    )
                })?)
            }
            _ => None,
        };
        // The template keeps the broker's limits as given, to merge per route; the session
        // defaults still see them, for the sandbox's `limits.memoryLimit`.
        let template_limits =
            if config.has_limits { config.defaults.limits.as_ref().map(partial) } else { None };
        let session = config.defaults.into_core()?;
        let defaults = HttpConfig::default();
        let core_config = HttpConfig {
            host: config.host.unwrap_or(defaults.host),
            port: u16::try_from(config.port)
                .map_err(|_| napi::Error::new(Status::InvalidArg, format!("Invalid port {}", config.port)))?,
            max_body_bytes: config.max_body_bytes.map_or(defaults.max_body_bytes, |b| b.max(0.0) as usize),
            body_timeout: millis(config.body_timeout_ms, defaults.body_timeout.as_millis() as u64),
            callback_timeout: millis(
                config.callback_timeout_ms,
                defaults.callback_timeout.as_millis() as u64,
            ),
            cors: Cors {
                enabled: config.cors.unwrap_or(true),
                allowed_origins: config.allowed_origins.unwrap_or_else(|| vec!["*".into()]),
            },
            cancel_on_disconnect: config.cancel_on_disconnect.unwrap_or(false),
            auth,
            rate_limit,
            template: SessionTemplate { limits: template_limits, sandbox: session.sandbox, external_tools },
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
        };
        let server = HttpServer::start(core_config, manager.core())
            .map_err(|e| napi::Error::new(Status::GenericFailure, format!("listen failed: {e}")))?;
        let port = u32::from(server.local_addr().port());
        Ok(BindingHttpServer { key, port, server: Mutex::new(Some(server)), session_events })
    }

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
