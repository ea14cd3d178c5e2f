//! One execution of a session, from `execute` (`session_init`, heartbeats, the deadline)
//! to its `final` event and result, and the ways it ends early: `cancel`, `dispose`, the
//! deadline, and `fail` (a reason outside the script, e.g. shared state lost).

use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use super::result::{ExecutionStats, FinalResult};
use super::session::{Inner, LifecycleError, Phase, Session};
use super::state::SessionState;
use crate::engine::{ExecutionControl, ExecutionOutcome, ExecutionRequest, InterruptReason};
use crate::protocol::event::payload;
use crate::protocol::json::{iso_timestamp, now_epoch_ms};
use crate::protocol::{ErrorCode, ErrorInfo, EventType};
use crate::runtime;
use crate::sidecar;

impl Session {
    /// Ends the session with `error` for a reason outside its script (its shared state is
    /// unreachable, or another broker finished it): an `error` event, then `final` with the
    /// error once a running script has stopped. Nothing happens to a finished session.
    pub fn fail(&self, error: ErrorInfo) {
        let mut inner = self.lock();
        if inner.state.is_terminal() || inner.forced.is_some() {
            return;
        }
        match inner.phase {
            Phase::NotStarted => {
                let p = payload::error(&error.code, &error.message, false, None);
                self.emit_locked(&mut inner, EventType::Error, &p);
                inner.phase = Phase::Finished;
                inner.run_started = Some((Instant::now(), now_epoch_ms()));
                self.finish_locked(inner, Err(error), SessionState::Failed, SessionState::Failed);
            }
            Phase::Running => {
                inner.forced = Some(error);
                let control = self.stop_running_locked(&mut inner);
                drop(inner);
                interrupt(control);
            }
            Phase::Finished => {}
        }
    }

    /// Starts the execution. Emits `session_init`, starts heartbeats, arms the deadline,
    /// sets `running` and hands the code to the engine, all before returning. Returns the seq
    /// of the last event it emitted itself (what follows comes from the run).
    pub fn execute(&self, code: String) -> Result<u64, LifecycleError> {
        let mut inner = self.lock();
        if inner.phase != Phase::NotStarted {
            return Err(LifecycleError::AlreadyExecuting);
        }
        if inner.disposed {
            return Err(LifecycleError::Disposed);
        }
        inner.phase = Phase::Running;
        inner.run_started = Some((Instant::now(), now_epoch_ms()));

        let deadline = self.limits.deadline_ms;
        if deadline > 0 && self.created.elapsed() >= Duration::from_millis(deadline) {
            let elapsed = self.created.elapsed().as_millis() as f64;
            self.emit_locked(
                &mut inner,
                EventType::DeadlineExceeded,
                &payload::deadline_exceeded(elapsed, deadline as f64),
            );
            let error = ErrorInfo::new(ErrorCode::DEADLINE_EXCEEDED, "Deadline exceeded before execution");
            self.finish_locked(inner, Err(error), SessionState::Failed, SessionState::Failed);
            return Ok(self.seq());
        }

        let encryption = self.encryption.as_ref().map(|e| (e.key_id.as_str(), e.server_hello_json.as_str()));
        let init = payload::session_init(&self.id, &iso_timestamp(self.expires_at()), encryption);
        self.emit_locked(&mut inner, EventType::SessionInit, &init);
        // With the sidecar, large literals stay on the host and `+`/templates learn about
        // references (sidecar/transform.rs); a literal over its limits fails the run.
        let code = match self.sidecar.as_ref().map(|s| sidecar::rewrite(&code, s)) {
            None => code,
            Some(Ok(rewritten)) => rewritten,
            Some(Err(e)) => {
                let error = ErrorInfo::new(ErrorCode::EXECUTION_ERROR, e.to_string());
                self.finish_locked(inner, Err(error), SessionState::Failed, SessionState::Failed);
                return Ok(self.seq());
            }
        };
        self.start_heartbeat(&mut inner);
        self.arm_deadline(&mut inner);
        inner.state = SessionState::Running;

        let session = self.arc();
        let done_session = session.clone();
        let request = ExecutionRequest {
            session_id: self.id.clone(),
            limits: self.limits.clone(),
            code,
            sandbox: self.sandbox.clone(),
            timeout: match self.limits.tool_timeout_ms {
                0 => None,
                ms => Some(Duration::from_millis(ms)),
            },
            bridge: session,
            done: Box::new(move |outcome| done_session.complete(outcome)),
        };
        let control = Arc::new(ExecutionControl::new());
        inner.control = Some(control.clone());
        let emitted = inner.seq;
        drop(inner);
        self.runtime.executor.submit(request, control);
        Ok(emitted)
    }

