//! The broker's one connection to Redis: a redis-rs `ConnectionManager` (multiplexed, so
//! concurrent commands share round trips; RESP3, so pub/sub messages arrive on the same
//! connection; reconnecting by itself and resubscribing its channels). The link also knows
//! whether Redis is reachable right now, and routes published messages: the broker's inbox
//! to the command handler, a session's channel to the streams following that session.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue, Pipeline, PushInfo, PushKind, RedisError, Value};
use tokio::sync::{Notify, mpsc};

use super::config::address;
use crate::runtime;

#[derive(Clone, Debug)]
enum Health {
    Ready { since: Instant },
    Down { error: String },
}

/// A channel's local listeners: each gets a wake-up per message.
type Listeners = HashMap<String, Vec<(u64, Weak<Notify>)>>;

pub struct Link {
    connection: ConnectionManager,
    address: String,
    inbox: String,
    health: Mutex<Health>,
    listeners: Mutex<Listeners>,
    next_listener: AtomicU64,
}

/// Whether an error means Redis cannot be reached (as opposed to a refused command).
pub fn unreachable(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
        || matches!(error.code(), Some("LOADING" | "BUSY" | "TRYAGAIN" | "MASTERDOWN"))
}

/// Keeps a channel subscribed for one listener; unsubscribes the last one on drop.
pub struct ChannelWatch {
    link: Weak<Link>,
    channel: String,
    id: u64,
}

impl Drop for ChannelWatch {
    fn drop(&mut self) {
        let Some(link) = self.link.upgrade() else { return };
        let mut listeners = link.listeners.lock().unwrap_or_else(|p| p.into_inner());
        let Some(list) = listeners.get_mut(&self.channel) else { return };
        list.retain(|(id, _)| *id != self.id);
        if list.is_empty() {
            listeners.remove(&self.channel);
            drop(listeners);
            let channel = self.channel.clone();
            let mut connection = link.connection.clone();
            runtime::service().spawn(async move {
                let _ = connection.unsubscribe(channel).await;
            });
        }
    }
}

