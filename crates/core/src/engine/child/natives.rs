//! The engine's native functions inside a sandbox context (`callTool`'s and `console`'s
//! halves, handed to the prelude when a context is prepared) and the state they act on:
//! the execution running in this isolate, its pending tool calls and the errors the engine
//! made for failed ones. A native refuses to act for any context but the running one.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use deno_core::v8;
use futures::stream::FuturesUnordered;

use super::bounded;
use crate::engine::MAX_TOOL_NAME_BYTES;
use crate::engine::bridge::{ConsoleLevel, SandboxBridge, ToolCallInfo};
use crate::protocol::{ErrorCode, ErrorInfo};
use crate::tools::ToolReply;

/// The engine's handle on the execution currently running in this isolate. Native
/// functions look it up and refuse to act for any context but its own.
#[derive(Default)]
pub(crate) struct ActiveExecution(pub RefCell<Option<Rc<ExecState>>>);

type ReplyStream = FuturesUnordered<Pin<Box<dyn std::future::Future<Output = (usize, ToolReply)>>>>;

pub(crate) struct PendingEntry {
    pub info: ToolCallInfo,
    pub resolver: v8::Global<v8::PromiseResolver>,
}

#[derive(Default)]
pub(crate) struct Calls {
    pub replies: ReplyStream,
    pub entries: Vec<Option<PendingEntry>>,
    /// Errors the engine created for failed tool calls, with their codes: if one of them
    /// ends the script uncaught, its code is reported (a script cannot forge one).
    pub tool_errors: Vec<(v8::Global<v8::Value>, String)>,
}

pub(crate) struct ExecState {
    pub global: v8::Global<v8::Object>,
    pub bridge: Arc<dyn SandboxBridge>,
    pub calls: RefCell<Calls>,
}

/// The running execution, if `scope` is inside its context. Anything else (a function
/// kept alive from an earlier execution) gets an exception instead.
pub(crate) fn current_execution(scope: &mut v8::PinScope) -> Option<Rc<ExecState>> {
    let state = scope.get_slot::<ActiveExecution>().and_then(|active| active.0.borrow().clone());
    let current_global = scope.get_current_context().global(scope);
    match state {
        Some(state) if v8::Local::new(scope, &state.global) == current_global => Some(state),
        _ => {
            let message = v8::String::new(scope, "This sandbox function belongs to a finished execution")?;
            let error = v8::Exception::error(scope, message);
            scope.throw_exception(error);
            None
        }
    }
}

pub(crate) fn make_error<'s>(scope: &mut v8::PinScope<'s, '_>, info: &ErrorInfo) -> v8::Local<'s, v8::Value> {
    let message = v8::String::new(scope, &info.message).unwrap_or_else(|| v8::String::empty(scope));
    let error = match info.name.as_str() {
        "TypeError" => v8::Exception::type_error(scope, message),
        "RangeError" => v8::Exception::range_error(scope, message),
        _ => v8::Exception::error(scope, message),
    };
    if let Some(object) = error.to_object(scope) {
        let custom_name = !matches!(info.name.as_str(), "Error" | "TypeError" | "RangeError");
        if let (true, Some(k), Some(v)) =
            (custom_name, v8::String::new(scope, "name"), v8::String::new(scope, &info.name))
        {
            object.set(scope, k.into(), v.into());
        }
        if let (Some(k), Some(v)) = (v8::String::new(scope, "code"), v8::String::new(scope, &info.code)) {
            object.set(scope, k.into(), v.into());
        }
    }
    error
}

/// `callTool`'s native half: `(name, argsJson) → Promise`.
pub(crate) fn call_tool(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue,
) {
    let Some(state) = current_execution(scope) else { return };
    let name = match v8::Local::<v8::String>::try_from(args.get(0)) {
        Ok(name) => bounded::read(scope, name, MAX_TOOL_NAME_BYTES),
        Err(_) => bounded::Bounded::Whole(args.get(0).to_rust_string_lossy(scope)),
    };
    let Some(resolver) = v8::PromiseResolver::new(scope) else { return };
    rv.set(resolver.get_promise(scope).into());
    let begun = match name {
        bounded::Bounded::Whole(name) => {
            let args_json = args.get(1).to_rust_string_lossy(scope);
            state.bridge.begin_tool_call(&name, args_json)
        }
        bounded::Bounded::Cut(..) => Err(ErrorInfo::new(
            ErrorCode::TOOL_NAME_TOO_LONG,
            format!("Tool name exceeds maximum length ({MAX_TOOL_NAME_BYTES} bytes)"),
        )),
    };
    match begun {
        Ok(pending) => {
            let mut calls = state.calls.borrow_mut();
            let index = calls.entries.len();
            calls
                .entries
                .push(Some(PendingEntry { info: pending.info, resolver: v8::Global::new(scope, resolver) }));
            let reply = pending.reply;
            calls.replies.push(Box::pin(async move { (index, reply.await) }));
        }
        Err(error) => {
            let exception = make_error(scope, &error);
            state
                .calls
                .borrow_mut()
                .tool_errors
                .push((v8::Global::new(scope, exception), error.code.clone()));
            resolver.reject(scope, exception);
        }
    }
}

/// `console.*` from the sandbox: `(levelIndex, text)`.
pub(crate) fn console(scope: &mut v8::PinScope, args: v8::FunctionCallbackArguments, _rv: v8::ReturnValue) {
    let Some(state) = current_execution(scope) else { return };
    let level = args.get(0).uint32_value(scope).unwrap_or(0);
    let text = args.get(1).to_rust_string_lossy(scope);
    state.bridge.console(ConsoleLevel::from_index(level), &text);
}
