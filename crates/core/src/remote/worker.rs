//! The runtime worker: this process's engine pool as a network service. A hyper server on
//! the shared service runtime answers `GET /health`, and upgrades requests on `wsPath` that
//! carry a valid token (`Authorization: Bearer <token>`, or `?token=` for clients that
//! cannot set headers) to WebSocket connections speaking the runtime channel (`messages`).
//! Nothing here calls into Node: sessions run on the engine pool, tool calls go back to the
//! client over the socket.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, UPGRADE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::messages;
use super::socket::{self, close_frame};
use super::worker_connection::WorkerConnection;
use super::worker_slots::{WorkerConfig, WorkerSlots};
use crate::protocol::json::JsonObject;
use crate::runtime;
use crate::session::Session;

pub(crate) struct WorkerShared {
    pub slots: Arc<WorkerSlots>,
    connections: Mutex<HashMap<u64, Arc<WorkerConnection>>>,
    next_connection: AtomicU64,
}

impl WorkerShared {
    fn connections(&self) -> MutexGuard<'_, HashMap<u64, Arc<WorkerConnection>>> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerStats {
    pub active_sessions: usize,
    pub total_sessions: u64,
    pub connections: usize,
    pub uptime_ms: u64,
}

pub struct RuntimeWorker {
    shared: Arc<WorkerShared>,
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    accept: Option<JoinHandle<JoinSet<()>>>,
}

type Body = Full<Bytes>;

fn respond(status: StatusCode, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json; charset=utf-8"));
    response
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    respond(status, JsonObject::new().field("code", code).field("message", message).finish())
}

/// Constant-time comparison, so a token cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn presented_token(request: &Request<Incoming>) -> Option<String> {
    let header = request.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) {
        return Some(token.trim().to_string());
    }
    let query = request.uri().query()?;
    query.split('&').find_map(|pair| pair.strip_prefix("token=")).map(percent_decode)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_upgrade(request: &Request<Incoming>) -> bool {
    let has = |name, token: &str| {
        request.headers().get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|v| v.split(',').any(|part| part.trim().eq_ignore_ascii_case(token)))
        })
    };
    has(CONNECTION, "upgrade") && has(UPGRADE, "websocket")
}

async fn route(shared: Arc<WorkerShared>, mut request: Request<Incoming>) -> Response<Body> {
    let path = request.uri().path();
    if path == "/health" && request.method() == hyper::Method::GET {
        let stats = stats(&shared);
        let body = JsonObject::new()
            .field(
                "status",
                if shared.slots.stopping.load(Ordering::Acquire) { "stopping" } else { "healthy" },
            )
            .field("uptime", &(stats.uptime_ms / 1000))
            .field("activeSessions", &stats.active_sessions)
            .field("maxSessions", &shared.slots.config.max_sessions)
            .field("connections", &stats.connections)
            .finish();
        return respond(StatusCode::OK, body);
    }
    if path != shared.slots.config.ws_path {
        return refuse(StatusCode::NOT_FOUND, "NOT_FOUND", "Not found");
    }
    if !shared.slots.config.tokens.is_empty() {
        let token = presented_token(&request);
        let valid = token
            .is_some_and(|t| shared.slots.config.tokens.iter().any(|k| same(k.as_bytes(), t.as_bytes())));
        if !valid {
            return refuse(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "A valid runtime token is required");
        }
    }
    let key = request.headers().get("sec-websocket-key").map(|k| derive_accept_key(k.as_bytes()));
    let (true, Some(accept)) = (is_upgrade(&request), key) else {
        return refuse(StatusCode::UPGRADE_REQUIRED, "UPGRADE_REQUIRED", "This endpoint speaks WebSocket");
    };
    if shared.slots.stopping.load(Ordering::Acquire) {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "RUNTIME_STOPPING", "The runtime worker is stopping");
    }
    let upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let config = socket::config(shared.slots.config.max_message_bytes);
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
            serve(shared, ws).await;
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert("sec-websocket-accept", accept);
    }
    response
}

