//! The per-thread work loop: every continuation enters the engine here, so none can recurse
//! without bound.
//!
//! A *continuation* is anything that makes a chain go on: running a chain that was fired, that
//! got a step while fired, or that was unpaused; cancelling a chain; resuming a coroutine that a
//! waker woke. Each is a [`Work`] item, and each is started by [`enter`]:
//!
//! - **Inline while shallow.** Twisted runs a fired Deferred's callbacks inside `callback()`, also
//!   when that `callback()` is itself called from a callback. We do the same while fewer than
//!   [`INLINE_DEPTH`] continuations are nested on this thread's stack, so every program Twisted
//!   runs without a `RecursionError` runs here in the same order.
//! - **Queued when deep.** At [`INLINE_DEPTH`] nested continuations, the next one is queued and
//!   the call that started it returns at once; the outermost [`enter`] on this thread runs the
//!   queue, in order, before it returns. The stack therefore holds at most [`INLINE_DEPTH`]
//!   continuations whatever the program builds: a gather of a gather of ... a million deep, a
//!   million coroutines each completing the next one's future, cancellation through a million
//!   cancellers. Everything still happens before the outermost call (`callback`, `cancel`,
//!   `drop`, `unpause`) returns, so a caller at the top sees Twisted's result.
//!
//! Inside one continuation, a chain that hands its result to another chain (a Deferred returned
//! by a step, a `chain_deferred` link, a coroutine suspended on it) moves on to it as a tail call
//! of the chain loop (`chain_loop.rs`), which needs no stack either.
//!
//! The loop tolerates thread teardown: when this thread's queue has already been destroyed (a
//! Deferred fired from another thread-local's destructor), work runs inline.

use std::cell::{Cell as StdCell, RefCell};
use std::collections::VecDeque;

use super::cell::{CellRc, DriverRc, Resume};
use crate::failure::Failure;

/// How many continuations may be nested on the stack before the next one is queued. Each level
/// is a handful of engine frames plus the user's step; 32 of them stay far below a 2 MiB stack
/// even in a debug build, and far above what a real program nests (Twisted itself overflows at
/// a few hundred).
pub(crate) const INLINE_DEPTH: u32 = 32;

/// One continuation.
pub(crate) enum Work {
    /// Run a chain that may have steps to run.
    Run(CellRc),
    /// Cancel a chain (and what it waits on); the `CancelledError` is located at the `cancel()`.
    Cancel(CellRc, &'static std::panic::Location<'static>),
    /// Poll a coroutine whose waker was woken.
    Resume(DriverRc),
    /// Fail a cancelled chain with this failure unless something fired it meanwhile (the end of
    /// a cancel whose canceller's own work was queued: see [`when_settled`]).
    FinishCancel(CellRc, Failure),
}

/// The loop's counters: `const`, with no destructor, so they are readable at any point of the
/// thread's life, teardown included.
struct Counters {
    /// Continuations running on this thread's stack right now.
    depth: StdCell<u32>,
    /// Items in [`QUEUE`] and [`SETTLE`], so that the common case never touches them.
    queued: StdCell<usize>,
    /// How many items were ever queued: tells a caller whether the code it ran queued anything.
    ever_queued: StdCell<u64>,
}

thread_local! {
    static COUNTERS: Counters = const {
        Counters { depth: StdCell::new(0), queued: StdCell::new(0), ever_queued: StdCell::new(0) }
    };
    static QUEUE: RefCell<VecDeque<Work>> = const { RefCell::new(VecDeque::new()) };
    /// Continuations that wait until everything queued before them has settled (a stack: the
    /// innermost cancel finishes first, as it would by recursion).
    static SETTLE: RefCell<Vec<Work>> = const { RefCell::new(Vec::new()) };
}

/// Whether a continuation is running on this thread's stack (the library's own code is below).
pub(crate) fn in_continuation() -> bool {
    COUNTERS.with(|c| c.depth.get() > 0)
}

/// How many continuations were ever queued on this thread (compare two readings).
pub(crate) fn ever_queued() -> u64 {
    COUNTERS.try_with(|c| c.ever_queued.get()).unwrap_or(0)
}

/// Runs `work` once the queue is empty: after every continuation queued so far, and everything
/// those queue in turn, has run. A cancel whose canceller's nested cancels were queued (too deep
/// to run inline) finishes this way, so that, as with Twisted's recursion, the Deferreds those
/// cancels fail reach it before it decides whether it was fired.
pub(crate) fn when_settled(work: Work) {
    let mut work = Some(work);
    let _ = SETTLE.try_with(|q| {
        if let Ok(mut q) = q.try_borrow_mut() {
            q.extend(work.take());
            let _ = COUNTERS.try_with(|c| c.queued.set(c.queued.get() + 1));
        }
    });
    if let Some(work) = work {
        perform(work);
    }
}

