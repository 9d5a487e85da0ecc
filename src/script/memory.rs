//! How many bytes the running thread holds, so the sandbox can bound a script
//! command's memory.
//!
//! rhai limits each value (string length, array and map items) but not how many values
//! a script keeps alive: variables, function arguments being evaluated, closure
//! captures and curried arguments are not counted by rhai at all (300 arguments of
//! 4 MiB each held 1.2 GB). Only the allocator sees every byte, so the process
//! allocator counts, per thread, what the thread allocated minus what it freed; the
//! sandbox compares that with the figure at the start of the command.
//!
//! A command runs on one thread and frees its values there, so a thread's count is
//! the command's. Memory freed by another thread (a pooled HTTP connection) only
//! makes a count smaller, never stops a command wrongly.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting each thread's bytes.
pub struct CountingAllocator;

thread_local! {
    /// Bytes this thread allocated minus bytes it freed. A const-initialised `Cell`
    /// needs no allocation and no destructor, so the allocator may use it.
    static HELD: Cell<isize> = const { Cell::new(0) };
}

fn count(delta: isize) {
    let _ = HELD.try_with(|held| held.set(held.get().wrapping_add(delta)));
}

/// Bytes this thread allocated minus bytes it freed, since it started.
pub fn held_by_this_thread() -> isize {
    HELD.try_with(Cell::get).unwrap_or(0)
}

/// Sizes of live allocations are below `isize::MAX` (a `Layout` guarantees it).
fn signed(size: usize) -> isize {
    isize::try_from(size).unwrap_or(isize::MAX)
}

// SAFETY: every call is passed unchanged to the system allocator; the bookkeeping
// touches only a thread-local integer and never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            count(signed(layout.size()));
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            count(signed(layout.size()));
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator (that is, by `System`) with
        // `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) };
        count(-signed(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`, and `new_size` is valid as the caller guarantees.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            count(signed(new_size) - signed(layout.size()));
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_this_thread_holds() {
        let before = held_by_this_thread();
        let block = vec![0u8; 1 << 20];
        assert!(held_by_this_thread() - before >= 1 << 20);
        drop(block);
        assert!(held_by_this_thread() - before < 1 << 10);
    }
}
