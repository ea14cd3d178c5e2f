//! One engine process, seen from the broker: it runs up to `isolates` executions at once,
//! one per isolate. Tool calls and console output arrive as frames naming their execution
//! and go to that execution's bridge (its session); the broker settles each call before
//! replying, so events stay in program order.
//!
//! A stop is sent as a frame, which the engine's reader thread acts on at once (see
//! `child`); if the execution has not ended within `STOP_GRACE` (a builtin that ignores
//! V8's termination), the process is killed. A process that dies, by our hand or V8's, ends
//! only the executions it was running: the one it was killed for with its reason, the
//! others as `ENGINE_CRASHED` (or out of memory, when that is what killed it).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use super::bridge::{SandboxBridge, ToolCallInfo};
use super::confine::{self, ABORT_EXIT_CODE, EngineChild, EngineStderr, SECCOMP_KILL_SIGNAL};
use super::control::ExecutionControl;
use super::job::Job;
use super::outcome::{ExecutionOutcome, InterruptReason};
use super::pipe_writer::PipeWriter;
use super::pool_events::PoolEvents;
use super::timer::{self, Ticket};
use super::wire::{FromEngine, ToEngine, read_frame};
use super::{DoneCallback, ExecutionRequest, STOP_GRACE, memory_ceiling};
use crate::protocol::{ErrorCode, ErrorInfo};
use crate::tools::ToolReply;

struct Running {
    bridge: Arc<dyn SandboxBridge>,
    done: Option<DoneCallback>,
    control: Arc<ExecutionControl>,
    calls: HashMap<u32, ToolCallInfo>,
    _timeout: Option<Ticket>,
    escalation: Option<Ticket>,
    /// Its share of the pool's memory budget, given back when it ends.
    admitted: usize,
    /// The engine's report that the heap limit was reached, if that is what stopped the run.
    limit_report: Option<String>,
}

/// Why the broker killed a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kill {
    /// To end `exec`, which did not honour its stop for `reason` in time.
    Stop { exec: u64, reason: InterruptReason },
    /// Its memory grew past its ceiling.
    Memory,
}

pub(crate) struct EngineProcess {
    /// The pool's name for it.
    pub id: u64,
    /// The memory limit it was started with: it runs only scripts of this limit.
    pub memory_limit: usize,
    /// How many executions it runs at once, at most (one per isolate).
    pub isolates: usize,
    /// Executions the pool gave it that have not ended. Changed only under the pool's lock.
    pub load: AtomicUsize,
    pool: &'static dyn PoolEvents,
    pid: u32,
    stdin: Arc<PipeWriter>,
    child: Mutex<EngineChild>,
    /// The namespaces it runs in (for the sandbox report).
    namespaces: String,
    /// The read end of its stderr, kept open (and unread) while it lives.
    _stderr: Option<File>,
    running: Mutex<HashMap<u64, Running>>,
    /// Set (under `running`'s lock) once its reader saw it end: work given to it after that
    /// ends at once instead of waiting for a process that is gone.
    dead: AtomicBool,
    /// Why the broker killed the process, if it did.
    killed: Mutex<Option<Kill>>,
    /// When it last had no execution (for retiring idle processes).
    pub idle_since: Mutex<Option<Instant>>,
    /// Set by its first `Ready`: until then it counts as starting.
    started: AtomicBool,
    /// Whether its reader has handled every frame it read and waits on the pipe.
    caught_up: AtomicBool,
    /// The broker's end of its stdout (to see whether answers wait there unread).
    #[cfg(unix)]
    stdout_fd: std::os::fd::RawFd,
}

/// How often, and how long each time, a stop's kill is put off while the process's answers
/// wait unread (the broker's reader is behind, not the engine).
const KILL_POSTPONEMENTS: u32 = 20;
const KILL_POSTPONEMENT: std::time::Duration = std::time::Duration::from_millis(50);

