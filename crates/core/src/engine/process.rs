//! One engine process, seen from the broker: it runs one execution at a time. Tool calls
//! and console output arrive as frames and go to the execution's bridge (the session); the
//! broker settles each call before replying, so events stay in program order.
//!
//! A stop is sent as a frame and a signal (see `signal`); if the process has not answered
//! within `STOP_GRACE` (a builtin that ignores V8's termination), it is killed. A process
//! that dies, by our hand or V8's, ends only the execution it was running.

use std::collections::HashMap;
use std::io::{self, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use super::bridge::{SandboxBridge, ToolCallInfo};
use super::control::ExecutionControl;
use super::outcome::{ExecutionOutcome, InterruptReason};
use super::pipe_writer::PipeWriter;
use super::pool::Pool;
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
    /// The engine's report that the heap limit was reached, if that is what stopped the run.
    limit_report: Option<String>,
}

pub(crate) struct EngineProcess {
    pub memory_limit: usize,
    pid: u32,
    stdin: Arc<PipeWriter>,
    child: Mutex<Child>,
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

impl EngineProcess {
    pub fn spawn(
        pool: &'static Pool,
        id: u64,
        memory_limit: usize,
        executable: &Path,
    ) -> io::Result<Arc<Self>> {
        let stderr = if std::env::var_os("ENCLAVE_BROKER_ENGINE_STDERR").is_some() {
            Stdio::inherit()
        } else {
            // V8's fatal-error reports would otherwise land in the host's stderr.
            Stdio::null()
        };
        let mut child = Command::new(executable)
            .arg(memory_limit.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(io::Error::other("engine process has no pipes"));
        };
        let stdin = match PipeWriter::new(stdin) {
            Ok(writer) => writer,
            Err(error) => {
                let _ = child.kill();
                return Err(error);
            }
        };
        let process = Arc::new(EngineProcess {
            memory_limit,
            pid: child.id(),
            stdin,
            child: Mutex::new(child),
            running: Mutex::new(None),
            killed: Mutex::new(None),
            idle_since: Mutex::new(None),
            started: AtomicBool::new(false),
        });
        let reader = process.clone();
        std::thread::Builder::new()
            .name(format!("enclave-engine-{id}"))
            .spawn(move || reader.read_loop(pool, BufReader::new(stdout)))?;
        Ok(process)
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

    /// Runs `request`; `timeout` is its script timeout, armed when it was submitted.
    pub fn run(
        self: &Arc<Self>,
        exec: u64,
        request: ExecutionRequest,
        control: Arc<ExecutionControl>,
        timeout: Option<Ticket>,
    ) {
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
            super::pool::count_kill();
            let _ = lock(&self.child).kill();
        }
    }

    /// The execution in progress, if any (for the memory guard).
    pub fn running_exec(&self) -> Option<u64> {
        lock(&self.running).as_ref().map(|r| r.exec)
    }

    fn read_loop(self: Arc<Self>, pool: &'static Pool, mut input: BufReader<std::process::ChildStdout>) {
        while let Ok(message) = read_frame(&mut input).and_then(|frame| FromEngine::decode(&frame)) {
            match message {
                FromEngine::Ready => pool.process_ready(&self),
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
        let killed = lock(&self.killed).take();
        let running = lock(&self.running).as_mut().map(|r| (r.exec, r.limit_report.take()));
        if let Some((exec, limit_report)) = running {
            self.finish(exec, self.death_outcome(killed, limit_report, status));
        }
        pool.process_exited(&self);
    }

    /// The heap limit was reached while V8 may be inside a builtin that ignores termination:
    /// the run is stopped like any other, so it ends within `STOP_GRACE`, as out of memory.
    /// A stop already under way (a timeout, say) came first and keeps its reason.
    fn limit_reached(&self, exec: u64, report: String) {
        let control = {
            let mut running = lock(&self.running);
            let Some(run) = running.as_mut().filter(|r| r.exec == exec) else { return };
            if run.control.reason().is_some() {
                return;
            }
            run.limit_report = Some(report);
            run.control.clone()
        };
        control.interrupt(InterruptReason::MemoryLimit);
    }

    fn death_outcome(
        &self,
        killed: Option<InterruptReason>,
        limit_report: Option<String>,
        status: Option<std::process::ExitStatus>,
    ) -> ExecutionOutcome {
        let mb = |bytes: usize| bytes as f64 / 1_048_576.0;
        match killed {
            Some(InterruptReason::MemoryLimit) => ExecutionOutcome::Interrupted {
                reason: InterruptReason::MemoryLimit,
                detail: Some(limit_report.unwrap_or_else(|| {
                    format!(
                        "Memory limit exceeded: the engine process grew past its {:.2}MB ceiling",
                        mb(memory_ceiling(self.memory_limit))
                    )
                })),
            },
            Some(reason) => ExecutionOutcome::Interrupted { reason, detail: None },
            // V8 ends the process with a trap or abort on a fatal error, which in practice is
            // an allocation it cannot satisfy (out of memory, or an object over its size limit).
            None => match status.and_then(|s| terminating_signal(&s)) {
                Some(4..=6) => ExecutionOutcome::Interrupted {
                    reason: InterruptReason::MemoryLimit,
                    detail: Some(
                        "Memory limit exceeded: V8 aborted the engine process (an allocation was too large)"
                            .into(),
                    ),
                },
                _ => ExecutionOutcome::Threw(ErrorInfo::new(
                    ErrorCode::ENGINE_CRASHED,
                    match status {
                        Some(status) => {
                            format!("The engine process running this script exited unexpectedly ({status})")
                        }
                        None => "The engine process running this script exited unexpectedly".to_string(),
                    },
                )),
            },
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
        // Calls still in flight are abandoned: each gets its `tool_result_applied` and its
        // handler's signal aborts, so every `tool_call` in the stream is closed.
        for info in run.calls.values() {
            run.bridge.finish_tool_call(info, None);
        }
        run.control.finish();
        if let Some(done) = run.done.take() {
            done(outcome);
        }
    }
}
