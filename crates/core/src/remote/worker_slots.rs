//! What a runtime worker's connections share: its configuration, whether it is stopping,
//! and its session slots (`maxSessions`). The worker (`worker.rs`) owns it and its
//! connections; a connection (`worker_connection.rs`) only claims and releases slots, so
//! neither file needs the other's internals.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::socket::DEFAULT_MAX_MESSAGE_BYTES;
use crate::protocol::PartialLimits;

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub host: String,
    pub port: u16,
    pub ws_path: String,
    /// Sessions this worker runs at once; more are refused with `RUNTIME_BUSY`.
    pub max_sessions: usize,
    /// Limits for what a request's `limits` leaves out.
    pub default_limits: PartialLimits,
    /// Pings every connection this often. 0 = off.
    pub heartbeat: Duration,
    /// A connection silent this long (pongs count) is dropped. 0 = never.
    pub connection_timeout: Duration,
    /// Tokens a client may present; empty = no authentication.
    pub tokens: Vec<String>,
    pub max_message_bytes: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            host: "0.0.0.0".into(),
            port: 3001,
            ws_path: "/ws".into(),
            max_sessions: 10,
            default_limits: PartialLimits::default(),
            heartbeat: Duration::from_millis(15_000),
            connection_timeout: Duration::from_millis(30_000),
            tokens: Vec::new(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

pub(crate) struct WorkerSlots {
    pub config: WorkerConfig,
    pub stopping: AtomicBool,
    pub active: AtomicUsize,
    pub total: AtomicU64,
    /// Woken whenever a session ends (a graceful stop waits on it).
    pub idle: Notify,
    pub started: Instant,
}

impl WorkerSlots {
    pub fn new(config: WorkerConfig) -> WorkerSlots {
        WorkerSlots {
            config,
            stopping: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            total: AtomicU64::new(0),
            idle: Notify::new(),
            started: Instant::now(),
        }
    }

    /// Takes a session slot unless `maxSessions` are running.
    pub fn claim_slot(&self) -> bool {
        let max = self.config.max_sessions;
        let claimed = self
            .active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .is_ok();
        if claimed {
            self.total.fetch_add(1, Ordering::Relaxed);
        }
        claimed
    }

    pub fn release_slot(&self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
        self.idle.notify_waiters();
    }
}
