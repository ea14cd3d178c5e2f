//! One broker session: its state machine, its event history and subscribers, the tool
//! calls its script makes, and the timers (heartbeat, deadline) around one execution.
//!
//! Everything observable goes through `emit`, which assigns `seq` and notifies
//! subscribers while holding the session lock, so every subscriber sees one order.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use super::allowed_tools::AllowedTools;
use super::encryption::SessionEncryption;
use super::journal::EventJournal;
use super::principal::Principal;
use super::result::{ExecutionStats, FinalResult};
use super::state::SessionState;
use crate::engine::timer;
use crate::engine::{
    self, ConsoleLevel, ExecutionControl, ExecutionOutcome, ExecutionRequest, Executor, InterruptReason,
    PendingToolCall, SandboxBridge, SandboxOptions, ToolCallInfo,
};
use crate::protocol::event::payload;
use crate::protocol::ids::{generate_call_id, generate_session_id};
use crate::protocol::json::{iso_timestamp, now_epoch_ms};
use crate::protocol::{ErrorCode, ErrorInfo, EventType, SessionLimits, StreamEvent};
use crate::runtime;
use crate::tools::{ReplySender, ToolCall, ToolHost, ToolReply, reply_channel};
use tokio::sync::Notify;

static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

pub(crate) fn next_key() -> u64 {
    NEXT_KEY.fetch_add(1, Ordering::Relaxed)
}

pub type Subscriber = Arc<dyn Fn(&Arc<StreamEvent>) + Send + Sync>;
type FinishCallback = Box<dyn FnOnce(&Arc<FinalResult>) + Send>;

/// Which tools the session's client runs itself: their calls wait for
/// `submit_tool_result` (or `POST /sessions/:id/tool-result`) instead of a host handler.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ExternalTools {
    #[default]
    None,
    All,
    Named(HashSet<String>),
}

impl ExternalTools {
    fn contains(&self, name: &str) -> bool {
        match self {
            ExternalTools::None => false,
            ExternalTools::All => true,
            ExternalTools::Named(names) => names.contains(name),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct SessionConfig {
    pub session_id: Option<String>,
    pub limits: SessionLimits,
    pub sandbox: SandboxOptions,
    pub external_tools: ExternalTools,
    /// Tools the script may call (seed `allowedTools`); all by default.
    pub allowed_tools: AllowedTools,
    /// Negotiated stream encryption (seed handshake); plaintext when absent.
    pub encryption: Option<Arc<SessionEncryption>>,
    /// Key of the owning manager (set by `SessionManager::create`).
    pub owner_key: u64,
    /// Who may reach the session through a server (see `principal`).
    pub owner: Principal,
    /// Where its events are stored for other brokers (see `journal`); none by default.
    pub journal: Option<Arc<dyn EventJournal>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitError {
    WrongState(SessionState),
    NoPendingCall,
    CallIdMismatch { expected: String, got: String },
}

impl std::fmt::Display for SubmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::WrongState(state) => {
                write!(f, "Cannot submit tool result in state: {}", state.as_str())
            }
            SubmitError::NoPendingCall => f.write_str("No pending tool call"),
            SubmitError::CallIdMismatch { expected, got } => {
                write!(f, "Tool result callId mismatch: expected {expected}, got {got}")
            }
        }
    }
}

impl std::error::Error for SubmitError {}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LifecycleError {
    AlreadyExecuting,
    Disposed,
}

impl std::fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LifecycleError::AlreadyExecuting => f.write_str("Session is already executing"),
            LifecycleError::Disposed => f.write_str("Session is disposed"),
        }
    }
}

impl std::error::Error for LifecycleError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    NotStarted,
    Running,
    Finished,
}

