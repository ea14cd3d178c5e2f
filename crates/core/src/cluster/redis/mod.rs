//! Shared state in Redis (the `redis` option): several broker processes behind one load
//! balancer act as one. What each part does:
//!
//! - `keys`: the names, hash-tagged per session and per broker (Redis Cluster ready);
//! - `link`: the one connection, and whether Redis is reachable right now;
//! - `journal`: the session registry entries and the event logs (Redis Streams), written
//!   pipelined, buffered (bounded) while Redis is away;
//! - `feed`: streams of sessions other brokers run, replayed from the log then followed;
//! - `inbox`: cancel, `DELETE` and tool results sent to the broker running the session;
//! - `lease`: each broker's lease, and finishing a lost broker's sessions (`BROKER_LOST`);
//! - `scripts`: the Lua that keeps each step consistent.

pub mod config;
pub mod feed;
pub mod inbox;
pub mod journal;
pub mod keys;
pub mod lease;
pub mod link;
pub mod scripts;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use redis::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;

pub use config::{ClusterSettings, RedisEndpoint, RedisTls};

use self::inbox::Inbox;
use self::journal::Journal;
use self::keys::Keys;
use self::link::Link;
use super::{
    BoxFuture, Command, CommandReply, Count, CreateRefusal, EventFeed, SessionRef, SharedRecord, SharedState,
};
use crate::protocol::json::JsonObject;
use crate::runtime;
use crate::session::{EventJournal, ManagerError, Principal, Session, SessionConfig, SessionManager};

pub struct RedisCluster {
    link: Arc<Link>,
    keys: Arc<Keys>,
    broker_id: String,
    manager: Arc<SessionManager>,
    journal: Arc<Journal>,
    settings: ClusterSettings,
    inbox: Inbox,
    salt: OnceLock<[u8; 32]>,
    tasks: Mutex<Vec<AbortHandle>>,
    /// Itself, for the streams that outlive a request.
    me: Weak<RedisCluster>,
}

/// Told of each attempt to reach Redis until one succeeds: the error of each failed one,
/// then `Ok` once.
pub type Attempts = Box<dyn Fn(Result<(), String>) + Send + Sync>;

fn unavailable(link: &Link) -> CreateRefusal {
    CreateRefusal::Unavailable(match link.last_error() {
        Some(error) => format!("Redis at {} is unavailable: {error}", link.address()),
        None => format!("Redis at {} is unavailable", link.address()),
    })
}

impl RedisCluster {
    /// Joins the brokers sharing Redis. Sessions `manager` creates from now on are shared at
    /// once (their events wait in the buffer until Redis answers); connecting goes on in the
    /// background, retried every second, and `attempts` hears how it went.
    pub fn start(
        endpoint: RedisEndpoint,
        settings: ClusterSettings,
        manager: Arc<SessionManager>,
        attempts: Attempts,
    ) -> Result<Arc<RedisCluster>, String> {
        let client = endpoint.client()?;
        let keys = Arc::new(Keys::new(&settings.key_prefix));
        let broker_id = format!("b_{}", uuid::Uuid::new_v4().simple());
        let (inbox_tx, inbox_rx) = mpsc::unbounded_channel();
        let link = Link::new(client, keys.inbox(&broker_id), inbox_tx)?;
        let (journal, writer) =
            Journal::start(link.clone(), keys.clone(), broker_id.clone(), settings.buffer_bytes);
        if !manager.attach_journal(journal.clone() as Arc<dyn EventJournal>) {
            writer.abort();
            return Err("This broker already shares its sessions through Redis".into());
        }
        let cluster = Arc::new_cyclic(|me| RedisCluster {
            link,
            keys,
            broker_id,
            manager,
            journal,
            settings,
            inbox: Inbox::default(),
            salt: OnceLock::new(),
            tasks: Mutex::new(vec![writer]),
            me: me.clone(),
        });
        let joining = runtime::service().spawn(join(Arc::downgrade(&cluster), inbox_rx, attempts));
        cluster.add_task(joining.abort_handle());
        Ok(cluster)
    }

