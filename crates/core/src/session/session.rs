//! One broker session: what it is made of (its configuration, limits, owner, collaborators)
//! and what it holds under its one lock. Its jobs live beside it, each in its own file:
//! `events.rs` (the event history, subscribers and what streams may show),
//! `tool_calls.rs` (the calls its script makes) and `lifecycle.rs` (one execution, from
//! `execute` to `final`, with its timers, cancel and dispose).
//!
//! Everything observable goes through `emit_locked`, which assigns `seq` and notifies
//! subscribers while holding the session lock, so every subscriber sees one order.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use super::allowed_tools::AllowedTools;
use super::encryption::SessionEncryption;
use super::principal::Principal;
use super::result::{ExecutionStats, FinalResult};
use super::state::SessionState;
use crate::engine::{self, ExecutionControl, Executor, SandboxOptions};
use crate::protocol::ids::generate_session_id;
use crate::protocol::json::now_epoch_ms;
use crate::protocol::{ErrorInfo, SessionLimits, StreamEvent};
use crate::sidecar::{ReferenceConfig, Sidecar};
use crate::tools::{ReplySender, ToolHost};
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
    pub(super) fn contains(&self, name: &str) -> bool {
        match self {
            ExternalTools::None => false,
            ExternalTools::All => true,
            ExternalTools::Named(names) => names.contains(name),
        }
    }
}

/// Where a session's events go besides its own history when several brokers share state
/// (the Redis journal of `cluster::redis`). A session with a journal shows its HTTP streams
/// only the events the journal has stored (`Session::mark_durable`), so an event a client
/// has seen survives the broker; in-process listeners (`onEvent`, `execute()`) still see
/// every event at once. A session without one (the default) behaves exactly as before.
pub trait EventJournal: Send + Sync {
    /// A session was created with this journal by the manager (in-process): register it
    /// before its first event is written. Routes that registered it themselves skip this.
    fn created(&self, session: &Arc<Session>);

    /// Every event the session emits, in seq order, called under the session's lock: it
    /// must only enqueue.
    fn append(&self, session: &Arc<Session>, event: &Arc<StreamEvent>);

    /// The session was terminated (`DELETE`, `terminateSession`): once its last events are
    /// stored, its shared record goes too.
    fn terminated(&self, session: &Arc<Session>);
}

impl std::fmt::Debug for dyn EventJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventJournal")
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
    /// The reference sidecar's limits when it is enabled (`enclave.sidecar`, see `sidecar/`).
    pub sidecar: Option<ReferenceConfig>,
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
pub(super) enum Phase {
    NotStarted,
    Running,
    Finished,
}

pub(super) struct Inner {
    pub(super) state: SessionState,
    pub(super) seq: u64,
    pub(super) history: Vec<Arc<StreamEvent>>,
    pub(super) subscribers: Vec<(u64, Subscriber)>,
    pub(super) next_subscriber: u64,
    pub(super) phase: Phase,
    pub(super) tool_call_count: u64,
    pub(super) stdout_bytes: u64,
    pub(super) stdout_events: u64,
    pub(super) stdout_truncated: bool,
    pub(super) partial_errors: Vec<String>,
    pub(super) run_started: Option<(Instant, f64)>,
    pub(super) deadline_exceeded: bool,
    pub(super) tool_failed: bool,
    pub(super) pending_calls: HashSet<u64>,
    /// External calls waiting for their client's result, in call order.
    pub(super) external_waiting: Vec<(String, ReplySender)>,
    pub(super) control: Option<Arc<ExecutionControl>>,
    pub(super) timers: Vec<tokio::task::AbortHandle>,
    pub(super) finished: Option<Arc<FinalResult>>,
    /// The seq of the `final` event, once emitted.
    pub(super) final_seq: Option<u64>,
    pub(super) on_finished: Vec<FinishCallback>,
    pub(super) disposed: bool,
    /// With a journal: the last seq it has stored (what HTTP streams may show).
    pub(super) durable: u64,
    /// The journal no longer stores this session: streams show its own history.
    pub(super) detached: bool,
    /// Woken when events become visible to streams (emitted, or stored by the journal).
    pub(super) watchers: Vec<(u64, Arc<Notify>)>,
    /// Why `fail` stopped the run, reported once the engine has settled it.
    pub(super) forced: Option<ErrorInfo>,
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
    pub(super) key: u64,
    pub(super) id: String,
    pub(super) created_at: f64,
    pub(super) created: Instant,
    pub(super) limits: SessionLimits,
    pub(super) sandbox: SandboxOptions,
    pub(super) external_tools: ExternalTools,
    pub(super) allowed_tools: AllowedTools,
    pub(super) encryption: Option<Arc<SessionEncryption>>,
    pub(super) owner_key: u64,
    pub(super) owner: Principal,
    pub(super) journal: Option<Arc<dyn EventJournal>>,
    /// The references of this session's execution, when the sidecar is enabled.
    pub(super) sidecar: Option<Sidecar>,
    pub(super) host: Arc<dyn ToolHost>,
    pub(super) runtime: SessionRuntime,
    pub(super) weak_self: Weak<Session>,
    pub(super) inner: Mutex<Inner>,
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
            sidecar: config.sidecar.map(Sidecar::new),
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
                stdout_events: 0,
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

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn arc(&self) -> Arc<Session> {
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

    /// The journal storing this session's events for other brokers, if any.
    pub fn journal(&self) -> Option<&Arc<dyn EventJournal>> {
        self.journal.as_ref()
    }

    pub fn final_result(&self) -> Option<Arc<FinalResult>> {
        self.lock().finished.clone()
    }

    pub fn partial_errors(&self) -> Vec<String> {
        self.lock().partial_errors.clone()
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

    pub fn stdout_bytes(&self) -> u64 {
        self.lock().stdout_bytes
    }

    /// `getStats()`: duration counts from creation and keeps growing (quirk Q11 in docs/compatibility.md).
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
}
