//! The event writer: every event of this broker's shared sessions goes into its session's
//! Redis Stream, in order, pipelined. Sessions enqueue under their own lock; one task drains
//! the queue, groups each session's consecutive events into one `APPEND` (one stream entry
//! per batch), sends everything it has in one round trip, and then tells each session how
//! far its log is stored (`Session::mark_durable`), which is when HTTP streams show the
//! events. So an event a client has seen is in Redis.
//!
//! While Redis is away the queue keeps growing, up to `buffer_bytes` of event JSON; writes
//! are retried (each batch exactly as first sent, which `APPEND` recognises, so nothing is
//! written twice) until Redis takes them. A session that writes past the bound is failed
//! with `REDIS_UNAVAILABLE`: its closing `error` and `final` are still kept, nothing is
//! dropped silently.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use redis::{Pipeline, Value};
use tokio::sync::Notify;

use super::keys::Keys;
use super::link::Link;
use super::scripts;
use crate::protocol::json::JsonObject;
use crate::protocol::{ErrorCode, ErrorInfo, EventType, StreamEvent};
use crate::runtime;
use crate::session::{EventJournal, Session};

/// Events in one stream entry (Lua's `unpack` takes a few thousand arguments at most).
const MAX_BATCH_EVENTS: usize = 256;
/// Bytes of event JSON sent in one round trip, at most (one larger event still goes).
const MAX_ROUND_TRIP_BYTES: usize = 4 << 20;
const MAX_BACKOFF: Duration = Duration::from_millis(500);

enum Op {
    Register(Arc<Session>),
    Event(Arc<Session>, Arc<StreamEvent>),
    Delete(Arc<Session>),
}

enum Job {
    Register(Arc<Session>),
    Append(Append),
    Delete(Arc<Session>),
}

struct Append {
    session: Arc<Session>,
    events: Vec<Arc<StreamEvent>>,
    /// `<seq>:<type>` → line, made once (an encrypted session's envelopes must not change
    /// between retries).
    fields: Option<Vec<(String, String)>>,
    bytes: usize,
}

impl Job {
    fn session(&self) -> &Arc<Session> {
        match self {
            Job::Register(session) | Job::Delete(session) => session,
            Job::Append(append) => &append.session,
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Job::Append(append) => append.bytes,
            _ => 0,
        }
    }
}

#[derive(Default)]
struct Queue {
    ops: Vec<Op>,
    /// Event bytes and events not yet stored (queued, or sent and not yet answered).
    bytes: usize,
    events: usize,
    /// Jobs taken by the writer and not yet done.
    in_flight: usize,
}

pub struct Journal {
    link: Arc<Link>,
    keys: Arc<Keys>,
    broker: String,
    bound: usize,
    queue: Mutex<Queue>,
    wake: Notify,
    drained: Notify,
}

/// What `/health` tells about the writer.
pub struct Backlog {
    pub events: usize,
    pub bytes: usize,
}

impl Journal {
    /// The journal and its writer task (which the owner aborts when it leaves).
    pub fn start(
        link: Arc<Link>,
        keys: Arc<Keys>,
        broker: String,
        bound: usize,
    ) -> (Arc<Journal>, tokio::task::AbortHandle) {
        let journal = Arc::new(Journal {
            link,
            keys,
            broker,
            bound,
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            drained: Notify::new(),
        });
        let writer = runtime::service().spawn(write(journal.clone())).abort_handle();
        (journal, writer)
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, op: Op) {
        self.lock().ops.push(op);
        self.wake.notify_one();
    }

    pub fn backlog(&self) -> Backlog {
        let queue = self.lock();
        Backlog { events: queue.events, bytes: queue.bytes }
    }

    fn is_drained(&self) -> bool {
        let queue = self.lock();
        queue.ops.is_empty() && queue.in_flight == 0
    }

