//! The engine pool. An execution goes to an idle engine process whose next context is
//! already prepared, or waits in a queue. One execution per process means a script that
//! spins, crashes V8 or has to be killed only ever costs itself: other sessions run in
//! their own processes.
//!
//! Processes are added while work is queued, a few at a time. Up to one per core they
//! start at once; beyond that only for work that has waited `GROW_DELAY`, so a burst of
//! short executions is served by the processes that exist (more processes than cores
//! cannot run short scripts faster), while executions that hold their process waiting on
//! tools still get new ones. A guard thread kills a busy process whose memory passes its
//! ceiling and retires processes idle above the minimum.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::control::ExecutionControl;
use super::outcome::{ExecutionOutcome, InterruptReason};
use super::process::EngineProcess;
use super::timer::{self, Ticket};
use super::{ExecutionRequest, memory_ceiling};
use crate::protocol::{ErrorCode, ErrorInfo};

/// How long queued work waits for a busy process before the pool grows past one
/// process per core for it. Starting a process takes longer than this.
const GROW_DELAY: Duration = Duration::from_millis(5);

pub(crate) struct Job {
    exec: u64,
    request: ExecutionRequest,
    control: Arc<ExecutionControl>,
    queued_at: Instant,
    timeout: Option<Ticket>,
}

struct State {
    idle: VecDeque<Arc<EngineProcess>>,
    queued: VecDeque<Job>,
    processes: Vec<Arc<EngineProcess>>,
    starting: usize,
    next_id: u64,
    executions: u64,
    guard_started: bool,
    /// A later look at the queue, armed while queued work waits for `GROW_DELAY`.
    grow_check: Option<Ticket>,
}

pub(crate) struct Pool {
    state: Mutex<State>,
    executable: Mutex<Option<PathBuf>>,
    max_processes: usize,
    min_processes: usize,
    max_starting: usize,
    idle_timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolStats {
    pub processes: usize,
    pub idle: usize,
    pub queued: usize,
    pub executions: u64,
    /// Processes the broker had to kill while they ran: a stop not honoured within the
    /// grace period, or memory past the ceiling. Stops normally end without a kill.
    pub killed: u64,
}

static KILLED: AtomicU64 = AtomicU64::new(0);

pub(crate) fn count_kill() {
    KILLED.fetch_add(1, Ordering::Relaxed);
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
            processes: Vec::new(),
            starting: 0,
            next_id: 1,
            executions: 0,
            guard_started: false,
            grow_check: None,
        }),
        executable: Mutex::new(std::env::var_os("ENCLAVE_BROKER_ENGINE").map(PathBuf::from)),
        max_processes: env_usize("ENCLAVE_BROKER_MAX_ENGINES").unwrap_or(256).max(1),
        min_processes: env_usize("ENCLAVE_BROKER_MIN_ENGINES").unwrap_or(2),
        max_starting: std::thread::available_parallelism().map_or(2, |n| n.get()).max(2),
        idle_timeout: Duration::from_secs(30),
    })
}

/// Where the `enclave-engine` binary is (the embedder knows; tests point at cargo's build).
pub fn set_executable(path: impl Into<PathBuf>) {
    *global().executable.lock().unwrap_or_else(|p| p.into_inner()) = Some(path.into());
}

/// Starts engine processes (each with an isolate and a prepared context) until `count` exist.
pub fn prewarm(count: usize) {
    let pool = global();
    let memory_limit = super::SandboxOptions::default().effective_memory_limit();
    let spawn = {
        let mut state = pool.lock();
        let mut spawn = Vec::new();
        while state.processes.len() + spawn.len() < count.min(pool.max_processes) {
            spawn.push((pool.new_id(&mut state), memory_limit));
        }
        spawn
    };
    pool.start(spawn);
}

