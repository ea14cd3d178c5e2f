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

use super::auth::Authenticator;
use super::rate_limit::RateLimiter;
use super::routes;
use super::state::{HttpConfig, ServerState};
use crate::cluster::InMemory;
use crate::runtime;
use crate::session::SessionManager;

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