    /// Waits until everything queued is stored (or `timeout` passed); true when drained.
    pub async fn drain(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.is_drained() {
                return true;
            }
            if tokio::time::timeout_at(deadline, drained).await.is_err() {
                return self.is_drained();
            }
        }
    }

    /// The registration of `session`: the registry entry, the indexes, the broker's set.
    pub fn registration(&self, pipeline: &mut Pipeline, session: &Session) {
        let id = session.id();
        let owner_key = session.owner().key();
        let expires_at = format!("{:.0}", session.expires_at());
        pipeline
            .add_command({
                let mut cmd = scripts::evalsha(&scripts::REGISTER, &[&self.keys.session(id)]);
                cmd.arg(id)
                    .arg(session.owner().to_json())
                    .arg(&owner_key)
                    .arg(format!("{:.0}", session.created_at()))
                    .arg(&expires_at)
                    .arg(&self.broker)
                    .arg(if session.encryption().is_some() { "1" } else { "0" });
                cmd
            })
            .cmd("ZADD")
            .arg(self.keys.all_sessions())
            .arg(&expires_at)
            .arg(id)
            .ignore()
            .cmd("ZADD")
            .arg(self.keys.owned_sessions(&owner_key))
            .arg(&expires_at)
            .arg(id)
            .ignore();
        // A principal's index lives as long as its newest session (a principal that never
        // lists its sessions leaves nothing behind); the index of all sessions is pruned by
        // the brokers' lease task.
        for only in ["NX", "GT"] {
            pipeline
                .cmd("PEXPIREAT")
                .arg(self.keys.owned_sessions(&owner_key))
                .arg(&expires_at)
                .arg(only)
                .ignore();
        }
        pipeline.cmd("SADD").arg(self.keys.broker_sessions(&self.broker)).arg(id).ignore();
    }

    /// Removes everything of a session: its entry, log and index entries.
    pub fn deletion(&self, pipeline: &mut Pipeline, id: &str, owner_key: &str, broker: &str) {
        pipeline
            .cmd("DEL")
            .arg(self.keys.session(id))
            .arg(self.keys.events(id))
            .cmd("ZREM")
            .arg(self.keys.all_sessions())
            .arg(id)
            .ignore()
            .cmd("ZREM")
            .arg(self.keys.owned_sessions(owner_key))
            .arg(id)
            .ignore()
            .cmd("SREM")
            .arg(self.keys.broker_sessions(broker))
            .arg(id)
            .ignore();
    }

    /// The `APPEND` of `append` (making its lines the first time).
    fn add_append(&self, pipeline: &mut Pipeline, append: &mut Append) -> Result<(), ()> {
        let session = &append.session;
        if append.fields.is_none() {
            append.fields = Some(fields(session, &append.events)?);
        }
        let (first, last) = (append.events[0].seq(), append.events[append.events.len() - 1].seq());
        let ended = append.events.iter().any(|e| e.kind() == EventType::Final);
        let id = session.id();
        let mut cmd = scripts::evalsha(&scripts::APPEND, &[&self.keys.session(id), &self.keys.events(id)]);
        cmd.arg(&self.broker)
            .arg(first)
            .arg(last)
            .arg(format!("{:.0}", session.expires_at()))
            .arg(session.state().as_str())
            .arg(session.tool_call_count())
            .arg(if ended { "1" } else { "0" });
        for (field, line) in append.fields.iter().flatten() {
            cmd.arg(field).arg(line);
        }
        pipeline.add_command(cmd);
        if ended {
            pipeline.cmd("SREM").arg(self.keys.broker_sessions(&self.broker)).arg(id).ignore();
        }
        Ok(())
    }

    /// Done with some jobs (stored, or dropped with their session): their bytes leave the
    /// buffer; `remaining` jobs are still the writer's.
    fn finished(&self, remaining: usize, bytes: usize, events: usize) {
        let drained = {
            let mut queue = self.lock();
            queue.in_flight = remaining;
            queue.bytes = queue.bytes.saturating_sub(bytes);
            queue.events = queue.events.saturating_sub(events);
            queue.ops.is_empty() && queue.in_flight == 0
        };
        if drained {
            self.drained.notify_waiters();
        }
    }
}

