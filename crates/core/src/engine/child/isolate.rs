//! One V8 isolate, hosted by a deno_core `JsRuntime` (which also pumps V8's platform
//! tasks). Scripts never run in the runtime's own realm: each execution gets a fresh raw
//! context (see `sandbox`). deno_core's isolate-wide callbacks assume its realm's context
//! slots, and its stack-trace callback hands out call sites built in its realm, so they are
//! all replaced here with callbacks that are safe for any context.

use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use deno_core::v8;
use deno_core::{JsRuntime, PollEventLoopOptions, RuntimeOptions};

use super::buffer_budget::BufferBudget;
use super::platform;

/// Told, from inside V8, the first time the heap reaches its limit, with the report.
pub(crate) type LimitReached = Box<dyn Fn(&str) + Send + Sync>;

/// State shared with the near-heap-limit callback (which only gets a raw pointer).
struct HeapGuard {
    handle: v8::IsolateHandle,
    isolate: v8::UnsafeRawIsolatePtr,
    ceiling: usize,
    hit: AtomicBool,
    /// Heap in use when the limit was reached (read then: after the stop, GC may shrink it).
    used_at_hit: AtomicUsize,
    limit: usize,
    on_limit_reached: LimitReached,
}

pub(crate) struct IsolateHost {
    // Field order matters: the runtime (and its isolate) must drop before `heap`,
    // whose address the isolate's heap-limit callback holds.
    runtime: JsRuntime,
    heap: Box<HeapGuard>,
    buffers: Arc<BufferBudget>,
    memory_limit: usize,
    tainted: bool,
}

/// `memoryLimit` is enforced as a soft limit: reaching it terminates the script. Some
/// builtins (a `fill` over a huge sparse array, `JSON.stringify` of one) do not look at the
/// termination request until they finish, and V8 aborts the process if its heap limit is
/// reached meanwhile, so the limit is raised once, to the engine process's memory ceiling.
/// Past that ceiling the broker kills the process (and only this execution ends). The
/// broker is told at once, so such a builtin is not left running until the ceiling or the
/// script's timeout, whichever a race picks.
unsafe extern "C" fn near_heap_limit(data: *mut c_void, current: usize, _initial: usize) -> usize {
    // SAFETY: `data` is the `HeapGuard` owned by the `IsolateHost` that owns this isolate.
    let guard = unsafe { &*(data as *const HeapGuard) };
    if !guard.hit.swap(true, Ordering::AcqRel) {
        // SAFETY: the callback runs on the isolate's own thread while the isolate is alive;
        // reading heap statistics here is allowed (embedders take heap snapshots here).
        let mut isolate = unsafe { v8::Isolate::from_raw_isolate_ptr(guard.isolate) };
        let used = isolate.get_heap_statistics().used_heap_size();
        guard.used_at_hit.store(used, Ordering::Release);
        (guard.on_limit_reached)(&heap_limit_report(guard.limit, used));
    }
    guard.handle.terminate_execution();
    current.max(guard.ceiling)
}

fn mb(bytes: usize) -> f64 {
    bytes as f64 / 1_048_576.0
}

fn heap_limit_report(limit: usize, used: usize) -> String {
    format!(
        "Memory limit exceeded: the script's heap reached the {:.2}MB limit ({:.2}MB in use)",
        mb(limit),
        mb(used)
    )
}

unsafe extern "C" fn ignore_promise_rejection(_message: v8::PromiseRejectMessage) {
    // Unhandled rejections in a sandbox are the script's business; its result is what counts.
}

unsafe extern "C" fn deny_wasm_code_generation(
    _context: v8::Local<v8::Context>,
    _source: v8::Local<v8::String>,
) -> bool {
    false
}

fn reject_dynamic_import<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    _host_defined_options: v8::Local<'s, v8::Data>,
    _resource_name: v8::Local<'s, v8::Value>,
    _specifier: v8::Local<'s, v8::String>,
    _import_attributes: v8::Local<'s, v8::FixedArray>,
) -> Option<v8::Local<'s, v8::Promise>> {
    let resolver = v8::PromiseResolver::new(scope)?;
    let message = v8::String::new(scope, "import() is not available in the sandbox")?;
    let error = v8::Exception::type_error(scope, message);
    resolver.reject(scope, error);
    Some(resolver.get_promise(scope))
}

fn reject_dynamic_import_with_phase<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    host_defined_options: v8::Local<'s, v8::Data>,
    resource_name: v8::Local<'s, v8::Value>,
    specifier: v8::Local<'s, v8::String>,
    _phase: v8::ModuleImportPhase,
    import_attributes: v8::Local<'s, v8::FixedArray>,
) -> Option<v8::Local<'s, v8::Promise>> {
    reject_dynamic_import(scope, host_defined_options, resource_name, specifier, import_attributes)
}