/// How long an execution that ignored its stop (`detach`) may keep its isolate busy before
/// its process is killed, ending the process's other executions with it.
const DETACHED_KILL_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The signal that ended a process; Windows has none (a V8 abort is an exit code there,
/// reported as ENGINE_CRASHED).
#[cfg(unix)]
fn terminating_signal(status: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
fn terminating_signal(_status: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// How a run ends when its engine process died without the broker killing it.
fn died_on_its_own(status: Option<std::process::ExitStatus>) -> ExecutionOutcome {
    match status.map(|s| (terminating_signal(&s), s.code())) {
        // V8 ends the process with a trap or abort on a fatal error, which in practice is an
        // allocation it cannot satisfy (out of memory, or an object over its size limit). As
        // PID 1 of its namespace, an abort is an exit status instead of a signal.
        Some((Some(4..=6), _) | (None, Some(ABORT_EXIT_CODE))) => ExecutionOutcome::memory_limit(
            "Memory limit exceeded: V8 aborted the engine process (an allocation was too large)",
        ),
        Some((signal @ Some(_), _)) if signal == SECCOMP_KILL_SIGNAL => {
            ExecutionOutcome::Threw(ErrorInfo::new(
                ErrorCode::ENGINE_CRASHED,
                "The engine process running this script was killed by its sandbox (a forbidden system call)",
            ))
        }
        _ => ExecutionOutcome::Threw(ErrorInfo::new(
            ErrorCode::ENGINE_CRASHED,
            match status {
                Some(status) => {
                    format!("The engine process running this script exited unexpectedly ({status})")
                }
                None => "The engine process running this script exited unexpectedly".to_string(),
            },
        )),
    }
}

impl EngineProcess {
    pub fn spawn(
        pool: &'static dyn PoolEvents,
        id: u64,
        memory_limit: usize,
        isolates: usize,
        executable: &Path,
        register: impl FnOnce(&Arc<Self>),
    ) -> io::Result<()> {
        let stderr = if std::env::var_os("ENCLAVE_BROKER_ENGINE_STDERR").is_some() {
            EngineStderr::Inherited
        } else {
            // V8's fatal-error reports would otherwise land in the host's stderr.
            EngineStderr::Captured
        };
        let spawned = confine::spawn(executable, &[memory_limit.to_string(), isolates.to_string()], stderr)?;
        let pid = spawned.pid();
        let confine::SpawnedEngine { mut child, stdin, stdout, stderr, namespaces } = spawned;
        #[cfg(unix)]
        let stdout_fd = std::os::fd::AsRawFd::as_raw_fd(&stdout);
        let stdin = match PipeWriter::new(stdin) {
            Ok(writer) => writer,
            Err(error) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(error);
            }
        };
        let process = Arc::new(EngineProcess {
            id,
            memory_limit,
            isolates,
            load: AtomicUsize::new(0),
            pool,
            pid,
            stdin,
            child: Mutex::new(child),
            namespaces,
            _stderr: stderr,
            running: Mutex::new(HashMap::new()),
            dead: AtomicBool::new(false),
            killed: Mutex::new(None),
            idle_since: Mutex::new(None),
            started: AtomicBool::new(false),
            caught_up: AtomicBool::new(true),
            #[cfg(unix)]
            stdout_fd,
        });
        // Known to the pool before its first frame can arrive.
        register(&process);
        let reader = process.clone();
        let started = std::thread::Builder::new()
            .name(format!("enclave-engine-{id}"))
            .spawn(move || reader.read_loop(BufReader::new(stdout)));
        if let Err(error) = started {
            process.retire();
            return Err(error);
        }
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Marks the process started; true the first time only.
    pub fn mark_started(&self) -> bool {
        !self.started.swap(true, Ordering::AcqRel)
    }

    pub fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    fn send(&self, message: &ToEngine) {
        self.stdin.send(&message.to_frame());
    }

    /// Ends an idle process.
    pub fn retire(&self) {
        let _ = lock(&self.child).kill();
    }

    /// Runs `job`; its script timeout was armed when it was submitted.
    pub fn run(self: &Arc<Self>, job: Job) {
        let Job { exec, request, control, timeout, ceiling, .. } = job;
        let ExecutionRequest { code, sandbox, bridge, done, .. } = request;
        *lock(&self.idle_since) = None;
        let mut running = lock(&self.running);
        if self.dead.load(Ordering::Acquire) {
            drop(running);
            control.finish();
            done(ExecutionOutcome::Threw(ErrorInfo::new(
                ErrorCode::ENGINE_CRASHED,
                "The engine process chosen for this script ended before the script began",
            )));
            return self.pool.execution_released(self.id, ceiling);
        }
        running.insert(
            exec,
            Running {
                bridge,
                done: Some(done),
                control: control.clone(),
                calls: HashMap::new(),
                _timeout: timeout,
                escalation: None,
                admitted: ceiling,
                limit_report: None,
            },
        );
        drop(running);
        self.send(&ToEngine::Execute {
            exec,
            code,
            memory_limit: sandbox.effective_memory_limit() as u64,
            max_result_bytes: sandbox.max_result_bytes as u64,
            max_depth: sandbox.max_depth,
            globals_json: sandbox.globals_json,
        });
        let process: Weak<Self> = Arc::downgrade(self);
        control.attach(Box::new(move |reason| {
            if let Some(process) = process.upgrade() {
                process.stop(exec, reason);
            }
        }));
    }

    fn stop(self: &Arc<Self>, exec: u64, reason: InterruptReason) {
        // The engine's reader thread takes the frame at once, even while the script spins.
        self.send(&ToEngine::Interrupt { exec, reason });
        // A run stopped for memory is not killed after the grace period: V8 may collect for
        // a while before it acts on the termination (longer with several isolates collecting
        // at once), and a kill would end every execution of the process. What it can still
        // take is bounded by its raised heap limit (V8 aborts the process past it) and the
        // process's memory ceiling (the guard kills it past that).
        if reason != InterruptReason::MemoryLimit {
            self.arm_escalation(exec, reason, STOP_GRACE, KILL_POSTPONEMENTS);
        }
    }

    /// Kills the process after `after` if it still runs `exec` then.
    fn arm_escalation(
        self: &Arc<Self>,
        exec: u64,
        reason: InterruptReason,
        after: std::time::Duration,
        left: u32,
    ) {
        let process = Arc::downgrade(self);
        let escalation = timer::arm(Instant::now() + after, move || {
            if let Some(process) = process.upgrade() {
                process.escalate(exec, reason, left);
            }
        });
        if let Some(running) = lock(&self.running).get_mut(&exec) {
            running.escalation = Some(escalation);
        }
    }

    /// The grace period of a stop is over and `exec` still runs (unless answers from the
    /// process wait unread: the broker is behind, perhaps with the run's outcome, so this is
    /// put off a little, a bounded number of times). The run is detached.
    fn escalate(self: &Arc<Self>, exec: u64, reason: InterruptReason, left: u32) {
        if !lock(&self.running).contains_key(&exec) {
            return;
        }
        if left > 0 && self.answers_pending() {
            return self.arm_escalation(exec, reason, KILL_POSTPONEMENT, left - 1);
        }
        self.detach(exec, reason);
    }

    /// A run that did not honour its stop (a builtin that looks at V8's termination only
    /// when it is done) ends now for its owner, with its stop's reason, instead of costing
    /// every execution of the process a kill. Its isolate stays busy until the builtin
    /// returns (its memory bounded by the heap limit and the process ceiling, and it keeps
    /// its share of the budget until then); if that takes longer than `DETACHED_KILL_AFTER`,
    /// the process is killed.
    fn detach(self: &Arc<Self>, exec: u64, reason: InterruptReason) {
        let detached = {
            let mut running = lock(&self.running);
            let Some(run) = running.get_mut(&exec) else { return };
            let Some(done) = run.done.take() else { return };
            let calls: Vec<ToolCallInfo> = run.calls.drain().map(|(_, info)| info).collect();
            (done, calls, run.bridge.clone(), run.control.clone(), run.limit_report.clone())
        };
        let (done, calls, bridge, control, limit_report) = detached;
        self.pool.execution_detached();
        for info in &calls {
            bridge.finish_tool_call(info, None);
        }
        control.finish();
        done(ExecutionOutcome::Interrupted { reason, detail: None }.unless_limit_hit(limit_report));
        let process = Arc::downgrade(self);
        let last_resort = timer::arm(Instant::now() + DETACHED_KILL_AFTER, move || {
            if let Some(process) = process.upgrade()
                && lock(&process.running).contains_key(&exec)
            {
                process.kill(Kill::Stop { exec, reason });
            }
        });
        if let Some(running) = lock(&self.running).get_mut(&exec) {
            running.escalation = Some(last_resort);
        }
    }

    /// Whether frames from the engine wait to be handled: read and not yet handled, or still
    /// in the pipe.
    fn answers_pending(&self) -> bool {
        if !self.caught_up.load(Ordering::Acquire) {
            return true;
        }
        #[cfg(unix)]
        {
            let mut unread: libc::c_int = 0;
            // SAFETY: FIONREAD writes one int; the descriptor is the pipe this process's reader
            // owns (a process whose reader ended runs nothing, so it is not asked).
            let asked = unsafe { libc::ioctl(self.stdout_fd, libc::FIONREAD, &mut unread) };
            if asked == 0 && unread > 0 {
                return true;
            }
        }
        false
    }

    /// Kills the process for growing past its memory ceiling, if it runs anything.
    pub fn kill_for_memory(&self) {
        if !lock(&self.running).is_empty() {
            self.kill(Kill::Memory);
        }
    }

    /// Kills the process once (the first reason is kept, and counted).
    fn kill(&self, why: Kill) {
        {
            let mut killed = lock(&self.killed);
            if killed.is_some() {
                return;
            }
            *killed = Some(why);
        }
        self.pool.process_killed();
        let _ = lock(&self.child).kill();
    }

    /// Whether it runs an execution now (for the memory guard).
    pub fn is_running(&self) -> bool {
        !lock(&self.running).is_empty()
    }

    /// Its memory ceiling: the sum of its isolates' and its own.
    pub fn ceiling(&self) -> usize {
        memory_ceiling(self.memory_limit, self.isolates)
    }

    fn bridge_of(&self, exec: u64) -> Option<Arc<dyn SandboxBridge>> {
        lock(&self.running).get(&exec).map(|r| r.bridge.clone())
    }

    fn read_loop(self: Arc<Self>, mut input: BufReader<File>) {
        loop {
            self.caught_up.store(input.buffer().is_empty(), Ordering::Release);
            let Ok(message) = read_frame(&mut input).and_then(|frame| FromEngine::decode(&frame)) else {
                break;
            };
            self.caught_up.store(false, Ordering::Release);
            match message {
                FromEngine::Ready => self.pool.process_ready(self.id),
                FromEngine::Confined { layers } => {
                    let mut layers: Vec<String> = layers.lines().map(str::to_string).collect();
                    layers.push(format!("namespaces: {}", self.namespaces));
                    self.pool.process_confined(layers);
                }
                FromEngine::CallTool { exec, index, name, args_json } => {
                    self.call_tool(exec, index, &name, args_json)
                }
                FromEngine::Console { exec, level, text } => {
                    if let Some(bridge) = self.bridge_of(exec) {
                        bridge.console(level, &text);
                    }
                }
                FromEngine::MemoryLimitReached { exec, report } => self.limit_reached(exec, report),
                // A tainted isolate is replaced inside the process; the process goes on.
                FromEngine::Outcome { exec, outcome, .. } => self.finish(exec, outcome),
            }
        }
        let status = lock(&self.child).wait().ok();
        let execs: Vec<u64> = {
            let running = lock(&self.running);
            self.dead.store(true, Ordering::Release);
            running.keys().copied().collect()
        };
        // The pool forgets the process (and counts its losses) before the outcomes are told.
        self.pool.process_exited(self.id, execs.len());
        for exec in execs {
            self.finish(exec, self.death_outcome(exec, status));
        }
    }

    /// The engine recorded a memory limit hit (it tells at once, while V8 may still be inside
    /// a builtin that ignores termination). The hit decides the run's outcome whatever ends
    /// it first (`finish`); the run is stopped like any other, so it ends within
    /// `STOP_GRACE`. A stop already under way (a timeout, say) is not asked twice.
    fn limit_reached(&self, exec: u64, report: String) {
        let control = {
            let mut running = lock(&self.running);
            let Some(run) = running.get_mut(&exec) else { return };
            run.limit_report.get_or_insert(report);
            run.control.clone()
        };
        control.interrupt(InterruptReason::MemoryLimit);
    }

    /// The broker killed the process for growing past its memory ceiling.
    fn past_ceiling(&self) -> ExecutionOutcome {
        ExecutionOutcome::memory_limit(format!(
            "Memory limit exceeded: the engine process running this script grew past its {:.2}MB ceiling",
            self.ceiling() as f64 / 1_048_576.0
        ))
    }

    /// How `exec` ended when its process died.
    fn death_outcome(&self, exec: u64, status: Option<std::process::ExitStatus>) -> ExecutionOutcome {
        match *lock(&self.killed) {
            Some(Kill::Memory) => self.past_ceiling(),
            Some(Kill::Stop { exec: stopped, reason }) if stopped == exec => {
                ExecutionOutcome::Interrupted { reason, detail: None }
            }
            Some(Kill::Stop { .. }) => ExecutionOutcome::Threw(ErrorInfo::new(
                ErrorCode::ENGINE_CRASHED,
                "The engine process running this script was killed to stop another script it ran, which did not stop in time",
            )),
            None => died_on_its_own(status),
        }
    }

    fn call_tool(self: &Arc<Self>, exec: u64, index: u32, name: &str, args_json: String) {
        let mut running = lock(&self.running);
        let Some(run) = running.get_mut(&exec) else { return };
        // The session decides and emits its events now, in the order the frames arrived.
        match run.bridge.begin_tool_call(name, args_json) {
            Err(error) => {
                drop(running);
                self.send(&ToEngine::ToolResult { exec, index, reply: ToolReply::Err(error) });
            }
            Ok(pending) => {
                run.calls.insert(index, pending.info);
                drop(running);
                // Settled on whichever thread answers (the handler's reply, the deadline).
                let process = self.clone();
                pending.reply.on_reply(move |reply| process.settle_call(exec, index, reply));
            }
        }
    }

    fn settle_call(&self, exec: u64, index: u32, reply: ToolReply) {
        let mut running = lock(&self.running);
        let Some(run) = running.get_mut(&exec) else { return };
        let Some(info) = run.calls.remove(&index) else { return };
        // Under the lock, so the call's `tool_result_applied` cannot follow the run's `final`.
        let reply = run.bridge.finish_tool_call(&info, Some(reply));
        drop(running);
        self.send(&ToEngine::ToolResult { exec, index, reply });
    }

    fn finish(&self, exec: u64, outcome: ExecutionOutcome) {
        let Some(mut run) = lock(&self.running).remove(&exec) else { return };
        // A memory limit hit the engine reported, or the broker's kill past the ceiling,
        // decides, whatever reached us first: the outcome, a timeout, the process's death.
        let killed_for_memory = *lock(&self.killed) == Some(Kill::Memory);
        let outcome = match outcome {
            outcome @ ExecutionOutcome::Interrupted { reason: InterruptReason::MemoryLimit, .. } => outcome,
            _ if killed_for_memory => self.past_ceiling(),
            outcome => outcome,
        }
        .unless_limit_hit(run.limit_report.take());
        // Calls still in flight are abandoned: each gets its `tool_result_applied` and its
        // handler's signal aborts, so every `tool_call` in the stream is closed.
        for info in run.calls.values() {
            run.bridge.finish_tool_call(info, None);
        }
        run.control.finish();
        // Its isolate and its share of the budget are free before anyone hears it ended, so
        // work submitted on hearing it finds the room.
        self.pool.execution_released(self.id, run.admitted);
        if let Some(done) = run.done.take() {
            done(outcome);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::*;

    fn code(outcome: ExecutionOutcome) -> String {
        match outcome {
            ExecutionOutcome::Threw(error) => format!("{}: {}", error.code, error.message),
            ExecutionOutcome::Interrupted { reason, detail } => {
                format!("{reason:?}: {}", detail.unwrap_or_default())
            }
            ExecutionOutcome::Returned(_) => "returned".into(),
        }
    }

    #[test]
    fn a_death_is_reported_by_its_cause() {
        // Raw wait statuses: a signal in the low 7 bits, an exit code in the next byte.
        let by_signal = |signal: i32| Some(ExitStatus::from_raw(signal));
        let by_exit = |code: i32| Some(ExitStatus::from_raw(code << 8));
        assert_eq!(
            code(died_on_its_own(by_signal(libc::SIGSYS))),
            "ENGINE_CRASHED: The engine process running this script was killed by its sandbox (a forbidden system call)"
        );
        let aborted =
            "MemoryLimit: Memory limit exceeded: V8 aborted the engine process (an allocation was too large)";
        for status in [
            by_signal(libc::SIGABRT),
            by_signal(libc::SIGTRAP),
            by_signal(libc::SIGILL),
            by_exit(ABORT_EXIT_CODE),
        ] {
            assert_eq!(code(died_on_its_own(status)), aborted);
        }
        assert_eq!(
            code(died_on_its_own(by_signal(libc::SIGSEGV))),
            "ENGINE_CRASHED: The engine process running this script exited unexpectedly (signal: 11 (SIGSEGV))"
        );
        assert_eq!(
            code(died_on_its_own(by_exit(0))),
            "ENGINE_CRASHED: The engine process running this script exited unexpectedly (exit status: 0)"
        );
    }
}
