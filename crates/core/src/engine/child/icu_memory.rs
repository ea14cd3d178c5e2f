//! ICU's memory, charged to the running execution. `Intl` objects keep ICU objects
//! (formatters, collators, break iterators) outside V8's heap, and V8 knows at best a rough
//! estimate of their size: without this, a script could hold about ten times its
//! `memoryLimit` in them before the process's RSS ceiling stopped it.
//!
//! ICU lets its embedder replace its allocator (`u_setMemoryFunctions`, before ICU
//! allocates anything). Every ICU allocation made on a thread while an execution runs there
//! is charged to that execution's off-heap budget, which it shares with its ArrayBuffers
//! (`BufferBudget`), and credited back when ICU frees it, on whatever thread. Past the
//! budget the hit is recorded and the script stopped; the allocation itself still
//! succeeds, because not every ICU and V8 path survives a failed one. Allocations made
//! outside executions (V8's start, ICU's caches warmed before any script) are not charged.

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::Arc;

use super::buffer_budget::BufferBudget;

type Alloc = unsafe extern "C" fn(*const c_void, usize) -> *mut c_void;
type Realloc = unsafe extern "C" fn(*const c_void, *mut c_void, usize) -> *mut c_void;
type Free = unsafe extern "C" fn(*const c_void, *mut c_void);

unsafe extern "C" {
    // ICU's C symbols carry its major version: this is the ICU inside the pinned V8 (deno_core
    // 0.413 fixes v8 150.4.0, which embeds ICU 77). A V8 with another ICU fails to link here.
    fn u_setMemoryFunctions_77(context: *const c_void, a: Alloc, r: Realloc, f: Free, status: *mut i32);
}

/// In front of every block: its size and the budget it is charged to (null: none). 16 bytes,
/// so the block ICU gets keeps malloc's alignment.
#[repr(C)]
struct Header {
    size: usize,
    budget: *const BufferBudget,
}

const HEADER: usize = 16;
const _: () = assert!(std::mem::size_of::<Header>() == HEADER);

thread_local! {
    /// The budget ICU allocations on this thread are charged to (null between executions).
    static CURRENT: Cell<*const BufferBudget> = const { Cell::new(std::ptr::null()) };
}

fn current_budget() -> *const BufferBudget {
    CURRENT.try_with(Cell::get).unwrap_or(std::ptr::null())
}

/// Charges `size` new bytes to the thread's budget; the header keeps the budget alive.
unsafe fn charge(size: usize) -> *const BufferBudget {
    let budget = current_budget();
    if !budget.is_null() {
        // SAFETY: `budget` comes from a live `Arc` (see `charge_to`); the count taken here is
        // given back when the block is freed.
        unsafe {
            Arc::increment_strong_count(budget);
            (*budget).charge_icu(size as isize);
        }
    }
    budget
}

unsafe extern "C" fn alloc(_context: *const c_void, size: usize) -> *mut c_void {
    // SAFETY: a fresh block of `HEADER + size` bytes, its header written before use.
    unsafe {
        let block = libc::malloc(HEADER + size) as *mut Header;
        if block.is_null() {
            return std::ptr::null_mut();
        }
        block.write(Header { size, budget: charge(size) });
        (block as *mut u8).add(HEADER).cast()
    }
}

unsafe extern "C" fn free(_context: *const c_void, memory: *mut c_void) {
    if memory.is_null() {
        return;
    }
    // SAFETY: `memory` came from `alloc`/`realloc`, so a header precedes it.
    unsafe {
        let block = (memory as *mut u8).sub(HEADER) as *mut Header;
        let Header { size, budget } = block.read();
        if !budget.is_null() {
            (*budget).charge_icu(-(size as isize));
            Arc::decrement_strong_count(budget);
        }
        libc::free(block.cast());
    }
}

unsafe extern "C" fn realloc(context: *const c_void, memory: *mut c_void, size: usize) -> *mut c_void {
    if memory.is_null() {
        // SAFETY: a plain allocation.
        return unsafe { alloc(context, size) };
    }
    // SAFETY: `memory` came from `alloc`/`realloc`; on failure the old block stays valid and
    // charged, as `realloc` promises.
    unsafe {
        let block = (memory as *mut u8).sub(HEADER) as *mut Header;
        let Header { size: old, budget } = block.read();
        let moved = libc::realloc(block.cast(), HEADER + size) as *mut Header;
        if moved.is_null() {
            return std::ptr::null_mut();
        }
        if !budget.is_null() {
            (*budget).charge_icu(size as isize - old as isize);
        }
        moved.write(Header { size, budget });
        (moved as *mut u8).add(HEADER).cast()
    }
}

/// Replaces ICU's allocator. Must run before ICU allocates (before V8 is initialised).
pub(crate) fn install() {
    let mut status = 0;
    // SAFETY: called once, before any ICU use; the functions live for the whole process.
    unsafe { u_setMemoryFunctions_77(std::ptr::null(), alloc, realloc, free, &mut status) };
}

/// While it lives, ICU allocations on this thread are charged to `budget`.
pub(crate) struct Charging(());

pub(crate) fn charge_to(budget: &Arc<BufferBudget>) -> Charging {
    CURRENT.with(|current| current.set(Arc::as_ptr(budget)));
    Charging(())
}

impl Drop for Charging {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|current| current.set(std::ptr::null()));
    }
}
