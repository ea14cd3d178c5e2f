//! The channels from the core to Node's main thread. Tool calls go to the JS tool function
//! of the manager or session that owns them (`JsToolHost`, one threadsafe function each);
//! everything else (event announcements, completions, server callbacks, cluster answers)
//! goes through one dispatcher, which receives its messages in order. The dispatcher is
//! unref'd unless an execution is in flight, so an idle broker never keeps Node's process
//! alive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use enclave_broker_core::protocol::{ErrorCode, ErrorInfo, StreamEvent};
use enclave_broker_core::tools::{ToolCall, ToolHost, ToolReply, ToolReplySender};
use napi::bindgen_prelude::{FnArgs, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{Env, Status};
use napi_derive::napi;

type DispatchArgs = FnArgs<(u32, f64, f64, String, String, String)>;
type Dispatch = ThreadsafeFunction<HostMessage, (), DispatchArgs, Status, false, true>;

const KIND_EVENTS: u32 = 0;
const KIND_TOOL_ABORT: u32 = 2;
const KIND_DONE: u32 = 3;
const KIND_CALLBACK: u32 = 4;
const KIND_SERVER_CLOSED: u32 = 5;
const KIND_SESSION_FINISHED: u32 = 6;
const KIND_SESSION_CREATED: u32 = 7;
const KIND_WORKER_STOPPED: u32 = 8;
const KIND_CLUSTER_READY: u32 = 9;
const KIND_CLUSTER_CLOSED: u32 = 10;
const KIND_CLUSTER_ANSWER: u32 = 11;
const KIND_CLUSTER_EVENTS: u32 = 12;

pub(crate) enum HostMessage {
    /// A session has events its listeners have not had (the facade pulls them in batches).
    Events(u64),
    /// Abort the handler's signal of a tool call (its session's run ended, or its per-tool
    /// deadline passed). On this channel, so that it reaches the facade before the run's
    /// completion does.
    ToolAbort(u64),
    Done {
        session_key: u64,
        result_json: String,
    },
    /// Asks the facade to run a user callback (`validate`, `keyGenerator`) for a server.
    Callback {
        request_key: u64,
        server_key: u64,
        name: &'static str,
        argument: String,
        request_json: String,
    },
    ServerClosed(u64),
    /// A watched session has its final result (for the broker's `session:*` events).
    SessionFinished {
        session_key: u64,
        result_json: String,
    },
    /// A server route created a session (for the broker's `session:created`).
    SessionCreated {
        server_key: u64,
        session_id: String,
    },
    /// A runtime worker finished its graceful stop.
    WorkerStopped(u64),
    /// A broker joined the shared state (`error` empty) or could not reach Redis.
    ClusterReady {
        key: u64,
        error: String,
    },
    /// A broker left the shared state.
    ClusterClosed(u64),
    /// The answer to a facade's request about the shared state (`BindingCluster.request`).
    ClusterAnswer {
        key: u64,
        ok: bool,
        text: String,
    },
    /// Events of a followed shared session (`BindingCluster.follow`); `done` ends it.
    ClusterEvents {
        key: u64,
        lines: String,
        done: bool,
    },
}

fn dispatch() -> &'static Mutex<Option<Arc<Dispatch>>> {
    static DISPATCH: OnceLock<Mutex<Option<Arc<Dispatch>>>> = OnceLock::new();
    DISPATCH.get_or_init(|| Mutex::new(None))
}

pub(crate) fn send(message: HostMessage) -> bool {
    let tsfn = dispatch().lock().unwrap_or_else(|p| p.into_inner()).clone();
    match tsfn {
        Some(tsfn) => tsfn.call(message, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok,
        None => false,
    }
}

/// Per session: tool calls handed to its tool function that have not reached the facade,
/// and the run's completion waiting for them. The calls travel on the tool function's own
/// queue and the completion on the dispatcher's, and Node does not order two queues: a
/// completion that overtook a call would resolve the run before the facade had started the
/// handler of a call the script made. So a completion waits here until its calls are in.
#[derive(Default)]
struct InFlight {
    undelivered: HashMap<u64, usize>,
    parked: HashMap<u64, HostMessage>,
}

fn in_flight() -> &'static Mutex<InFlight> {
    static IN_FLIGHT: OnceLock<Mutex<InFlight>> = OnceLock::new();
    IN_FLIGHT.get_or_init(|| Mutex::new(InFlight::default()))
}

