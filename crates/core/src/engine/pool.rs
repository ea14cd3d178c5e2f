//! The engine pool. An execution goes to an engine process of its memory limit that has a
//! free isolate (the busiest such process, so that work packs into few processes and idle
//! ones can retire), or waits in a queue. Each isolate runs one execution at a time, so an
//! execution that waits on a tool holds an isolate and its context, not a process; a script
//! that crashes V8 or has to be killed costs only the executions of its own process.
//!
//! Executions are admitted while the memory ceilings of the admitted ones fit the pool's
//! budget (`budget`); the others wait, first come first served, with their wait counted in
//! their timeout (it is armed when they are submitted). Processes are added while admitted
//! work waits for a free isolate, a few at a time, each bringing `isolates_per_engine`
//! isolates. Up to one per core they start at once; beyond that only for work that has
//! waited `GROW_DELAY`. A process only ever runs scripts of the memory limit it was started
//! with (its rlimits are sized from it). A guard thread kills a busy process whose memory
//! passes its ceiling (the sum of its isolates') and retires processes idle above the
//! minimum.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::budget::{AtCapacity, BudgetConfig};
use super::control::ExecutionControl;
use super::job::Job;
use super::outcome::{ExecutionOutcome, InterruptReason};
use super::pool_events::PoolEvents;
use super::process::EngineProcess;
use super::timer::{self, Ticket};
use super::{DEFAULT_ISOLATES_PER_ENGINE, ExecutionRequest, MAX_ISOLATES_PER_ENGINE, execution_ceiling};
use crate::protocol::{ErrorCode, ErrorInfo};

/// How long queued work waits for a busy process before the pool grows past one
/// process per core for it. Starting a process takes longer than this.
const GROW_DELAY: Duration = Duration::from_millis(5);

/// How long a process above the minimum stays without work before it is retired. With the
/// isolates' own retirement (`child::isolates`), memory a burst took is given back within
/// about five seconds.
const IDLE_TIMEOUT: Duration = Duration::from_secs(4);

struct State {
    queued: VecDeque<Job>,
    /// Every process started and not yet ended or retired, ready or not.
    processes: Vec<Arc<EngineProcess>>,
    /// The memory limits and isolate counts of the processes started and not yet ready.
    starting: Vec<(usize, usize)>,
    next_id: u64,
    executions: u64,
    guard_started: bool,
    /// A later look at the queue, armed while queued work waits for `GROW_DELAY`.
    grow_check: Option<Ticket>,
    budget: BudgetConfig,
    /// Sum of the ceilings of the executions running now.
    admitted: usize,
    /// Isolates of each process started from now on.
    isolates: usize,
    /// Processes that ended while they ran executions, and those executions.
    crashed: u64,
    lost: u64,
}

impl State {
    /// Whether a job of `ceiling`, behind queued jobs with `ahead` bytes of ceilings, fits
    /// the budget with what runs. The first job always does: a budget smaller than one
    /// ceiling runs one execution at a time.
    fn room_for(&self, ahead: usize, ceiling: usize) -> bool {
        self.admitted == 0 && ahead == 0
            || self.admitted.saturating_add(ahead).saturating_add(ceiling) <= self.budget.memory_bytes
    }

    /// A process started for `memory_limit` is ready, or will never be.
    fn done_starting(&mut self, memory_limit: usize) {
        if let Some(i) = self.starting.iter().position(|(limit, _)| *limit == memory_limit) {
            self.starting.swap_remove(i);
        }
    }

    /// The started process of `memory_limit` with a free isolate and the most work.
    fn process_with_room(&self, memory_limit: usize) -> Option<Arc<EngineProcess>> {
        self.processes
            .iter()
            .filter(|p| p.memory_limit == memory_limit && p.is_started() && load(p) < p.isolates)
            .max_by_key(|p| load(p))
            .cloned()
    }

    /// The queued jobs the budget admits (a prefix: first come first served, and the ones
    /// that wait for an engine process to start), and the sum of their ceilings.
    fn admissible(&self) -> (usize, usize) {
        let mut ceilings = 0usize;
        for (count, job) in self.queued.iter().enumerate() {
            if !self.room_for(ceilings, job.ceiling) {
                return (count, ceilings);
            }
            ceilings = ceilings.saturating_add(job.ceiling);
        }
        (self.queued.len(), ceilings)
    }