struct Inner {
    state: SessionState,
    seq: u64,
    history: Vec<Arc<StreamEvent>>,
    subscribers: Vec<(u64, Subscriber)>,
    next_subscriber: u64,
    phase: Phase,
    tool_call_count: u64,
    stdout_bytes: u64,
    stdout_truncated: bool,
    partial_errors: Vec<String>,
    run_started: Option<(Instant, f64)>,
    deadline_exceeded: bool,
    tool_failed: bool,
    pending_calls: HashSet<u64>,
    /// External calls waiting for their client's result, in call order.
    external_waiting: Vec<(String, ReplySender)>,
    control: Option<Arc<ExecutionControl>>,
    timers: Vec<tokio::task::AbortHandle>,
    finished: Option<Arc<FinalResult>>,
    /// The seq of the `final` event, once emitted.
    final_seq: Option<u64>,
    on_finished: Vec<FinishCallback>,
    disposed: bool,
    /// With a journal: the last seq it has stored (what HTTP streams may show).
    durable: u64,
    /// The journal no longer stores this session: streams show its own history.
    detached: bool,
    /// Woken when events become visible to streams (emitted, or stored by the journal).
    watchers: Vec<(u64, Arc<Notify>)>,
    /// Why `fail` stopped the run, reported once the engine has settled it.
    forced: Option<ErrorInfo>,
}

/// What runs a session's executions, and how its `final` event reports errors.
#[derive(Clone)]
pub struct SessionRuntime {
    pub executor: Arc<dyn Executor>,
    /// The `final` event's error carries its `name` too: a runtime worker's sessions do, so
    /// that the broker driving it rebuilds the exact error (the original's stream has none).
    pub error_names: bool,
}

impl Default for SessionRuntime {
    fn default() -> Self {
        SessionRuntime { executor: engine::local(), error_names: false }
    }
}

pub struct Session {
    key: u64,
    id: String,
    created_at: f64,
    created: Instant,
    limits: SessionLimits,
    sandbox: SandboxOptions,
    external_tools: ExternalTools,
    allowed_tools: AllowedTools,
    encryption: Option<Arc<SessionEncryption>>,
    owner_key: u64,
    owner: Principal,
    journal: Option<Arc<dyn EventJournal>>,
    host: Arc<dyn ToolHost>,
    runtime: SessionRuntime,
    weak_self: Weak<Session>,
    inner: Mutex<Inner>,
}

impl Session {
    pub fn new(config: SessionConfig, host: Arc<dyn ToolHost>) -> Arc<Session> {
        Session::with_runtime(config, host, SessionRuntime::default())
    }

