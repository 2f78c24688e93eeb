//! Reclaiming chains that only hold each other.
//!
//! A chain waiting on another holds it (its `Waiting` result) and is held by it (the hand-over
//! step): a reference cycle, which `Rc` alone never frees. It is broken when the inner chain
//! fires. When the inner chain can no longer fire or go on — it is paused, or fired and paused,
//! and no handle, trigger, future or awaiter reaches it or anything waiting on it — the pair is
//! garbage that Twisted's collector frees, reporting the failure it holds. So do we, at the two
//! moments such a cycle can become unreachable: when the last handle to the outer chain goes, and
//! when a chain nobody holds starts waiting.
//!
//! (A trigger dropped with nothing listening is the third way to strand such a pair; the trigger
//! breaks it itself, see `chain_loop::forget_unreachable`.)

use std::rc::Rc;

use super::cell::{Canceller, Cell, Slot};
use super::user_code;

/// A cheap first test: only a fired chain that waits, a `chain_deferred` target, or a coroutine's
/// Deferred can be part of what [`reclaim_if_unreachable`] frees.
#[inline]
pub(crate) fn may_be_reclaimable(cell: &Rc<Cell>) -> bool {
    cell.st.try_borrow().is_ok_and(|st| {
        matches!(st.result, Slot::Waiting(_)) || matches!(st.canceller, Canceller::Coroutine(_))
    })
}

/// `outer` is referenced `held` times by the caller (and nothing else of the caller's will use it
/// again). If it waits, through a run of chains each waiting on the next, on a chain that nobody
/// else can reach, the run is unreachable: its `Waiting` result is dropped, which frees the
/// innermost chain (reporting a failure it holds) and, with it, the hand-overs back out.
#[inline(never)]
pub(crate) fn reclaim_if_unreachable(outer: &Rc<Cell>, held: usize) {
    // Held by the caller and by the hand-over step of the chain it waits on (or, for a
    // coroutine's Deferred, by the coroutine), nothing else.
    if Rc::strong_count(outer) != held + 1 {
        return;
    }
    let driver = {
        let st = outer.st.borrow();
        if st.awaiter.is_some() {
            return;
        }
        match &st.canceller {
            Canceller::Coroutine(driver) if !st.called => driver.upgrade(),
            _ => None,
        }
    };
    if let Some(driver) = driver {
        // A coroutine's Deferred that only its coroutine holds: see `Resume::abandoned`.
        driver.abandoned();
        return;
    }
    if !matches!(outer.st.borrow().result, Slot::Waiting(_)) {
        return;
    }
    let mut cur = outer.clone();
    loop {
        let next = {
            let st = cur.st.borrow();
            let Slot::Waiting(inner) = &st.result else {
                break;
            };
            // Held by `cur`'s `Waiting`, and (if it waits in turn) by its inner chain's
            // hand-over step; nothing else: no handle, trigger or future.
            let ist = inner.st.borrow();
            let inner_waits = matches!(ist.result, Slot::Waiting(_));
            if ist.awaiter.is_some() || Rc::strong_count(inner) != 1 + usize::from(inner_waits) {
                return;
            }
            if !inner_waits {
                // The innermost: unreachable. A pending, unpaused, fired chain would have run
                // already; a chain with no trigger and not fired can never fire.
                if ist.called && ist.pauses == 0 && !ist.running {
                    return;
                }
                break;
            }
            drop(ist);
            inner.clone()
        };
        cur = next;
    }
    drop(cur);
    let old = std::mem::replace(&mut outer.st.borrow_mut().result, Slot::Empty);
    user_code::drop_value(old);
}

/// Drops the caller's reference to `cell` (a trigger that fired it, a future that awaited it),
/// reclaiming the wait cycle it leaves unreachable if that was the last reference from outside.
#[inline]
pub(crate) fn release(cell: Rc<Cell>) {
    if Rc::strong_count(&cell) == 2 {
        reclaim_if_unreachable(&cell, 1);
    }
}