/// `<seq>:<type>` → the line clients get: the event, or for an encrypted session its
/// envelope (`session_init` stays plaintext, as on the wire).
fn fields(session: &Session, events: &[Arc<StreamEvent>]) -> Result<Vec<(String, String)>, ()> {
    events
        .iter()
        .map(|event| {
            let field = format!("{}:{}", event.seq(), event.kind().as_str());
            let line = match session.encryption() {
                Some(encryption) if event.kind() != EventType::SessionInit => {
                    encryption.encryptor.envelope(session.id(), event.seq(), event.json()).map_err(|_| ())?
                }
                _ => event.json().to_string(),
            };
            Ok((field, line))
        })
        .collect()
}

impl EventJournal for Journal {
    fn created(&self, session: &Arc<Session>) {
        self.push(Op::Register(session.clone()));
    }

    fn append(&self, session: &Arc<Session>, event: &Arc<StreamEvent>) {
        let over = {
            let mut queue = self.lock();
            queue.bytes += event.json().len();
            queue.events += 1;
            queue.ops.push(Op::Event(session.clone(), event.clone()));
            queue.bytes > self.bound
        };
        self.wake.notify_one();
        // Past the bound the session ends rather than lose events; its closing events are
        // still kept. `fail` re-enters the session, whose lock the caller holds.
        if over && !matches!(event.kind(), EventType::Error | EventType::Final) {
            let session = session.clone();
            let bound = self.bound;
            runtime::service().spawn(async move {
                session.fail(ErrorInfo::new(
                    ErrorCode::REDIS_UNAVAILABLE,
                    format!("Redis is unavailable and this broker's event buffer ({bound} bytes) is full"),
                ));
            });
        }
    }

    fn terminated(&self, session: &Arc<Session>) {
        self.push(Op::Delete(session.clone()));
    }
}

/// Turns queued operations into jobs: each session's consecutive events in one `APPEND`
/// (up to `MAX_BATCH_EVENTS`), in each session's order.
fn jobs_from(ops: Vec<Op>, jobs: &mut VecDeque<Job>) {
    let mut open: HashMap<u64, usize> = HashMap::new();
    for op in ops {
        match op {
            Op::Event(session, event) => {
                let key = session.key();
                if let Some(&index) = open.get(&key)
                    && let Some(Job::Append(append)) = jobs.get_mut(index)
                    && append.events.len() < MAX_BATCH_EVENTS
                {
                    append.bytes += event.json().len();
                    append.events.push(event);
                    continue;
                }
                open.insert(key, jobs.len());
                let bytes = event.json().len();
                jobs.push_back(Job::Append(Append { session, events: vec![event], fields: None, bytes }));
            }
            Op::Register(session) => {
                open.remove(&session.key());
                jobs.push_back(Job::Register(session));
            }
            Op::Delete(session) => {
                open.remove(&session.key());
                jobs.push_back(Job::Delete(session));
            }
        }
    }
}

fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        _ => None,
    }
}

fn noscript(value: &Value) -> bool {
    matches!(value, Value::ServerError(e) if e.code() == "NOSCRIPT")
}

/// How a sent job came back.
enum Outcome {
    /// Stored (or already stored): done.
    Stored,
    /// The session is no longer this broker's to write (or its id was taken): detach it.
    Lost,
    /// Not applied (a failed round trip, a missing script, an error): send it again.
    Retry,
}

