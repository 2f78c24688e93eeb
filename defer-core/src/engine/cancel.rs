//! Cancellation: Twisted's `cancel()`, made a walk along chains of Deferreds waiting on one
//! another, which detects a wait cycle instead of following it for ever.
//!
//! Cancelling a chain that waits on another cancels that one (and so on); cancelling a
//! coroutine's Deferred cancels what the coroutine awaits. The walk is a loop, started by the
//! work loop (`work_loop.rs`), and a canceller that cancels further Deferreds (a list cancelling
//! its inputs) enters the work loop again, so neither recurses without bound.
//!
//! **Cycles.** Two Deferreds each waiting on the other, or a coroutine awaiting its own Deferred
//! through shared state, would make that walk go round for ever. The walk remembers the chains it
//! visited; at the first one it meets again, it breaks the cycle by failing that chain with
//! [`CircularChainError`], whose result then flows round the cycle, so every chain in it
//! finishes.

use std::collections::HashSet;
use std::panic::Location;

use super::cell::{Canceller, CellRc, Resume, Slot};
use super::chain_loop::fire;
use super::user_code;
use super::work_loop::{self, Work};
use crate::errors::{CancelledError, CircularChainError};
use crate::failure::Failure;

enum CancelAction {
    Nothing,
    Errback,
    Canceller(Box<dyn FnOnce(CellRc)>),
    Forward(CellRc),
    Coroutine(super::tail::DriverRc),
}

/// Cancels `cell`: a continuation of the work loop. Never panics. The `CancelledError` it may
/// raise is located where the caller's `#[track_caller]` chain began (the user's `cancel()`).
#[track_caller]
pub(crate) fn cancel(cell: &CellRc) {
    cancel_at(cell, Location::caller());
}

/// Cancels `cell`, locating the `CancelledError` at `at`.
pub(crate) fn cancel_at(cell: &CellRc, at: &'static Location<'static>) {
    work_loop::enter(Work::Cancel(cell.clone(), at));
}

/// The chains a walk has visited: a few inline (most walks are one or two long), then a set.
#[derive(Default)]
struct Visited {
    few: Vec<*const ()>,
    many: HashSet<*const ()>,
}

impl Visited {
    /// Records `cell`; `false` if it was visited before.
    fn insert(&mut self, cell: &CellRc) -> bool {
        let p = CellRc::as_ptr(cell);
        if self.many.is_empty() {
            if self.few.contains(&p) {
                return false;
            }
            if self.few.len() < 16 {
                self.few.push(p);
                return true;
            }
            self.many.extend(self.few.drain(..));
        }
        self.many.insert(p)
    }
}

/// The walk (see the module docs). Every chain it lets go of goes through `reclaim::release`:
/// the walk's reference may have been the last one from outside a set of chains that now only
/// hold each other (a coroutine awaiting a paused chain this cancel failed, say).
pub(crate) fn cancel_walk(cell: CellRc, at: &'static Location<'static>) {
    if let Some(last) = walk(cell, at) {
        super::reclaim::release(last);
    }
}

/// The walk itself; returns the chain it holds when it stops, if any.
fn walk(cell: CellRc, at: &'static Location<'static>) -> Option<CellRc> {
    let mut cur = cell;
    let mut visited = Visited::default();
    loop {
        if !visited.insert(&cur) {
            break_cycle(cur);
            return None;
        }
        let action = {
            let mut st = cur.borrow_mut();
            if !st.called {
                match st.result.take_canceller() {
                    None => {
                        st.cancelled = true;
                        CancelAction::Errback
                    }
                    Some(Canceller::Once(k)) => {
                        st.cancelled = true;
                        CancelAction::Canceller(k)
                    }
                    Some(Canceller::Coroutine(driver)) => {
                        // Cancelling a coroutine may be repeated: put the canceller back.
                        let strong = driver.upgrade();
                        st.result.put_canceller(Canceller::Coroutine(driver));
                        match strong {
                            Some(d) => CancelAction::Coroutine(d),
                            None => CancelAction::Nothing,
                        }
                    }
                }
            } else if let Slot::Waiting(inner) = &st.result {
                CancelAction::Forward(inner.clone())
            } else {
                CancelAction::Nothing
            }
        };
        match action {
            CancelAction::Nothing => return Some(cur),
            CancelAction::Errback => {
                fire(&cur, Slot::Failure(Failure::new_at(CancelledError, at)));
                return Some(cur);
            }
            CancelAction::Canceller(k) => {
                let target = cur.clone();
                let before = work_loop::ever_queued();
                // A canceller that fired the Deferred decides its result. One that panicked
                // must not leave it unfired: it fails with the panic.
                let failure = match user_code::call(move || k(target)) {
                    Ok(()) => Failure::new_at(CancelledError, at),
                    Err(payload) => Failure::from_panic(payload),
                };
                if work_loop::ever_queued() == before {
                    fire(&cur, Slot::Failure(failure));
                    return Some(cur);
                }
                // The canceller's work was too deep to run inline (a list cancelling its
                // inputs, a million levels down): decide once it has all run, as Twisted's
                // recursion would have.
                work_loop::when_settled(Work::FinishCancel(cur, failure));
                return None;
            }
            CancelAction::Forward(inner) => {
                super::reclaim::release(std::mem::replace(&mut cur, inner));
            }
            CancelAction::Coroutine(driver) => match driver.cancel_current() {
                Some(inner) => super::reclaim::release(std::mem::replace(&mut cur, inner)),
                None => return Some(cur),
            },
        }
    }
}

/// `cur` was met a second time: fail it with `CircularChainError`, which then flows round the
/// cycle through the hand-overs that formed it.
pub(crate) fn break_cycle(cur: CellRc) {
    let failure = Slot::Failure(Failure::new(CircularChainError));
    let called = cur.borrow().called;
    if !called {
        // A coroutine's own Deferred (the coroutine awaits something that waits on it).
        fire(&cur, failure);
        return;
    }
    let old = {
        let mut st = cur.borrow_mut();
        if !matches!(st.result, Slot::Waiting(_)) {
            return;
        }
        std::mem::replace(&mut st.result, failure)
    };
    // `old` is the `Waiting` on the next chain of the cycle, which still holds the hand-over back
    // to `cur`: when the failure has gone round, it arrives here again and the chain finishes.
    user_code::drop_value(old);
    work_loop::run(cur);
}
