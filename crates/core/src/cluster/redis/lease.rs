//! Leases: each broker renews `{b:<id>}:lease` every quarter lease, and every broker checks
//! the others' at the same pace. When a broker's lease has expired (it was killed, or cut off
//! from Redis), a surviving broker takes a lock on it and finishes each session it was
//! running with an `error` event and a `final` of code `BROKER_LOST`, so every stream of
//! those sessions ends, then marks the broker lost. A broker only judges another after
//! being connected for that broker's whole lease itself: when Redis comes back after an
//! outage, every broker has that long to renew before anyone is judged.
//!
//! A broker that finds itself marked lost (it was partitioned, not dead) fails its own
//! sessions that were finished elsewhere with the same code and carries on.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::Value;

use super::RedisCluster;
use super::journal::lost_details;
use super::scripts;
use crate::protocol::event::payload;
use crate::protocol::json::now_epoch_ms;
use crate::protocol::{ErrorCode, ErrorInfo, EventType, StreamEvent};

/// How often leases are renewed and checked.
pub fn tick(lease: Duration) -> Duration {
    (lease / 4).clamp(Duration::from_millis(50), Duration::from_millis(500))
}

/// How often a broker prunes expired ids from the index of all sessions.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

pub async fn run(cluster: Weak<RedisCluster>, lease: Duration) {
    let mut ticker = tokio::time::interval(tick(lease));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pruned = tokio::time::Instant::now();
    loop {
        ticker.tick().await;
        let Some(cluster) = cluster.upgrade() else { return };
        match renew(&cluster).await {
            Some(true) => {}
            Some(false) => rejoin(&cluster).await,
            None => continue,
        }
        finish_lost_brokers(&cluster).await;
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = tokio::time::Instant::now();
            let mut cmd = redis::cmd("ZREMRANGEBYSCORE");
            cmd.arg(cluster.keys.all_sessions()).arg("-inf").arg(format!("({:.0}", now_epoch_ms()));
            let _ = cluster.link.query::<i64>(&cmd).await;
        }
    }
}

/// Renews this broker's lease; `Some(false)` when it had been marked lost, `None` when
/// Redis did not answer.
async fn renew(cluster: &RedisCluster) -> Option<bool> {
    let keys = &cluster.keys;
    let id = &cluster.broker_id;
    let lease_ms = cluster.settings.lease.as_millis() as u64;
    let mut pipeline = redis::pipe();
    pipeline
        .add_command({
            let mut cmd = scripts::evalsha(&scripts::RENEW, &[&keys.lease(id), &keys.lost(id)]);
            cmd.arg(id).arg(lease_ms);
            cmd
        })
        .cmd("HSET")
        .arg(keys.brokers())
        .arg(id)
        .arg(format!("{{\"renewedAt\":{:.0},\"leaseMs\":{lease_ms}}}", now_epoch_ms()))
        .ignore();
    let reply = cluster.link.pipeline(&pipeline).await.ok()?;
    match reply.first() {
        Some(Value::Int(1)) => Some(true),
        Some(Value::Int(0)) => Some(false),
        Some(Value::ServerError(e)) if e.code() == "NOSCRIPT" => {
            let _ = cluster.link.load_scripts().await;
            None
        }
        _ => None,
    }
}

/// This broker was marked lost while it was cut off: the sessions another broker finished
/// end here too (their streams here end with the same code), and the broker carries on.
async fn rejoin(cluster: &RedisCluster) {
    let error = ErrorInfo::new(
        ErrorCode::BROKER_LOST,
        "This broker lost its lease while cut off from Redis; another broker finished the session",
    );
    for session in cluster.manager.sessions() {
        if session.journal().is_none() || session.is_terminal() {
            continue;
        }
        let mut cmd = redis::cmd("HGET");
        cmd.arg(cluster.keys.session(session.id())).arg("broker");
        if let Ok(Some(owner)) = cluster.link.query::<Option<String>>(&cmd).await
            && owner == cluster.broker_id
        {
            continue;
        }
        session.detach();
        session.fail(error.clone());
    }
    let mut cmd = redis::cmd("DEL");
    cmd.arg(cluster.keys.lost(&cluster.broker_id));
    let _ = cluster.link.query::<i64>(&cmd).await;
}

async fn finish_lost_brokers(cluster: &RedisCluster) {
    let keys = &cluster.keys;
    let mut cmd = redis::cmd("HGETALL");
    cmd.arg(keys.brokers());
    let Ok(brokers) = cluster.link.query::<HashMap<String, String>>(&cmd).await else { return };
    let others: Vec<(&String, &String)> =
        brokers.iter().filter(|(id, _)| **id != cluster.broker_id).collect();
    if others.is_empty() {
        return;
    }
    let mut pipeline = redis::pipe();
    for (id, _) in &others {
        pipeline.cmd("EXISTS").arg(keys.lease(id));
    }
    let Ok(alive) = cluster.link.pipeline(&pipeline).await else { return };
    for ((id, info), alive) in others.into_iter().zip(alive) {
        if !matches!(alive, Value::Int(0)) {
            continue;
        }
        let info = serde_json::from_str::<serde_json::Value>(info).unwrap_or_default();
        // Judged only after this broker has been connected for the other's whole lease:
        // after an outage, each broker gets that long to renew.
        let lease = info["leaseMs"].as_u64().map_or(cluster.settings.lease, Duration::from_millis);
        if cluster.link.ready_for() < lease {
            continue;
        }
        finish_broker(cluster, id, info["renewedAt"].as_f64()).await;
    }
}