pub fn pool_stats() -> PoolStats {
    let state = global().lock();
    PoolStats {
        processes: state.processes.len(),
        idle: state.idle.len(),
        queued: state.queued.len(),
        executions: state.executions,
        killed: KILLED.load(Ordering::Relaxed),
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn new_id(&self, state: &mut State) -> u64 {
        let id = state.next_id;
        state.next_id += 1;
        state.starting += 1;
        id
    }

    pub(crate) fn submit(&'static self, request: ExecutionRequest, control: Arc<ExecutionControl>) {
        let memory_limit = request.sandbox.effective_memory_limit();
        // The timeout runs from submission: time spent waiting for a process counts against
        // it, so a queue behind busy processes cannot stretch it (a queued job that times
        // out is settled by its queued hook).
        let timeout = request.timeout.map(|t| {
            let control = control.clone();
            timer::arm(Instant::now() + t, move || control.interrupt(InterruptReason::Timeout))
        });
        let mut state = self.lock();
        state.executions += 1;
        let exec = state.next_id;
        state.next_id += 1;
        // Prefer a process whose isolate already has the right heap size.
        if let Some(i) = state.idle.iter().position(|p| p.memory_limit == memory_limit) {
            let process = state.idle.remove(i).expect("index in range");
            drop(state);
            return process.run(exec, request, control, timeout);
        }
        let queued_control = control.clone();
        state.queued.push_back(Job { exec, request, control, queued_at: Instant::now(), timeout });
        let spawn = self.grow(&mut state);
        drop(state);
        // Settles the job at once if it is cancelled (or its deadline passes) while queued.
        queued_control.set_queued_hook(Box::new(move || self.settle_queued(exec)));
        self.start(spawn);
    }

    /// Processes to start for the queue, at most `max_starting` starting at once. When no
    /// more may exist, an idle process with another heap size takes the job (it rebuilds
    /// its isolate for it).
    fn grow(&'static self, state: &mut State) -> Vec<(u64, usize)> {
        let mut spawn = Vec::new();
        let now = Instant::now();
        while state.queued.len() > state.starting && state.starting < self.max_starting {
            // `processes` already holds every started process, ready or not.
            let total = state.processes.len() + spawn.len();
            let queued_at = state.queued[state.starting].queued_at;
            if total >= self.max_starting && now.duration_since(queued_at) < GROW_DELAY {
                if state.grow_check.is_none() {
                    state.grow_check = Some(timer::arm(queued_at + GROW_DELAY, move || self.grow_check()));
                }
                break;
            }
            if total >= self.max_processes {
                if state.idle.is_empty() {
                    break;
                }
                let (Some(process), Some(job)) = (state.idle.pop_front(), state.queued.pop_front()) else {
                    break;
                };
                job.control.clear_queued_hook();
                process.run(job.exec, job.request, job.control, job.timeout);
                continue;
            }
            let memory_limit = state.queued[state.starting].request.sandbox.effective_memory_limit();
            spawn.push((self.new_id(state), memory_limit));
        }
        spawn
    }

    fn grow_check(&'static self) {
        let spawn = {
            let mut state = self.lock();
            // Fired: forgetting the ticket disarms nothing, and lets `grow` arm a new one.
            state.grow_check = None;
            self.grow(&mut state)
        };
        self.start(spawn);
    }

    fn start(&'static self, spawn: Vec<(u64, usize)>) {
        if spawn.is_empty() {
            return;
        }
        self.start_guard();
        let executable = self.executable.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (id, memory_limit) in spawn {
            let started = match &executable {
                Some(path) => EngineProcess::spawn(self, id, memory_limit, path).map_err(|e| e.to_string()),
                None => Err("no engine executable is configured (ENCLAVE_BROKER_ENGINE)".to_string()),
            };
            match started {
                Ok(process) => self.lock().processes.push(process),
                Err(reason) => self.start_failed(&reason),
            }
        }
    }

    /// A process could not start. If none exists to run the queue, the queue fails.
    fn start_failed(&self, reason: &str) {
        let failed: Vec<Job> = {
            let mut state = self.lock();
            state.starting = state.starting.saturating_sub(1);
            if state.processes.is_empty() && state.starting == 0 {
                state.queued.drain(..).collect()
            } else {
                Vec::new()
            }
        };
        for job in failed {
            job.control.clear_queued_hook();
            job.request.settle(ExecutionOutcome::Threw(ErrorInfo::new(
                ErrorCode::ENGINE_CRASHED,
                format!("Could not start an engine process: {reason}"),
            )));
        }
    }

    fn settle_queued(&self, exec: u64) {
        let job = {
            let mut state = self.lock();
            let position = state.queued.iter().position(|j| j.exec == exec);
            position.and_then(|i| state.queued.remove(i))
        };
        if let Some(job) = job {
            job.request.settle_unstarted(&job.control);
        }
    }

    /// A process has a prepared context: it takes a queued job or waits.
    pub(crate) fn process_ready(&'static self, process: &Arc<EngineProcess>) {
        let mut state = self.lock();
        if process.mark_started() {
            state.starting = state.starting.saturating_sub(1);
        }
        let job = state.queued.pop_front();
        let spawn = if job.is_none() {
            *process.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            state.idle.push_back(process.clone());
            Vec::new()
        } else {
            self.grow(&mut state)
        };
        drop(state);
        if let Some(job) = job {
            job.control.clear_queued_hook();
            process.run(job.exec, job.request, job.control, job.timeout);
        }
        self.start(spawn);
    }

    pub(crate) fn process_exited(&'static self, process: &Arc<EngineProcess>) {
        let spawn = {
            let mut state = self.lock();
            state.processes.retain(|p| !Arc::ptr_eq(p, process));
            if process.mark_started() {
                // It died before its first Ready.
                state.starting = state.starting.saturating_sub(1);
            }
            state.idle.retain(|p| !Arc::ptr_eq(p, process));
            self.grow(&mut state)
        };
        self.start(spawn);
    }

    /// Every 50 ms: kill a busy process whose memory is past its ceiling; retire processes
    /// idle for `idle_timeout` while more than `min_processes` exist.
    fn start_guard(&'static self) {
        {
            let mut state = self.lock();
            if state.guard_started {
                return;
            }
            state.guard_started = true;
        }
        let spawned = std::thread::Builder::new().name("enclave-engine-guard".into()).spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(50));
                let (processes, retire) = {
                    let mut state = self.lock();
                    let now = Instant::now();
                    let mut retire = Vec::new();
                    while state.processes.len() > self.min_processes {
                        let stale = state.idle.iter().position(|p| {
                            let since = *p.idle_since.lock().unwrap_or_else(|e| e.into_inner());
                            since.is_some_and(|s| now.duration_since(s) >= self.idle_timeout)
                        });
                        let Some(i) = stale else { break };
                        let process = state.idle.remove(i).expect("index in range");
                        state.processes.retain(|p| !Arc::ptr_eq(p, &process));
                        retire.push(process);
                    }
                    (state.processes.clone(), retire)
                };
                for process in retire {
                    process.retire();
                }
                for process in processes {
                    let Some(exec) = process.running_exec() else { continue };
                    if resident_bytes(process.pid())
                        .is_some_and(|rss| rss > memory_ceiling(process.memory_limit))
                    {
                        process.kill_if_running(exec, InterruptReason::MemoryLimit);
                    }
                }
            }
        });
        if spawned.is_err() {
            self.lock().guard_started = false;
        }
    }
}

/// Resident memory of a process, from `/proc/<pid>/status`.
fn resident_bytes(pid: u32) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
