//! The isolates of one engine process. Each lives on a thread of its own with its own
//! current-thread tokio runtime, and runs one execution at a time in a fresh context; a
//! context is never reused. Isolates start on demand, one ahead of demand, up to the
//! process's capacity, and one of the idle isolates holds a context prepared ahead, so a job
//! seldom waits for one: after an execution an isolate prepares its next context at once
//! only if work waits or no idle isolate has one ready (`wanted_ready`); the others prepare
//! one when a job comes. An isolate idle for `IDLE_RETIRE` ends (its memory goes back to the
//! system) unless it is the last idle one. An isolate whose execution hit a limit or was
//! stopped ends after it (a fresh isolate is cheaper to trust), without disturbing the others.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use deno_core::v8;

use super::isolate::IsolateHost;
use super::link::{Link, RemoteBridge};
use super::run::{self, RunRequest};
use super::{lockdown, sandbox, wrap};
use crate::engine::SandboxOptions;
use crate::engine::control::ExecutionControl;
use crate::engine::outcome::{ExecutionOutcome, InterruptReason};
use crate::engine::wire::FromEngine;
use crate::protocol::{ErrorCode, ErrorInfo};

/// An isolate thread: V8 keeps to about 1 MiB of it (scripts are parsed on the reader's
/// larger stack). Only touched pages cost memory.
const ISOLATE_STACK_SIZE: usize = 8 * 1024 * 1024;

/// How much lower than the process's other threads isolate threads are scheduled (a `nice`
/// value, Linux). Scripts may saturate every core; the thread that reads the broker's frames
/// (stops, tool replies) must still run at once when a frame arrives, so that a stop is
/// honoured within its grace period however many scripts spin.
#[cfg(target_os = "linux")]
const ISOLATE_NICE: libc::c_int = 5;

/// How long an isolate beyond the last idle one stays after its last execution.
const IDLE_RETIRE: Duration = Duration::from_secs(2);

/// An execution for an isolate, as read from the broker's Execute frame.
pub(crate) struct Job {
    pub exec: u64,
    pub code: String,
    pub wrapped: wrap::Wrapped,
    pub sandbox: SandboxOptions,
    pub control: Arc<ExecutionControl>,
}

/// An isolate waiting for a job.
struct Idle {
    id: u64,
    inbox: mpsc::Sender<Job>,
    /// Whether it holds a prepared context (otherwise it prepares one when a job comes).
    prepared: bool,
}

#[derive(Default)]
struct State {
    /// Isolates waiting for a job. Jobs go to prepared ones first.
    idle: Vec<Idle>,
    /// Jobs that found no idle isolate; the next one to become idle takes the first.
    waiting: VecDeque<Job>,
    /// Isolate threads started and not ended.
    live: usize,
    /// Of those, the ones still preparing their first context.
    starting: usize,
    next_id: u64,
    /// The confinement layers, until the first isolate has locked the process down.
    layers: Option<Vec<String>>,
}

pub(crate) struct Isolates {
    link: Arc<Link>,
    memory_limit: usize,
    capacity: usize,
    state: Mutex<State>,
    /// Isolate threads are started by one thread (`spawner`), whose scheduling priority they
    /// inherit: the ids of isolates to start.
    spawn: mpsc::Sender<u64>,
}

struct Engine {
    // Declared first so it drops before the isolate it belongs to.
    graveyard: v8::UniqueRef<v8::MicrotaskQueue>,
    host: IsolateHost,
}

impl Isolates {
    /// Starts the first isolate, which locks the process down with `layers` and then
    /// reports ready.
    pub fn start(
        link: Arc<Link>,
        memory_limit: usize,
        capacity: usize,
        layers: Vec<String>,
    ) -> Arc<Isolates> {
        let (spawn, requests) = mpsc::channel();
        let isolates = Arc::new(Isolates {
            link,
            memory_limit,
            capacity,
            state: Mutex::new(State { layers: Some(layers), ..State::default() }),
            spawn,
        });
        let spawner = isolates.clone();
        let started = std::thread::Builder::new()
            .name("enclave-spawner".into())
            .spawn(move || spawner.spawner(requests));
        if started.is_err() {
            std::process::exit(1);
        }
        isolates.add_isolates(&mut isolates.lock());
        isolates
    }

