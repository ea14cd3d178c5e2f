//! Runs one execution in a prepared context: compiles the wrapped script, drives its
//! promise while tool calls settle, and turns the outcome into plain data. V8 is only
//! entered in short synchronous steps; between them the engine thread waits for tool
//! replies or an interrupt, so a stopped execution never leaves JS running.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;

use deno_core::v8;
use futures::stream::StreamExt;

use super::bounded;
use super::isolate::IsolateHost;
use super::natives::{ActiveExecution, ExecState, PendingEntry, make_error};
use super::sandbox::PreparedContext;
use super::wrap;
use crate::engine::bridge::SandboxBridge;
use crate::engine::control::ExecutionControl;
use crate::engine::outcome::{ExecutionOutcome, InterruptReason};
use crate::engine::{MAX_ERROR_MESSAGE_BYTES, MAX_ERROR_NAME_BYTES, SandboxOptions};
use crate::protocol::{ErrorCode, ErrorInfo};
use crate::tools::ToolReply;

/// Enters `context` on the host's isolate for one synchronous step.
fn enter<R>(
    host: &mut IsolateHost,
    context: &v8::Global<v8::Context>,
    f: impl for<'s, 'i> FnOnce(&mut v8::PinScope<'s, 'i>) -> R,
) -> R {
    let isolate = host.isolate();
    v8::scope!(scope, isolate);
    let local = v8::Local::new(scope, context);
    let scope = &mut v8::ContextScope::new(scope, local);
    f(scope)
}

enum Step {
    Pending,
    Done(ExecutionOutcome),
    Terminated,
}

/// One script to run, with what it may use.
pub(crate) struct RunRequest {
    pub code: String,
    /// `code` made into the body of an async function (done before it reaches the isolate's
    /// thread: see `wrap::MAX_TRANSFORM_BYTES`).
    pub wrapped: wrap::Wrapped,
    pub sandbox: SandboxOptions,
    pub bridge: Arc<dyn SandboxBridge>,
}

struct Run<'a> {
    prepared: &'a PreparedContext,
    state: Rc<ExecState>,
    max_result_bytes: usize,
    promise: Option<v8::Global<v8::Promise>>,
}

fn syntax_error(message: String) -> ExecutionOutcome {
    ExecutionOutcome::Threw(ErrorInfo::named(
        ErrorCode::VALIDATION_ERROR,
        "SyntaxError",
        format!("Failed to parse AgentScript code: {message}"),
    ))
}

/// The message and `(line:column)` of a syntax error in the user's code. An error V8 finds
/// in the wrapper's closing line means the code ended early; positions V8 does not know
/// (a parser stack overflow) are left out.
fn syntax_position(code: &str, message: String, line: usize, column: usize) -> (String, String) {
    let user_lines = code.split('\n').count();
    if line == 0 || column > (1 << 30) {
        return (message, String::new());
    }
    if line > user_lines {
        let last = code.rsplit('\n').next().unwrap_or("");
        return ("Unexpected end of input".into(), format!(" ({user_lines}:{})", last.chars().count()));
    }
    (message, format!(" ({line}:{column})"))
}

fn string_prop(scope: &mut v8::PinScope, object: v8::Local<v8::Value>, name: &str) -> Option<String> {
    let object = object.to_object(scope)?;
    let key = v8::String::new(scope, name)?;
    let value = object.get(scope, key.into())?;
    value.is_string().then(|| value.to_rust_string_lossy(scope))
}