fn call_handed_out(session_key: u64) {
    *in_flight().lock().unwrap_or_else(|p| p.into_inner()).undelivered.entry(session_key).or_insert(0) += 1;
}

/// A call of `session_key` reached the facade (or will never): its run's completion, if it
/// waits for no other call, goes on.
fn call_handed_in(session_key: u64) {
    let released = {
        let mut state = in_flight().lock().unwrap_or_else(|p| p.into_inner());
        let left = match state.undelivered.get_mut(&session_key) {
            Some(count) => {
                *count = count.saturating_sub(1);
                *count
            }
            None => 0,
        };
        if left == 0 {
            state.undelivered.remove(&session_key);
            state.parked.remove(&session_key)
        } else {
            None
        }
    };
    if let Some(message) = released {
        send(message);
    }
}

/// Sends a run's completion once every tool call it handed to the facade has arrived there.
pub(crate) fn send_done(session_key: u64, result_json: String) {
    let message = HostMessage::Done { session_key, result_json };
    let message = {
        let mut state = in_flight().lock().unwrap_or_else(|p| p.into_inner());
        if state.undelivered.get(&session_key).is_some_and(|count| *count > 0) {
            state.parked.insert(session_key, message);
            return;
        }
        message
    };
    send(message);
}

fn to_args(message: HostMessage) -> (u32, f64, f64, String, String, String) {
    match message {
        HostMessage::Events(session_key) => {
            (KIND_EVENTS, session_key as f64, 0.0, String::new(), String::new(), String::new())
        }
        HostMessage::ToolAbort(call_key) => {
            (KIND_TOOL_ABORT, call_key as f64, 0.0, String::new(), String::new(), String::new())
        }
        HostMessage::Done { session_key, result_json } => {
            (KIND_DONE, session_key as f64, 0.0, result_json, String::new(), String::new())
        }
        HostMessage::Callback { request_key, server_key, name, argument, request_json } => {
            (KIND_CALLBACK, request_key as f64, server_key as f64, name.to_string(), argument, request_json)
        }
        HostMessage::ServerClosed(server_key) => {
            (KIND_SERVER_CLOSED, server_key as f64, 0.0, String::new(), String::new(), String::new())
        }
        HostMessage::SessionFinished { session_key, result_json } => {
            (KIND_SESSION_FINISHED, session_key as f64, 0.0, result_json, String::new(), String::new())
        }
        HostMessage::SessionCreated { server_key, session_id } => {
            (KIND_SESSION_CREATED, server_key as f64, 0.0, session_id, String::new(), String::new())
        }
        HostMessage::WorkerStopped(worker_key) => {
            (KIND_WORKER_STOPPED, worker_key as f64, 0.0, String::new(), String::new(), String::new())
        }
        HostMessage::ClusterReady { key, error } => {
            (KIND_CLUSTER_READY, key as f64, 0.0, error, String::new(), String::new())
        }
        HostMessage::ClusterClosed(key) => {
            (KIND_CLUSTER_CLOSED, key as f64, 0.0, String::new(), String::new(), String::new())
        }
        HostMessage::ClusterAnswer { key, ok, text } => {
            (KIND_CLUSTER_ANSWER, key as f64, if ok { 1.0 } else { 0.0 }, text, String::new(), String::new())
        }
        HostMessage::ClusterEvents { key, lines, done } => (
            KIND_CLUSTER_EVENTS,
            key as f64,
            if done { 1.0 } else { 0.0 },
            lines,
            String::new(),
            String::new(),
        ),
    }
}

