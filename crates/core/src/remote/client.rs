//! The broker's side of extracted mode: one WebSocket connection per runtime worker URL,
//! each carrying many sessions, as an [`Executor`] for the broker's sessions.
//!
//! Each endpoint is kept connected by a supervisor task: connect (with a timeout, and the
//! token as `Authorization: Bearer`), wait for the worker's `runtime_ready`, serve the
//! connection until it ends, then reconnect with exponential backoff. Executions go to the
//! connected worker with the most room (fewest running for its `maxSessions`); when every
//! worker is full they wait in a queue, as they do for engine processes in embedded mode.
//! A run whose worker is lost ends with `RUNTIME_LOST`; when no worker is connected or
//! connecting, waiting executions end with it too, so `execute` never hangs on a broker
//! that has no worker.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures::StreamExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderValue, Uri};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::messages::{self, WorkerEvent, WorkerMessage};
use super::remote_run::{RUNTIME_LOST, RemoteRun, RunConnection, is_refusal};
use super::socket::{self, DEFAULT_MAX_MESSAGE_BYTES, Outbox, Refusal, close_frame};
use crate::engine::{ExecutionControl, ExecutionOutcome, ExecutionRequest, Executor};
use crate::protocol::ErrorInfo;
use crate::runtime;

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `ws://host:port/path` of each worker; a URL without a path gets `/ws`.
    pub urls: Vec<String>,
    pub token: Option<String>,
    pub connect_timeout: Duration,
    /// Pings each worker this often; one silent for two intervals is lost. 0 = off.
    pub heartbeat: Duration,
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
    /// Largest frame accepted from a worker.
    pub max_message_bytes: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            urls: Vec::new(),
            token: None,
            connect_timeout: Duration::from_secs(5),
            heartbeat: Duration::from_millis(15_000),
            reconnect_initial: Duration::from_millis(250),
            reconnect_max: Duration::from_secs(10),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// A runtime URL as the client uses it: `ws://` only, with `/ws` when it has no path.