impl Run<'_> {
    fn checkpoint(&self, scope: &mut v8::PinScope) {
        self.prepared.queue.perform_checkpoint(scope);
    }

    /// Applies options, compiles and starts the script.
    fn start(&mut self, scope: &mut v8::PinScope, request: &RunRequest) -> Step {
        v8::tc_scope!(let tc, scope);
        let options = match &request.sandbox.globals_json {
            Some(globals) => format!(
                "{{\"maxDepth\":{},\"globals\":{}}}",
                request.sandbox.max_depth,
                serde_json::to_string(globals).unwrap_or_else(|_| "null".into())
            ),
            None => format!("{{\"maxDepth\":{}}}", request.sandbox.max_depth),
        };
        let configured =
            v8::String::new(tc, &options).and_then(|s| v8::json::parse(tc, s)).and_then(|opts| {
                let configure = v8::Local::new(tc, &self.prepared.configure);
                let undefined = v8::undefined(tc).into();
                configure.call(tc, undefined, &[opts])
            });
        if configured.is_none() {
            if tc.has_terminated() {
                return Step::Terminated;
            }
            return Step::Done(ExecutionOutcome::Threw(ErrorInfo::new(
                ErrorCode::VALIDATION_ERROR,
                "Custom globals must be plain JSON data",
            )));
        }

        let source = match &request.wrapped {
            wrap::Wrapped::Source(source) => source,
            wrap::Wrapped::EscapesWrapper => {
                return Step::Done(syntax_error(
                    "Unexpected token '}' (the script closes its own function body)".into(),
                ));
            }
        };
        let Some(source) = v8::String::new(tc, source) else {
            return Step::Done(syntax_error("Script is too large".into()));
        };
        let name = v8::String::new(tc, "agentscript.js").expect("short string");
        let origin = v8::ScriptOrigin::new(
            tc,
            name.into(),
            -wrap::LINE_OFFSET,
            0,
            false,
            -1,
            None,
            false,
            false,
            false,
            None,
        );
        let Some(script) = v8::Script::compile(tc, source, Some(&origin)) else {
            if tc.has_terminated() {
                return Step::Terminated;
            }
            let (message, position) = match (tc.exception(), tc.message()) {
                (Some(exception), Some(message)) => {
                    let text =
                        string_prop(tc, exception, "message").unwrap_or_else(|| "Invalid script".into());
                    let line = message.get_line_number(tc).unwrap_or(0);
                    syntax_position(&request.code, text, line, message.get_start_column())
                }
                _ => ("Invalid script".to_string(), String::new()),
            };
            return Step::Done(syntax_error(format!("{message}{position}")));
        };
        let promise = script.run(tc).and_then(|function| {
            let function = v8::Local::<v8::Function>::try_from(function).ok()?;
            let undefined = v8::undefined(tc).into();
            function.call(tc, undefined, &[])
        });
        let Some(promise) = promise else {
            return if tc.has_terminated() {
                Step::Terminated
            } else {
                Step::Done(ExecutionOutcome::Threw(ErrorInfo::new(
                    ErrorCode::EXECUTION_ERROR,
                    "Script did not start",
                )))
            };
        };
        let Ok(promise) = v8::Local::<v8::Promise>::try_from(promise) else {
            return Step::Done(ExecutionOutcome::Threw(ErrorInfo::new(
                ErrorCode::EXECUTION_ERROR,
                "Script did not start",
            )));
        };
        self.promise = Some(v8::Global::new(tc, promise));
        self.checkpoint(tc);
        self.settle_check(tc)
    }

    /// After JS ran: terminated, still pending, or finished (result converted).
    fn settle_check(&self, scope: &mut v8::PinScope) -> Step {
        if scope.is_execution_terminating() {
            return Step::Terminated;
        }
        let promise = v8::Local::new(scope, self.promise.as_ref().expect("started"));
        match promise.state() {
            v8::PromiseState::Pending => Step::Pending,
            v8::PromiseState::Fulfilled => {
                let value = promise.result(scope);
                self.encode(scope, value)
            }
            v8::PromiseState::Rejected => {
                let reason = promise.result(scope);
                self.describe(scope, reason)
            }
        }
    }

    fn encode(&self, scope: &mut v8::PinScope, value: v8::Local<v8::Value>) -> Step {
        v8::tc_scope!(let tc, scope);
        let encode = v8::Local::new(tc, &self.prepared.encode_result);
        let undefined = v8::undefined(tc).into();
        match encode.call(tc, undefined, &[value]) {
            Some(json) if json.is_undefined() => Step::Done(ExecutionOutcome::Returned(None)),
            Some(json) => {
                let json = json.to_rust_string_lossy(tc);
                if json.len() > self.max_result_bytes {
                    return Step::Done(ExecutionOutcome::Threw(ErrorInfo::new(
                        ErrorCode::RESULT_TOO_LARGE,
                        format!("Return value exceeds maximum size ({} bytes)", self.max_result_bytes),
                    )));
                }
                Step::Done(ExecutionOutcome::Returned(Some(json)))
            }
            None if tc.has_terminated() => Step::Terminated,
            None => {
                let exception = tc.exception().unwrap_or_else(|| v8::undefined(tc).into());
                self.describe(tc, exception)
            }
        }
    }

    fn describe(&self, scope: &mut v8::PinScope, reason: v8::Local<v8::Value>) -> Step {
        let code = {
            let calls = self.state.calls.borrow();
            calls
                .tool_errors
                .iter()
                .find(|(error, _)| v8::Local::new(scope, error).strict_equals(reason))
                .map(|(_, code)| code.clone())
        };
        v8::tc_scope!(let tc, scope);
        let describe = v8::Local::new(tc, &self.prepared.describe_error);
        let undefined = v8::undefined(tc).into();
        let Some(described) = describe.call(tc, undefined, &[reason]) else {
            return if tc.has_terminated() {
                Step::Terminated
            } else {
                Step::Done(ExecutionOutcome::Threw(ErrorInfo::new(
                    ErrorCode::EXECUTION_ERROR,
                    "Uncaught exception",
                )))
            };
        };
        // Name and message leave the sandbox capped (`MAX_ERROR_*_BYTES`).
        let part = |tc: &mut v8::PinScope, index: u32, max: usize| {
            v8::Local::<v8::Array>::try_from(described)
                .ok()
                .and_then(|pair| pair.get_index(tc, index))
                .and_then(|v| v8::Local::<v8::String>::try_from(v).ok())
                .map(|v| bounded::text(tc, v, max))
        };
        let name = part(tc, 0, MAX_ERROR_NAME_BYTES).unwrap_or_else(|| "Error".into());
        let message = part(tc, 1, MAX_ERROR_MESSAGE_BYTES).unwrap_or_else(|| "Uncaught exception".into());
        Step::Done(ExecutionOutcome::Threw(ErrorInfo::named(
            code.as_deref().unwrap_or(ErrorCode::EXECUTION_ERROR),
            &name,
            message,
        )))
    }

    /// Hands one tool reply to the script.
    fn deliver(&self, scope: &mut v8::PinScope, index: usize, reply: ToolReply) -> Step {
        let entry = self.state.calls.borrow_mut().entries[index].take();
        let Some(entry) = entry else { return self.settle_check(scope) };
        let reply = self.state.bridge.finish_tool_call(&entry.info, Some(reply));
        let resolver = v8::Local::new(scope, &entry.resolver);
        match reply {
            ToolReply::Ok(None) => {
                let undefined = v8::undefined(scope).into();
                resolver.resolve(scope, undefined);
            }
            ToolReply::Ok(Some(json)) => {
                v8::tc_scope!(let tc, scope);
                let parsed = v8::String::new(tc, &json).and_then(|s| v8::json::parse(tc, s));
                match parsed {
                    Some(value) => {
                        resolver.resolve(tc, value);
                    }
                    None if tc.has_terminated() => return Step::Terminated,
                    None => {
                        let error = make_error(
                            tc,
                            &ErrorInfo::new(ErrorCode::EXECUTION_ERROR, "Tool result is not valid JSON"),
                        );
                        resolver.reject(tc, error);
                    }
                }
            }
            ToolReply::Err(info) => {
                let error = make_error(scope, &info);
                self.state
                    .calls
                    .borrow_mut()
                    .tool_errors
                    .push((v8::Global::new(scope, error), info.code.clone()));
                resolver.reject(scope, error);
            }
        }
        self.checkpoint(scope);
        self.settle_check(scope)
    }
}

