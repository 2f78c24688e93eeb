//! Reclaiming chains that only hold each other.
//!
//! Chains reference each other in ways that form cycles: a chain waiting on another holds it (its
//! `Waiting` result) and is held by it (the hand-over step); a `chain_deferred` target holds its
//! source until the source fires it, and the source holds the target (its hand-over). `Rc` alone
//! never frees such a cycle. It is normally broken when the chains fire; but when no handle,
//! trigger, future, pending continuation or step of another chain reaches any of them any more,
//! nothing can fire, unpause or cancel them (a `DeferredControl` is weak by design): they are
//! garbage, which Twisted's collector frees, reporting a failure they hold. So do we.
//!
//! The test is local and bounded: from a chain whose last outside reference is going, follow the
//! references the engine can see (results and hand-over steps) to at most [`LIMIT`] chains, and
//! compare each one's reference count with the references that come from inside that set. If they
//! are equal everywhere, nothing outside reaches the set: every chain in it lets go of the others,
//! and each is freed (a failure it holds is reported by its own drop). A reference the engine
//! cannot see (a step's closure holding a handle, a canceller, a coroutine) counts as one from
//! outside, so the test errs towards keeping, never towards freeing something reachable.
//!
//! It runs at the moments such a set can become unreachable: when the last handle to a chain goes,
//! when a trigger that fired a chain (or was dropped) lets go of it (a chain that starts waiting
//! inside that firing is checked then), when an await is abandoned, and when `chain_deferred`
//! links two chains. Never inside the chain loop itself: there, a long run of chains each waiting
//! on the next would be walked once per chain. A
//! coroutine's own Deferred that only the coroutine holds is handed to the coroutine's driver
//! (`Resume::abandoned`), which frees a coroutine that nothing can resume any more.

use std::rc::Rc;

use super::cell::{Canceller, Cell, Slot};
use super::user_code;

/// The most chains one test looks at: the sets this frees are small (a pair, a short run of
/// chains each waiting on the next); a larger set is left alone rather than walked at length.
const LIMIT: usize = 32;

/// Drops the caller's reference to `cell` (a handle, a trigger that fired it, a future that
/// awaited it), reclaiming what it leaves unreachable if that was the last reference from
/// outside. The tests that settle the common cases come first, under one borrow and without
/// cloning anything: this runs on every fire of a waiting chain.
#[inline(always)]
pub(crate) fn release(cell: Rc<Cell>) {
    // The last reference (the common case: the chain has run and its result was taken): no
    // other chain holds it, so it is in no cycle, and it is simply dropped.
    if Rc::strong_count(&cell) > 1 {
        release_shared(cell);
    }
}

#[inline(never)]
fn release_shared(cell: Rc<Cell>) {
    if Rc::strong_count(&cell) > 3 {
        return;
    }
    let worth_a_look = {
        let Ok(st) = cell.st.try_borrow() else {
            return;
        };
        if matches!(st.canceller, Canceller::Coroutine(_)) {
            true
        } else if let Slot::Waiting(inner) = &st.result {
            // The chain waited on first: on the hot path (a long run of chains each waiting on
            // the next, fired one by one) it is held by its trigger, which settles it at once.
            !inner.st.try_borrow().is_ok_and(|ist| {
                let edges = usize::from(matches!(ist.result, Slot::Waiting(_)))
                    + usize::from(ist.steps.has_hand_over());
                Rc::strong_count(inner) > edges
            }) && Rc::strong_count(&cell) == 2 + usize::from(st.steps.has_hand_over())
        } else {
            // Held only by the caller and its hand-over's target.
            st.steps.has_hand_over() && Rc::strong_count(&cell) == 2
        }
    };
    if worth_a_look {
        reclaim_if_unreachable(&cell, 1);
    }
}

/// `start` is referenced `held` times by the caller, who will not use it again. Frees the set of
/// chains reachable from it if nothing outside that set (and the caller) reaches any of them.
#[inline(never)]
pub(crate) fn reclaim_if_unreachable(start: &Rc<Cell>, held: usize) {
    // A coroutine's own Deferred that only its coroutine (and the caller) holds.
    let driver = {
        let Ok(st) = start.st.try_borrow() else {
            return;
        };
        match &st.canceller {
            Canceller::Coroutine(driver) if !st.called && st.steps.is_empty() => driver.upgrade(),
            _ => None,
        }
    };
    if let Some(driver) = driver {
        if Rc::strong_count(start) == held + 1 {
            driver.abandoned();
        }
        return;
    }
    // Other chains can reference this one only through the edges it has itself: the chain it
    // waits on (or its `chain_deferred` source) holds a hand-over back to it, and the chain it
    // hands over to holds it in its `Waiting` result. More references than that, and something
    // outside holds it: no walk (and no allocation) on the hot paths, where a handle is held.
    let edges = {
        let st = start.st.borrow();
        usize::from(matches!(st.result, Slot::Waiting(_))) + usize::from(st.steps.has_hand_over())
    };
    if Rc::strong_count(start) != held + edges {
        return;
    }
    let Some(set) = unreachable_set(start, held) else {
        return;
    };
    if let Some(closing) = wait_cycle_in(&set) {
        // Fired chains each waiting on the next, round to the first: a wait cycle, which could
        // never finish. Like a step returning its own Deferred, it fails with
        // `CircularChainError`, which flows round the cycle: every step on the way runs, and the
        // failure is reported once when the chains go.
        drop(set);
        super::cancel::break_cycle(closing);
        return;
    }
    // Let go of every edge inside the set, with no borrow held while the edges are dropped.
    for cell in &set {
        let (result, steps) = {
            let mut st = cell.st.borrow_mut();
            let result = if matches!(st.result, Slot::Waiting(_)) {
                std::mem::replace(&mut st.result, Slot::Empty)
            } else {
                Slot::Empty
            };
            (result, st.steps.take_all())
        };
        user_code::drop_value(result);
        user_code::drop_value(steps);
    }
}