    pub(super) fn start_heartbeat(&self, inner: &mut Inner) {
        let interval = self.limits.heartbeat_interval_ms;
        if interval == 0 || interval == u64::MAX {
            return;
        }
        let weak = self.weak_self.clone();
        let handle = runtime::service().spawn(async move {
            let period = Duration::from_millis(interval);
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                ticker.tick().await;
                let Some(session) = weak.upgrade() else { return };
                let ts = iso_timestamp(now_epoch_ms());
                if session.emit_active(EventType::Heartbeat, &payload::heartbeat(&ts)).is_none() {
                    return;
                }
            }
        });
        inner.timers.push(handle.abort_handle());
    }

    pub(super) fn arm_deadline(&self, inner: &mut Inner) {
        let deadline = self.limits.deadline_ms;
        if deadline == 0 || deadline == u64::MAX {
            return;
        }
        let remaining = Duration::from_millis(deadline).saturating_sub(self.created.elapsed());
        let weak = self.weak_self.clone();
        let handle = runtime::service().spawn(async move {
            tokio::time::sleep(remaining).await;
            if let Some(session) = weak.upgrade() {
                session.deadline_reached();
            }
        });
        inner.timers.push(handle.abort_handle());
    }

    pub(super) fn deadline_reached(&self) {
        let mut inner = self.lock();
        if inner.phase != Phase::Running || inner.state.is_terminal() {
            return;
        }
        inner.deadline_exceeded = true;
        // As the original: the deadline cancels the session (state `cancelled`), and the
        // final result later reports DEADLINE_EXCEEDED with finalState `failed` (Q9 in docs/compatibility.md).
        let control = self.stop_running_locked(&mut inner);
        drop(inner);
        interrupt(control);
    }

    /// `cancel(reason?)`. Before `execute`: emits `error` + `final` with the reason.
    /// While running: stops the script (even mid-loop) and abandons pending tool calls;
    /// the final event reports `Session was cancelled` (the reason is not used, Q20 in docs/compatibility.md).
    pub fn cancel(&self, reason: Option<&str>) {
        let mut inner = self.lock();
        if inner.state.is_terminal() {
            return;
        }
        match inner.phase {
            Phase::NotStarted => {
                let message = reason.unwrap_or("Session was cancelled").to_string();
                let p = payload::error(ErrorCode::SESSION_CANCELLED, &message, false, None);
                self.emit_locked(&mut inner, EventType::Error, &p);
                inner.phase = Phase::Finished;
                inner.run_started = Some((Instant::now(), now_epoch_ms()));
                let error = ErrorInfo::new(ErrorCode::SESSION_CANCELLED, message);
                self.finish_locked(inner, Err(error), SessionState::Cancelled, SessionState::Cancelled);
            }
            Phase::Running => {
                let control = self.stop_running_locked(&mut inner);
                drop(inner);
                interrupt(control);
            }
            Phase::Finished => {}
        }
    }

    /// Marks the run cancelled and returns its control, to be interrupted once the lock is
    /// released (an interrupt may settle the run at once, which re-enters the session).
    pub(super) fn stop_running_locked(&self, inner: &mut Inner) -> Option<Arc<ExecutionControl>> {
        inner.state = SessionState::Cancelled;
        for timer in inner.timers.drain(..) {
            timer.abort();
        }
        for call_key in inner.pending_calls.iter() {
            self.host.abort(*call_key);
        }
        inner.control.clone()
    }

    /// `dispose()`: stops timers and any running script. A running execution still settles
    /// (as cancelled), so nobody waits forever; nothing is emitted after that.
    pub fn dispose(&self) {
        let mut inner = self.lock();
        let control = if inner.phase == Phase::Running && !inner.state.is_terminal() {
            self.stop_running_locked(&mut inner)
        } else {
            None
        };
        for timer in inner.timers.drain(..) {
            timer.abort();
        }
        inner.disposed = true;
        drop(inner);
        interrupt(control);
    }

    /// Engine callback: the run ended.
    pub(super) fn complete(&self, outcome: ExecutionOutcome) {
        let mut inner = self.lock();
        if inner.phase == Phase::Finished {
            return;
        }
        if let Some(error) = inner.forced.take() {
            let p = payload::error(&error.code, &error.message, false, None);
            self.emit_locked(&mut inner, EventType::Error, &p);
            return self.finish_locked(inner, Err(error), SessionState::Failed, SessionState::Failed);
        }
        if inner.deadline_exceeded {
            let elapsed = self.created.elapsed().as_millis() as f64;
            let p = payload::deadline_exceeded(elapsed, self.limits.deadline_ms as f64);
            self.emit_locked(&mut inner, EventType::DeadlineExceeded, &p);
            let error = ErrorInfo::new(ErrorCode::DEADLINE_EXCEEDED, "Deadline exceeded");
            return self.finish_locked(inner, Err(error), SessionState::Cancelled, SessionState::Failed);
        }
        if inner.state == SessionState::Cancelled {
            let error = ErrorInfo::new(ErrorCode::SESSION_CANCELLED, "Session was cancelled");
            return self.finish_locked(inner, Err(error), SessionState::Cancelled, SessionState::Cancelled);
        }
        match outcome {
            ExecutionOutcome::Returned(value) => {
                self.finish_locked(inner, Ok(value), SessionState::Completed, SessionState::Completed)
            }
            ExecutionOutcome::Threw(error) => {
                self.finish_locked(inner, Err(error), SessionState::Failed, SessionState::Failed)
            }
            ExecutionOutcome::Interrupted { reason, detail } => {
                let error = match reason {
                    InterruptReason::Timeout => ErrorInfo::new(
                        ErrorCode::TIMEOUT,
                        format!("Script execution timed out after {}ms", self.limits.tool_timeout_ms),
                    ),
                    InterruptReason::MemoryLimit => ErrorInfo::named(
                        ErrorCode::MEMORY_LIMIT_EXCEEDED,
                        "MemoryLimitError",
                        detail.unwrap_or_else(|| "Memory limit exceeded".to_string()),
                    ),
                    // Stopped without a cancel/deadline recorded: treat as a cancel.
                    InterruptReason::Stopped => {
                        ErrorInfo::new(ErrorCode::SESSION_CANCELLED, "Session was cancelled")
                    }
                };
                let state = if reason == InterruptReason::Stopped {
                    SessionState::Cancelled
                } else {
                    SessionState::Failed
                };
                self.finish_locked(inner, Err(error), state, state)
            }
        }
    }

    /// Emits `final`, records the result, moves to `state`, and runs finish callbacks.
    pub(super) fn finish_locked(
        &self,
        mut inner: MutexGuard<'_, Inner>,
        outcome: Result<Option<String>, ErrorInfo>,
        state: SessionState,
        final_state: SessionState,
    ) {
        let (started, start_epoch) = inner.run_started.unwrap_or((Instant::now(), now_epoch_ms()));
        let duration_ms = started.elapsed().as_millis() as f64;
        let stats_json = payload::final_stats(duration_ms, inner.tool_call_count, inner.stdout_bytes);
        let errors_json = if inner.partial_errors.is_empty() {
            None
        } else {
            Some(format!("[{}]", inner.partial_errors.join(",")))
        };
        let final_payload = match &outcome {
            Ok(value) => payload::final_ok(value.as_deref(), errors_json.as_deref(), &stats_json),
            Err(e) => {
                let name = self.runtime.error_names.then_some(e.name.as_str());
                payload::final_err(&e.code, &e.message, name, errors_json.as_deref(), &stats_json)
            }
        };
        let final_event = self.emit_locked(&mut inner, EventType::Final, &final_payload);
        inner.final_seq = Some(final_event.seq());
        for timer in inner.timers.drain(..) {
            timer.abort();
        }
        inner.state = state;
        inner.phase = Phase::Finished;
        inner.control = None;
        // The run's references end with it, as the original disposes its sidecar: a
        // reference in the result stays a string, its data is freed.
        if let Some(sidecar) = &self.sidecar {
            sidecar.release();
        }
        let (value_json, error) = match outcome {
            Ok(v) => (v, None),
            Err(e) => (None, Some(e)),
        };
        let result = Arc::new(FinalResult {
            value_json,
            error,
            stats: ExecutionStats {
                duration_ms,
                tool_call_count: inner.tool_call_count,
                start_time: start_epoch,
                end_time: start_epoch + duration_ms,
            },
            final_state,
        });
        inner.finished = Some(result.clone());
        let callbacks = std::mem::take(&mut inner.on_finished);
        drop(inner);
        for callback in callbacks {
            callback(&result);
        }
    }
}

fn interrupt(control: Option<Arc<ExecutionControl>>) {
    if let Some(control) = control {
        control.interrupt(InterruptReason::Stopped);
    }
}
