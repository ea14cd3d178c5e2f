//! A stream of a session this broker does not run: its log is read from Redis with
//! `XRANGE` from the cursor on, and the session's channel (published after every write)
//! wakes the reader for what comes next. A missed message costs at most `POLL` (the reader
//! also looks by itself), and while Redis is away the reader waits for it.

use std::sync::Arc;
use std::time::Duration;

use redis::Value;
use tokio::sync::Notify;

use super::RedisCluster;
use super::link::ChannelWatch;
use crate::cluster::{BoxFuture, EventFeed, SharedRecord};
use crate::protocol::{EventType, StreamEvent};

/// How long a reader waits for a message before it looks at the log itself.
const POLL: Duration = Duration::from_secs(1);
/// Stream entries (batches of events) read at a time.
const ENTRIES_PER_READ: usize = 16;

pub struct RemoteFeed {
    cluster: Arc<RedisCluster>,
    record: Arc<SharedRecord>,
    wake: Arc<Notify>,
    watch: Option<ChannelWatch>,
}

impl RemoteFeed {
    pub fn new(cluster: Arc<RedisCluster>, record: Arc<SharedRecord>) -> RemoteFeed {
        RemoteFeed { cluster, record, wake: Arc::new(Notify::new()), watch: None }
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// The field/value pairs of one stream entry (an array, or a map under RESP3).
fn pairs(fields: &Value) -> Vec<(String, String)> {
    match fields {
        Value::Array(items) => {
            items.chunks(2).filter_map(|pair| Some((text(pair.first()?)?, text(pair.get(1)?)?))).collect()
        }
        Value::Map(items) => items.iter().filter_map(|(k, v)| Some((text(k)?, text(v)?))).collect(),
        _ => Vec::new(),
    }
}

/// The events of an `XRANGE` reply with seq greater than `after`.
pub fn events_after(reply: &Value, after: u64) -> Vec<Arc<StreamEvent>> {
    let Value::Array(entries) = reply else { return Vec::new() };
    let mut events = Vec::new();
    for entry in entries {
        let Value::Array(parts) = entry else { continue };
        let Some(fields) = parts.get(1) else { continue };
        for (field, line) in pairs(fields) {
            let Some((seq, kind)) = field.split_once(':') else { continue };
            let (Ok(seq), Some(kind)) = (seq.parse::<u64>(), EventType::parse(kind)) else { continue };
            if seq > after
                && let Some(event) = StreamEvent::from_line(seq, kind, line)
            {
                events.push(Arc::new(event));
            }
        }
    }
    events
}

impl RemoteFeed {
    /// The log past `after`: `Ok(events)`, or `Err` when Redis did not answer.
    async fn read(&self, after: u64) -> Result<Vec<Arc<StreamEvent>>, ()> {
        let mut cmd = redis::cmd("XRANGE");
        cmd.arg(self.cluster.keys.events(&self.record.id))
            .arg(format!("{}-0", after + 1))
            .arg("+")
            .arg("COUNT")
            .arg(ENTRIES_PER_READ);
        let reply = self.cluster.link.query::<Value>(&cmd).await.map_err(|_| ())?;
        Ok(events_after(&reply, after))
    }

    /// Whether nothing more can come after `after`: the session is gone, or its log ended
    /// at or before the cursor.
    async fn over(&self, after: u64) -> Result<bool, ()> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.cluster.keys.session(&self.record.id)).arg(&["ended", "lastSeq"]);
        let fields = self.cluster.link.query::<Vec<Option<String>>>(&cmd).await.map_err(|_| ())?;
        Ok(match (fields.first().cloned().flatten(), fields.get(1).cloned().flatten()) {
            (None, _) => true,
            (Some(ended), last) => {
                ended == "1" && last.and_then(|l| l.parse::<u64>().ok()).unwrap_or(0) <= after
            }
        })
    }

    async fn next_page(&mut self, after: u64) -> Vec<Arc<StreamEvent>> {
        if self.watch.is_none() {
            let channel = self.cluster.keys.events(&self.record.id);
            self.watch = self.cluster.link.watch(&channel, &self.wake).await.ok();
        }
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.read(after).await {
                Ok(events) if !events.is_empty() => return events,
                Ok(_) => match self.over(after).await {
                    Ok(true) => return Vec::new(),
                    Ok(false) => {}
                    Err(()) => {}
                },
                Err(()) => {}
            }
            // A subscription lost with the connection is made again once Redis is back.
            if self.watch.is_none() && self.cluster.link.is_ready() {
                let channel = self.cluster.keys.events(&self.record.id);
                self.watch = self.cluster.link.watch(&channel, &self.wake).await.ok();
            }
            let _ = tokio::time::timeout(POLL, notified).await;
        }
    }
}

impl EventFeed for RemoteFeed {
    fn next(&mut self, after: u64, _max: usize) -> BoxFuture<'_, Vec<Arc<StreamEvent>>> {
        Box::pin(self.next_page(after))
    }
}