    /// A session whose executions run on `runtime.executor` (a remote runtime, say).
    pub fn with_runtime(
        config: SessionConfig,
        host: Arc<dyn ToolHost>,
        runtime: SessionRuntime,
    ) -> Arc<Session> {
        let created_at = now_epoch_ms();
        Arc::new_cyclic(|weak_self| Session {
            key: next_key(),
            id: config.session_id.unwrap_or_else(generate_session_id),
            created_at,
            created: Instant::now(),
            limits: config.limits,
            sandbox: config.sandbox,
            external_tools: config.external_tools,
            allowed_tools: config.allowed_tools,
            encryption: config.encryption,
            owner_key: config.owner_key,
            owner: config.owner,
            journal: config.journal,
            host,
            runtime,
            weak_self: weak_self.clone(),
            inner: Mutex::new(Inner {
                state: SessionState::Starting,
                seq: 0,
                history: Vec::new(),
                subscribers: Vec::new(),
                next_subscriber: 1,
                phase: Phase::NotStarted,
                tool_call_count: 0,
                stdout_bytes: 0,
                stdout_truncated: false,
                partial_errors: Vec::new(),
                run_started: None,
                deadline_exceeded: false,
                tool_failed: false,
                pending_calls: HashSet::new(),
                external_waiting: Vec::new(),
                control: None,
                timers: Vec::new(),
                finished: None,
                final_seq: None,
                on_finished: Vec::new(),
                disposed: false,
                durable: 0,
                detached: false,
                watchers: Vec::new(),
                forced: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn arc(&self) -> Arc<Session> {
        self.weak_self.upgrade().expect("session used after drop")
    }

    pub fn key(&self) -> u64 {
        self.key
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The stream encryption negotiated at creation, if any.
    pub fn encryption(&self) -> Option<&Arc<SessionEncryption>> {
        self.encryption.as_ref()
    }

    pub fn limits(&self) -> &SessionLimits {
        &self.limits
    }

    pub fn owner_key(&self) -> u64 {
        self.owner_key
    }

    /// The principal the session belongs to.
    pub fn owner(&self) -> &Principal {
        &self.owner
    }

    pub fn sandbox(&self) -> &SandboxOptions {
        &self.sandbox
    }

    /// Call ids of external tool calls waiting for a submitted result.
    pub fn waiting_call_ids(&self) -> Vec<String> {
        self.lock().external_waiting.iter().map(|(id, _)| id.clone()).collect()
    }

    /// Delivers a client's result for an external tool call (`submitToolResult`).
    pub fn submit_tool_result(&self, call_id: &str, reply: ToolReply) -> Result<(), SubmitError> {
        let mut inner = self.lock();
        if inner.state != SessionState::WaitingForTool {
            return Err(SubmitError::WrongState(inner.state));
        }
        let Some(index) = inner.external_waiting.iter().position(|(id, _)| id == call_id) else {
            return match inner.external_waiting.first() {
                None => Err(SubmitError::NoPendingCall),
                Some((expected, _)) => {
                    Err(SubmitError::CallIdMismatch { expected: expected.clone(), got: call_id.to_string() })
                }
            };
        };
        let (_, sender) = inner.external_waiting.remove(index);
        if inner.external_waiting.is_empty() {
            inner.state = SessionState::Running;
        }
        drop(inner);
        // Already answered only if its deadline won the race; the submission is then moot.
        let _ = sender.send(reply);
        Ok(())
    }

    /// `Date.now()` at creation.
    pub fn created_at(&self) -> f64 {
        self.created_at
    }

    /// `createdAt + sessionTtlMs`, kept within JavaScript's Date range.
    pub fn expires_at(&self) -> f64 {
        const MAX_DATE_MS: f64 = 8.64e15;
        (self.created_at + self.limits.session_ttl_ms as f64).min(MAX_DATE_MS)
    }

    pub fn is_expired(&self) -> bool {
        now_epoch_ms() > self.expires_at()
    }

    pub fn state(&self) -> SessionState {
        self.lock().state
    }

    pub fn is_terminal(&self) -> bool {
        self.state().is_terminal()
    }

    /// The last assigned seq (0 before the first event).
    pub fn seq(&self) -> u64 {
        self.lock().seq
    }

    pub fn tool_call_count(&self) -> u64 {
        self.lock().tool_call_count
    }

    pub fn has_started(&self) -> bool {
        self.lock().phase != Phase::NotStarted
    }

    pub fn events(&self) -> Vec<Arc<StreamEvent>> {
        self.lock().history.clone()
    }

    /// Events with `seq > after` (history is dense, so this is a slice).
    pub fn events_after(&self, after: u64) -> Vec<Arc<StreamEvent>> {
        let inner = self.lock();
        let start = (after as usize).min(inner.history.len());
        inner.history[start..].to_vec()
    }

    /// How many events of the history streams may show: all of them, or with a journal
    /// only those it has stored.
    fn visible_len(&self, inner: &Inner) -> usize {
        match &self.journal {
            Some(_) if !inner.detached => inner.durable as usize,
            _ => inner.history.len(),
        }
    }

    /// At most `max` events with `seq > after` that streams may show: a reader that pages
    /// through the history never copies more of it than it can send.
    pub fn events_page(&self, after: u64, max: usize) -> Vec<Arc<StreamEvent>> {
        let inner = self.lock();
        let visible = self.visible_len(&inner);
        let start = (after as usize).min(visible);
        let end = start.saturating_add(max).min(visible);
        inner.history[start..end].to_vec()
    }

    /// The seq of the `final` event once streams may show it (nothing follows it).
    pub fn final_seq(&self) -> Option<u64> {
        let inner = self.lock();
        inner.final_seq.filter(|seq| *seq as usize <= self.visible_len(&inner))
    }

    /// The journal storing this session's events for other brokers, if any.
    pub fn journal(&self) -> Option<&Arc<dyn EventJournal>> {
        self.journal.as_ref()
    }

    /// Wakes `notify` whenever more events become visible to streams (until `unwatch`).
    pub fn watch(&self, notify: Arc<Notify>) -> u64 {
        let mut inner = self.lock();
        let id = inner.next_subscriber;
        inner.next_subscriber += 1;
        inner.watchers.push((id, notify));
        id
    }

    pub fn unwatch(&self, id: u64) {
        self.lock().watchers.retain(|(wid, _)| *wid != id);
    }

    /// The journal has stored every event up to `seq`: streams may show them.
    pub fn mark_durable(&self, seq: u64) {
        let mut inner = self.lock();
        let seq = seq.min(inner.seq);
        if seq > inner.durable {
            inner.durable = seq;
            wake(&inner.watchers);
        }
    }

    /// The last seq the journal has stored (every seq without a journal).
    pub fn durable_seq(&self) -> u64 {
        let inner = self.lock();
        self.visible_len(&inner) as u64
    }

    /// The journal stops storing this session (it was taken over, or never registered):
    /// from now on its streams show its own history, as without a journal.
    pub fn detach(&self) {
        let mut inner = self.lock();
        if !inner.detached {
            inner.detached = true;
            wake(&inner.watchers);
        }
    }

    pub fn is_detached(&self) -> bool {
        self.lock().detached
    }

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

    pub fn final_result(&self) -> Option<Arc<FinalResult>> {
        self.lock().finished.clone()
    }

    pub fn partial_errors(&self) -> Vec<String> {
        self.lock().partial_errors.clone()
    }

    /// Live subscription; no replay (use `events_after` for that).
    pub fn subscribe(&self, subscriber: Subscriber) -> u64 {
        let mut inner = self.lock();
        let id = inner.next_subscriber;
        inner.next_subscriber += 1;
        inner.subscribers.push((id, subscriber));
        id
    }

    /// Subscribes and returns the history after `after` atomically: nothing is missed
    /// or delivered twice between replay and live events.
    pub fn subscribe_from(&self, after: u64, subscriber: Subscriber) -> (u64, Vec<Arc<StreamEvent>>) {
        let mut inner = self.lock();
        let id = inner.next_subscriber;
        inner.next_subscriber += 1;
        inner.subscribers.push((id, subscriber));
        let start = (after as usize).min(inner.history.len());
        (id, inner.history[start..].to_vec())
    }

    pub fn unsubscribe(&self, id: u64) {
        self.lock().subscribers.retain(|(sid, _)| *sid != id);
    }

    /// Runs `callback` once the session has a final result (at once if it has one).
    pub fn on_finished(&self, callback: impl FnOnce(&Arc<FinalResult>) + Send + 'static) {
        let mut inner = self.lock();
        if let Some(result) = inner.finished.clone() {
            drop(inner);
            callback(&result);
        } else {
            inner.on_finished.push(Box::new(callback));
        }
    }

    fn emit_locked(&self, inner: &mut Inner, kind: EventType, payload_json: &str) -> Arc<StreamEvent> {
        inner.seq += 1;
        let event = Arc::new(StreamEvent::new(&self.id, inner.seq, kind, payload_json));
        inner.history.push(event.clone());
        for (_, subscriber) in &inner.subscribers {
            subscriber(&event);
        }
        match &self.journal {
            // Streams see the event once the journal has stored it (`mark_durable`).
            Some(journal) if !inner.detached => journal.append(&self.arc(), &event),
            _ => wake(&inner.watchers),
        }
        event
    }

    /// Emits an event unless the session is already terminal or disposed.
    fn emit_active(&self, kind: EventType, payload_json: &str) -> Option<Arc<StreamEvent>> {
        let mut inner = self.lock();
        if inner.state.is_terminal() || inner.disposed {
            return None;
        }
        Some(self.emit_locked(&mut inner, kind, payload_json))
    }

    /// `emitToolProgress` (public in the original, and called twice per tool call).
    pub fn emit_tool_progress(
        &self,
        call_id: &str,
        phase: &str,
        elapsed_ms: f64,
        bytes_received: Option<f64>,
        total_bytes: Option<f64>,
    ) {
        let p = payload::tool_progress(call_id, phase, elapsed_ms, bytes_received, total_bytes);
        self.emit_active(EventType::ToolProgress, &p);
    }

    /// `emitPartialResult(path, data?, error?, hasNext)`; `error` also lands in `final.errors`.
    pub fn emit_partial_result(
        &self,
        path_json: &str,
        data_json: Option<&str>,
        error_json: Option<&str>,
        has_next: bool,
    ) {
        let p = payload::partial_result(path_json, data_json, error_json, has_next);
        let mut inner = self.lock();
        if inner.state.is_terminal() || inner.disposed {
            return;
        }
        if let Some(e) = error_json {
            inner.partial_errors.push(e.to_string());
        }
        self.emit_locked(&mut inner, EventType::PartialResult, &p);
    }

    pub fn emit_log(&self, level: &str, message: &str, data_json: Option<&str>) {
        self.emit_active(EventType::Log, &payload::log(level, message, data_json));
    }

    /// Console output from the sandbox: `stdout` chunks for `console.log`, `log` events for
    /// the levelled methods, all counted against `maxStdoutBytes`.
    pub fn emit_console(&self, level: ConsoleLevel, text: &str) {
        match level {
            ConsoleLevel::Log => self.emit_output(None, &format!("{text}\n")),
            _ => self.emit_output(Some(level.as_str()), text),
        }
    }

    /// `events.emitStdout(chunk)`: a raw stdout chunk, counted like console output.
    pub fn emit_stdout(&self, chunk: &str) {
        self.emit_output(None, chunk);
    }

    /// Emits output as `stdout` (`level` = None) or `log`. Past `maxStdoutBytes` the text is
    /// truncated once, a warning `log` event says so, and later output is dropped.
    fn emit_output(&self, level: Option<&str>, text: &str) {
        let mut inner = self.lock();
        if inner.state.is_terminal() || inner.disposed || inner.stdout_truncated {
            return;
        }
        let limit = self.limits.max_stdout_bytes;
        let remaining = limit.saturating_sub(inner.stdout_bytes) as usize;
        let (chunk, truncated) =
            if text.len() > remaining { (truncate_utf8(text, remaining), true) } else { (text, false) };
        inner.stdout_bytes += chunk.len() as u64;
        if !chunk.is_empty() {
            match level {
                None => self.emit_locked(&mut inner, EventType::Stdout, &payload::stdout(chunk)),
                Some(level) => {
                    self.emit_locked(&mut inner, EventType::Log, &payload::log(level, chunk, None))
                }
            };
        }
        if truncated {
            inner.stdout_truncated = true;
            let msg =
                format!("Console output limit reached (maxStdoutBytes: {limit}); further output was dropped");
            self.emit_locked(&mut inner, EventType::Log, &payload::log("warn", &msg, None));
        }
    }

    pub fn stdout_bytes(&self) -> u64 {
        self.lock().stdout_bytes
    }

    /// `getStats()`: duration counts from creation and keeps growing (quirk Q11).
    pub fn stats(&self) -> ExecutionStats {
        let inner = self.lock();
        let now = now_epoch_ms();
        ExecutionStats {
            duration_ms: now - self.created_at,
            tool_call_count: inner.tool_call_count,
            start_time: self.created_at,
            end_time: if inner.state.is_terminal() { now } else { 0.0 },
        }
    }

    /// Starts the execution. Emits `session_init`, starts heartbeats, arms the deadline,
    /// sets `running` and hands the code to the engine, all before returning.
    pub fn execute(&self, code: String) -> Result<(), LifecycleError> {
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
            return Ok(());
        }

        let encryption = self.encryption.as_ref().map(|e| (e.key_id.as_str(), e.server_hello_json.as_str()));
        let init = payload::session_init(&self.id, &iso_timestamp(self.expires_at()), encryption);
        self.emit_locked(&mut inner, EventType::SessionInit, &init);
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
        drop(inner);
        self.runtime.executor.submit(request, control);
        Ok(())
    }

    fn start_heartbeat(&self, inner: &mut Inner) {
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

    fn arm_deadline(&self, inner: &mut Inner) {
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

    fn deadline_reached(&self) {
        let mut inner = self.lock();
        if inner.phase != Phase::Running || inner.state.is_terminal() {
            return;
        }
        inner.deadline_exceeded = true;
        // As the original: the deadline cancels the session (state `cancelled`), and the
        // final result later reports DEADLINE_EXCEEDED with finalState `failed` (Q9).
        let control = self.stop_running_locked(&mut inner);
        drop(inner);
        interrupt(control);
    }

    /// `cancel(reason?)`. Before `execute`: emits `error` + `final` with the reason.
    /// While running: stops the script (even mid-loop) and abandons pending tool calls;
    /// the final event reports `Session was cancelled` (the reason is not used, Q20).
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
    fn stop_running_locked(&self, inner: &mut Inner) -> Option<Arc<ExecutionControl>> {
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
    fn complete(&self, outcome: ExecutionOutcome) {
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
    fn finish_locked(
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

fn wake(watchers: &[(u64, Arc<Notify>)]) {
    for (_, notify) in watchers {
        notify.notify_one();
    }
}

fn interrupt(control: Option<Arc<ExecutionControl>>) {
    if let Some(control) = control {
        control.interrupt(InterruptReason::Stopped);
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn too_large(code: &str, what: &str, limit: u64) -> ErrorInfo {
    ErrorInfo::new(code, format!("{what} exceeds maximum size ({limit} bytes)"))
}

impl SandboxBridge for Session {
    fn begin_tool_call(&self, name: &str, args_json: String) -> Result<PendingToolCall, ErrorInfo> {
        let mut inner = self.lock();
        if inner.state.is_terminal()
            || inner.disposed
            || inner.tool_failed && self.limits.cancel_on_first_error
        {
            return Err(ErrorInfo::new(ErrorCode::SESSION_CANCELLED, "Session cancelled"));
        }
        let max = self.limits.max_tool_calls;
        if inner.tool_call_count >= max {
            return Err(ErrorInfo::new(
                ErrorCode::MAX_TOOL_CALLS_EXCEEDED,
                format!(
                    "Maximum tool call limit exceeded ({max}). This limit prevents runaway script execution."
                ),
            ));
        }
        if args_json.len() as u64 > self.limits.max_tool_result_bytes {
            return Err(too_large(
                ErrorCode::TOOL_ARGS_TOO_LARGE,
                "Tool request",
                self.limits.max_tool_result_bytes,
            ));
        }
        let deadline = self.limits.deadline_ms;
        if deadline > 0 && self.created.elapsed() >= Duration::from_millis(deadline) {
            return Err(ErrorInfo::new(
                ErrorCode::DEADLINE_EXCEEDED,
                "Deadline exceeded before tool execution",
            ));
        }

        let started = Instant::now();
        let call_id = generate_call_id();
        let call_key = next_key();
        inner.tool_call_count += 1;
        self.emit_locked(&mut inner, EventType::ToolCall, &payload::tool_call(&call_id, name, &args_json));
        let connecting = payload::tool_progress(&call_id, "connecting", 0.0, None, None);
        self.emit_locked(&mut inner, EventType::ToolProgress, &connecting);
        let processing =
            payload::tool_progress(&call_id, "processing", started.elapsed().as_millis() as f64, None, None);
        self.emit_locked(&mut inner, EventType::ToolProgress, &processing);
        inner.pending_calls.insert(call_key);
        drop(inner);

        let (tx, rx) = reply_channel();
        if !self.allowed_tools.allows(name) {
            // Fails as a tool would, so the stream and counts look like any failed call.
            let _ = tx.send(ToolReply::Err(AllowedTools::refusal(name)));
        } else if self.external_tools.contains(name) {
            let mut inner = self.lock();
            inner.external_waiting.push((call_id.clone(), tx.clone()));
            if inner.state == SessionState::Running {
                inner.state = SessionState::WaitingForTool;
            }
        } else {
            self.host.call(
                ToolCall {
                    call_key,
                    session_key: self.key,
                    owner_key: self.owner_key,
                    session_id: self.id.clone(),
                    call_id: call_id.clone(),
                    name: name.to_string(),
                    args_json,
                },
                tx.clone(),
            );
        }

        // At `perToolDeadlineMs` the call is abandoned: the handler's signal aborts and the
        // script gets an error it can catch, instead of waiting on a handler that may never
        // answer (the session deadline, if sooner, stops the whole run on its own).
        let reply = match self.limits.per_tool_deadline_ms {
            0 | u64::MAX => rx,
            ms => {
                let host = self.host.clone();
                let deadline = timer::arm(Instant::now() + Duration::from_millis(ms), move || {
                    let error = ErrorInfo::new(
                        ErrorCode::DEADLINE_EXCEEDED,
                        format!("Tool call exceeded perToolDeadlineMs ({ms}ms)"),
                    );
                    // The signal aborts first, so the handler knows before the script does.
                    if !tx.is_answered() {
                        host.abandon(call_key);
                        let _ = tx.send(ToolReply::Err(error));
                    }
                });
                rx.hold(deadline)
            }
        };
        Ok(PendingToolCall {
            info: ToolCallInfo { call_key, call_id, name: name.to_string(), started },
            reply,
        })
    }

    fn finish_tool_call(&self, info: &ToolCallInfo, reply: Option<ToolReply>) -> ToolReply {
        let mut inner = self.lock();
        inner.pending_calls.remove(&info.call_key);
        inner.external_waiting.retain(|(id, _)| *id != info.call_id);
        if inner.external_waiting.is_empty() && inner.state == SessionState::WaitingForTool {
            inner.state = SessionState::Running;
        }
        let reply = match reply {
            Some(ToolReply::Ok(Some(json))) if json.len() as u64 > self.limits.max_tool_result_bytes => {
                ToolReply::Err(too_large(
                    ErrorCode::TOOL_RESULT_TOO_LARGE,
                    "Tool response",
                    self.limits.max_tool_result_bytes,
                ))
            }
            Some(reply) => reply,
            None => {
                self.host.abandon(info.call_key);
                ToolReply::Err(ErrorInfo::new(ErrorCode::SESSION_CANCELLED, "Session cancelled"))
            }
        };
        if matches!(reply, ToolReply::Err(_)) {
            inner.tool_failed = true;
        }
        // Emitted for every call, failed or abandoned too, so each tool_call has its pair.
        self.emit_locked(
            &mut inner,
            EventType::ToolResultApplied,
            &payload::tool_result_applied(&info.call_id),
        );
        reply
    }

    fn console(&self, level: ConsoleLevel, text: &str) {
        self.emit_console(level, text);
    }

    fn stdout_chunk(&self, chunk: &str) {
        self.emit_stdout(chunk);
    }
}
