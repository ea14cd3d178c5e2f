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
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::Value;
use tokio::sync::mpsc;
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
    salt: [u8; 32],
    tasks: Mutex<Vec<AbortHandle>>,
    /// Itself, for the streams that outlive a request.
    me: std::sync::Weak<RedisCluster>,
}

fn unavailable(link: &Link) -> CreateRefusal {
    CreateRefusal::Unavailable(match link.last_error() {
        Some(error) => format!("Redis at {} is unavailable: {error}", link.address()),
        None => format!("Redis at {} is unavailable", link.address()),
    })
}

impl RedisCluster {
    /// Connects to Redis (an error names the address when it cannot be reached), joins the
    /// brokers sharing it, and from then on shares the sessions `manager` creates.
    pub async fn connect(
        endpoint: RedisEndpoint,
        settings: ClusterSettings,
        manager: Arc<SessionManager>,
    ) -> Result<Arc<RedisCluster>, String> {
        let client = endpoint.client()?;
        let keys = Arc::new(Keys::new(&settings.key_prefix));
        let broker_id = format!("b_{}", uuid::Uuid::new_v4().simple());
        let (inbox_tx, inbox_rx) = mpsc::unbounded_channel();
        let link = Link::connect(client, keys.inbox(&broker_id), inbox_tx).await?;
        link.load_scripts().await.map_err(|e| format!("Redis at {}: {e}", link.address()))?;
        let salt = shared_salt(&link, &keys).await?;
        let (journal, writer) =
            Journal::start(link.clone(), keys.clone(), broker_id.clone(), settings.buffer_bytes);
        let cluster = Arc::new_cyclic(|me| RedisCluster {
            link,
            keys,
            broker_id,
            manager: manager.clone(),
            journal: journal.clone(),
            settings,
            inbox: Inbox::default(),
            salt,
            tasks: Mutex::new(Vec::new()),
            me: me.clone(),
        });
        let weak = Arc::downgrade(&cluster);
        let tasks = vec![
            writer,
            runtime::service().spawn(lease::run(weak.clone(), cluster.settings.lease)).abort_handle(),
            runtime::service().spawn(inbox::serve(weak.clone(), inbox_rx)).abort_handle(),
            runtime::service().spawn(watch_link(weak)).abort_handle(),
        ];
        *cluster.tasks.lock().unwrap_or_else(|p| p.into_inner()) = tasks;
        if !manager.attach_journal(journal as Arc<dyn EventJournal>) {
            cluster.stop_tasks();
            return Err("This broker already shares its sessions through Redis".into());
        }
        Ok(cluster)
    }

    pub fn broker_id(&self) -> &str {
        &self.broker_id
    }

    pub fn address(&self) -> &str {
        self.link.address()
    }

    /// The salt of credential principals, the same on every broker (so a credential is one
    /// principal cluster-wide).
    pub fn credential_salt(&self) -> [u8; 32] {
        self.salt
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
        lease::leave(self).await;
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

    async fn listed(&self, owner: Option<&Principal>) -> Vec<SessionRef> {
        let index = match owner {
            Some(owner) => self.keys.owned_sessions(&owner.key()),
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
                    .filter(|s| owner.is_none_or(|owner| s.owner() == owner))
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
            if owner.is_some_and(|owner| record.owner_key != owner.key()) {
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

/// While Redis is away, asks every 200 ms (which makes the connection retry), so the
/// broker notices as soon as it is back.
async fn watch_link(cluster: std::sync::Weak<RedisCluster>) {
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
        Box::pin(self.listed(owner))
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