    /// `Err` if a new job with `ceiling` would wait for the budget while `max_queued` jobs
    /// already do.
    fn admit_or_refuse(&self, ceiling: usize) -> Result<(), AtCapacity> {
        let (admissible, ceilings) = self.admissible();
        let waiting = self.queued.len() - admissible;
        let would_wait = waiting > 0 || !self.room_for(ceilings, ceiling);
        if would_wait && waiting >= self.budget.max_queued {
            return Err(AtCapacity { queued: waiting, config: self.budget, admitted: self.admitted });
        }
        Ok(())
    }
}

/// Executions a process has been given and not yet finished (changed under the pool's lock).
fn load(process: &EngineProcess) -> usize {
    process.load.load(Ordering::Relaxed)
}

/// Processes paired with the queued jobs they take, to be run once the lock is released.
type Dispatch = Vec<(Arc<EngineProcess>, Job)>;

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
    /// Processes running no execution.
    pub idle: usize,
    /// Executions running now (each in an isolate of its own).
    pub running: usize,
    /// Isolates of each process started from now on.
    pub isolates_per_engine: usize,
    /// Processes that ended (a V8 fatal error, a kill) while they ran executions, and the
    /// executions that ended with them.
    pub crashed: u64,
    pub lost_executions: u64,
    pub queued: usize,
    pub executions: u64,
    /// Processes the broker had to kill while they ran: a stopped execution still running
    /// long after it was detached, or memory past the ceiling. Stops normally end without a kill.
    pub killed: u64,
    /// Stopped executions that did not stop within the grace period and were ended without
    /// waiting for their isolate (a builtin that ignores V8's termination).
    pub detached: u64,
    pub budget: BudgetConfig,
    /// Sum of the memory ceilings of the executions running now.
    pub admitted_bytes: usize,
}

static KILLED: AtomicU64 = AtomicU64::new(0);
static DETACHED: AtomicU64 = AtomicU64::new(0);

fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

pub(crate) fn global() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(State {
            queued: VecDeque::new(),
            processes: Vec::new(),
            starting: Vec::new(),
            next_id: 1,
            executions: 0,
            guard_started: false,
            grow_check: None,
            budget: BudgetConfig::from_environment(),
            admitted: 0,
            isolates: env_usize("ENCLAVE_BROKER_ISOLATES_PER_ENGINE")
                .unwrap_or(DEFAULT_ISOLATES_PER_ENGINE)
                .clamp(1, MAX_ISOLATES_PER_ENGINE),
            crashed: 0,
            lost: 0,
        }),
        executable: Mutex::new(std::env::var_os("ENCLAVE_BROKER_ENGINE").map(PathBuf::from)),
        max_processes: env_usize("ENCLAVE_BROKER_MAX_ENGINES").unwrap_or(256).max(1),
        min_processes: env_usize("ENCLAVE_BROKER_MIN_ENGINES").unwrap_or(2),
        max_starting: std::thread::available_parallelism().map_or(2, |n| n.get()).max(2),
        idle_timeout: IDLE_TIMEOUT,
    })
}

/// Where the `enclave-engine` binary is (the embedder knows; tests point at cargo's build).
pub fn set_executable(path: impl Into<PathBuf>) {
    *global().executable.lock().unwrap_or_else(|p| p.into_inner()) = Some(path.into());
}

/// Changes the pool's memory budget and queue bound (`None` keeps a value). Work waiting
/// for the budget is admitted at once if the new one has room.
pub fn configure(memory_bytes: Option<usize>, max_queued: Option<usize>) -> BudgetConfig {
    let pool = global();
    let (dispatch, spawn, config) = {
        let mut state = pool.lock();
        if let Some(bytes) = memory_bytes {
            state.budget.memory_bytes = bytes;
        }
        if let Some(max) = max_queued {
            state.budget.max_queued = max;
        }
        let (dispatch, spawn) = pool.schedule(&mut state);
        (dispatch, spawn, state.budget)
    };
    run_all(dispatch);
    pool.start(spawn);
    config
}