    /// Starts the isolate threads asked for. Runs before the process locks itself down, so
    /// it may lower its own priority first (the first isolate starts after that).
    fn spawner(self: Arc<Self>, requests: mpsc::Receiver<u64>) {
        #[cfg(target_os = "linux")]
        // SAFETY: on Linux, PRIO_PROCESS with 0 changes the calling thread only; threads it
        // starts inherit the value.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, 0, ISOLATE_NICE);
        }
        while let Ok(id) = requests.recv() {
            let isolates = self.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("enclave-isolate-{id}"))
                .stack_size(ISOLATE_STACK_SIZE)
                .spawn(move || isolates.isolate_thread(id));
            if spawned.is_err() {
                let mut state = self.lock();
                // No thread for the first isolate, or for work that waits: nothing could run it.
                if state.live == 1 || !state.waiting.is_empty() {
                    std::process::exit(1);
                }
                state.live -= 1;
                state.starting -= 1;
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands `job` to an idle isolate, or queues it for the next one.
    pub fn run(self: &Arc<Self>, job: Job) {
        let mut state = self.lock();
        let chosen = state.idle.iter().rposition(|idle| idle.prepared).or(state.idle.len().checked_sub(1));
        let job = match chosen.map(|i| state.idle.remove(i)) {
            Some(idle) => match idle.inbox.send(job) {
                Ok(()) => None,
                Err(mpsc::SendError(job)) => Some(job),
            },
            None => Some(job),
        };
        if let Some(job) = job {
            state.waiting.push_back(job);
        }
        self.add_isolates(&mut state);
    }

    /// Ends `exec` at once if it still waits for an isolate (a stop must not wait for an
    /// isolate to start); false if it is not waiting.
    pub fn stop_waiting(&self, exec: u64, reason: InterruptReason) -> bool {
        let job = {
            let mut state = self.lock();
            let position = state.waiting.iter().position(|job| job.exec == exec);
            position.and_then(|i| state.waiting.remove(i))
        };
        let Some(job) = job else { return false };
        job.control.interrupt(reason);
        self.link.end(exec);
        let outcome = ExecutionOutcome::Interrupted { reason, detail: None };
        self.link.send(&FromEngine::Outcome { exec, outcome, tainted: false });
        true
    }

    /// Starts isolates until every waiting job and one more have one (idle or starting),
    /// within the capacity.
    fn add_isolates(&self, state: &mut State) {
        while state.idle.len() + state.starting < state.waiting.len() + 1 && state.live < self.capacity {
            let id = state.next_id;
            state.next_id += 1;
            state.live += 1;
            state.starting += 1;
            if self.spawn.send(id).is_err() {
                std::process::exit(1);
            }
        }
    }

    /// An isolate is free: it takes the first waiting job, or becomes idle.
    fn idle(&self, id: u64, inbox: &mpsc::Sender<Job>, first: bool, prepared: bool) -> Option<Job> {
        let mut state = self.lock();
        if first {
            state.starting -= 1;
        }
        let job = state.waiting.pop_front();
        if job.is_none() {
            state.idle.push(Idle { id, inbox: inbox.clone(), prepared });
        }
        job
    }

    /// Whether an isolate that has just finished an execution should prepare its next
    /// context now: a job waits, or no idle isolate holds a prepared context (it becomes
    /// the process's one ready ahead, so back-to-back executions never wait for a context).
    /// Otherwise it prepares one only when a job comes: when a burst ends, the isolates that
    /// will retire unused do not each build a context first (1,000 executions ending
    /// together would take about 200 MiB for contexts nobody uses).
    fn wanted_ready(&self) -> bool {
        let state = self.lock();
        !state.waiting.is_empty() || !state.idle.iter().any(|idle| idle.prepared)
    }

    /// The last idle isolate (kept, not retired) holds a prepared context from now on.
    fn mark_prepared(&self, id: u64) {
        if let Some(idle) = self.lock().idle.iter_mut().find(|idle| idle.id == id) {
            idle.prepared = true;
        }
    }

    /// An idle isolate asks to end: it may unless it is the last idle one (or a job was
    /// handed to it meanwhile).
    fn retire(&self, id: u64) -> bool {
        let mut state = self.lock();
        if state.idle.len() < 2 {
            return false;
        }
        let Some(position) = state.idle.iter().position(|idle| idle.id == id) else { return false };
        state.idle.remove(position);
        state.live -= 1;
        true
    }

    /// An isolate ended after its execution (it hit a limit or was stopped).
    fn ended(self: &Arc<Self>) {
        let mut state = self.lock();
        state.live -= 1;
        self.add_isolates(&mut state);
    }

    fn isolate_thread(self: Arc<Self>, id: u64) {
        // Timers only (V8 posts delayed tasks): without an I/O driver the runtime holds no
        // descriptor, and a tool reply wakes the thread through a futex.
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_time().build() else {
            std::process::exit(1)
        };
        // The execution running here, for the heap callbacks' report (0: none).
        let current = Arc::new(AtomicU64::new(0));
        let mut engine = {
            let (link, current) = (self.link.clone(), current.clone());
            let mut host = IsolateHost::new(
                self.memory_limit,
                Box::new(move |report| match current.load(Ordering::Acquire) {
                    0 => {}
                    exec => link.limit_reached(exec, report),
                }),
            );
            let graveyard = v8::MicrotaskQueue::new(host.isolate(), v8::MicrotasksPolicy::Explicit);
            Engine { graveyard, host }
        };
        let layers = self.lock().layers.take();
        if let Some(layers) = layers {
            // Once, before the process is pooled: nothing an execution does changes it.
            let layers = lockdown::lock_down(&mut engine.host, self.memory_limit, self.capacity, layers);
            self.link.send(&FromEngine::Confined { layers });
            // Ready before the first context is built: the broker's first job travels here
            // meanwhile and waits for this isolate, which takes it as soon as it is idle.
            self.link.send(&FromEngine::Ready);
            let prepared = sandbox::prepare(&mut engine.host);
            return self.serve(id, &rt, engine, &current, prepared);
        }
        let prepared = sandbox::prepare(&mut engine.host);
        self.serve(id, &rt, engine, &current, prepared);
    }

    /// Runs jobs, each in a fresh context, until this isolate retires or must end.
    fn serve(
        self: &Arc<Self>,
        id: u64,
        rt: &tokio::runtime::Runtime,
        mut engine: Engine,
        current: &AtomicU64,
        prepared: sandbox::PreparedContext,
    ) {
        let (inbox, jobs) = mpsc::channel();
        let mut prepared = Some(prepared);
        let mut first = true;
        loop {
            if prepared.is_none() && self.wanted_ready() {
                prepared = Some(sandbox::prepare(&mut engine.host));
            }
            engine.host.pump_platform_tasks();
            let job = match self.idle(id, &inbox, std::mem::take(&mut first), prepared.is_some()) {
                Some(job) => job,
                None => match self.wait_for_job(id, &jobs, &mut engine, &mut prepared) {
                    Some(job) => job,
                    None => return,
                },
            };
            let context = match prepared.take() {
                Some(context) => context,
                None => sandbox::prepare(&mut engine.host),
            };
            let Job { exec, code, wrapped, sandbox, control } = job;
            let bridge = Arc::new(RemoteBridge::new(exec, self.link.clone()));
            current.store(exec, Ordering::Release);
            let request = RunRequest { code, wrapped, sandbox, bridge };
            let (outcome, tainted) = self.execute(rt, &mut engine, context, request, control);
            current.store(0, Ordering::Release);
            self.link.end(exec);
            self.link.send(&FromEngine::Outcome { exec, outcome, tainted });
            if tainted {
                // Its memory goes back when the last idle isolate gives its garbage back
                // (`wait_for_job`): trimming the allocator here, after every stopped script,
                // would hold its locks while other threads (the frame reader) wait.
                drop(engine);
                return self.ended();
            }
            engine.host.collect_garbage_if_grown();
        }
    }

    /// Waits for a job; `None` once this isolate may retire (it is not the last idle one).
    /// The last idle isolate gives its garbage back once, when the others would retire, and
    /// prepares a context then if it has none.
    fn wait_for_job(
        &self,
        id: u64,
        jobs: &mpsc::Receiver<Job>,
        engine: &mut Engine,
        prepared: &mut Option<sandbox::PreparedContext>,
    ) -> Option<Job> {
        let mut collected = false;
        loop {
            match jobs.recv_timeout(IDLE_RETIRE) {
                Ok(job) => return Some(job),
                Err(RecvTimeoutError::Timeout) if self.retire(id) => return None,
                Err(RecvTimeoutError::Timeout) if !collected => {
                    collected = true;
                    engine.host.isolate().low_memory_notification();
                    release_freed_memory();
                    if prepared.is_none() {
                        *prepared = Some(sandbox::prepare(&mut engine.host));
                        self.mark_prepared(id);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    fn execute(
        &self,
        rt: &tokio::runtime::Runtime,
        engine: &mut Engine,
        context: sandbox::PreparedContext,
        request: RunRequest,
        control: Arc<ExecutionControl>,
    ) -> (ExecutionOutcome, bool) {
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            rt.block_on(run::execute(&mut engine.host, &engine.graveyard, context, request, control))
        }));
        let outcome = result.unwrap_or_else(|_| {
            engine.host.taint();
            ExecutionOutcome::Threw(ErrorInfo::new(ErrorCode::EXECUTION_ERROR, "Internal engine error"))
        });
        (outcome, engine.host.is_tainted())
    }
}

/// Gives memory the allocator keeps after an isolate or its garbage is freed back to the
/// system (glibc keeps freed blocks in per-thread arenas).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}