/// Registers the facade's dispatcher `(kind, a, b, s1, s2, s3) => void`.
#[napi]
pub fn set_host(dispatcher: Function<DispatchArgs, ()>) -> napi::Result<()> {
    let tsfn: Dispatch = dispatcher
        .build_threadsafe_function::<HostMessage>()
        .callee_handled::<false>()
        .weak::<true>()
        .build_callback(|ctx| Ok(FnArgs::from(to_args(ctx.value))))?;
    *dispatch().lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(tsfn));
    Ok(())
}

/// Keeps Node's event loop alive (`true`) while executions are in flight.
#[napi]
pub fn keep_alive(env: Env, alive: bool) -> napi::Result<()> {
    let tsfn = dispatch().lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(tsfn) = tsfn {
        let raw = tsfn.handle.get_raw();
        // SAFETY: called on the main thread with the env that owns the function.
        let status = unsafe {
            if alive {
                napi::sys::napi_ref_threadsafe_function(env.raw(), raw)
            } else {
                napi::sys::napi_unref_threadsafe_function(env.raw(), raw)
            }
        };
        if status != napi::sys::Status::napi_ok {
            return Err(napi::Error::new(Status::GenericFailure, "Could not change the host keep-alive"));
        }
    }
    Ok(())
}

/// Tells the facade that a session has new events, while it has listeners. One wake-up at a
/// time: the facade then pulls the events from the session's history in bounded batches,
/// one batch per turn of Node's event loop (lib/broker-session.js), and asks for the next
/// wake-up (`rearm`) once it has caught up. A session that emits a flood of events costs
/// one message, never a burst that holds up the loop.
pub(crate) struct Forwarder {
    pub session_key: u64,
    enabled: AtomicBool,
    /// A wake-up is on its way, or the facade is still pulling.
    scheduled: AtomicBool,
}

impl Forwarder {
    pub fn new(session_key: u64) -> Arc<Forwarder> {
        Arc::new(Forwarder {
            session_key,
            enabled: AtomicBool::new(false),
            scheduled: AtomicBool::new(false),
        })
    }

    /// Listeners came or went. Coming, the facade has caught up: the next event announces itself.
    pub fn set_enabled(&self, enabled: bool) {
        if enabled {
            self.scheduled.store(false, Ordering::SeqCst);
        }
        self.enabled.store(enabled, Ordering::Release);
    }

    /// Called for every event (under the session's lock, after its seq is assigned).
    pub fn push(&self, _event: &Arc<StreamEvent>) {
        if self.enabled.load(Ordering::Acquire) && !self.scheduled.swap(true, Ordering::AcqRel) {
            send(HostMessage::Events(self.session_key));
        }
    }

    /// The facade has delivered every event up to `delivered`; `seq` reads the session's
    /// last seq. Returns whether it should keep pulling (events came meanwhile): then the
    /// next wake-up stays suppressed; otherwise the next event sends one.
    pub fn rearm(&self, delivered: u64, seq: impl Fn() -> u64) -> bool {
        if seq() > delivered {
            return true;
        }
        self.scheduled.store(false, Ordering::SeqCst);
        // An event pushed before that store found the flag set and sent nothing: take it here,
        // unless a push has set the flag again since (its wake-up is on its way).
        seq() > delivered && !self.scheduled.swap(true, Ordering::SeqCst)
    }
}

/// A tool call for the facade to run, as the JS tool function of its session or manager
/// receives it.
#[napi(object)]
pub struct BindingToolCall {
    /// Process-unique key of the call: the facade answers with `answerToolCall(callKey, ...)`.
    pub call_key: f64,
    /// Process-unique key of the session (session ids may repeat, see quirk Q7 in docs/compatibility.md).
    pub session_key: f64,
    pub session_id: String,
    /// `c_` + UUID, as in the `tool_call` event.
    pub call_id: String,
    pub name: String,
    /// The arguments as JSON text (a copy made inside the sandbox), parsed once by the facade.
    pub args_json: String,
    /// The call was abandoned or aborted before it reached the facade: its handler's signal
    /// starts aborted.
    pub aborted: bool,
}