/// Finishes the sessions of broker `lost`, if this broker wins its lock.
async fn finish_broker(cluster: &RedisCluster, lost: &str, renewed_at: Option<f64>) {
    let keys = &cluster.keys;
    let lock_ms = cluster.settings.lease.as_millis() as u64 * 2;
    let mut cmd = redis::cmd("SET");
    cmd.arg(keys.reaper(lost)).arg(&cluster.broker_id).arg("NX").arg("PX").arg(lock_ms);
    if !matches!(cluster.link.query::<Option<String>>(&cmd).await, Ok(Some(_))) {
        return;
    }
    let mut cmd = redis::cmd("SMEMBERS");
    cmd.arg(keys.broker_sessions(lost));
    let Ok(sessions) = cluster.link.query::<Vec<String>>(&cmd).await else { return };
    let detected_at = now_epoch_ms();
    for id in &sessions {
        // A session whose log moved meanwhile is read again (a write of the lost broker
        // may still have been in flight).
        for _ in 0..3 {
            match finish_session(cluster, lost, id, renewed_at, detected_at).await {
                Some(true) | None => break,
                Some(false) => continue,
            }
        }
    }
    let mut pipeline = redis::pipe();
    pipeline
        .cmd("SET")
        .arg(keys.lost(lost))
        .arg(&cluster.broker_id)
        .arg("PX")
        .arg(24 * 3600 * 1000)
        .ignore()
        .cmd("DEL")
        .arg(keys.broker_sessions(lost))
        .ignore()
        .cmd("HDEL")
        .arg(keys.brokers())
        .arg(lost)
        .ignore();
    let _ = cluster.link.pipeline(&pipeline).await;
}

/// Writes `error` and `final` (`BROKER_LOST`) after the last stored event of session `id`.
/// `Some(true)` done or nothing to do, `Some(false)` to read again, `None` on failure.
async fn finish_session(
    cluster: &RedisCluster,
    lost: &str,
    id: &str,
    renewed_at: Option<f64>,
    detected_at: f64,
) -> Option<bool> {
    let keys = &cluster.keys;
    let mut cmd = redis::cmd("HMGET");
    cmd.arg(keys.session(id)).arg(&["broker", "lastSeq", "ended", "createdAt", "expiresAt", "toolCallCount"]);
    let fields = cluster.link.query::<Vec<Option<String>>>(&cmd).await.ok()?;
    let field = |i: usize| fields.get(i).cloned().flatten();
    if field(0).as_deref() != Some(lost) || field(2).as_deref() == Some("1") {
        return Some(true);
    }
    let number = |i: usize| field(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let last = number(1) as u64;
    let message = format!(
        "The broker running this session ({lost}) stopped renewing its lease; broker {} finished the session",
        cluster.broker_id
    );
    let details = lost_details(lost, renewed_at, detected_at);
    let error = StreamEvent::new(
        id,
        last + 1,
        EventType::Error,
        &payload::error(ErrorCode::BROKER_LOST, &message, false, Some(&details)),
    );
    let stats = payload::final_stats((detected_at - number(3)).max(0.0), number(5) as u64, 0);
    let last_event = StreamEvent::new(
        id,
        last + 2,
        EventType::Final,
        &payload::final_err(ErrorCode::BROKER_LOST, &message, None, None, &stats),
    );
    let expires_at = format!("{:.0}", number(4));
    let mut invocation = scripts::FINISH_LOST.prepare_invoke();
    invocation
        .key(keys.session(id))
        .key(keys.events(id))
        .arg(lost)
        .arg(last)
        .arg(&cluster.broker_id)
        .arg(&expires_at);
    for event in [&error, &last_event] {
        invocation.arg(format!("{}:{}", event.seq(), event.kind().as_str())).arg(event.json());
    }
    match cluster.link.invoke::<i64>(invocation).await.ok()? {
        -1 => Some(false),
        _ => Some(true),
    }
}

/// The broker's own exit: its lease goes at once. Its entry goes too when it runs no
/// unfinished session; otherwise the others see the lease gone and finish those sessions.
pub async fn leave(cluster: &Arc<RedisCluster>) {
    let keys = &cluster.keys;
    let id = &cluster.broker_id;
    let mut pipeline = redis::pipe();
    pipeline.cmd("DEL").arg(keys.lease(id)).ignore().cmd("SCARD").arg(keys.broker_sessions(id));
    if let Ok(reply) = cluster.link.pipeline(&pipeline).await
        && matches!(reply.first(), Some(Value::Int(0)))
    {
        let mut cmd = redis::cmd("HDEL");
        cmd.arg(keys.brokers()).arg(id);
        let _ = cluster.link.query::<i64>(&cmd).await;
    }
}