/// `error.stack` for sandbox errors: the context's own `Error.prepareStackTrace` if the
/// script set one (called with V8's call sites from the same context), else V8's usual
/// `Name: message\n    at ...` text.
fn prepare_stack_trace<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    error: v8::Local<'s, v8::Value>,
    sites: v8::Local<'s, v8::Array>,
) -> v8::Local<'s, v8::Value> {
    v8::tc_scope!(let tc, scope);
    let context = tc.get_current_context();
    let global = context.global(tc);
    let user_hook = v8::String::new(tc, "Error")
        .and_then(|key| global.get(tc, key.into()))
        .and_then(|ctor| ctor.to_object(tc))
        .and_then(|ctor| {
            let key = v8::String::new(tc, "prepareStackTrace")?;
            let hook = ctor.get(tc, key.into())?;
            v8::Local::<v8::Function>::try_from(hook).ok().map(|f| (ctor, f))
        });
    if let Some((ctor, hook)) = user_hook {
        if let Some(value) = hook.call(tc, ctor.into(), &[error, sites.into()]) {
            return value;
        }
        return v8::undefined(tc).into();
    }
    let mut text =
        error.to_string(tc).map(|s| s.to_rust_string_lossy(tc)).unwrap_or_else(|| "Error".to_string());
    for i in 0..sites.length() {
        let Some(site) = sites.get_index(tc, i).and_then(|s| s.to_object(tc)) else { continue };
        let frame = v8::String::new(tc, "toString")
            .and_then(|key| site.get(tc, key.into()))
            .and_then(|f| v8::Local::<v8::Function>::try_from(f).ok())
            .and_then(|f| f.call(tc, site.into(), &[]))
            .and_then(|s| s.to_string(tc))
            .map(|s| s.to_rust_string_lossy(tc));
        if let Some(frame) = frame {
            text.push_str("\n    at ");
            text.push_str(&frame);
        }
    }
    match v8::String::new(tc, &text) {
        Some(s) => s.into(),
        None => v8::undefined(tc).into(),
    }
}

impl IsolateHost {
    /// Must be called inside a tokio runtime context (V8 posts delayed tasks to it).
    pub fn new(memory_limit: usize, on_limit_reached: LimitReached) -> IsolateHost {
        platform::ensure_initialized();
        let buffers = BufferBudget::new(memory_limit);
        let create_params = v8::CreateParams::default()
            .heap_limits(0, memory_limit)
            .array_buffer_allocator(buffers.allocator());
        let mut runtime =
            JsRuntime::new(RuntimeOptions { create_params: Some(create_params), ..Default::default() });
        let isolate = runtime.v8_isolate();
        buffers.set_isolate(isolate.thread_safe_handle());
        let heap = Box::new(HeapGuard {
            handle: isolate.thread_safe_handle(),
            // SAFETY: only dereferenced in the heap-limit callback, while the isolate lives.
            isolate: unsafe { isolate.as_raw_isolate_ptr() },
            ceiling: crate::engine::memory_ceiling(memory_limit),
            hit: AtomicBool::new(false),
            used_at_hit: AtomicUsize::new(0),
            limit: memory_limit,
            on_limit_reached,
        });
        isolate.add_near_heap_limit_callback(near_heap_limit, &*heap as *const HeapGuard as *mut c_void);
        isolate.set_promise_reject_callback(ignore_promise_rejection);
        isolate.set_prepare_stack_trace_callback(prepare_stack_trace);
        isolate.set_host_import_module_dynamically_callback(reject_dynamic_import);
        isolate.set_host_import_module_with_phase_dynamically_callback(reject_dynamic_import_with_phase);
        isolate.set_allow_wasm_code_generation_callback(deny_wasm_code_generation);
        IsolateHost { runtime, heap, buffers, memory_limit, tainted: false }
    }

    pub fn isolate(&mut self) -> &mut v8::OwnedIsolate {
        self.runtime.v8_isolate()
    }

    pub fn handle(&self) -> v8::IsolateHandle {
        self.heap.handle.clone()
    }

    /// Why the script ran out of memory, if it did, as the error message reports it.
    pub fn memory_limit_hit(&mut self) -> Option<String> {
        if self.buffers.hit() {
            return Some(format!(
                "Memory limit exceeded: an ArrayBuffer of {:.2}MB would exceed the {:.2}MB limit ({:.2}MB of ArrayBuffers in use)",
                mb(self.buffers.refused()),
                mb(self.buffers.limit()),
                mb(self.buffers.used())
            ));
        }
        let used = if self.heap.hit.load(Ordering::Acquire) {
            self.heap.used_at_hit.load(Ordering::Acquire)
        } else {
            // V8 grants a single allocation past the limit without calling back (a huge
            // string flattened at once), so a heap above the limit counts as reaching it.
            let used = self.runtime.v8_isolate().get_heap_statistics().used_heap_size();
            if used <= self.memory_limit {
                return None;
            }
            self.heap.hit.store(true, Ordering::Release);
            used
        };
        Some(heap_limit_report(self.memory_limit, used))
    }

    /// Collects garbage left by earlier executions when it would eat into the next
    /// script's ArrayBuffer budget (dead contexts' buffers stay charged until collected).
    pub fn reclaim_buffers(&mut self) {
        if self.buffers.used() > self.buffers.limit() / 4 {
            self.runtime.v8_isolate().low_memory_notification();
        }
    }

    /// An isolate that hit a limit is never given another script.
    pub fn taint(&mut self) {
        self.tainted = true;
    }

    pub fn is_tainted(&self) -> bool {
        self.tainted || self.heap.hit.load(Ordering::Acquire) || self.buffers.hit()
    }

    /// Runs V8's queued foreground tasks (GC work) without waiting.
    pub fn pump_platform_tasks(&mut self) {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let _: Poll<_> = self.runtime.poll_event_loop(&mut cx, PollEventLoopOptions::default());
    }
}
