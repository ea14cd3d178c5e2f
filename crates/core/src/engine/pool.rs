//! The engine pool. An execution goes to an idle engine thread whose next context is
//! already prepared; if none is idle a new thread starts (up to a cap, then executions
//! queue). One execution per thread at a time means a script that spins only ever holds
//! its own thread: other sessions keep running on theirs. Idle threads above the minimum
//! exit after a while, releasing their isolates.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::ExecutionRequest;
use super::control::ExecutionControl;
use super::worker::{self, JobSender};

pub(crate) struct Job {
    pub request: ExecutionRequest,
    pub control: Arc<ExecutionControl>,
}

struct IdleWorker {
    id: u64,
    memory_limit: usize,
    sender: JobSender,
}

struct State {
    idle: VecDeque<IdleWorker>,
    queued: VecDeque<Job>,
    workers: usize,
    next_id: u64,
    executions: u64,
}

pub(crate) struct Pool {
    state: Mutex<State>,
    max_workers: usize,
    min_workers: usize,
    idle_timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    pub workers: usize,
    pub idle: usize,
    pub queued: usize,
    pub executions: u64,
}

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

pub(crate) fn global() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(State {
            idle: VecDeque::new(),
            queued: VecDeque::new(),
            workers: 0,
            next_id: 1,
            executions: 0,
        }),
        max_workers: env_usize("ENCLAVE_BROKER_MAX_ENGINE_THREADS").unwrap_or(256).max(1),
        min_workers: env_usize("ENCLAVE_BROKER_MIN_ENGINE_THREADS").unwrap_or(2),
        idle_timeout: worker::default_idle_timeout(),
    })
}

/// Starts engine threads (with isolates and prepared contexts) until `count` exist.
pub fn prewarm(count: usize) {
    let pool = global();
    let memory_limit = super::SandboxOptions::default().effective_memory_limit();
    let mut state = pool.lock();
    while state.workers < count.min(pool.max_workers) {
        let id = pool.new_worker(&mut state);
        worker::spawn(pool, id, memory_limit, None);
    }
}

pub fn pool_stats() -> PoolStats {
    let state = global().lock();
    PoolStats {
        workers: state.workers,
        idle: state.idle.len(),
        queued: state.queued.len(),
        executions: state.executions,
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn new_worker(&'static self, state: &mut State) -> u64 {
        let id = state.next_id;
        state.next_id += 1;
        state.workers += 1;
        id
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    pub(crate) fn submit(&'static self, request: ExecutionRequest, control: Arc<ExecutionControl>) {
        let mut job = Job { request, control };
        let memory_limit = job.request.sandbox.effective_memory_limit();
        let mut state = self.lock();
        state.executions += 1;
        loop {
            let matching = state.idle.iter().position(|w| w.memory_limit == memory_limit);
            let chosen = match matching {
                Some(i) => state.idle.remove(i),
                None if state.workers < self.max_workers => {
                    let id = self.new_worker(&mut state);
                    drop(state);
                    worker::spawn(self, id, memory_limit, Some(job));
                    return;
                }
                // At the cap: an idle thread with another heap size rebuilds its isolate.
                None => state.idle.pop_front(),
            };
            match chosen {
                Some(idle) => match idle.sender.send(job) {
                    Ok(()) => return,
                    // That thread is exiting; try the next one.
                    Err(returned) => job = returned.0,
                },
                None => {
                    state.queued.push_back(job);
                    return;
                }
            }
        }
    }

    /// A thread with a prepared context is free: it takes a queued job or waits.
    pub(crate) fn worker_idle(&self, id: u64, memory_limit: usize, sender: &JobSender) -> Option<Job> {
        let mut state = self.lock();
        if let Some(job) = state.queued.pop_front() {
            return Some(job);
        }
        state.idle.push_back(IdleWorker { id, memory_limit, sender: sender.clone() });
        None
    }

    /// Called when a thread has been idle for `idle_timeout`. It may exit only if it is
    /// still registered idle (no job raced in) and the pool stays above its minimum.
    pub(crate) fn try_retire(&self, id: u64) -> bool {
        let mut state = self.lock();
        if state.workers <= self.min_workers {
            return false;
        }
        match state.idle.iter().position(|w| w.id == id) {
            Some(i) => {
                state.idle.remove(i);
                state.workers -= 1;
                true
            }
            None => false,
        }
    }

    /// A thread could not start. Its first job fails rather than waiting forever.
    pub(crate) fn worker_failed(&self, orphan: Option<Job>) {
        self.lock().workers -= 1;
        if let Some(mut job) = orphan {
            let done = std::mem::replace(&mut job.request.done, Box::new(|_| {}));
            done(super::ExecutionOutcome::Threw(crate::protocol::ErrorInfo::new(
                crate::protocol::ErrorCode::EXECUTION_ERROR,
                "Could not start an engine thread",
            )));
        }
    }
}
