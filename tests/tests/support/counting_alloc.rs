//! A global allocator that counts, per thread, the heap blocks allocated and freed and the bytes
//! they were asked for, delegating the work itself to [`std::alloc::System`].
//!
//! Include it in a test binary with `#[path = "support/counting_alloc.rs"] mod counting_alloc;`:
//! the `#[global_allocator]` below then serves that whole binary.
//!
//! The counters are thread-local, so tests running in parallel on the harness's threads do not
//! disturb each other. A block freed on another thread than the one that allocated it would skew
//! both threads' counts; Deferreds are `!Send`, so the scenarios measured here never do that. For
//! an exact count, measure on a dedicated thread (see [`on_fresh_thread`]) after a warm-up that
//! touches whatever lazily initialised thread-local state the code under test uses.
//!
//! This is the only `unsafe` in the workspace's tests: implementing [`GlobalAlloc`] cannot be done
//! without it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts allocations on the current thread and forwards them to [`System`].
pub struct CountingAlloc;

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

thread_local! {
    // `const`-initialised `Cell`s of plain integers: no lazy initialisation and no destructor, so
    // touching them from inside the allocator never allocates and never re-enters it.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
    static REALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn bump_live(delta: isize) {
    // `try_with`: during thread teardown the slot may already be gone; the count is then moot.
    let _ = LIVE.try_with(|c| c.set(c.get() + delta));
}

fn bump_bytes(delta: isize) {
    let _ = LIVE_BYTES.try_with(|c| c.set(c.get() + delta));
}

fn bump(counter: &'static std::thread::LocalKey<Cell<u64>>) {
    let _ = counter.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every method forwards its arguments unchanged to `System`, which implements
// `GlobalAlloc` correctly, and returns `System`'s result unchanged; the bookkeeping touches only
// thread-local integers and never allocates, so the allocator is not re-entered.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: our caller guarantees `layout` has a non-zero size, as `System.alloc` requires.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            bump_live(1);
            bump_bytes(layout.size() as isize);
            bump(&ALLOCS);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`: the caller's non-zero-size guarantee is passed on.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            bump_live(1);
            bump_bytes(layout.size() as isize);
            bump(&ALLOCS);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: our caller guarantees `ptr` was allocated by this allocator (hence by `System`,
        // to which every allocation was forwarded) with this `layout`.
        unsafe { System.dealloc(ptr, layout) };
        bump_live(-1);
        bump_bytes(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: our caller guarantees `ptr` came from this allocator (so from `System`) with
        // `layout`, and that `new_size` is non-zero and does not overflow when rounded up to the
        // alignment, which is all `System.realloc` requires.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // One block stays one block: the live count does not change; its size does.
            bump(&REALLOCS);
            bump_bytes(new_size as isize - layout.size() as isize);
        }
        new
    }
}

/// This thread's counters at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counts {
    /// Blocks allocated and not yet freed on this thread (since it started).
    pub live: isize,
    /// Bytes asked for (the `Layout` sizes, not what the system allocator rounds them up to) by
    /// the blocks allocated and not yet freed on this thread.
    pub live_bytes: isize,
    /// `alloc`/`alloc_zeroed` calls that succeeded on this thread.
    pub allocs: u64,
    /// `realloc` calls (a block growing or shrinking in place or by moving).
    pub reallocs: u64,
}

impl Counts {
    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: Counts) -> Counts {
        Counts {
            live: self.live - earlier.live,
            live_bytes: self.live_bytes - earlier.live_bytes,
            allocs: self.allocs - earlier.allocs,
            reallocs: self.reallocs - earlier.reallocs,
        }
    }
}

/// This thread's counters now.
pub fn counts() -> Counts {
    Counts {
        live: LIVE.with(Cell::get),
        live_bytes: LIVE_BYTES.with(Cell::get),
        allocs: ALLOCS.with(Cell::get),
        reallocs: REALLOCS.with(Cell::get),
    }
}

/// Runs `f` and returns its result with the allocations made (and freed) on this thread while it
/// ran. Allocations made to hold `f`'s result count too (they are live when `f` returns).
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, Counts) {
    let before = counts();
    let r = f();
    (r, counts().since(before))
}

/// Runs `f` on a new thread and waits for it, re-raising its panic. Its counters start from zero
/// and see only what `f` does.
pub fn on_fresh_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    match std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .expect("spawn a test thread")
        .join()
    {
        Ok(r) => r,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}