pub fn normalize_url(url: &str) -> Result<String, String> {
    let uri: Uri = url.parse().map_err(|e| format!("Invalid runtime URL {url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("ws") => {}
        Some("wss") => {
            return Err(format!(
                "Runtime URL {url:?}: wss:// is not supported; put a TLS-terminating proxy in front of the worker or use a private network"
            ));
        }
        _ => return Err(format!("Runtime URL {url:?} must start with ws://")),
    }
    let authority = uri.authority().ok_or_else(|| format!("Runtime URL {url:?} has no host"))?;
    let path_and_query = match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("") | Some("/") => "/ws".to_string(),
        Some(p) if p.starts_with("/?") => format!("/ws{}", &p[1..]),
        Some(p) => p.to_string(),
    };
    Ok(format!("ws://{authority}{path_and_query}"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointState {
    Connecting,
    Connected,
    Down,
}

impl EndpointState {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointState::Connecting => "connecting",
            EndpointState::Connected => "connected",
            EndpointState::Down => "down",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct EndpointStatus {
    pub url: String,
    pub state: EndpointState,
    pub active_sessions: usize,
    pub max_sessions: usize,
    pub draining: bool,
    pub total_sessions: u64,
    pub last_error: Option<String>,
}

struct Endpoint {
    url: String,
    state: EndpointState,
    connection: Option<Arc<Connection>>,
    active: usize,
    capacity: usize,
    draining: bool,
    /// Refused a run as busy: skipped until one of its runs ends (or a short while passes).
    busy: bool,
    total: u64,
    last_error: Option<String>,
    kick: Arc<Notify>,
}

impl Endpoint {
    fn has_room(&self) -> bool {
        self.connection.is_some() && !self.draining && !self.busy && self.active < self.capacity
    }
}

struct Job {
    exec: u64,
    request: ExecutionRequest,
    control: Arc<ExecutionControl>,
}

struct State {
    endpoints: Vec<Endpoint>,
    queue: VecDeque<Job>,
    next_exec: u64,
    rotate: usize,
    closed: bool,
}

pub(crate) struct ClientInner {
    config: ClientConfig,
    state: Mutex<State>,
    shutdown: Notify,
    closed: AtomicBool,
}

/// A connection to one worker, shared by the runs placed on it.
pub(crate) struct Connection {
    endpoint: usize,
    pub url: String,
    outbox: Outbox,
    /// The worker's `maxMessageBytes`: nothing larger is sent to it.
    pub peer_max: usize,
    runs: Mutex<HashMap<String, Arc<RemoteRun>>>,
    /// Set once the connection has ended (before its runs are failed).
    dead: AtomicBool,
    /// The worker said it is stopping.
    pub draining: AtomicBool,
    reason: Mutex<String>,
    client: Weak<ClientInner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Connection {
    pub fn send(&self, text: String) {
        let _ = self.outbox.send(Message::text(text));
    }

    pub fn register(&self, run: &Arc<RemoteRun>) {
        lock(&self.runs).insert(run.wire_id.clone(), run.clone());
        // Placed while the connection was ending: `lost` may have missed it.
        if self.dead.load(Ordering::Acquire) {
            let reason = lock(&self.reason).clone();
            run.connection_lost(&self.url, &reason);
        }
    }

    /// Forgets `run` and frees its slot on this worker.
    pub fn unregister(&self, run: &RemoteRun) {
        let removed = {
            let mut runs = lock(&self.runs);
            match runs.get(&run.wire_id) {
                Some(held) if held.exec == run.exec => runs.remove(&run.wire_id).is_some(),
                _ => false,
            }
        };
        if removed && let Some(client) = self.client.upgrade() {
            client.release(self);
        }
    }

    /// An id for a run on this connection: the session's own, unless a run with the same id
    /// is here already (sessions may share an id, quirk Q7 in docs/compatibility.md).
    fn wire_id(&self, session_id: &str, exec: u64) -> String {
        if lock(&self.runs).contains_key(session_id) {
            format!("{session_id}~{exec}")
        } else {
            session_id.to_string()
        }
    }

    fn on_text(self: &Arc<Self>, text: &str) -> Result<(), Refusal> {
        match messages::parse_worker_message(text).map_err(Refusal::malformed)? {
            WorkerMessage::Event { session_id, event } => {
                let run = lock(&self.runs).get(&session_id).cloned();
                let Some(run) = run else { return Ok(()) };
                match event {
                    WorkerEvent::Final(Err(error)) if is_refusal(&error) => {
                        let draining = error.code == "RUNTIME_STOPPING";
                        if let (Some(request), Some(client)) = (run.take_back(), self.client.upgrade()) {
                            client.refused(
                                self,
                                draining,
                                Job { exec: run.exec, request, control: run.control.clone() },
                            );
                        }
                    }
                    event => run.on_event(event),
                }
            }
            WorkerMessage::Stopping => {
                self.draining.store(true, Ordering::Release);
                if let Some(client) = self.client.upgrade() {
                    client.drain(self);
                }
            }
            WorkerMessage::Ready { .. } | WorkerMessage::Other => {}
        }
        Ok(())
    }

    fn lost(&self, reason: &str) {
        *lock(&self.reason) = reason.to_string();
        self.dead.store(true, Ordering::Release);
        let runs: Vec<Arc<RemoteRun>> = lock(&self.runs).drain().map(|(_, run)| run).collect();
        for run in runs {
            run.connection_lost(&self.url, reason);
        }
    }
}

impl RunConnection for Connection {
    fn send(&self, text: String) {
        Connection::send(self, text);
    }

    fn peer_max(&self) -> usize {
        self.peer_max
    }

    fn register(&self, run: &Arc<RemoteRun>) {
        Connection::register(self, run);
    }

    fn unregister(&self, run: &RemoteRun) {
        Connection::unregister(self, run);
    }

    fn url(&self) -> String {
        self.url.clone()
    }

    fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

impl ClientInner {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn alive(state: &State) -> bool {
        state.endpoints.iter().any(|e| e.state != EndpointState::Down)
    }

    /// Pairs queued jobs with the connections that have the most room.
    fn place(&self, state: &mut State) -> Vec<(Arc<Connection>, Job)> {
        let mut placed = Vec::new();
        while !state.queue.is_empty() {
            let count = state.endpoints.len();
            let best = (0..count)
                .map(|k| (state.rotate + k) % count)
                .filter(|&i| state.endpoints[i].has_room())
                .min_by(|&a, &b| {
                    let load = |i: usize| {
                        let e = &state.endpoints[i];
                        (e.active as f64 / e.capacity.max(1) as f64, e.active)
                    };
                    load(a).partial_cmp(&load(b)).unwrap_or(std::cmp::Ordering::Equal)
                });
            let Some(i) = best else { break };
            let Some(job) = state.queue.pop_front() else { break };
            state.rotate = (i + 1) % count;
            let endpoint = &mut state.endpoints[i];
            endpoint.active += 1;
            endpoint.total += 1;
            if let Some(connection) = endpoint.connection.clone() {
                placed.push((connection, job));
            }
        }
        placed
    }

    fn start(self: &Arc<Self>, placed: Vec<(Arc<Connection>, Job)>) {
        for (connection, job) in placed {
            job.control.clear_queued_hook();
            let wire_id = connection.wire_id(&job.request.session_id, job.exec);
            let link: Arc<dyn RunConnection> = connection.clone();
            let started = RemoteRun::start(&link, wire_id, job.exec, job.request, job.control);
            if let Err(refused) = started {
                let (request, error) = *refused;
                self.release(&connection);
                request.settle(ExecutionOutcome::Threw(error));
            }
        }
    }

    fn pump(self: &Arc<Self>) {
        let placed = {
            let mut state = self.lock();
            self.place(&mut state)
        };
        self.start(placed);
    }

    fn enqueue(self: &Arc<Self>, job: Job, front: bool) {
        let exec = job.exec;
        let control = job.control.clone();
        let (placed, failed) = {
            let mut state = self.lock();
            if state.closed {
                (Vec::new(), Some(job))
            } else {
                if front {
                    state.queue.push_front(job);
                } else {
                    state.queue.push_back(job);
                }
                if !Self::alive(&state) {
                    // Nobody is connected or connecting: try every worker again now, rather
                    // than fail while a backoff timer runs.
                    for endpoint in &mut state.endpoints {
                        endpoint.state = EndpointState::Connecting;
                        endpoint.kick.notify_one();
                    }
                }
                (self.place(&mut state), None)
            }
        };
        if let Some(job) = failed {
            job.request.settle(ExecutionOutcome::Threw(ErrorInfo::new(
                RUNTIME_LOST,
                "The runtime client is closed",
            )));
            return;
        }
        let waiting = !placed.iter().any(|(_, j)| j.exec == exec);
        self.start(placed);
        if waiting {
            let client = Arc::downgrade(self);
            // Settles the job at once if it is cancelled (or its deadline passes) while queued.
            control.set_queued_hook(Box::new(move || {
                if let Some(client) = client.upgrade() {
                    client.settle_queued(exec);
                }
            }));
        }
    }

    fn settle_queued(&self, exec: u64) {
        let job = {
            let mut state = self.lock();
            let position = state.queue.iter().position(|j| j.exec == exec);
            position.and_then(|i| state.queue.remove(i))
        };
        if let Some(job) = job {
            job.request.settle_unstarted(&job.control);
        }
    }

    /// Ends every queued job when no worker is left to run it.
    fn fail_queue_if_dead(&self) {
        let (jobs, reason) = {
            let mut state = self.lock();
            if Self::alive(&state) {
                return;
            }
            let reasons: Vec<String> = state
                .endpoints
                .iter()
                .map(|e| format!("{}: {}", e.url, e.last_error.as_deref().unwrap_or("not connected")))
                .collect();
            (state.queue.drain(..).collect::<Vec<_>>(), reasons.join("; "))
        };
        for job in jobs {
            job.control.clear_queued_hook();
            job.control.finish();
            let error = ErrorInfo::new(RUNTIME_LOST, format!("No runtime worker is reachable ({reason})"));
            job.request.settle(ExecutionOutcome::Threw(error));
        }
    }

    fn release(self: &Arc<Self>, connection: &Connection) {
        {
            let mut state = self.lock();
            let endpoint = &mut state.endpoints[connection.endpoint];
            let current = endpoint.connection.as_ref().is_some_and(|c| std::ptr::eq(c.as_ref(), connection));
            if current {
                endpoint.active = endpoint.active.saturating_sub(1);
                endpoint.busy = false;
            }
        }
        self.pump();
    }

    /// A worker refused a run: it goes back to the front of the queue, and that worker gets
    /// no new runs until one of its runs ends (busy) or at all (stopping).
    fn refused(self: &Arc<Self>, connection: &Connection, draining: bool, job: Job) {
        {
            let mut state = self.lock();
            let endpoint = &mut state.endpoints[connection.endpoint];
            if endpoint.connection.as_ref().is_some_and(|c| std::ptr::eq(c.as_ref(), connection)) {
                if draining {
                    endpoint.draining = true;
                } else {
                    endpoint.busy = true;
                }
            }
        }
        if !draining {
            // A worker shared with other brokers frees slots this broker never hears of.
            let client = Arc::downgrade(self);
            let index = connection.endpoint;
            runtime::service().spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if let Some(client) = client.upgrade() {
                    client.lock().endpoints[index].busy = false;
                    client.pump();
                }
            });
        }
        self.enqueue(job, true);
    }

    fn drain(&self, connection: &Connection) {
        let mut state = self.lock();
        let endpoint = &mut state.endpoints[connection.endpoint];
        if endpoint.connection.as_ref().is_some_and(|c| std::ptr::eq(c.as_ref(), connection)) {
            endpoint.draining = true;
        }
    }

    fn set_down(&self, index: usize, error: String) {
        let mut state = self.lock();
        let endpoint = &mut state.endpoints[index];
        endpoint.state = EndpointState::Down;
        endpoint.connection = None;
        endpoint.active = 0;
        endpoint.last_error = Some(error);
    }
}

async fn connect(
    config: &ClientConfig,
    url: &str,
) -> Result<(tokio_tungstenite::WebSocketStream<TcpStream>, usize, usize), String> {
    let mut request = url.into_client_request().map_err(|e| format!("invalid URL ({e})"))?;
    if let Some(token) = &config.token {
        let value =
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| "invalid token".to_string())?;
        request.headers_mut().insert("authorization", value);
    }
    let uri = request.uri().clone();
    let host = uri.host().unwrap_or("localhost").trim_start_matches('[').trim_end_matches(']').to_string();
    let port = uri.port_u16().unwrap_or(80);
    let attempt = async {
        let tcp = TcpStream::connect((host.as_str(), port)).await.map_err(|e| e.to_string())?;
        let _ = tcp.set_nodelay(true);
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(
            request,
            tcp,
            Some(socket::config(config.max_message_bytes)),
        )
        .await
        .map_err(|e| match e {
            WsError::Http(response) if response.status() == 401 => {
                "the worker refused the token (HTTP 401)".to_string()
            }
            WsError::Http(response) => format!("the worker answered HTTP {}", response.status()),
            e => e.to_string(),
        })?;
        match ws.next().await {
            Some(Ok(Message::Text(text))) => match messages::parse_worker_message(text.as_str()) {
                Ok(WorkerMessage::Ready { max_sessions, max_message_bytes }) => {
                    Ok((ws, max_sessions, max_message_bytes))
                }
                _ => Err("not an enclave runtime worker (no runtime_ready)".to_string()),
            },
            Some(Ok(Message::Close(frame))) => {
                Err(format!("closed at once ({})", frame.map(|f| f.reason.to_string()).unwrap_or_default()))
            }
            Some(Err(e)) => Err(e.to_string()),
            _ => Err("not an enclave runtime worker (no runtime_ready)".to_string()),
        }
    };
    match tokio::time::timeout(config.connect_timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!("no connection within {} ms", config.connect_timeout.as_millis())),
    }
}

async fn supervise(inner: Arc<ClientInner>, index: usize, kick: Arc<Notify>) {
    let mut delay = None;
    let config = inner.config.clone();
    loop {
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let url = {
            let mut state = inner.lock();
            state.endpoints[index].state = EndpointState::Connecting;
            state.endpoints[index].url.clone()
        };
        match connect(&config, &url).await {
            Ok((ws, max_sessions, peer_max)) => {
                delay = None;
                let (outbox, queued) = tokio::sync::mpsc::unbounded_channel();
                let connection = Arc::new(Connection {
                    endpoint: index,
                    url: url.clone(),
                    outbox: outbox.clone(),
                    peer_max,
                    runs: Mutex::new(HashMap::new()),
                    dead: AtomicBool::new(false),
                    draining: AtomicBool::new(false),
                    reason: Mutex::new(String::new()),
                    client: Arc::downgrade(&inner),
                });
                let closing = {
                    let mut state = inner.lock();
                    let closing = state.closed;
                    let endpoint = &mut state.endpoints[index];
                    endpoint.state = EndpointState::Connected;
                    endpoint.connection = Some(connection.clone());
                    endpoint.active = 0;
                    endpoint.capacity = max_sessions;
                    endpoint.draining = false;
                    endpoint.busy = false;
                    endpoint.last_error = None;
                    closing
                };
                if closing {
                    let _ = outbox.send(close_frame(CloseCode::Normal, "broker closed"));
                }
                inner.pump();
                let handler = connection.clone();
                let ended =
                    socket::drive(ws, outbox, queued, config.heartbeat, config.heartbeat * 2, move |text| {
                        handler.on_text(text)
                    })
                    .await;
                inner.set_down(index, ended.reason.clone());
                connection.lost(&ended.reason);
                inner.fail_queue_if_dead();
            }
            Err(error) => {
                inner.set_down(index, error);
                inner.fail_queue_if_dead();
            }
        }
        let wait = delay.unwrap_or(config.reconnect_initial);
        delay = Some((wait * 2).min(config.reconnect_max));
        let shutdown = inner.shutdown.notified();
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = kick.notified() => {}
            _ = shutdown => return,
        }
    }
}

/// The broker's handle on its runtime workers; an [`Executor`] for its sessions. Dropping
/// it closes the connections (the supervisors hold the shared state until they see that).
pub struct RuntimeClient {
    inner: Arc<ClientInner>,
}

impl RuntimeClient {
    /// Starts connecting to every worker in the background.
    pub fn connect(config: ClientConfig) -> Result<RuntimeClient, String> {
        if config.urls.is_empty() {
            return Err("Extracted mode needs at least one runtime URL".into());
        }
        let urls = config.urls.iter().map(|u| normalize_url(u)).collect::<Result<Vec<_>, _>>()?;
        let endpoints = urls
            .iter()
            .map(|url| Endpoint {
                url: url.clone(),
                state: EndpointState::Connecting,
                connection: None,
                active: 0,
                capacity: 0,
                draining: false,
                busy: false,
                total: 0,
                last_error: None,
                kick: Arc::new(Notify::new()),
            })
            .collect::<Vec<_>>();
        let kicks: Vec<_> = endpoints.iter().map(|e| e.kick.clone()).collect();
        let inner = Arc::new(ClientInner {
            config: ClientConfig { urls, ..config },
            state: Mutex::new(State {
                endpoints,
                queue: VecDeque::new(),
                next_exec: 1,
                rotate: 0,
                closed: false,
            }),
            shutdown: Notify::new(),
            closed: AtomicBool::new(false),
        });
        for (index, kick) in kicks.into_iter().enumerate() {
            runtime::service().spawn(supervise(inner.clone(), index, kick));
        }
        Ok(RuntimeClient { inner })
    }

    pub fn status(&self) -> Vec<EndpointStatus> {
        let state = self.inner.lock();
        state
            .endpoints
            .iter()
            .map(|e| EndpointStatus {
                url: e.url.clone(),
                state: e.state,
                active_sessions: e.active,
                max_sessions: e.capacity,
                draining: e.draining,
                total_sessions: e.total,
                last_error: e.last_error.clone(),
            })
            .collect()
    }

    /// Closes every connection (runs on them end) and fails what still waits.
    pub fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let (connections, jobs) = {
            let mut state = self.inner.lock();
            state.closed = true;
            let connections: Vec<_> = state.endpoints.iter().filter_map(|e| e.connection.clone()).collect();
            (connections, state.queue.drain(..).collect::<Vec<_>>())
        };
        self.inner.shutdown.notify_waiters();
        for connection in connections {
            let _ = connection.outbox.send(close_frame(CloseCode::Normal, "broker closed"));
        }
        for job in jobs {
            job.control.clear_queued_hook();
            job.control.finish();
            let outcome = match job.control.reason() {
                Some(reason) => ExecutionOutcome::Interrupted { reason, detail: None },
                None => ExecutionOutcome::Threw(ErrorInfo::new(RUNTIME_LOST, "The runtime client is closed")),
            };
            job.request.settle(outcome);
        }
    }
}

impl Drop for RuntimeClient {
    fn drop(&mut self) {
        self.close();
    }
}

impl Executor for RuntimeClient {
    fn submit(&self, request: ExecutionRequest, control: Arc<ExecutionControl>) {
        let exec = {
            let mut state = self.inner.lock();
            let exec = state.next_exec;
            state.next_exec += 1;
            exec
        };
        self.inner.enqueue(Job { exec, request, control }, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_the_default_path_and_only_ws_is_taken() {
        assert_eq!(normalize_url("ws://localhost:3001").unwrap(), "ws://localhost:3001/ws");
        assert_eq!(normalize_url("ws://localhost:3001/").unwrap(), "ws://localhost:3001/ws");
        assert_eq!(normalize_url("ws://h:1/?token=a").unwrap(), "ws://h:1/ws?token=a");
        assert_eq!(normalize_url("ws://h:1/runtime").unwrap(), "ws://h:1/runtime");
        assert!(normalize_url("http://h:1").is_err());
        assert!(normalize_url("wss://h:1").unwrap_err().contains("TLS"));
        assert!(normalize_url("not a url").is_err());
    }
}
