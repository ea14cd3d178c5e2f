//! The ArrayBuffer allocator of an isolate. Backing stores live outside V8's heap, so the
//! heap limit alone would let a script hold gigabytes in buffers; this allocator charges
//! every buffer against the isolate's memory limit and stops the script when it is spent.

use std::alloc::{Layout, alloc, alloc_zeroed, dealloc};
use std::ffi::c_void;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use deno_core::v8;

use super::limit_hit::{LimitHit, mb};

pub(crate) struct BufferBudget {
    limit: usize,
    used: AtomicUsize,
    hits: Arc<LimitHit>,
}

impl BufferBudget {
    pub fn new(limit: usize, hits: Arc<LimitHit>) -> Arc<BufferBudget> {
        Arc::new(BufferBudget { limit, used: AtomicUsize::new(0), hits })
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn reserve(&self, len: usize) -> bool {
        let before = self.used.fetch_add(len, Ordering::AcqRel);
        if before.saturating_add(len) <= self.limit {
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
