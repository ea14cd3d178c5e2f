//! The engine pool. An execution goes to an idle engine thread whose next context is
//! already prepared, or waits in a queue. One execution per thread at a time means a
//! script that spins only ever holds its own thread: other sessions keep running on theirs.
//!
//! Threads are added while work is queued, a few at a time (starting one costs an isolate),
//! so a burst of short executions is served by the threads that already exist instead of
//! starting one thread each. Idle threads above the minimum exit after a while.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::ExecutionRequest;
use super::control::ExecutionControl;
use super::outcome::ExecutionOutcome;
use super::worker::{self, JobSender};

pub(crate) struct Job {
    pub id: u64,
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
    starting: usize,
    next_id: u64,
    executions: u64,
}

pub(crate) struct Pool {
    state: Mutex<State>,
    max_workers: usize,
    min_workers: usize,
    max_starting: usize,
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
            starting: 0,
            next_id: 1,
            executions: 0,
        }),
        max_workers: env_usize("ENCLAVE_BROKER_MAX_ENGINE_THREADS").unwrap_or(256).max(1),
        min_workers: env_usize("ENCLAVE_BROKER_MIN_ENGINE_THREADS").unwrap_or(2),
        max_starting: std::thread::available_parallelism().map_or(2, |n| n.get()).max(2),
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
        worker::spawn(pool, id, memory_limit);
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

    fn new_worker(&self, state: &mut State) -> u64 {
        let id = state.next_id;
        state.next_id += 1;
        state.workers += 1;
        state.starting += 1;
        id
    }

    pub(crate) fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    pub(crate) fn submit(&'static self, request: ExecutionRequest, control: Arc<ExecutionControl>) {
        let memory_limit = request.sandbox.effective_memory_limit();
        let mut state = self.lock();
        state.executions += 1;
        let mut job = Job { id: state.next_id, request, control };
        state.next_id += 1;
        // Prefer a thread whose isolate already has the right heap size.
        while let Some(i) = state.idle.iter().position(|w| w.memory_limit == memory_limit) {
            let idle = state.idle.remove(i).expect("index in range");
            match idle.sender.send(job) {
                Ok(()) => return,
                Err(returned) => job = returned.0,
            }
        }
        let job_id = job.id;
        let control = job.control.clone();
        state.queued.push_back(job);
        let spawn = self.grow(&mut state);
        drop(state);
        // Settles the job at once if it is cancelled (or its deadline passes) while queued.
        control.set_queued_hook(Box::new(move || self.settle_queued(job_id)));
        for (id, memory_limit) in spawn {
            worker::spawn(self, id, memory_limit);
        }
    }

    /// Threads to start for the queue: at most `max_starting` starting at once. When no
    /// more threads may exist, an idle thread with another heap size takes the job and
    /// rebuilds its isolate.
    fn grow(&self, state: &mut State) -> Vec<(u64, usize)> {
        let mut spawn = Vec::new();
        while state.queued.len() > state.starting && state.starting < self.max_starting {
            if state.workers >= self.max_workers {
                if let Some(idle) = state.idle.pop_front() {
                    if let Some(job) = state.queued.pop_front() {
                        job.control.clear_queued_hook();
                        if let Err(returned) = idle.sender.send(job) {
                            state.queued.push_front(returned.0);
                        }
                        continue;
                    }
                }
                break;
            }
            let memory_limit = state.queued[state.starting].request.sandbox.effective_memory_limit();
            let id = self.new_worker(state);
            spawn.push((id, memory_limit));
        }
        spawn
    }

    fn settle_queued(&self, job_id: u64) {
        let job = {
            let mut state = self.lock();
            let position = state.queued.iter().position(|j| j.id == job_id);
            position.and_then(|i| state.queued.remove(i))
        };
        if let Some(mut job) = job {
            let done = std::mem::replace(&mut job.request.done, Box::new(|_| {}));
            let reason = job.control.reason().unwrap_or(super::InterruptReason::Stopped);
            job.control.finish();
            done(ExecutionOutcome::Interrupted { reason, detail: None });
        }
    }

    /// A new thread finished starting (its isolate exists).
    pub(crate) fn worker_started(&'static self) {
        let spawn = {
            let mut state = self.lock();
            state.starting = state.starting.saturating_sub(1);
            self.grow(&mut state)
        };
        for (id, memory_limit) in spawn {
            worker::spawn(self, id, memory_limit);
        }
    }

    /// A thread with a prepared context is free: it takes a queued job or waits.
    pub(crate) fn worker_idle(&self, id: u64, memory_limit: usize, sender: &JobSender) -> Option<Job> {
        let mut state = self.lock();
        if let Some(job) = state.queued.pop_front() {
            job.control.clear_queued_hook();
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

    /// A thread could not start; the queue is served by the others (or a later start).
    pub(crate) fn worker_failed(&'static self) {
        let mut state = self.lock();
        state.workers = state.workers.saturating_sub(1);
        state.starting = state.starting.saturating_sub(1);
        if state.workers == 0 {
            // Nothing will ever run the queue: fail it rather than leave it waiting.
            let failed: Vec<Job> = state.queued.drain(..).collect();
            drop(state);
            for mut job in failed {
                job.control.clear_queued_hook();
                let done = std::mem::replace(&mut job.request.done, Box::new(|_| {}));
                done(ExecutionOutcome::Threw(crate::protocol::ErrorInfo::new(
                    crate::protocol::ErrorCode::EXECUTION_ERROR,
                    "Could not start an engine thread",
                )));
            }
        }
    }
}