/// Sets how many isolates each engine process started from now on hosts (at least 1, at
/// most `MAX_ISOLATES_PER_ENGINE`); returns the value in force.
pub fn configure_isolates(isolates: usize) -> usize {
    let mut state = global().lock();
    state.isolates = isolates.clamp(1, MAX_ISOLATES_PER_ENGINE);
    state.isolates
}

/// `Err` when the pool would refuse an execution of `memory_limit` now (it would wait for
/// the budget, and `max_queued` executions already do): the HTTP server asks before it
/// creates a session, and answers 503.
pub fn check_capacity(memory_limit: usize) -> Result<(), AtCapacity> {
    let state = global().lock();
    state.admit_or_refuse(execution_ceiling(memory_limit.max(super::MIN_MEMORY_LIMIT), state.isolates))
}

/// Starts engine processes (each with an isolate and its first context) until `count` exist.
pub fn prewarm(count: usize) {
    let pool = global();
    let memory_limit = super::SandboxOptions::default().effective_memory_limit();
    let spawn = {
        let mut state = pool.lock();
        let mut spawn = Vec::new();
        while state.processes.len() + spawn.len() < count.min(pool.max_processes) {
            spawn.push(pool.new_process(&mut state, memory_limit));
        }
        spawn
    };
    pool.start(spawn);
}

/// Starts an engine process for scripts run with `sandbox` unless one exists: a broker calls
/// it when it is built, so that its first execute finds a process started (or starting)
/// while Node sets the execution up, instead of starting one only then.
pub fn prewarm_for(sandbox: &super::SandboxOptions) {
    let pool = global();
    let memory_limit = sandbox.effective_memory_limit();
    let spawn = {
        let mut state = pool.lock();
        let exists = state.processes.iter().any(|p| p.memory_limit == memory_limit)
            || state.starting.iter().any(|(limit, _)| *limit == memory_limit);
        if exists || state.processes.len() >= pool.max_processes {
            return;
        }
        vec![pool.new_process(&mut state, memory_limit)]
    };
    pool.start(spawn);
}

static SANDBOX: OnceLock<Vec<String>> = OnceLock::new();

/// The confinement layers of this process's engines, once one has started.
pub fn sandbox_report() -> Option<Vec<String>> {
    SANDBOX.get().cloned()
}

pub fn pool_stats() -> PoolStats {
    let state = global().lock();
    PoolStats {
        processes: state.processes.len(),
        idle: state.processes.iter().filter(|p| p.is_started() && load(p) == 0).count(),
        running: state.processes.iter().map(|p| load(p)).sum(),
        isolates_per_engine: state.isolates,
        crashed: state.crashed,
        lost_executions: state.lost,
        queued: state.queued.len(),
        executions: state.executions,
        killed: KILLED.load(Ordering::Relaxed),
        detached: DETACHED.load(Ordering::Relaxed),
        budget: state.budget,
        admitted_bytes: state.admitted,
    }
}