/// A fired chain of `set` that waits, through fired chains each waiting on the next, on itself.
fn wait_cycle_in(set: &[Rc<Cell>]) -> Option<Rc<Cell>> {
    let waits_on = |c: &Rc<Cell>| -> Option<Rc<Cell>> {
        let st = c.st.try_borrow().ok()?;
        match &st.result {
            Slot::Waiting(next) if st.called => Some(next.clone()),
            _ => None,
        }
    };
    for cell in set {
        let mut cur = waits_on(cell);
        for _ in 0..set.len() {
            match cur {
                Some(c) if Rc::ptr_eq(&c, cell) => return Some(c),
                Some(c) => cur = waits_on(&c),
                None => break,
            }
        }
    }
    None
}

/// The chains `cell` has an edge to (the one it waits on, or its `chain_deferred` source; the one
/// its hand-over goes to), if nothing the engine cannot see through holds or resumes it.
fn edges_of(cell: &Rc<Cell>) -> Option<[Option<Rc<Cell>>; 2]> {
    let st = cell.st.try_borrow().ok()?;
    if st.running || st.awaiter.is_some() || !matches!(st.canceller, Canceller::None) {
        return None;
    }
    let waits_on = match &st.result {
        Slot::Waiting(other) => Some(other.clone()),
        _ => None,
    };
    Some([waits_on, st.steps.hand_over_target().cloned()])
}

/// Whether `cell`, holding `edges`, is referenced only by them and by `local` references of the
/// caller: a chain's references from other chains come in pairs with its own edges (a chain
/// waiting on another holds it and is held by its hand-over back).
fn only_internal(cell: &Rc<Cell>, edges: &[Option<Rc<Cell>>; 2], local: usize) -> bool {
    Rc::strong_count(cell) <= local + edges.iter().flatten().count()
}

/// Whether the chain `cell` waits on is referenced from outside (its trigger, most often): the
/// first test, made without cloning anything, on the path every fire of a waiting chain takes.
#[inline(always)]
fn waits_on_something_held(result: &Slot) -> bool {
    let Slot::Waiting(inner) = result else {
        return false;
    };
    let Ok(ist) = inner.st.try_borrow() else {
        return true;
    };
    let edges = usize::from(matches!(ist.result, Slot::Waiting(_)))
        + usize::from(ist.steps.has_hand_over());
    Rc::strong_count(inner) > edges
}

/// The set of chains reachable from `start`, if nothing outside it reaches any of them.
///
/// Every chain is checked as soon as it is reached, and the first one with more references than
/// its edges account for (a handle, a trigger) ends the walk. `start` and its neighbours are
/// checked before anything is allocated, which settles the common case: the chain waited on has
/// its trigger.
fn unreachable_set(start: &Rc<Cell>, held: usize) -> Option<Vec<Rc<Cell>>> {
    if waits_on_something_held(&start.st.try_borrow().ok()?.result) {
        return None;
    }
    let start_edges = edges_of(start)?;
    if !only_internal(start, &start_edges, held) {
        return None;
    }
    for neighbour in start_edges.iter().flatten() {
        // Referenced by `start_edges` too, here (twice, if both edges go to it).
        let clones = start_edges
            .iter()
            .flatten()
            .filter(|e| Rc::ptr_eq(e, neighbour))
            .count();
        let edges = edges_of(neighbour)?;
        if !only_internal(neighbour, &edges, clones) {
            return None;
        }
    }
    drop(start_edges);
    let mut set: Vec<Rc<Cell>> = vec![start.clone()];
    let mut next = 0;
    while next < set.len() {
        let cell = set[next].clone();
        let extra = if next == 0 { held } else { 0 };
        next += 1;
        let edges = edges_of(&cell)?;
        // Referenced by `set` and by the local `cell` besides.
        if !only_internal(&cell, &edges, 2 + extra) {
            return None;
        }
        for other in edges.into_iter().flatten() {
            if !set.iter().any(|c| Rc::ptr_eq(c, &other)) {
                if set.len() == LIMIT {
                    return None;
                }
                set.push(other);
            }
        }
    }
    Some(set)
}