async fn write(journal: Arc<Journal>) {
    let mut pending: VecDeque<Job> = VecDeque::new();
    let mut backoff = Duration::from_millis(10);
    loop {
        {
            // Taken and counted in one step, so `drain` never sees an empty queue while
            // its operations are on their way to becoming jobs.
            let mut queue = journal.lock();
            jobs_from(std::mem::take(&mut queue.ops), &mut pending);
            queue.in_flight = pending.len();
        }
        if pending.is_empty() {
            journal.wake.notified().await;
            continue;
        }
        if send(&journal, &mut pending).await {
            backoff = Duration::from_millis(10);
        } else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Sends a round trip's worth of `pending` and settles what came back; false when nothing
/// could be stored (Redis away): the caller backs off.
async fn send(journal: &Journal, pending: &mut VecDeque<Job>) -> bool {
    let mut pipeline = redis::pipe();
    pipeline.ignore_errors();
    // Per job: where its answer is in the reply (commands marked `ignore` have none).
    let mut answers: Vec<usize> = Vec::new();
    let mut replies = 0usize;
    let mut bytes = 0usize;
    let mut count = 0usize;
    let mut broken: Vec<usize> = Vec::new();
    for (index, job) in pending.iter_mut().enumerate() {
        if count > 0 && bytes + job.bytes() > MAX_ROUND_TRIP_BYTES {
            break;
        }
        count += 1;
        bytes += job.bytes();
        answers.push(replies);
        match job {
            Job::Register(session) => journal.registration(&mut pipeline, session),
            Job::Append(append) => {
                if journal.add_append(&mut pipeline, append).is_err() {
                    broken.push(index);
                    continue;
                }
            }
            Job::Delete(session) => {
                journal.deletion(&mut pipeline, session.id(), &session.owner().key(), &journal.broker);
                // DEL's answer only; the rest are ignored.
            }
        }
        replies += 1;
    }
    let reply = if replies == 0 { Ok(Vec::new()) } else { journal.link.pipeline(&pipeline).await };
    let Ok(reply) = reply else { return false };
    if reply.iter().any(noscript) {
        let _ = journal.link.load_scripts().await;
    }
    // A job that must be sent again holds back its session's later jobs.
    let mut held: HashSet<u64> = HashSet::new();
    let mut keep: VecDeque<Job> = VecDeque::new();
    let (mut done_bytes, mut done_events) = (0, 0);
    let mut progress = false;
    for (index, job) in pending.drain(..count).enumerate() {
        let key = job.session().key();
        let outcome = if broken.contains(&index) {
            Outcome::Lost
        } else if held.contains(&key) {
            Outcome::Retry
        } else {
            let answer = reply.get(answers[index]).unwrap_or(&Value::Nil);
            match (&job, int(answer)) {
                (Job::Register(_), Some(1)) | (Job::Append(_), Some(0 | 1)) => Outcome::Stored,
                (Job::Register(_), Some(0)) | (Job::Append(_), Some(-1 | -2)) => Outcome::Lost,
                (Job::Delete(_), _) if !matches!(answer, Value::ServerError(_)) => Outcome::Stored,
                _ => Outcome::Retry,
            }
        };
        match outcome {
            Outcome::Retry => {
                held.insert(key);
                keep.push_back(job);
                continue;
            }
            Outcome::Stored => {
                progress = true;
                if let Job::Append(append) = &job {
                    append.session.mark_durable(append.events[append.events.len() - 1].seq());
                }
            }
            Outcome::Lost => {
                progress = true;
                job.session().detach();
            }
        }
        done_bytes += job.bytes();
        if let Job::Append(append) = &job {
            done_events += append.events.len();
        }
    }
    // Jobs of sessions that left the journal are dropped with them.
    let mut rest: VecDeque<Job> = VecDeque::new();
    for job in keep.into_iter().chain(pending.drain(..)) {
        if job.session().is_detached() && !matches!(job, Job::Delete(_)) {
            done_bytes += job.bytes();
            if let Job::Append(append) = &job {
                done_events += append.events.len();
            }
        } else {
            rest.push_back(job);
        }
    }
    *pending = rest;
    journal.finished(pending.len(), done_bytes, done_events);
    progress
}

/// The payload of the `error` event a finished lost session gets (`details`).
pub fn lost_details(broker: &str, renewed_at: Option<f64>, detected_at: f64) -> String {
    JsonObject::new()
        .field("broker", broker)
        .opt_num("lastRenewedAt", renewed_at)
        .num("detectedAt", detected_at)
        .finish()
}
