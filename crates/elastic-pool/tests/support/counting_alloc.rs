//! A counting global allocator for the allocation tests, shared by `#[path]` include:
//! `alloc_free_signals.rs`, `alloc_free_tick.rs` and `job.rs` each install it.
//!
//! The count is per thread, so allocations by other test threads (or the harness) are not
//! counted; only those made on the measuring thread. Frees are not counted.
// Each test uses a different subset of the helpers.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Forwards to [`System`] and counts `alloc`, `alloc_zeroed` and `realloc` on this thread.
pub struct Counting;

thread_local! {
    /// Allocations made by this thread. Const-initialised and without a destructor, so
    /// reading it never allocates.
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn bump() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so `System`'s
// guarantees carry over; the only addition is a thread-local counter increment that does not
// allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: forwarded from our caller, who upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        bump();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        bump();
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`; forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through us) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread so far.
pub fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// Takes `n` allocations off this thread's count (for work that is not what is measured).
pub fn discount(n: u64) {
    ALLOCS.with(|c| c.set(c.get().saturating_sub(n)));
}

/// Runs `f` and returns its value with the allocations made on this thread meanwhile.
pub fn allocations_in<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = allocs();
    let v = f();
    (v, allocs() - before)
}