fn run_all(dispatch: Dispatch) {
    for (process, job) in dispatch {
        job.control.clear_queued_hook();
        process.run(job);
    }
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A process about to be started for `memory_limit`: its id, limit and isolates.
    fn new_process(&self, state: &mut State, memory_limit: usize) -> (u64, usize, usize) {
        let id = state.next_id;
        state.next_id += 1;
        state.starting.push((memory_limit, state.isolates));
        (id, memory_limit, state.isolates)
    }

    pub(crate) fn submit(&'static self, request: ExecutionRequest, control: Arc<ExecutionControl>) {
        let memory_limit = request.sandbox.effective_memory_limit();
        // The timeout runs from submission: time spent waiting for a process (or for the
        // budget) counts against it, so a queue cannot stretch it (a queued job that times
        // out is settled by its queued hook).
        let timeout = request.timeout.map(|t| {
            let control = control.clone();
            timer::arm(Instant::now() + t, move || control.interrupt(InterruptReason::Timeout))
        });
        let (exec, isolates) = {
            let mut state = self.lock();
            state.executions += 1;
            let exec = state.next_id;
            state.next_id += 1;
            (exec, state.isolates)
        };
        // Settles the job at once if it is cancelled (or its deadline or timeout passes) while
        // it waits; a job that already left the queue is not touched.
        control.set_queued_hook(Box::new(move || self.settle_queued(exec)));
        let job = Job {
            exec,
            request,
            control,
            queued_at: Instant::now(),
            timeout,
            ceiling: execution_ceiling(memory_limit, isolates),
        };
        let (dispatch, spawn) = {
            let mut state = self.lock();
            if let Err(full) = state.admit_or_refuse(job.ceiling) {
                drop(state);
                job.control.clear_queued_hook();
                job.control.finish();
                return job.request.settle(ExecutionOutcome::Threw(full.error_info()));
            }
            state.queued.push_back(job);
            self.schedule(&mut state)
        };
        run_all(dispatch);
        self.start(spawn);
    }

    /// Hands queued jobs to processes of their memory limit with a free isolate, first come
    /// first served within the budget: a job that does not fit stops the pass, so no later
    /// job takes the room it waits for, while jobs that fit but wait for an isolate of their
    /// limit keep their share reserved and let later ones through. Then starts processes for
    /// those.
    fn schedule(&'static self, state: &mut State) -> (Dispatch, Vec<(u64, usize, usize)>) {
        let mut dispatch = Vec::new();
        let mut reserved = 0usize;
        let mut index = 0;
        while index < state.queued.len() {
            let (ceiling, limit) = (state.queued[index].ceiling, state.queued[index].memory_limit());
            if !state.room_for(reserved, ceiling) {
                break;
            }
            match state.process_with_room(limit) {
                Some(process) => {
                    let job = state.queued.remove(index).expect("index in range");
                    process.load.fetch_add(1, Ordering::Relaxed);
                    state.admitted += job.ceiling;
                    dispatch.push((process, job));
                }
                None => {
                    reserved = reserved.saturating_add(ceiling);
                    index += 1;
                }
            }
        }
        let spawn = self.grow(state, index);
        (dispatch, spawn)
    }

    /// Processes to start for the first `waiting` queued jobs (admitted, without a free
    /// isolate of their limit), those that the isolates of starting processes will not take;
    /// at most `max_starting` starting at once. When no more may exist, an idle process
    /// started for another memory limit is retired to make room.
    fn grow(&'static self, state: &mut State, waiting: usize) -> Vec<(u64, usize, usize)> {
        let mut spawn = Vec::new();
        let now = Instant::now();
        // The isolates of starting processes, which jobs are counted against.
        let mut covered = state.starting.clone();
        for index in 0..waiting {
            if state.starting.len() >= self.max_starting {
                break;
            }
            let (memory_limit, queued_at) =
                (state.queued[index].memory_limit(), state.queued[index].queued_at);
            if let Some(slot) = covered.iter_mut().find(|(limit, free)| *limit == memory_limit && *free > 0) {
                slot.1 -= 1;
                continue;
            }
            // `processes` already holds every started process, ready or not.
            let total = state.processes.len() + spawn.len();
            if total >= self.max_starting && now.duration_since(queued_at) < GROW_DELAY {
                if state.grow_check.is_none() {
                    state.grow_check = Some(timer::arm(queued_at + GROW_DELAY, move || self.grow_check()));
                }
                break;
            }
            if total >= self.max_processes {
                let Some(i) = state
                    .processes
                    .iter()
                    .position(|p| p.memory_limit != memory_limit && p.is_started() && load(p) == 0)
                else {
                    break;
                };
                let retired = state.processes.remove(i);
                retired.retire();
            }
            let process = self.new_process(state, memory_limit);
            covered.push((memory_limit, process.2 - 1));
            spawn.push(process);
        }
        spawn
    }

    fn grow_check(&'static self) {
        let (dispatch, spawn) = {
            let mut state = self.lock();
            // Fired: forgetting the ticket disarms nothing, and lets `grow` arm a new one.
            state.grow_check = None;
            self.schedule(&mut state)
        };
        run_all(dispatch);
        self.start(spawn);
    }

    fn start(&'static self, spawn: Vec<(u64, usize, usize)>) {
        if spawn.is_empty() {
            return;
        }
        self.start_guard();
        let executable = self.executable.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for (id, memory_limit, isolates) in spawn {
            let register = |process: &Arc<EngineProcess>| self.lock().processes.push(process.clone());
            let started = match &executable {
                Some(path) => EngineProcess::spawn(self, id, memory_limit, isolates, path, register)
                    .map_err(|e| e.to_string()),
                None => Err("no engine executable is configured (ENCLAVE_BROKER_ENGINE)".to_string()),
            };
            if let Err(reason) = started {
                self.lock().processes.retain(|p| p.id != id);
                self.start_failed(memory_limit, &reason);
            }
        }
    }

    /// A process could not start. If none exists to run the queue, the queue fails.
    fn start_failed(&self, memory_limit: usize, reason: &str) {
        let failed: Vec<Job> = {
            let mut state = self.lock();
            state.done_starting(memory_limit);
            if state.processes.is_empty() && state.starting.is_empty() {
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

    /// A process is ready (locked down, with an isolate): it takes queued jobs.
    fn ready(&'static self, id: u64) {
        let (dispatch, spawn) = {
            let mut state = self.lock();
            let Some(process) = state.processes.iter().find(|p| p.id == id).cloned() else { return };
            if process.mark_started() {
                state.done_starting(process.memory_limit);
            }
            *process.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            self.schedule(&mut state)
        };
        run_all(dispatch);
        self.start(spawn);
    }

    /// An execution admitted with `ceiling` ended in process `id`: its isolate and its share
    /// of the budget are free again.
    fn released(&'static self, id: u64, ceiling: usize) {
        let (dispatch, spawn) = {
            let mut state = self.lock();
            state.admitted = state.admitted.saturating_sub(ceiling);
            if let Some(process) = state.processes.iter().find(|p| p.id == id)
                && process.load.fetch_sub(1, Ordering::Relaxed) == 1
            {
                *process.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
            }
            self.schedule(&mut state)
        };
        run_all(dispatch);
        self.start(spawn);
    }

    fn exited(&'static self, id: u64, lost: usize) {
        let (dispatch, spawn) = {
            let mut state = self.lock();
            if lost > 0 {
                state.crashed += 1;
                state.lost += lost as u64;
            }
            let Some(i) = state.processes.iter().position(|p| p.id == id) else { return };
            let process = state.processes.remove(i);
            if process.mark_started() {
                // It died before its first Ready.
                state.done_starting(process.memory_limit);
            }
            self.schedule(&mut state)
        };
        run_all(dispatch);
        self.start(spawn);
    }

    /// Every 50 ms: kill a busy process whose memory is past its ceiling; retire processes
    /// without work for `idle_timeout` while more than `min_processes` exist.
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
                        let stale = state.processes.iter().position(|p| {
                            let since = *p.idle_since.lock().unwrap_or_else(|e| e.into_inner());
                            load(p) == 0 && since.is_some_and(|s| now.duration_since(s) >= self.idle_timeout)
                        });
                        let Some(i) = stale else { break };
                        retire.push(state.processes.remove(i));
                    }
                    (state.processes.clone(), retire)
                };
                for process in retire {
                    process.retire();
                }
                for process in processes {
                    if process.is_running()
                        && resident_bytes(process.pid()).is_some_and(|rss| rss > process.ceiling())
                    {
                        process.kill_for_memory();
                    }
                }
            }
        });
        if spawned.is_err() {
            self.lock().guard_started = false;
        }
    }
}

impl PoolEvents for Pool {
    fn process_ready(&'static self, id: u64) {
        self.ready(id);
    }

    fn execution_released(&'static self, id: u64, ceiling: usize) {
        self.released(id, ceiling);
    }

    fn process_exited(&'static self, id: u64, lost: usize) {
        self.exited(id, lost);
    }

    fn execution_detached(&'static self) {
        DETACHED.fetch_add(1, Ordering::Relaxed);
    }

    fn process_killed(&'static self) {
        KILLED.fetch_add(1, Ordering::Relaxed);
    }

    /// The first engine's report of its confinement: logged once (to stderr), kept for
    /// `sandbox_report`.
    fn process_confined(&'static self, layers: Vec<String>) {
        let mut first = false;
        SANDBOX.get_or_init(|| {
            first = true;
            layers
        });
        if first && let Some(layers) = SANDBOX.get() {
            eprintln!("enclave-broker-rs: engine sandbox: {}", layers.join("; "));
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