/// Leaves a level when dropped, also if a continuation unwinds (engine code does not panic, but a
/// wedged counter would queue every later continuation of this thread forever).
struct Level<'a>(&'a Counters);

impl Drop for Level<'_> {
    #[inline]
    fn drop(&mut self) {
        self.0.depth.set(self.0.depth.get() - 1);
    }
}

/// Starts a continuation: now, if the stack is shallow, else after the ones running now.
#[inline]
pub(crate) fn enter(work: Work) {
    // One thread-local access for the common case. `with` cannot fail: the counters have no
    // destructor, so they are there for the whole life of the thread, teardown included.
    let deep = COUNTERS.with(|c| {
        let depth = c.depth.get();
        if depth >= INLINE_DEPTH {
            return Some(work);
        }
        c.depth.set(depth + 1);
        {
            let _level = Level(c);
            perform(work);
        }
        if depth == 0 && c.queued.get() > 0 {
            drain();
        }
        None
    });
    if let Some(work) = deep {
        queue(work);
    }
}

/// Runs a continuation on a chain: [`enter`] of [`Work::Run`], written out for the hot path
/// (firing a chain, adding a step to a fired one): two small thread-local accesses the compiler
/// inlines, around the chain loop.
#[inline(always)]
pub(crate) fn run(cell: CellRc) {
    match enter_level() {
        Some(depth) => {
            // No unwinding guard on this hot path: the chain loop calls user code only through
            // `user_code`, which catches every panic, so it returns normally.
            super::chain_loop::run_chain(cell);
            if leave_level(depth) {
                drain();
            }
        }
        None => queue(Work::Run(cell)),
    }
}

/// Enters one more level, giving the depth before it; `None` at [`INLINE_DEPTH`]. `with` cannot
/// fail: the counters have no destructor (see [`Counters`]).
#[inline(always)]
fn enter_level() -> Option<u32> {
    COUNTERS.with(|c| {
        let depth = c.depth.get();
        if depth >= INLINE_DEPTH {
            return None;
        }
        c.depth.set(depth + 1);
        Some(depth)
    })
}

/// Leaves the level entered at `depth`; whether the queue is to be run now (only the outermost
/// level runs it).
#[inline(always)]
fn leave_level(depth: u32) -> bool {
    COUNTERS.with(|c| {
        c.depth.set(depth);
        depth == 0 && c.queued.get() > 0
    })
}

#[cold]
#[inline(never)]
fn queue(work: Work) {
    let mut work = Some(work);
    let _ = QUEUE.try_with(|q| {
        if let Ok(mut q) = q.try_borrow_mut() {
            q.extend(work.take());
            let _ = COUNTERS.try_with(|c| {
                c.queued.set(c.queued.get() + 1);
                c.ever_queued.set(c.ever_queued.get() + 1);
            });
        }
    });
    if let Some(work) = work {
        // The queue is gone (thread teardown): no outer loop will run it, so run it here.
        perform(work);
    }
}

/// Runs the queue until it is empty; only the outermost [`enter`] does.
#[cold]
#[inline(never)]
fn drain() {
    loop {
        let next = QUEUE
            .try_with(|q| q.try_borrow_mut().ok().and_then(|mut q| q.pop_front()))
            .ok()
            .flatten()
            .or_else(|| {
                SETTLE
                    .try_with(|q| q.try_borrow_mut().ok().and_then(|mut q| q.pop()))
                    .ok()
                    .flatten()
            });
        let Some(work) = next else { return };
        let _ = COUNTERS.try_with(|c| {
            c.queued.set(c.queued.get().saturating_sub(1));
            c.depth.set(1);
            let _level = Level(c);
            perform(work);
        });
    }
}

fn perform(work: Work) {
    match work {
        Work::Run(cell) => super::chain_loop::run_chain(cell),
        Work::Cancel(cell, at) => super::cancel::cancel_walk(cell, at),
        Work::Resume(driver) => {
            if let Some(cell) = driver.resume() {
                super::chain_loop::run_chain(cell)
            }
        }
        Work::FinishCancel(cell, failure) => {
            super::chain_loop::fire(&cell, super::cell::Slot::Failure(failure));
            super::reclaim::release(cell);
        }
    }
}
