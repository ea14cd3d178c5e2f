//! The ArrayBuffer allocator of an isolate. Backing stores live outside V8's heap, so the
//! heap limit alone would let a script hold gigabytes in buffers; this allocator charges
//! every buffer against the isolate's memory limit and stops the script when it is spent.

use std::alloc::{Layout, alloc, alloc_zeroed, dealloc};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use deno_core::v8;

pub(crate) struct BufferBudget {
    limit: usize,
    used: AtomicUsize,
    /// Size of the allocation that was refused (it counts as "used" in the error message).
    refused: AtomicUsize,
    hit: AtomicBool,
    isolate: OnceLock<v8::IsolateHandle>,
}

impl BufferBudget {
    pub fn new(limit: usize) -> Arc<BufferBudget> {
        Arc::new(BufferBudget {
            limit,
            used: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            hit: AtomicBool::new(false),
            isolate: OnceLock::new(),
        })
    }

    pub fn set_isolate(&self, handle: v8::IsolateHandle) {
        let _ = self.isolate.set(handle);
    }

    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::Acquire)
    }

    /// Whether an allocation was refused (the script is being stopped).
    pub fn hit(&self) -> bool {
        self.hit.load(Ordering::Acquire)
    }

    fn reserve(&self, len: usize) -> bool {
        let before = self.used.fetch_add(len, Ordering::AcqRel);
        if before.saturating_add(len) <= self.limit {
            return true;
        }
        self.used.fetch_sub(len, Ordering::AcqRel);
        if !self.hit.swap(true, Ordering::AcqRel) {
            self.refused.store(len, Ordering::Release);
            if let Some(isolate) = self.isolate.get() {
                isolate.terminate_execution();
            }
        }
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