/// The facade's error answer to a tool call.
#[napi(object)]
pub struct BindingToolError {
    pub code: String,
    pub message: String,
}

type ToolFunction = ThreadsafeFunction<BindingToolCall, (), BindingToolCall, Status, false, true>;

/// A call handed to the facade and not yet answered.
struct Waiting {
    reply: ToolReplySender,
    /// Its BindingToolCall has reached the facade: an abort must follow it there.
    delivered: bool,
    /// Aborted before it was delivered: it arrives with `aborted` set.
    aborted: bool,
}

/// The calls handed to the facade and not yet answered, by call key (call keys are
/// process-unique, so one table serves every tool host).
fn waiting() -> &'static Mutex<HashMap<u64, Waiting>> {
    static WAITING: OnceLock<Mutex<HashMap<u64, Waiting>>> = OnceLock::new();
    WAITING.get_or_init(|| Mutex::new(HashMap::new()))
}

fn take_waiting(call_key: u64) -> Option<ToolReplySender> {
    waiting().lock().unwrap_or_else(|p| p.into_inner()).remove(&call_key).map(|w| w.reply)
}

/// The tool host of one session manager or standalone session: its calls go straight to
/// that object's JS tool function (a threadsafe function of its own), which validates, runs
/// the handler and answers through `answerToolCall`/`failToolCall`. Aborts of delivered
/// calls go through the dispatcher (`HostMessage::ToolAbort`), ordered with the run's
/// completion; a call aborted before delivery arrives with `aborted` set. The function is weak
/// (Node's loop is kept alive by the runs in flight, see `keep_alive`) and released by
/// `close` (the manager's `dispose`) or when the last session using it is gone.
pub(crate) struct JsToolHost {
    function: Mutex<Option<Arc<ToolFunction>>>,
}

impl JsToolHost {
    pub fn new(function: Function<BindingToolCall, ()>) -> napi::Result<Arc<JsToolHost>> {
        let function: ToolFunction = function
            .build_threadsafe_function::<BindingToolCall>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(|ctx| {
                // On Node's main thread, just before the facade sees the call: from now on an
                // abort goes after it; one that came first travels with it.
                let mut call = ctx.value;
                {
                    let mut table = waiting().lock().unwrap_or_else(|p| p.into_inner());
                    match table.get_mut(&(call.call_key as u64)) {
                        Some(entry) => {
                            entry.delivered = true;
                            call.aborted = entry.aborted;
                        }
                        // Abandoned on its way (its run ended, its deadline passed).
                        None => call.aborted = true,
                    }
                }
                // The run's completion, if it came first, is sent now: the dispatcher runs
                // it on a later turn of Node's loop, after the facade has taken this call (and
                // its handler has started, unless the handler waits for a later turn itself).
                call_handed_in(call.session_key as u64);
                Ok(call)
            })?;
        Ok(Arc::new(JsToolHost { function: Mutex::new(Some(Arc::new(function))) }))
    }

