//! The broker's own HTTP server (`EnclaveBroker.listen(port)`): hyper on the shared service
//! runtime. `close()` stops accepting at once (freeing the port), lets open streams finish
//! for a grace period, then cancels their sessions so every stream still ends with `final`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use super::auth::{AuthConfig, Authenticator};
use super::callbacks::{Authorizer, KeyGenerator};
use super::rate_limit::RateLimiter;
use super::response::Cors;
use super::routes;
use super::static_files::StaticFiles;
use super::template::SessionTemplate;
use crate::cluster::{InMemory, SharedState};
use crate::runtime;
use crate::session::{Session, SessionManager};

pub struct RateLimitConfig {
    pub window: Duration,
    pub max_requests: u64,
    pub key_generator: Option<Arc<dyn KeyGenerator>>,
}

pub struct HttpConfig {
    pub host: String,
    pub port: u16,
    pub max_body_bytes: usize,
    /// How long a client may take to send its body.
    pub body_timeout: Duration,
    /// How long `validate` / `keyGenerator` may take.
    pub callback_timeout: Duration,
    pub cors: Cors,
    /// Cancel a session when the client of its `POST` stream disconnects.
    pub cancel_on_disconnect: bool,
    pub auth: Option<AuthConfig>,
    /// Lets a principal reach sessions it does not own (see `access`).
    pub authorizer: Option<Arc<dyn Authorizer>>,
    pub rate_limit: Option<RateLimitConfig>,
    pub template: SessionTemplate,
    /// Told of every session a route creates, before it runs (the seed's broker events).
    pub on_session_created: Option<SessionCreated>,
    /// Files served beside the API (the playground page), see `static_files.rs`.
    pub static_files: Option<StaticFiles>,
    /// State shared with other brokers (the `redis` option); this process's own without it.
    pub shared: Option<Arc<dyn SharedState>>,
    /// The salt of credential principals, when brokers must agree on it (shared state);
    /// random per server otherwise.
    pub credential_salt: Option<[u8; 32]>,
}

pub type SessionCreated = Arc<dyn Fn(&Arc<Session>) + Send + Sync>;

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            host: "0.0.0.0".into(),
            port: 0,
            max_body_bytes: 1 << 20,
            body_timeout: Duration::from_secs(10),
            callback_timeout: Duration::from_secs(10),
            cors: Cors { enabled: true, allowed_origins: vec!["*".into()] },
            cancel_on_disconnect: false,
            auth: None,
            authorizer: None,
            rate_limit: None,
            template: SessionTemplate::default(),
            on_session_created: None,
            static_files: None,
            shared: None,
            credential_salt: None,
        }
    }
}

pub(super) struct ServerState {
    pub config: HttpConfig,
    pub manager: Arc<SessionManager>,
    /// Sessions, their logs and counters as every broker sharing the state sees them.
    pub shared: Arc<dyn SharedState>,
    pub limiter: Option<RateLimiter>,
    pub authenticator: Option<Authenticator>,
    pub started: Instant,
    streams: Mutex<HashMap<u64, (Arc<Session>, usize)>>,
}

impl ServerState {
    /// Counts an open stream of `session` (released by the returned guard function).
    pub fn stream_opened(self: &Arc<Self>, session: &Arc<Session>) -> Box<dyn FnOnce() + Send> {
        let key = session.key();
        self.streams
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .and_modify(|(_, n)| *n += 1)
            .or_insert((session.clone(), 1));
        let state = self.clone();
        Box::new(move || {
            let mut streams = state.streams.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((_, n)) = streams.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    streams.remove(&key);
                }
            }
        })
    }

    fn open_streams(&self) -> Vec<Arc<Session>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner()).values().map(|(s, _)| s.clone()).collect()
    }
}

pub struct HttpServer {
    state: Arc<ServerState>,
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    accept: Option<JoinHandle<(GracefulShutdown, JoinSet<()>)>>,
}

impl HttpServer {
    /// Binds and starts serving on the service runtime.
    pub fn start(mut config: HttpConfig, manager: Arc<SessionManager>) -> std::io::Result<HttpServer> {
        let std_listener = std::net::TcpListener::bind((config.host.as_str(), config.port))?;
        std_listener.set_nonblocking(true)?;
        let local_addr = std_listener.local_addr()?;
        let limiter = config.rate_limit.as_ref().map(|r| RateLimiter::new(r.window, r.max_requests));
        let authenticator = config.auth.as_ref().map(|auth| Authenticator::new(auth, config.credential_salt));
        let shared = config.shared.take().unwrap_or_else(|| Arc::new(InMemory::new(manager.clone())));
        let state = Arc::new(ServerState {
            config,
            shared,
            manager,
            limiter,
            authenticator,
            started: Instant::now(),
            streams: Mutex::new(HashMap::new()),
        });
        let (stop_tx, stop_rx) = oneshot::channel();
        let handle = runtime::service();
        let listener = {
            let _entered = handle.enter();
            TcpListener::from_std(std_listener)?
        };
        let accept = handle.spawn(accept_loop(listener, state.clone(), stop_rx));
        Ok(HttpServer { state, local_addr, stop: Some(stop_tx), accept: Some(accept) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops the server; resolves once the port is free and every connection is closed.
    pub async fn close(mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(accept) = self.accept.take() else { return };
        let Ok((graceful, mut connections)) = accept.await else { return };
        let deadline = Instant::now() + grace;
        while !self.state.open_streams().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for session in self.state.open_streams() {
            session.cancel(Some("Server closing"));
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), graceful.shutdown()).await;
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Arc<ServerState>,
    mut stop: oneshot::Receiver<()>,
) -> (GracefulShutdown, JoinSet<()>) {
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let state = state.clone();
                    let service = service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(routes::handle(state, peer, request).await) }
                    });
                    let connection = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .serve_connection(TokioIo::new(stream), service);
                    let watched = graceful.watch(connection);
                    connections.spawn(async move {
                        let _ = watched.await;
                    });
                }
                // Out of file descriptors or a similar transient error: back off briefly.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    (graceful, connections)
}