/// A stop, for the reason it was asked (a recorded memory limit hit overrides it below).
fn interrupted(control: &ExecutionControl) -> ExecutionOutcome {
    let reason = control.reason().unwrap_or(InterruptReason::Stopped);
    ExecutionOutcome::Interrupted { reason, detail: None }
}

/// Runs `request` in `prepared` to completion (or until `control` stops it; the broker
/// owns the timeout). The context is retired afterwards.
pub(crate) async fn execute(
    host: &mut IsolateHost,
    graveyard: &v8::MicrotaskQueue,
    prepared: PreparedContext,
    request: RunRequest,
    control: Arc<ExecutionControl>,
) -> ExecutionOutcome {
    host.reclaim_buffers();
    let _icu = host.charge_icu_memory();
    let isolate = host.handle();
    control.attach(Box::new(move |_| {
        isolate.terminate_execution();
    }));

    let global = enter(host, &prepared.context, |scope| {
        let global = scope.get_current_context().global(scope);
        v8::Global::new(scope, global)
    });
    let state = Rc::new(ExecState { global, bridge: request.bridge.clone(), calls: RefCell::default() });
    set_active(host, Some(state.clone()));

    let mut run = Run {
        prepared: &prepared,
        state: state.clone(),
        max_result_bytes: request.sandbox.max_result_bytes,
        promise: None,
    };
    let mut step = if control.reason().is_some() {
        Step::Terminated
    } else {
        enter(host, &prepared.context, |scope| run.start(scope, &request))
    };
    let outcome = loop {
        match step {
            Step::Done(outcome) => break outcome,
            Step::Terminated => break interrupted(&control),
            Step::Pending => {}
        }
        let has_replies = !state.calls.borrow().replies.is_empty();
        tokio::select! {
            biased;
            _ = control.interrupted() => break interrupted(&control),
            next = poll_fn(|cx| state.calls.borrow_mut().replies.poll_next_unpin(cx)), if has_replies => {
                step = match next {
                    Some((index, reply)) => enter(host, &prepared.context, |scope| run.deliver(scope, index, reply)),
                    None => Step::Pending,
                };
            }
        }
    };

    let outcome = outcome.unless_limit_hit(host.memory_limit_hit());

    // Calls still in flight are abandoned: their handlers' signals abort and each gets its
    // `tool_result_applied`, so every `tool_call` in the stream is closed.
    let leftovers: Vec<PendingEntry> = state.calls.borrow_mut().entries.drain(..).flatten().collect();
    for entry in &leftovers {
        state.bridge.finish_tool_call(&entry.info, None);
    }
    drop(leftovers);
    if matches!(outcome, ExecutionOutcome::Interrupted { .. }) {
        host.taint();
    }

    set_active(host, None);
    control.finish();
    let isolate = host.isolate();
    isolate.cancel_terminate_execution();
    retire(host, graveyard, prepared, state);
    outcome
}

fn set_active(host: &mut IsolateHost, state: Option<Rc<ExecState>>) {
    if let Some(active) = host.isolate().get_slot::<ActiveExecution>() {
        *active.0.borrow_mut() = state;
    }
}

/// Points the finished context at a queue that is never drained, so nothing it queued
/// can run later, then releases everything the engine held for it.
fn retire(
    host: &mut IsolateHost,
    graveyard: &v8::MicrotaskQueue,
    prepared: PreparedContext,
    state: Rc<ExecState>,
) {
    let PreparedContext { context, queue, configure, encode_result, describe_error } = prepared;
    {
        let isolate = host.isolate();
        v8::scope!(scope, isolate);
        let local = v8::Local::new(scope, &context);
        local.set_microtask_queue(graveyard);
    }
    drop((configure, encode_result, describe_error, context, state));
    drop(queue);
}
