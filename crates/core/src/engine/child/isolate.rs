//! One V8 isolate, created bare (no deno_core runtime and its realm: an isolate holds only
//! the contexts its executions get, which keeps it small and quick to start); its V8
//! platform tasks are pumped here. Each execution gets a fresh raw
//! context (see `sandbox`). deno_core's isolate-wide callbacks assume its realm's context
//! slots, and its stack-trace callback hands out call sites built in its realm, so they are
//! all replaced here with callbacks that are safe for any context.

use std::ffi::c_void;
use std::sync::Arc;

use deno_core::v8;

use super::buffer_budget::BufferBudget;
use super::limit_hit::{LimitHit, LimitReached, mb};
use super::platform;

/// Heap in use past which an idle isolate collects (`collect_garbage_if_grown`): a few
/// finished executions' contexts (an isolate with one context uses about 1.2 MiB).
const GARBAGE_ALLOWANCE: usize = 4 * 1024 * 1024;

/// State shared with V8's heap callbacks (which only get a raw pointer).
struct HeapGuard {
    handle: v8::IsolateHandle,
    isolate: v8::UnsafeRawIsolatePtr,
    ceiling: usize,
    limit: usize,
    hits: Arc<LimitHit>,
}

impl HeapGuard {
    /// Heap in use now. Called on the isolate's thread, inside V8's callbacks or between steps.
    fn used(&self) -> usize {
        // SAFETY: called on the isolate's own thread while it is alive; reading heap
        // statistics is allowed inside heap callbacks (embedders take heap snapshots there).
        let mut isolate = unsafe { v8::Isolate::from_raw_isolate_ptr(self.isolate) };
        isolate.get_heap_statistics().used_heap_size()
    }

    /// Records a hit if `used`, the heap in use now, is over the limit (read at once: a
    /// collection may shrink it later).
    fn check(&self, used: usize) {
        if used > self.limit {
            self.hits.record(|| heap_limit_report(self.limit, used));
        }
    }
}

pub(crate) struct IsolateHost {
    // Field order matters: the isolate must drop before `heap`, whose address the
    // isolate's heap-limit callback holds.
    isolate: v8::OwnedIsolate,
    heap: Box<HeapGuard>,
    buffers: Arc<BufferBudget>,
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
    let used = guard.used();
    guard.hits.record(|| heap_limit_report(guard.limit, used));
    guard.handle.terminate_execution();
    current.max(guard.ceiling)
}

/// Before every garbage collection: V8 grants some single allocations past the heap limit
/// without calling `near_heap_limit` (a huge string flattened at once, a large array
/// filled by a builtin). Memory only goes down in a collection, so a heap that went over
/// the limit is still over it when the next one starts, or when the run ends (checked then
/// by `memory_limit_hit`): the hit cannot be missed, whatever runs first.
unsafe extern "C" fn before_gc(
    _isolate: v8::UnsafeRawIsolatePtr,
    _type: v8::GCType,
    _flags: v8::GCCallbackFlags,
    data: *mut c_void,
) {
    // SAFETY: `data` is the `HeapGuard` owned by the `IsolateHost` that owns this isolate.
    let guard = unsafe { &*(data as *const HeapGuard) };
    guard.check(guard.used());
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
    pub fn new(memory_limit: usize, on_limit_reached: LimitReached) -> IsolateHost {
        platform::ensure_initialized();
        let hits = Arc::new(LimitHit::new(on_limit_reached));
        let buffers = BufferBudget::new(memory_limit, hits.clone());
        // An initial size of 0: the isolate starts at V8's smallest heap (about 1.2 MiB with
        // its context) and grows on demand up to the limit.
        let create_params = v8::CreateParams::default()
            .heap_limits(0, memory_limit)
            .array_buffer_allocator(buffers.allocator());
        let mut isolate = v8::Isolate::new(create_params);
        hits.set_isolate(isolate.thread_safe_handle());
        let heap = Box::new(HeapGuard {
            handle: isolate.thread_safe_handle(),
            // SAFETY: only dereferenced in the heap callbacks, while the isolate lives.
            isolate: unsafe { isolate.as_raw_isolate_ptr() },
            ceiling: crate::engine::heap_ceiling(memory_limit),
            limit: memory_limit,
            hits,
        });
        let guard = &*heap as *const HeapGuard as *mut c_void;
        isolate.add_near_heap_limit_callback(near_heap_limit, guard);
        isolate.add_gc_prologue_callback(before_gc, guard, v8::GCType::kGCTypeAll);
        isolate.set_promise_reject_callback(ignore_promise_rejection);
        isolate.set_prepare_stack_trace_callback(prepare_stack_trace);
        isolate.set_host_import_module_dynamically_callback(reject_dynamic_import);
        isolate.set_host_import_module_with_phase_dynamically_callback(reject_dynamic_import_with_phase);
        isolate.set_allow_wasm_code_generation_callback(deny_wasm_code_generation);
        IsolateHost { isolate, heap, buffers, tainted: false }
    }

    pub fn isolate(&mut self) -> &mut v8::OwnedIsolate {
        &mut self.isolate
    }

    pub fn handle(&self) -> v8::IsolateHandle {
        self.heap.handle.clone()
    }

    /// Why the script ran out of memory, if it did, as the error message reports it. Also
    /// records a heap over the limit now (an allocation V8 granted past it).
    pub fn memory_limit_hit(&mut self) -> Option<String> {
        if self.heap.hits.report().is_none() {
            let used = self.isolate.get_heap_statistics().used_heap_size();
            self.heap.check(used);
        }
        self.heap.hits.report().map(str::to_string)
    }

    /// While the returned guard lives, ICU allocations on this thread count against this
    /// isolate's off-heap budget.
    pub fn charge_icu_memory(&self) -> super::icu_memory::Charging {
        super::icu_memory::charge_to(&self.buffers)
    }

    /// Collects garbage left by earlier executions when it would eat into the next
    /// script's ArrayBuffer budget (dead contexts' buffers stay charged until collected).
    pub fn reclaim_buffers(&mut self) {
        if self.buffers.used() > self.buffers.limit() / 4 {
            self.isolate.low_memory_notification();
        }
    }

    /// Collects garbage once the heap holds more than `GARBAGE_ALLOWANCE`: each execution
    /// leaves its context behind as garbage, and an isolate that only runs small scripts
    /// would otherwise keep many of them (V8 sizes its next collection from the heap limit),
    /// which, times every isolate waiting on a tool, is most of a process's memory.
    pub fn collect_garbage_if_grown(&mut self) {
        if self.isolate.get_heap_statistics().used_heap_size() > GARBAGE_ALLOWANCE {
            self.isolate.low_memory_notification();
        }
    }

    /// An isolate that hit a limit is never given another script.
    pub fn taint(&mut self) {
        self.tainted = true;
    }

    pub fn is_tainted(&self) -> bool {
        self.tainted || self.heap.hits.report().is_some()
    }

    /// Runs V8's queued foreground tasks (GC work) without waiting.
    pub fn pump_platform_tasks(&mut self) {
        let platform = v8::V8::get_current_platform();
        while v8::Platform::pump_message_loop(&platform, &self.isolate, false) {}
    }
}