    /// `start`, then waits for the first attempt: an error names the address when Redis
    /// cannot be reached (and the broker leaves again).
    pub async fn connect(
        endpoint: RedisEndpoint,
        settings: ClusterSettings,
        manager: Arc<SessionManager>,
    ) -> Result<Arc<RedisCluster>, String> {
        let (tx, rx) = oneshot::channel();
        let tx = Mutex::new(Some(tx));
        let attempts: Attempts = Box::new(move |outcome| {
            if let Some(tx) = tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = tx.send(outcome);
            }
        });
        let cluster = Self::start(endpoint, settings, manager, attempts)?;
        match rx.await {
            Ok(Ok(())) => Ok(cluster),
            outcome => {
                cluster.close(Duration::ZERO).await;
                Err(outcome.ok().and_then(Result::err).unwrap_or_else(|| "Redis connection abandoned".into()))
            }
        }
    }

    fn add_task(&self, task: AbortHandle) {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).push(task);
    }

    pub fn broker_id(&self) -> &str {
        &self.broker_id
    }

    /// The session manager whose sessions this broker shares.
    pub fn manager(&self) -> &SessionManager {
        &self.manager
    }

    pub fn address(&self) -> &str {
        self.link.address()
    }

    /// The salt of credential principals, the same on every broker (so a credential is one
    /// principal cluster-wide); known once connected.
    pub fn credential_salt(&self) -> Option<[u8; 32]> {
        self.salt.get().copied()
    }

    /// Whether the broker has reached Redis (at least once).
    pub fn is_connected(&self) -> bool {
        self.salt.get().is_some()
    }

    fn stop_tasks(&self) {
        for task in self.tasks.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            task.abort();
        }
    }

    /// Leaves the cluster: waits up to `timeout` for buffered events to be stored, then
    /// drops the lease (the others finish whatever this broker could not).
    pub async fn close(self: &Arc<Self>, timeout: Duration) {
        self.manager.detach_journal();
        self.journal.drain(timeout).await;
        self.stop_tasks();
        if self.is_connected() && self.link.is_ready() {
            lease::leave(self).await;
        }
    }

    async fn record(&self, id: &str) -> Option<SharedRecord> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.keys.session(id));
        let fields = self.link.query::<HashMap<String, String>>(&cmd).await.ok()?;
        SharedRecord::from_fields(&fields)
    }

    /// What to do with a command nobody ran: a finished session takes a cancel as a no-op
    /// and is deleted here; an unfinished one waits for its broker (or its lease to lapse).
    async fn command_unanswered(&self, id: &str, command: &Command, why: Option<String>) -> CommandReply {
        let Some(record) = self.record(id).await else {
            return match why {
                Some(why) if !self.link.is_ready() => CommandReply::Unavailable(why),
                _ => CommandReply::NotFound,
            };
        };
        if !record.state.is_terminal() {
            return CommandReply::Unavailable(why.unwrap_or_else(|| {
                format!(
                    "The broker running session {id} is not reachable; the session ends with BROKER_LOST once its lease lapses"
                )
            }));
        }
        match command {
            Command::Cancel { .. } => CommandReply::Done,
            Command::Delete => {
                let mut pipeline = redis::pipe();
                self.journal.deletion(&mut pipeline, id, &record.owner_key, &record.broker);
                match self.link.pipeline(&pipeline).await {
                    Ok(_) => CommandReply::Done,
                    Err(e) => CommandReply::Unavailable(format!("Redis is unavailable: {e}")),
                }
            }
            Command::ToolResult { .. } => CommandReply::InvalidState(format!(
                "Cannot submit tool result in state: {}",
                record.state.as_str()
            )),
        }
    }

    async fn create_session(&self, mut config: SessionConfig) -> Result<Arc<Session>, CreateRefusal> {
        if !self.link.is_ready() {
            return Err(unavailable(&self.link));
        }
        config.journal = Some(self.journal.clone() as Arc<dyn EventJournal>);
        let session = self.manager.create_new(config).map_err(CreateRefusal::Manager)?;
        let mut pipeline = redis::pipe();
        self.journal.registration(&mut pipeline, &session);
        let refusal = match self.link.pipeline(&pipeline).await {
            Ok(reply) => match reply.first() {
                Some(Value::Int(1)) => return Ok(session),
                Some(Value::Int(0)) => CreateRefusal::Manager(ManagerError::Exists(session.id().to_string())),
                Some(Value::ServerError(e)) if e.code() == "NOSCRIPT" => {
                    let _ = self.link.load_scripts().await;
                    unavailable(&self.link)
                }
                other => CreateRefusal::Unavailable(format!("Redis refused the session: {other:?}")),
            },
            Err(_) => unavailable(&self.link),
        };
        // Never started, so it has no events: it leaves without a trace.
        self.manager.remove(&session);
        session.dispose();
        Err(refusal)
    }

    /// The sessions of the principal whose key is `owner_key` (every session with `None`),
    /// in creation order.
    pub async fn listed(&self, owner_key: Option<&str>) -> Vec<SessionRef> {
        let index = match owner_key {
            Some(owner) => self.keys.owned_sessions(owner),
            None => self.keys.all_sessions(),
        };
        let now = format!("{:.0}", crate::protocol::json::now_epoch_ms());
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("ZREMRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(format!("({now}"))
            .ignore()
            .cmd("ZRANGE")
            .arg(&index)
            .arg(0)
            .arg(-1);
        let ids: Vec<String> = match self.link.pipeline(&pipeline).await {
            Ok(reply) => match reply.first() {
                Some(Value::Array(ids)) => ids
                    .iter()
                    .filter_map(|v| match v {
                        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            },
            // Redis away: this broker's own sessions are all it can tell.
            Err(_) => {
                return self
                    .manager
                    .sessions()
                    .into_iter()
                    .filter(|s| owner_key.is_none_or(|owner| s.owner().key() == owner))
                    .map(SessionRef::Local)
                    .collect();
            }
        };
        let mut pipeline = redis::pipe();
        for id in &ids {
            pipeline.cmd("HGETALL").arg(self.keys.session(id));
        }
        let entries =
            if ids.is_empty() { Vec::new() } else { self.link.pipeline(&pipeline).await.unwrap_or_default() };
        let mut found: Vec<SessionRef> = Vec::new();
        let mut gone: Vec<&String> = Vec::new();
        for (id, entry) in ids.iter().zip(entries) {
            let fields: HashMap<String, String> = redis::from_redis_value(entry).unwrap_or_default();
            let Some(record) = SharedRecord::from_fields(&fields) else {
                gone.push(id);
                continue;
            };
            if owner_key.is_some_and(|owner| record.owner_key != owner) {
                continue;
            }
            found.push(match self.manager.get(id) {
                Some(session) if session.journal().is_some() => SessionRef::Local(session),
                _ => SessionRef::Shared(Arc::new(record)),
            });
        }
        if !gone.is_empty() {
            let mut cmd = redis::cmd("ZREM");
            cmd.arg(&index).arg(gone);
            let _ = self.link.query::<i64>(&cmd).await;
        }
        found.sort_by(|a, b| a.created_at().total_cmp(&b.created_at()).then_with(|| a.id().cmp(b.id())));
        found
    }

    async fn counted(&self, bucket: &str, key: &str, window: Duration, max: u64) -> Option<Count> {
        if !self.link.is_ready() {
            return None;
        }
        let mut invocation = scripts::COUNT.prepare_invoke();
        invocation.key(self.keys.counter(bucket, key)).arg(window.as_millis() as u64);
        let (hits, left): (u64, i64) = self.link.invoke(invocation).await.ok()?;
        Some(if hits > max {
            Count::Limited(Duration::from_millis(left.max(0) as u64))
        } else {
            Count::Allowed
        })
    }
}

/// The salt of credential principals: one random value for every broker of the cluster.
async fn shared_salt(link: &Link, keys: &Keys) -> Result<[u8; 32], String> {
    let mut fresh = [0u8; 32];
    fresh[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    fresh[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    let hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
    let mut cmd = redis::cmd("SET");
    cmd.arg(keys.salt()).arg(&hex).arg("NX").arg("GET");
    let held: Option<String> =
        link.query(&cmd).await.map_err(|e| format!("Redis at {}: {e}", link.address()))?;
    let held = held.unwrap_or(hex);
    let mut salt = [0u8; 32];
    for (i, byte) in salt.iter_mut().enumerate() {
        *byte = held.get(i * 2..i * 2 + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0);
    }
    Ok(salt)
}

/// Connects (every second until it works), then starts the broker's part in the cluster:
/// its lease, its inbox, and watching the link.
async fn join(cluster: Weak<RedisCluster>, inbox: mpsc::UnboundedReceiver<Vec<u8>>, attempts: Attempts) {
    loop {
        let Some(joining) = cluster.upgrade() else { return };
        let joined = async {
            joining.link.establish().await?;
            let address = joining.link.address();
            joining.link.load_scripts().await.map_err(|e| format!("Redis at {address}: {e}"))?;
            shared_salt(&joining.link, &joining.keys).await
        }
        .await;
        match joined {
            Ok(salt) => {
                let _ = joining.salt.set(salt);
                let lease = joining.settings.lease;
                for task in [
                    runtime::service().spawn(lease::run(cluster.clone(), lease)).abort_handle(),
                    runtime::service().spawn(inbox::serve(cluster.clone(), inbox)).abort_handle(),
                    runtime::service().spawn(watch_link(cluster.clone())).abort_handle(),
                ] {
                    joining.add_task(task);
                }
                attempts(Ok(()));
                return;
            }
            Err(error) => attempts(Err(error)),
        }
        drop(joining);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// While Redis is away, asks every 200 ms (which makes the connection retry), so the
/// broker notices as soon as it is back.
async fn watch_link(cluster: Weak<RedisCluster>) {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Some(cluster) = cluster.upgrade() else { return };
        if !cluster.link.is_ready() {
            let _ = cluster.link.query::<String>(&redis::cmd("PING")).await;
        }
    }
}

impl SharedState for RedisCluster {
    fn create(&self, config: SessionConfig) -> BoxFuture<'_, Result<Arc<Session>, CreateRefusal>> {
        Box::pin(self.create_session(config))
    }

    fn find<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<SessionRef>> {
        Box::pin(async move {
            if let Some(session) = self.manager.get(id) {
                return Some(SessionRef::Local(session));
            }
            self.record(id).await.map(|record| SessionRef::Shared(Arc::new(record)))
        })
    }

    fn list<'a>(&'a self, owner: Option<&'a Principal>) -> BoxFuture<'a, Vec<SessionRef>> {
        Box::pin(async move { self.listed(owner.map(Principal::key).as_deref()).await })
    }

    fn command<'a>(&'a self, session: &'a SharedRecord, command: Command) -> BoxFuture<'a, CommandReply> {
        Box::pin(async move {
            if session.broker == self.broker_id {
                // Ours: held here, or finished and let go.
                if self.manager.get(&session.id).is_some() {
                    return inbox::run_here(&self.manager, &session.id, command);
                }
                return self.command_unanswered(&session.id, &command, None).await;
            }
            match self.inbox.send(self, &session.broker, &session.id, &command).await {
                CommandReply::NotFound => self.command_unanswered(&session.id, &command, None).await,
                CommandReply::Unavailable(why) => {
                    self.command_unanswered(&session.id, &command, Some(why)).await
                }
                reply => reply,
            }
        })
    }

    fn feed(&self, session: Arc<SharedRecord>) -> Box<dyn EventFeed> {
        // The feed needs the cluster for as long as the stream lasts.
        let cluster = self.me.upgrade().expect("a cluster in use is alive");
        Box::new(feed::RemoteFeed::new(cluster, session))
    }

    fn count<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        window: Duration,
        max: u64,
    ) -> BoxFuture<'a, Option<Count>> {
        Box::pin(self.counted(bucket, key, window, max))
    }

    fn health(&self) -> Option<(String, bool)> {
        let ready = self.link.is_ready();
        let backlog = self.journal.backlog();
        let json = JsonObject::new()
            .field("status", if ready { "ready" } else { "unavailable" })
            .field("address", self.link.address())
            .field("broker", &self.broker_id)
            .field("bufferedEvents", &backlog.events)
            .field("bufferedBytes", &backlog.bytes)
            .opt_field("error", self.link.last_error().as_ref())
            .finish();
        Some((json, ready))
    }
}
