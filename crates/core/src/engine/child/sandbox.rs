//! Fresh sandbox contexts. A context is created from V8's pristine built-in snapshot, gets
//! its own microtask queue (so nothing queued by one execution can ever run during
//! another), has code generation from strings turned off, and runs the prelude, which
//! installs `callTool`, `parallel` and `console` on top of plain JavaScript.

use deno_core::v8;

use super::isolate::IsolateHost;
use super::natives::{self, ActiveExecution};

const PRELUDE_HEAD: &str = "(function (native) {\n'use strict';\n";
const PRELUDE_TAIL: &str = "\n})";

fn prelude_source() -> &'static str {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| {
        format!(
            "{PRELUDE_HEAD}{}\n{}{PRELUDE_TAIL}",
            crate::engine::VALUE_CODEC_SOURCE,
            include_str!("prelude.js")
        )
    })
}

pub(crate) struct PreparedContext {
    pub context: v8::Global<v8::Context>,
    pub queue: v8::UniqueRef<v8::MicrotaskQueue>,
    pub configure: v8::Global<v8::Function>,
    pub encode_result: v8::Global<v8::Function>,
    pub describe_error: v8::Global<v8::Function>,
}

fn key<'s>(scope: &mut v8::PinScope<'s, '_>, name: &str) -> v8::Local<'s, v8::Value> {
    v8::String::new(scope, name).expect("short string").into()
}

fn get_function<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    object: v8::Local<'s, v8::Object>,
    name: &str,
) -> v8::Global<v8::Function> {
    let k = key(scope, name);
    let value = object.get(scope, k).expect("prelude export");
    let function = v8::Local::<v8::Function>::try_from(value).expect("prelude export is a function");
    v8::Global::new(scope, function)
}

/// The prelude compiled once per isolate. Each fresh context binds it and runs it there:
/// its bytecode is shared, its functions and their state are the context's own. Compiling
/// it anew took about 5% of an isolate's time in a run of short executions (copying the
/// source in, hashing it for V8's cache, parsing what the collections in between evicted).
struct PreludeScript(v8::Global<v8::UnboundScript>);

fn prelude_script<'s>(scope: &mut v8::PinScope<'s, '_>) -> v8::Local<'s, v8::Script> {
    if let Some(PreludeScript(unbound)) = scope.get_slot::<PreludeScript>() {
        let unbound = v8::Local::new(scope, unbound);
        return unbound.bind_to_current_context(scope);
    }
    let source = v8::String::new(scope, prelude_source()).expect("prelude source");
    let script = v8::Script::compile(scope, source, None).expect("prelude compiles");
    let unbound = script.get_unbound_script(scope);
    let unbound = v8::Global::new(scope, unbound);
    scope.set_slot(PreludeScript(unbound));
    script
}

/// Creates a context and runs the prelude in it. Done ahead of demand, while idle.
pub(crate) fn prepare(host: &mut IsolateHost) -> PreparedContext {
    let isolate = host.isolate();
    if isolate.get_slot::<ActiveExecution>().is_none() {
        isolate.set_slot(ActiveExecution::default());
    }
    let mut queue = v8::MicrotaskQueue::new(isolate, v8::MicrotasksPolicy::Explicit);
    v8::scope!(scope, isolate);
    let context = v8::Context::new(
        scope,
        v8::ContextOptions { microtask_queue: Some(&mut *queue as *mut _), ..Default::default() },
    );
    context.set_allow_generation_from_strings(false);
    let scope = &mut v8::ContextScope::new(scope, context);

    let native = v8::Object::new(scope);
    let call_tool = v8::Function::builder(natives::call_tool)
        .constructor_behavior(v8::ConstructorBehavior::Throw)
        .build(scope)
        .expect("native function");
    let console = v8::Function::builder(natives::console)
        .constructor_behavior(v8::ConstructorBehavior::Throw)
        .build(scope)
        .expect("native function");
    let k = key(scope, "callTool");
    native.set(scope, k, call_tool.into());
    let k = key(scope, "console");
    native.set(scope, k, console.into());

    let script = prelude_script(scope);
    let factory = script.run(scope).expect("prelude evaluates");
    let factory = v8::Local::<v8::Function>::try_from(factory).expect("prelude is a function");
    let undefined = v8::undefined(scope).into();
    let exports = factory
        .call(scope, undefined, &[native.into()])
        .expect("prelude runs")
        .to_object(scope)
        .expect("prelude returns an object");

    PreparedContext {
        configure: get_function(scope, exports, "configure"),
        encode_result: get_function(scope, exports, "encodeResult"),
        describe_error: get_function(scope, exports, "describeError"),
        context: v8::Global::new(scope, context),
        queue,
    }
}