    fn send(&self, call: BindingToolCall) -> bool {
        let function = self.function.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match function {
            Some(function) => function.call(call, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok,
            None => false,
        }
    }

    /// Releases the JS function: later calls fail with `No tool host is available`.
    pub fn close(&self) {
        self.function.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

impl ToolHost for JsToolHost {
    fn call(&self, call: ToolCall, reply: ToolReplySender) {
        let call_key = call.call_key;
        let session_key = call.session_key;
        let entry = Waiting { reply, delivered: false, aborted: false };
        waiting().lock().unwrap_or_else(|p| p.into_inner()).insert(call_key, entry);
        let message = BindingToolCall {
            call_key: call_key as f64,
            session_key: call.session_key as f64,
            session_id: call.session_id,
            call_id: call.call_id,
            name: call.name,
            args_json: call.args_json,
            aborted: false,
        };
        call_handed_out(session_key);
        if !self.send(message) {
            call_handed_in(session_key);
            if let Some(reply) = take_waiting(call_key) {
                let _ = reply.send(ToolReply::Err(ErrorInfo::new(
                    ErrorCode::EXECUTION_ERROR,
                    "No tool host is available",
                )));
            }
        }
    }

    fn abort(&self, call_key: u64) {
        let delivered = match waiting().lock().unwrap_or_else(|p| p.into_inner()).get_mut(&call_key) {
            Some(entry) if entry.delivered => true,
            Some(entry) => {
                entry.aborted = true;
                false
            }
            None => false,
        };
        if delivered {
            send(HostMessage::ToolAbort(call_key));
        }
    }

    fn abandon(&self, call_key: u64) {
        let entry = waiting().lock().unwrap_or_else(|p| p.into_inner()).remove(&call_key);
        if entry.is_some_and(|e| e.delivered) {
            send(HostMessage::ToolAbort(call_key));
        }
    }
}

/// The facade's value for a tool call: its JSON text, or nothing for `undefined`. Unknown
/// keys (calls already abandoned) are ignored.
#[napi]
pub fn answer_tool_call(call_key: f64, json: Option<String>) {
    if let Some(sender) = take_waiting(call_key as u64) {
        let _ = sender.send(ToolReply::Ok(json));
    }
}

/// The facade's value for a tool call that returned a (well-formed) string, as the string
/// itself: cheaper than `JSON.stringify` on the JavaScript side for large text, and the
/// sidecar then lifts it without decoding JSON (sidecar/resolve.rs).
#[napi]
pub fn answer_tool_call_text(call_key: f64, text: String) {
    if let Some(sender) = take_waiting(call_key as u64) {
        let json = serde_json::to_string(&text).unwrap_or_default();
        let _ = sender.send(ToolReply::Ok(Some(json)));
    }
}

/// The facade's error for a tool call (the handler threw, validation failed, ...).
#[napi]
pub fn fail_tool_call(call_key: f64, error: BindingToolError) {
    if let Some(sender) = take_waiting(call_key as u64) {
        let _ = sender.send(ToolReply::Err(ErrorInfo::named(&error.code, "Error", error.message)));
    }
}

type CallbackReply = Result<String, String>;

fn pending_callbacks() -> &'static Mutex<HashMap<u64, tokio::sync::oneshot::Sender<CallbackReply>>> {
    static PENDING: OnceLock<Mutex<HashMap<u64, tokio::sync::oneshot::Sender<CallbackReply>>>> =
        OnceLock::new();
    PENDING.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Forgets a pending callback when its waiter goes away (answered, timed out or dropped).
struct PendingCallback(u64);

impl Drop for PendingCallback {
    fn drop(&mut self) {
        pending_callbacks().lock().unwrap_or_else(|p| p.into_inner()).remove(&self.0);
    }
}

/// Runs a facade callback and waits for its answer (an `Err` if no facade is listening).
pub(crate) async fn call_js(
    server_key: u64,
    name: &'static str,
    argument: String,
    request_json: String,
) -> CallbackReply {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let request_key = NEXT.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = tokio::sync::oneshot::channel();
    pending_callbacks().lock().unwrap_or_else(|p| p.into_inner()).insert(request_key, tx);
    let _pending = PendingCallback(request_key);
    if !send(HostMessage::Callback { request_key, server_key, name, argument, request_json }) {
        return Err("No JavaScript host is available".into());
    }
    rx.await.unwrap_or_else(|_| Err("The JavaScript callback was dropped".into()))
}

/// The facade's answer to a `call_js` request.
#[napi]
pub fn resolve_callback(request_key: f64, ok: bool, value: String) {
    let sender = pending_callbacks().lock().unwrap_or_else(|p| p.into_inner()).remove(&(request_key as u64));
    if let Some(sender) = sender {
        let _ = sender.send(if ok { Ok(value) } else { Err(value) });
    }
}