impl Link {
    /// The link, not yet connected (`establish` connects), routing messages from the start:
    /// `inbox` (the broker's command channel) goes to `on_inbox`.
    pub fn new(
        client: redis::Client,
        inbox: String,
        on_inbox: mpsc::UnboundedSender<Vec<u8>>,
    ) -> Result<Arc<Link>, String> {
        let address = address(client.get_connection_info());
        let (push_tx, push_rx) = mpsc::unbounded_channel::<PushInfo>();
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500))
            .set_push_sender(push_tx)
            .set_automatic_resubscription();
        let connection = {
            let _runtime = runtime::service().enter();
            ConnectionManager::new_lazy_with_config(client, config).map_err(|e| e.to_string())?
        };
        let link = Arc::new(Link {
            connection,
            address,
            inbox: inbox.clone(),
            health: Mutex::new(Health::Down { error: "not connected yet".into() }),
            listeners: Mutex::new(HashMap::new()),
            next_listener: AtomicU64::new(1),
        });
        runtime::service().spawn(route_pushes(Arc::downgrade(&link), push_rx, inbox, on_inbox));
        Ok(link)
    }

    /// Connects and subscribes to the inbox (an error names the address).
    pub async fn establish(&self) -> Result<(), String> {
        let unreachable = |e: RedisError| format!("Redis at {} is not reachable: {e}", self.address);
        let mut ping = redis::cmd("PING");
        ping.arg("enclave-broker");
        match tokio::time::timeout(Duration::from_secs(10), self.query::<String>(&ping)).await {
            Ok(result) => result.map_err(unreachable)?,
            Err(_) => {
                return Err(format!("Redis at {} is not reachable: no answer within 10 s", self.address));
            }
        };
        let mut subscriber = self.connection.clone();
        let subscribed = subscriber.subscribe(&self.inbox).await;
        self.record(&subscribed);
        subscribed.map_err(|e| format!("Redis at {}: {e}", self.address))
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    fn health(&self) -> Health {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn is_ready(&self) -> bool {
        matches!(self.health(), Health::Ready { .. })
    }

    /// How long Redis has been reachable without a break (zero while it is not).
    pub fn ready_for(&self) -> Duration {
        match self.health() {
            Health::Ready { since } => since.elapsed(),
            Health::Down { .. } => Duration::ZERO,
        }
    }

    /// The last connection error while Redis is unreachable.
    pub fn last_error(&self) -> Option<String> {
        match self.health() {
            Health::Ready { .. } => None,
            Health::Down { error } => Some(error),
        }
    }

    fn record<T>(&self, result: &Result<T, RedisError>) {
        let mut health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => {
                if matches!(*health, Health::Down { .. }) {
                    *health = Health::Ready { since: Instant::now() };
                }
            }
            Err(error) if unreachable(error) => *health = Health::Down { error: error.to_string() },
            Err(_) => {}
        }
    }

    fn went_down(&self, error: &str) {
        *self.health.lock().unwrap_or_else(|p| p.into_inner()) = Health::Down { error: error.to_string() };
    }

    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, RedisError> {
        let mut connection = self.connection.clone();
        let result = cmd.query_async::<T>(&mut connection).await;
        self.record(&result);
        result
    }

    /// Runs `pipeline` in one round trip; each command's own error is its entry
    /// (`Value::ServerError`), while an `Err` means the round trip itself failed.
    pub async fn pipeline(&self, pipeline: &Pipeline) -> Result<Vec<Value>, RedisError> {
        let mut connection = self.connection.clone();
        let result = pipeline.query_async::<Vec<Value>>(&mut connection).await;
        self.record(&result);
        result
    }

    pub async fn invoke<T: FromRedisValue>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, RedisError> {
        let mut connection = self.connection.clone();
        let result = invocation.invoke_async::<T>(&mut connection).await;
        self.record(&result);
        result
    }

    /// Loads every script (after a restart emptied Redis's script cache).
    pub async fn load_scripts(&self) -> Result<(), RedisError> {
        let mut connection = self.connection.clone();
        for script in super::scripts::all() {
            let result = script.load_async(&mut connection).await;
            self.record(&result);
            result?;
        }
        Ok(())
    }

    /// Wakes `notify` for every message on `channel` until the watch is dropped.
    pub async fn watch(
        self: &Arc<Self>,
        channel: &str,
        notify: &Arc<Notify>,
    ) -> Result<ChannelWatch, RedisError> {
        let id = self.next_listener.fetch_add(1, Ordering::Relaxed);
        let first = {
            let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
            let list = listeners.entry(channel.to_string()).or_default();
            list.push((id, Arc::downgrade(notify)));
            list.len() == 1
        };
        let watch = ChannelWatch { link: Arc::downgrade(self), channel: channel.to_string(), id };
        if first {
            let mut connection = self.connection.clone();
            let result = connection.subscribe(channel).await;
            self.record(&result);
            result?;
        }
        Ok(watch)
    }

    fn deliver(&self, channel: &str) {
        let listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        for (_, notify) in listeners.get(channel).into_iter().flatten() {
            if let Some(notify) = notify.upgrade() {
                notify.notify_one();
            }
        }
    }

    /// Wakes every listener (after a reconnection, messages may have been missed).
    fn deliver_all(&self) {
        let listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        for (_, notify) in listeners.values().flatten() {
            if let Some(notify) = notify.upgrade() {
                notify.notify_one();
            }
        }
    }
}

fn text(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes.clone()),
        Value::SimpleString(s) => Some(s.as_bytes().to_vec()),
        _ => None,
    }
}

async fn route_pushes(
    link: Weak<Link>,
    mut pushes: mpsc::UnboundedReceiver<PushInfo>,
    inbox: String,
    on_inbox: mpsc::UnboundedSender<Vec<u8>>,
) {
    while let Some(push) = pushes.recv().await {
        let Some(link) = link.upgrade() else { return };
        match push.kind {
            PushKind::Disconnection => link.went_down("connection to Redis lost"),
            PushKind::Message => {
                let (Some(channel), Some(payload)) =
                    (push.data.first().and_then(text), push.data.get(1).and_then(text))
                else {
                    continue;
                };
                if channel == inbox.as_bytes() {
                    let _ = on_inbox.send(payload);
                } else {
                    link.deliver(&String::from_utf8_lossy(&channel));
                }
            }
            // Resubscribed after a reconnection: whatever was published meanwhile is
            // read from the logs by the woken streams.
            PushKind::Subscribe => link.deliver_all(),
            _ => {}
        }
    }
}
