//! One engine process, seen from the broker: it runs one execution at a time. Tool calls
//! and console output arrive as frames and go to the execution's bridge (the session); the
//! broker settles each call before replying, so events stay in program order.
//!
//! A stop is sent as a frame and a signal (see `signal`); if the process has not answered
//! within `STOP_GRACE` (a builtin that ignores V8's termination), it is killed. A process
//! that dies, by our hand or V8's, ends only the execution it was running.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use super::bridge::{SandboxBridge, ToolCallInfo};
use super::confine::{self, ABORT_EXIT_CODE, EngineChild, EngineStderr, SECCOMP_KILL_SIGNAL};
use super::control::ExecutionControl;
use super::job::Job;
use super::outcome::{ExecutionOutcome, InterruptReason};
use super::pipe_writer::PipeWriter;
use super::pool_events::PoolEvents;
#[cfg(target_os = "linux")]
use super::signal;
use super::timer::{self, Ticket};
use super::wire::{FromEngine, ToEngine, read_frame};
use super::{DoneCallback, ExecutionRequest, STOP_GRACE, memory_ceiling};
use crate::protocol::{ErrorCode, ErrorInfo};
use crate::tools::ToolReply;

struct Running {
    exec: u64,
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

pub(crate) struct EngineProcess {
    /// The pool's name for it.
    pub id: u64,
    /// The memory limit it was started with: it runs only scripts of this limit.
    pub memory_limit: usize,
    pool: &'static dyn PoolEvents,
    pid: u32,
    stdin: Arc<PipeWriter>,
    child: Mutex<EngineChild>,
    /// The namespaces it runs in (for the sandbox report).
    namespaces: String,
    /// The read end of its stderr, kept open (and unread) while it lives.
    _stderr: Option<File>,
    running: Mutex<Option<Running>>,
    /// Why the broker killed the process, if it did.
    killed: Mutex<Option<InterruptReason>>,
    /// When it last became idle (for retiring idle processes).
    pub idle_since: Mutex<Option<Instant>>,
    /// Set by its first `Ready`: until then it counts as starting.
    started: AtomicBool,
}

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
        Some((Some(4..=6), _) | (None, Some(ABORT_EXIT_CODE))) => ExecutionOutcome::Interrupted {
            reason: InterruptReason::MemoryLimit,
            detail: Some(
                "Memory limit exceeded: V8 aborted the engine process (an allocation was too large)".into(),
            ),
        },
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
        executable: &Path,
        register: impl FnOnce(&Arc<Self>),
    ) -> io::Result<()> {
        let stderr = if std::env::var_os("ENCLAVE_BROKER_ENGINE_STDERR").is_some() {
            EngineStderr::Inherited
        } else {
            // V8's fatal-error reports would otherwise land in the host's stderr.
            EngineStderr::Captured
        };
        let spawned = confine::spawn(executable, &[memory_limit.to_string()], stderr)?;
        let pid = spawned.pid();
        let confine::SpawnedEngine { mut child, stdin, stdout, stderr, namespaces } = spawned;
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
            pool,
            pid,
            stdin,
            child: Mutex::new(child),
            namespaces,
            _stderr: stderr,
            running: Mutex::new(None),
            killed: Mutex::new(None),
            idle_since: Mutex::new(None),
            started: AtomicBool::new(false),
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
        *lock(&self.running) = Some(Running {
            exec,
            bridge,
            done: Some(done),
            control: control.clone(),
            calls: HashMap::new(),
            _timeout: timeout,
            escalation: None,
            admitted: ceiling,
            limit_report: None,
        });
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
        // The frame reaches an engine that waits; the signal one that runs JavaScript.
        self.send(&ToEngine::Interrupt { exec, reason });
        #[cfg(target_os = "linux")]
        {
            let mut child = lock(&self.child);
            // Unreaped, the pid is still this process's (at worst a zombie), never a stranger's.
            if matches!(child.try_wait(), Ok(None)) {
                signal::send(self.pid, exec, reason);
            }
        }
        let process = Arc::downgrade(self);
        let escalation = timer::arm(Instant::now() + STOP_GRACE, move || {
            if let Some(process) = process.upgrade() {
                process.kill_if_running(exec, reason);
            }
        });
        if let Some(running) = lock(&self.running).as_mut().filter(|r| r.exec == exec) {
            running.escalation = Some(escalation);
        }
    }

    /// Kills the process if it is still running `exec` (the reader reports the outcome).
    pub fn kill_if_running(&self, exec: u64, reason: InterruptReason) {
        if lock(&self.running).as_ref().is_some_and(|r| r.exec == exec) {
            *lock(&self.killed) = Some(reason);
            self.pool.process_killed();
            let _ = lock(&self.child).kill();
        }
    }

    /// The execution in progress, if any (for the memory guard).
    pub fn running_exec(&self) -> Option<u64> {
        lock(&self.running).as_ref().map(|r| r.exec)
    }

    fn read_loop(self: Arc<Self>, mut input: BufReader<File>) {
        while let Ok(message) = read_frame(&mut input).and_then(|frame| FromEngine::decode(&frame)) {
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
                    let bridge =
                        lock(&self.running).as_ref().filter(|r| r.exec == exec).map(|r| r.bridge.clone());
                    if let Some(bridge) = bridge {
                        bridge.console(level, &text);
                    }
                }
                FromEngine::MemoryLimitReached { exec, report } => self.limit_reached(exec, report),
                FromEngine::Outcome { exec, outcome, .. } => self.finish(exec, outcome),
            }
        }
        let status = lock(&self.child).wait().ok();
        if let Some(exec) = self.running_exec() {
            self.finish(exec, self.death_outcome(status));
        }
        self.pool.process_exited(self.id);
    }

    /// The engine recorded a memory limit hit (it tells at once, while V8 may still be inside
    /// a builtin that ignores termination). The hit decides the run's outcome whatever ends
    /// it first (`finish`); the run is stopped like any other, so it ends within
    /// `STOP_GRACE`. A stop already under way (a timeout, say) is not asked twice.
    fn limit_reached(&self, exec: u64, report: String) {
        let control = {
            let mut running = lock(&self.running);
            let Some(run) = running.as_mut().filter(|r| r.exec == exec) else { return };
            run.limit_report.get_or_insert(report);
            run.control.clone()
        };
        control.interrupt(InterruptReason::MemoryLimit);
    }

    /// The broker killed the process for growing past its memory ceiling.
    fn past_ceiling(&self) -> ExecutionOutcome {
        ExecutionOutcome::Interrupted {
            reason: InterruptReason::MemoryLimit,
            detail: Some(format!(
                "Memory limit exceeded: the engine process grew past its {:.2}MB ceiling",
                memory_ceiling(self.memory_limit) as f64 / 1_048_576.0
            )),
        }
    }

    /// How the run of a process that died ended.
    fn death_outcome(&self, status: Option<std::process::ExitStatus>) -> ExecutionOutcome {
        match *lock(&self.killed) {
            Some(InterruptReason::MemoryLimit) => self.past_ceiling(),
            Some(reason) => ExecutionOutcome::Interrupted { reason, detail: None },
            None => died_on_its_own(status),
        }
    }

    fn call_tool(self: &Arc<Self>, exec: u64, index: u32, name: &str, args_json: String) {
        let mut running = lock(&self.running);
        let Some(run) = running.as_mut().filter(|r| r.exec == exec) else { return };
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
        let Some(run) = running.as_mut().filter(|r| r.exec == exec) else { return };
        let Some(info) = run.calls.remove(&index) else { return };
        // Under the lock, so the call's `tool_result_applied` cannot follow the run's `final`.
        let reply = run.bridge.finish_tool_call(&info, Some(reply));
        drop(running);
        self.send(&ToEngine::ToolResult { exec, index, reply });
    }

    fn finish(&self, exec: u64, outcome: ExecutionOutcome) {
        let finished = {
            let mut running = lock(&self.running);
            if running.as_ref().is_some_and(|r| r.exec == exec) { running.take() } else { None }
        };
        let Some(mut run) = finished else { return };
        // A memory limit hit the engine reported, or the broker's kill past the ceiling,
        // decides, whatever reached us first: the outcome, a timeout, the process's death.
        let killed_for_memory = *lock(&self.killed) == Some(InterruptReason::MemoryLimit);
        let outcome = match (run.limit_report.take(), outcome) {
            (Some(report), _) => {
                ExecutionOutcome::Interrupted { reason: InterruptReason::MemoryLimit, detail: Some(report) }
            }
            (None, outcome @ ExecutionOutcome::Interrupted { reason: InterruptReason::MemoryLimit, .. }) => {
                outcome
            }
            (None, _) if killed_for_memory => self.past_ceiling(),
            (None, outcome) => outcome,
        };
        // Calls still in flight are abandoned: each gets its `tool_result_applied` and its
        // handler's signal aborts, so every `tool_call` in the stream is closed.
        for info in run.calls.values() {
            run.bridge.finish_tool_call(info, None);
        }
        run.control.finish();
        if let Some(done) = run.done.take() {
            done(outcome);
        }
        self.pool.execution_released(run.admitted);
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
