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

use super::cell::{Awaiter, Canceller, Cell, Slot};
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
        if matches!(st.awaiter, Some(Awaiter::Driver(_)))
            || matches!(st.canceller, Canceller::Coroutine(_))
        {
            // A coroutine awaits it, or it is a coroutine's own: the walk looks through the
            // coroutine.
            true
        } else if matches!(st.result, Slot::Waiting(_)) {
            // The chain waited on first: on the hot path (a long run of chains each waiting on
            // the next, fired one by one) it is held by its trigger, which settles it at once.
            !waits_on_something_held(&st) && Rc::strong_count(&cell) <= 1 + ref_budget(&st)
        } else {
            // Held only by the caller and its hand-over's target.
            st.steps.has_hand_over() && Rc::strong_count(&cell) <= 1 + ref_budget(&st)
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
    // Other chains can reference this one only through the edges it has itself: the chain it
    // waits on (or its `chain_deferred` source) holds a hand-over back to it, and the chain it
    // hands over to holds it in its `Waiting` result; a coroutine awaiting it holds it in its
    // body, and a coroutine holds its own Deferred. More references than that, and something
    // outside holds it: no walk (and no allocation) on the hot paths, where a handle is held.
    let expected = match start.st.try_borrow() {
        Ok(st) => held + ref_budget(&st),
        Err(_) => return,
    };
    if Rc::strong_count(start) > expected {
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
    // Let go of every edge inside the set, with no borrow held while the edges are dropped:
    // results waiting on other chains, hand-overs, coroutines' awaits, and the bodies of the
    // coroutines that can never resume.
    let mut drivers = Vec::new();
    for cell in &set {
        let (result, steps, awaiter) = {
            let mut st = cell.st.borrow_mut();
            if let Canceller::Coroutine(d) = &st.canceller
                && let Some(d) = d.upgrade()
            {
                drivers.push(d);
            }
            let result = if matches!(st.result, Slot::Waiting(_)) {
                std::mem::replace(&mut st.result, Slot::Empty)
            } else {
                Slot::Empty
            };
            (result, st.steps.take_all(), st.awaiter.take())
        };
        user_code::drop_value(result);
        user_code::drop_value(steps);
        user_code::drop_value(awaiter);
    }
    drop(set);
    for driver in drivers {
        driver.free_body();
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

/// How many references to a chain other chains (and coroutines) may hold, given its own edges:
/// the pairs described in [`unreachable_set`].
fn ref_budget(st: &super::cell::State) -> usize {
    usize::from(matches!(st.result, Slot::Waiting(_)))
        + usize::from(st.steps.has_hand_over())
        + usize::from(matches!(st.awaiter, Some(Awaiter::Driver(_))))
        + usize::from(matches!(st.canceller, Canceller::Coroutine(_)) && !st.called)
}

/// What the walk learns of a chain: the chains its references go to (the one it waits on or its
/// source, its hand-over's target), the chains it leads to through coroutines (the coroutine
/// awaiting it; the chains its own coroutine awaits), and how many references to itself come
/// from those coroutines; `None` if something the walk cannot see through may hold or resume it
/// (a foreign waker, a coroutine that may be resumed otherwise, a running chain).
struct Edges {
    /// References this chain holds to others.
    refs: Vec<Rc<Cell>>,
    /// Chains reached through a coroutine (no reference of this chain's own).
    via_coroutines: Vec<Rc<Cell>>,
    /// References to this chain held by coroutines: the awaiting one's future, its own driver.
    from_coroutines: usize,
}

fn edges_of(cell: &Rc<Cell>) -> Option<Edges> {
    let st = cell.st.try_borrow().ok()?;
    if st.running || matches!(st.awaiter, Some(Awaiter::Waker(_))) {
        return None;
    }
    let mut refs = Vec::new();
    if let Slot::Waiting(other) = &st.result {
        refs.push(other.clone());
    }
    if let Some(target) = st.steps.hand_over_target() {
        refs.push(target.clone());
    }
    let awaiting_driver = match &st.awaiter {
        Some(Awaiter::Driver(d)) => Some(d.clone()),
        _ => None,
    };
    let own_driver = match &st.canceller {
        Canceller::Coroutine(d) if !st.called => Some(d.upgrade()?),
        _ => None,
    };
    drop(st);
    // A canceller's closure may hold other chains: a reference the walk cannot see, which only
    // makes them look referenced from outside (so it errs towards keeping).
    let mut via_coroutines = Vec::new();
    let mut from_coroutines = 0;
    if let Some(d) = awaiting_driver {
        d.stuck_on()?;
        via_coroutines.push(d.own_cell());
        from_coroutines += 1;
    }
    if let Some(d) = own_driver {
        via_coroutines.extend(d.stuck_on()?);
        from_coroutines += 1;
    }
    Some(Edges {
        refs,
        via_coroutines,
        from_coroutines,
    })
}

/// Whether the chain `cell` waits on is referenced from outside (its trigger, most often): the
/// first test, made without cloning anything, on the path every fire of a waiting chain takes.
#[inline(always)]
fn waits_on_something_held(outer: &super::cell::State) -> bool {
    let Slot::Waiting(inner) = &outer.result else {
        return false;
    };
    let Ok(ist) = inner.st.try_borrow() else {
        return true;
    };
    // `outer` holds `inner` through its `Waiting`, and through its hand-over if it also fires it;
    // `inner`'s other edges are paired with references to it; its hand-over back to `outer` is
    // the pair of `outer`'s `Waiting`, already counted.
    let back_to_outer = ist.steps.hand_over_target().is_some_and(|t| {
        matches!(
            &t.st
                .try_borrow()
                .map(|t| matches!(t.result, Slot::Waiting(ref w) if Rc::ptr_eq(w, inner))),
            Ok(true)
        )
    });
    let from_outer = 1 + usize::from(
        outer
            .steps
            .hand_over_target()
            .is_some_and(|t| Rc::ptr_eq(t, inner)),
    );
    let own = ref_budget(&ist) - usize::from(back_to_outer);
    Rc::strong_count(inner) > from_outer + own
}

/// The set of chains reachable from `start`, if nothing outside it reaches any of them: every
/// chain's reference count is exactly what the set's own references to it (and the caller's)
/// account for. At most [`LIMIT`] chains are looked at.
fn unreachable_set(start: &Rc<Cell>, held: usize) -> Option<Vec<Rc<Cell>>> {
    if waits_on_something_held(&*start.st.try_borrow().ok()?) {
        return None;
    }
    let mut set: Vec<Rc<Cell>> = vec![start.clone()];
    // References to each chain of `set` (same index) from inside the set.
    let mut inbound: Vec<usize> = vec![0];
    let mut next = 0;
    while next < set.len() {
        let cell = set[next].clone();
        let here = next;
        next += 1;
        let edges = edges_of(&cell)?;
        drop(cell);
        inbound[here] += edges.from_coroutines;
        let counted = edges.refs.into_iter().map(|c| (c, true));
        let reached = edges.via_coroutines.into_iter().map(|c| (c, false));
        for (other, is_ref) in counted.chain(reached) {
            let i = match set.iter().position(|c| Rc::ptr_eq(c, &other)) {
                Some(i) => i,
                None => {
                    if set.len() == LIMIT {
                        return None;
                    }
                    set.push(other);
                    inbound.push(0);
                    set.len() - 1
                }
            };
            if is_ref {
                inbound[i] += 1;
            }
        }
    }
    let unreachable = set.iter().zip(&inbound).enumerate().all(|(i, (c, refs))| {
        let caller = if i == 0 { held } else { 0 };
        Rc::strong_count(c) == refs + 1 + caller
    });
    unreachable.then_some(set)
}