async fn serve<S>(shared: Arc<WorkerShared>, ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (outbox, queued) = tokio::sync::mpsc::unbounded_channel();
    let connection = WorkerConnection::new(&shared.slots, outbox.clone());
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    shared.connections().insert(id, connection.clone());
    let config = &shared.slots.config;
    connection.send(messages::ready(
        config.max_sessions,
        shared.slots.active.load(Ordering::Acquire),
        config.max_message_bytes,
    ));
    if shared.slots.stopping.load(Ordering::Acquire) {
        connection.send(messages::stopping());
    }
    let handler = connection.clone();
    socket::drive(ws, outbox, queued, config.heartbeat, config.connection_timeout, move |text| {
        handler.on_text(text)
    })
    .await;
    shared.connections().remove(&id);
    connection.closed();
}

fn stats(shared: &WorkerShared) -> WorkerStats {
    WorkerStats {
        active_sessions: shared.slots.active.load(Ordering::Acquire),
        total_sessions: shared.slots.total.load(Ordering::Relaxed),
        connections: shared.connections().len(),
        uptime_ms: shared.slots.started.elapsed().as_millis() as u64,
    }
}

impl RuntimeWorker {
    /// Binds and starts serving on the service runtime (bind errors are returned here).
    pub fn start(config: WorkerConfig) -> std::io::Result<RuntimeWorker> {
        let std_listener = std::net::TcpListener::bind((config.host.as_str(), config.port))?;
        std_listener.set_nonblocking(true)?;
        let local_addr = std_listener.local_addr()?;
        let shared = Arc::new(WorkerShared {
            slots: Arc::new(WorkerSlots::new(config)),
            connections: Mutex::new(HashMap::new()),
            next_connection: AtomicU64::new(1),
        });
        let handle = runtime::service();
        let listener = {
            let _entered = handle.enter();
            TcpListener::from_std(std_listener)?
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let accept = handle.spawn(accept_loop(listener, shared.clone(), stop_rx));
        Ok(RuntimeWorker { shared, local_addr, stop: Some(stop_tx), accept: Some(accept) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn stats(&self) -> WorkerStats {
        stats(&self.shared)
    }

    pub fn is_stopping(&self) -> bool {
        self.shared.slots.stopping.load(Ordering::Acquire)
    }

    /// Sessions running now, over all connections.
    pub fn sessions(&self) -> Vec<Arc<Session>> {
        let connections: Vec<_> = self.shared.connections().values().cloned().collect();
        connections.iter().flat_map(|c| c.sessions()).collect()
    }

    /// Graceful stop: the port is freed and new executions are refused at once (clients are
    /// told `runtime_stopping`, so brokers place work elsewhere); running sessions get
    /// `grace` to finish, then are cancelled; then every connection is closed.
    pub async fn stop(mut self, grace: Duration) {
        self.shared.slots.stopping.store(true, Ordering::Release);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let connections: Vec<_> = self.shared.connections().values().cloned().collect();
        for connection in &connections {
            connection.send(messages::stopping());
        }
        let mut http = match self.accept.take() {
            Some(accept) => accept.await.unwrap_or_default(),
            None => JoinSet::new(),
        };
        let shared = self.shared.clone();
        let drained = async {
            loop {
                let notified = shared.slots.idle.notified();
                if shared.slots.active.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(grace, drained).await.is_err() {
            for session in self.sessions() {
                session.cancel(Some("Runtime worker stopping"));
            }
            let shared = self.shared.clone();
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                loop {
                    let notified = shared.slots.idle.notified();
                    if shared.slots.active.load(Ordering::Acquire) == 0 {
                        return;
                    }
                    notified.await;
                }
            })
            .await;
        }
        let connections: Vec<_> = self.shared.connections().values().cloned().collect();
        for connection in &connections {
            connection.send_close(close_frame(CloseCode::Away, "runtime worker stopped"));
        }
        // The connections end once their close frames are out (bounded by `drive`).
        let _ = tokio::time::timeout(Duration::from_secs(3), async {
            while !self.shared.connections().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        http.abort_all();
        while http.join_next().await.is_some() {}
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<WorkerShared>,
    mut stop: oneshot::Receiver<()>,
) -> JoinSet<()> {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    let service = service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(route(shared, request).await) }
                    });
                    let connection = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(Duration::from_secs(10))
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades();
                    connections.spawn(async move {
                        let _ = connection.await;
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections
}
