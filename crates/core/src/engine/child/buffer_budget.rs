//! The ArrayBuffer allocator of an isolate. Backing stores live outside V8's heap, so the
//! heap limit alone would let a script hold gigabytes in buffers; this allocator charges
//! every buffer against the isolate's memory limit and stops the script when it is spent.

use std::alloc::{Layout, alloc, alloc_zeroed, dealloc};
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use deno_core::v8;

use super::limit_hit::{LimitHit, mb};

pub(crate) struct BufferBudget {
    limit: usize,
    used: AtomicUsize,
    /// ICU memory held by this isolate's executions (`icu_memory`): it shares the budget.
    icu: AtomicUsize,
    /// A collection was asked for before deciding that ICU memory is over the budget.
    icu_check_pending: AtomicBool,
    hits: Arc<LimitHit>,
}

impl BufferBudget {
    pub fn new(limit: usize, hits: Arc<LimitHit>) -> Arc<BufferBudget> {
        Arc::new(BufferBudget {
            limit,
            used: AtomicUsize::new(0),
            icu: AtomicUsize::new(0),
            icu_check_pending: AtomicBool::new(false),
            hits,
        })
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// ICU memory allocated (`delta` > 0) or freed. Past the budget, what is live decides:
    /// `Intl` objects that are garbage keep their ICU memory until a collection finalizes
    /// them, and V8 does not know how much that is, so a collection runs first (at V8's next
    /// safe point) and the hit is recorded only if the live ICU memory is still over. Twice
    /// over the budget, it is recorded at once.
    pub fn charge_icu(&self, delta: isize) {
        if delta < 0 {
            self.icu.fetch_sub(delta.unsigned_abs(), Ordering::AcqRel);
            return;
        }
        self.icu.fetch_add(delta as usize, Ordering::AcqRel);
        let held = self.off_heap();
        if held <= self.limit {
            return;
        }
        if held / 2 > self.limit {
            return self.record_icu_hit();
        }
        if !self.icu_check_pending.swap(true, Ordering::AcqRel) {
            let data = self as *const BufferBudget as *mut c_void;
            if !self.hits.interrupt(collect_then_check_icu, data) {
                self.record_icu_hit();
            }
        }
    }

    /// ArrayBuffers and ICU memory together.
    fn off_heap(&self) -> usize {
        self.used().saturating_add(self.icu.load(Ordering::Acquire))
    }

    fn record_icu_hit(&self) {
        self.hits.record(|| {
            format!(
                "Memory limit exceeded: Intl objects hold {:.2}MB of ICU memory, which with {:.2}MB of ArrayBuffers exceeds the {:.2}MB limit",
                mb(self.icu.load(Ordering::Acquire)),
                mb(self.used()),
                mb(self.limit)
            )
        });
    }

    fn reserve(&self, len: usize) -> bool {
        self.used.fetch_add(len, Ordering::AcqRel);
        if self.off_heap() <= self.limit {
            return true;
        }
        self.used.fetch_sub(len, Ordering::AcqRel);
        self.hits.record(|| {
            format!(
                "Memory limit exceeded: an ArrayBuffer of {:.2}MB would exceed the {:.2}MB limit ({:.2}MB of ArrayBuffers in use)",
                mb(len),
                mb(self.limit),
                mb(self.used())
            )
        });
        false
    }

    fn release(&self, len: usize) {
        self.used.fetch_sub(len, Ordering::AcqRel);
    }

    /// Wraps the budget in a V8 allocator; V8 releases it with the isolate.
    pub fn allocator(self: &Arc<Self>) -> v8::SharedRef<v8::Allocator> {
        let raw = Arc::into_raw(self.clone());
        // SAFETY: `raw` stays valid until V8 calls `drop_budget`, which reclaims it.
        unsafe { v8::new_rust_allocator(raw, &VTABLE) }.make_shared()
    }
}

/// Runs on the isolate's thread at a safe point (`charge_icu`): collects garbage, then
/// records the hit if the live ICU memory is still over the budget.
unsafe extern "C" fn collect_then_check_icu(isolate: v8::UnsafeRawIsolatePtr, data: *mut c_void) {
    // SAFETY: `data` is the isolate's `BufferBudget`, which lives as long as the isolate (V8's
    // allocator holds it); the callback runs on the isolate's thread while it is alive.
    unsafe {
        let budget = &*(data as *const BufferBudget);
        let mut isolate = v8::Isolate::from_raw_isolate_ptr(isolate);
        isolate.low_memory_notification();
        budget.icu_check_pending.store(false, Ordering::Release);
        if budget.off_heap() > budget.limit {
            budget.record_icu_hit();
        }
    }
}

const ALIGN: usize = 16;

fn layout(len: usize) -> Option<Layout> {
    Layout::from_size_align(len.max(1), ALIGN).ok()
}

unsafe extern "C" fn allocate(budget: &BufferBudget, len: usize) -> *mut c_void {
    let Some(layout) = layout(len) else { return std::ptr::null_mut() };
    if !budget.reserve(len) {
        return std::ptr::null_mut();
    }
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { alloc_zeroed(layout) };
    if ptr.is_null() {
        budget.release(len);
    }
    ptr.cast()
}

unsafe extern "C" fn allocate_uninitialized(budget: &BufferBudget, len: usize) -> *mut c_void {
    let Some(layout) = layout(len) else { return std::ptr::null_mut() };
    if !budget.reserve(len) {
        return std::ptr::null_mut();
    }
    // SAFETY: the layout has a non-zero size.
    let ptr = unsafe { alloc(layout) };
    if ptr.is_null() {
        budget.release(len);
    }
    ptr.cast()
}

unsafe extern "C" fn free(budget: &BufferBudget, data: *mut c_void, len: usize) {
    if data.is_null() {
        return;
    }
    if let Some(layout) = layout(len) {
        // SAFETY: `data` came from `allocate*` with this same length, hence this layout.
        unsafe { dealloc(data.cast(), layout) };
    }
    budget.release(len);
}

unsafe extern "C" fn drop_budget(budget: *const BufferBudget) {
    // SAFETY: the pointer was produced by `Arc::into_raw` in `allocator`.
    drop(unsafe { Arc::from_raw(budget) });
}

static VTABLE: v8::RustAllocatorVtable<BufferBudget> =
    v8::RustAllocatorVtable { allocate, allocate_uninitialized, free, drop: drop_budget };
