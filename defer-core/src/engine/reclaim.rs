//! Reclaiming chains that only hold each other.
//!
//! Chains reference each other in ways that form cycles: a chain waiting on another holds it (its
//! `Waiting` result) and is held by it (the hand-over in its tail); a `chain_deferred` target holds its
//! source until the source fires it, and the source holds the target (its hand-over). `Rc` alone
//! never frees such a cycle. It is normally broken when the chains fire; but when no handle,
//! trigger, future, pending continuation or step of another chain reaches any of them any more,
//! nothing can fire, unpause or cancel them (a `DeferredControl` is weak by design): they are
//! garbage, which Twisted's collector frees, reporting a failure they hold. So do we.
//!
//! The test is local and bounded: from a chain whose last outside reference is going, follow the
//! references the engine can see (results and hand-overs) to at most [`LIMIT`] chains, and
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

use super::cell::{Canceller, CellRc, Resume, Slot};
use super::join::Join;
use super::user_code;

/// The most chains one test looks at: the sets this frees are small (a pair, a short run of
/// chains each waiting on the next); a larger set is left alone rather than walked at length.
const LIMIT: usize = 32;

/// Drops the caller's reference to `cell` (a handle, a trigger that fired it, a future that
/// awaited it), reclaiming what it leaves unreachable if that was the last reference from
/// outside. The tests that settle the common cases come first, under one borrow and without
/// cloning anything: this runs on every fire of a waiting chain.
#[inline(always)]
pub(crate) fn release(cell: CellRc) {
    // The last reference (the common case: the chain has run and its result was taken): no
    // other chain holds it, so it is in no cycle, and it is simply dropped.
    if CellRc::strong_count(&cell) > 1 {
        release_shared(cell);
    }
}

#[inline(never)]
fn release_shared(cell: CellRc) {
    if CellRc::strong_count(&cell) > 3 {
        return;
    }
    let worth_a_look = {
        let Ok(st) = cell.try_borrow() else {
            return;
        };
        if st.awaiting_driver().is_some() || st.result.is_coroutines() {
            // A coroutine awaits it, or it is a coroutine's own: the walk looks through the
            // coroutine.
            true
        } else if st.result.waits_on().is_some() {
            // The chain waited on first: on the hot path (a long run of chains each waiting on
            // the next, fired one by one) it is held by its trigger, which settles it at once.
            !waits_on_something_held(&st) && CellRc::strong_count(&cell) <= 1 + ref_budget(&st)
        } else {
            // Held only by the caller and its hand-over's target.
            st.has_hand_over() && CellRc::strong_count(&cell) <= 1 + ref_budget(&st)
        }
    };
    if worth_a_look {
        reclaim_if_unreachable(&cell, 1);
    }
}

/// `start` is referenced `held` times by the caller, who will not use it again. Frees the set of
/// chains reachable from it if nothing outside that set (and the caller) reaches any of them.
#[inline(never)]
pub(crate) fn reclaim_if_unreachable(start: &CellRc, held: usize) {
    // Other chains can reference this one only through the edges it has itself: the chain it
    // waits on (or its `chain_deferred` source) holds a hand-over back to it, and the chain it
    // hands over to holds it in its `Waiting` result; a coroutine awaiting it holds it in its
    // body, and a coroutine holds its own Deferred. More references than that, and something
    // outside holds it: no walk (and no allocation) on the hot paths, where a handle is held.
    let expected = match start.try_borrow() {
        Ok(st) => held + ref_budget(&st),
        Err(_) => return,
    };
    if CellRc::strong_count(start) > expected {
        return;
    }
    if RECLAIMING.with(|r| r.get()) {
        // Freeing a set runs user code (a coroutine body's drop), which may let go of more
        // chains: they are looked at by the outermost reclaim, in a loop, not by a nested one.
        let mut cell = Some(start.clone());
        let _ = PENDING.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                p.extend(cell.take());
            }
        });
        // No queue (thread teardown): the chain is simply let go of.
        drop(cell);
        return;
    }
    RECLAIMING.with(|r| r.set(true));
    reclaim_rounds(start, held);
    // The chains let go of meanwhile, each as its own start; dropping the queue's clone may let
    // go of more, which join the queue (the flag is still set): a loop, never a recursion.
    while let Some(cell) = PENDING
        .try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop()))
        .ok()
        .flatten()
    {
        // The queue's clone is the only reference this code holds.
        reclaim_rounds(&cell, 1);
        drop(cell);
    }
    RECLAIMING.with(|r| r.set(false));
}

thread_local! {
    /// Whether a reclaim is running on this thread. `const`, no destructor: readable at any time.
    static RECLAIMING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Chains let go of while it ran, to look at once it is done.
    static PENDING: std::cell::RefCell<Vec<CellRc>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn reclaim_rounds(start: &CellRc, held: usize) {
    let Some(mut garbage) = unreachable_set(start, held) else {
        return;
    };
    // At most one more round per chain: each round frees at least one, or breaks a wait cycle.
    for _ in 0..LIMIT {
        if let Some(closing) = wait_cycle_in(&garbage.set) {
            // Fired chains each waiting on the next, round to the first: a wait cycle, which
            // could never finish. Like a step returning its own Deferred, it fails with
            // `CircularChainError`, which flows round the cycle: every step on the way runs, and
            // the failure is reported once when the chains go.
            drop(garbage);
            super::cancel::break_cycle(closing);
            // If the failure cannot flow (a chain of the cycle is paused, and nothing can
            // unpause it any more), the chains are still garbage: the next round frees them,
            // reporting it.
            match unreachable_set(start, held) {
                Some(more) => {
                    garbage = more;
                    continue;
                }
                None => return,
            }
        }
        // A combinator whose inputs are all garbage, but whose own Deferred leads nowhere back
        // into them, only dies with them: its trigger is dropped, and its Deferred fails with
        // `TriggerDropped` if a step listens, as when the inputs go one by one. So the chains
        // reached only from such Deferreds are left out of this round; if they are garbage too
        // (a cycle through the combinator), the next round frees them.
        let fed = &garbage.from_joins;
        let rest = if fed.iter().all(|&f| f) || !fed.iter().any(|&f| f) {
            None
        } else {
            let keep = fed.iter().position(|&f| f).expect("checked: one is");
            Some(garbage.set[keep].clone())
        };
        let free: Vec<CellRc> = match rest {
            None => garbage.set,
            Some(_) => garbage
                .set
                .into_iter()
                .zip(&garbage.from_joins)
                .filter(|(_, f)| !**f)
                .map(|(c, _)| c)
                .collect(),
        };
        free_all(free);
        let Some(next) = rest else { return };
        let held_next = 1 + if CellRc::ptr_eq(&next, start) {
            held
        } else {
            0
        };
        match unreachable_set(&next, held_next) {
            Some(more) => garbage = more,
            None => return,
        }
    }
}

/// Lets go of every edge inside the set, with no borrow held while the edges are dropped: results
/// waiting on other chains, hand-overs, steps (a combinator's state among them), coroutines'
/// awaits, and the bodies of the coroutines that can never resume.
fn free_all(set: Vec<CellRc>) {
    // Every edge is taken out before any is dropped: dropping a step drops a combinator's state
    // and the trigger it holds, which must find its chain (if in the set) with nothing to fire.
    let mut drivers = Vec::new();
    let mut edges = Vec::with_capacity(set.len());
    for cell in &set {
        let mut st = cell.borrow_mut();
        if let Some(Canceller::Coroutine(d)) = st.result.canceller()
            && let Some(d) = d.upgrade()
        {
            drivers.push(d);
        }
        let result = st.result.take_waits_on();
        edges.push((result, st.steps.take_all(), st.tail.take()));
    }
    for (result, steps, tail) in edges {
        user_code::drop_value(result);
        user_code::drop_value(steps);
        user_code::drop_value(tail);
    }
    drop(set);
    for driver in drivers {
        driver.free_body();
    }
}

/// A fired chain of `set` that waits, through fired chains each waiting on the next, on itself.
fn wait_cycle_in(set: &[CellRc]) -> Option<CellRc> {
    let waits_on = |c: &CellRc| -> Option<CellRc> {
        let st = c.try_borrow().ok()?;
        match &st.result {
            Slot::Waiting(next) if st.called => Some(next.clone()),
            _ => None,
        }
    };
    for cell in set {
        let mut cur = waits_on(cell);
        for _ in 0..set.len() {
            match cur {
                Some(c) if CellRc::ptr_eq(&c, cell) => return Some(c),
                Some(c) => cur = waits_on(&c),
                None => break,
            }
        }
    }
    None
}

/// How many references to a chain other chains (and coroutines) may hold, given its own edges:
/// the pairs described in [`unreachable_set`].
pub(crate) fn ref_budget(st: &super::cell::State) -> usize {
    usize::from(st.result.waits_on().is_some())
        + usize::from(st.has_hand_over())
        + usize::from(st.awaiting_driver().is_some())
        + usize::from(st.result.is_coroutines() && !st.called)
        // Until it lets go of the trigger: a cancel fires the chain with the trigger still there.
        + usize::from(st.held_by_join)
}

/// What the walk learns of a chain: the chains its references go to (the one it waits on or its
/// source, its hand-over's target), the chains it leads to through coroutines (the coroutine
/// awaiting it; the chains its own coroutine awaits), and how many references to itself come
/// from those coroutines; `None` if something the walk cannot see through may hold or resume it
/// (a foreign waker, a coroutine that may be resumed otherwise, a running chain).
struct Edges {
    /// References this chain holds to others.
    refs: Vec<CellRc>,
    /// Chains reached through a coroutine (no reference of this chain's own).
    via_coroutines: Vec<CellRc>,
    /// References to this chain held by coroutines: the awaiting one's future, its own driver.
    from_coroutines: usize,
    /// The combinators' states its steps feed (references this chain holds, through them).
    joins: Vec<Rc<dyn Join>>,
}

fn edges_of(cell: &CellRc) -> Option<Edges> {
    let st = cell.try_borrow().ok()?;
    if st.running || st.awaited_by_waker() {
        return None;
    }
    let mut refs = Vec::new();
    if let Some(other) = st.result.waits_on() {
        refs.push(other.clone());
    }
    if let Some((target, _)) = st.hand_over() {
        refs.push(target.clone());
    }
    let joins = if st.steps.is_empty() {
        Vec::new()
    } else {
        st.steps.joins().collect()
    };
    let awaiting_driver = st.awaiting_driver().map(|d| (*d).clone());
    let own_driver = match st.result.canceller() {
        Some(Canceller::Coroutine(d)) if !st.called => Some(d.upgrade()?),
        _ => None,
    };
    drop(st);
    // A canceller's closure may hold other chains: a reference the walk cannot see, which only
    // makes them look referenced from outside (so it errs towards keeping).
    let mut via_coroutines = Vec::new();
    let mut from_coroutines = 0;
    if let Some(d) = awaiting_driver {
        d.stuck_on()?;
        via_coroutines.push(d.own_cell()?);
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
        joins,
    })
}

/// Whether the chain `cell` waits on is referenced from outside (its trigger, most often): the
/// first test, made without cloning anything, on the path every fire of a waiting chain takes.
#[inline(always)]
fn waits_on_something_held(outer: &super::cell::State) -> bool {
    let Some(inner) = outer.result.waits_on() else {
        return false;
    };
    let Ok(ist) = inner.try_borrow() else {
        return true;
    };
    // `outer` holds `inner` through its `Waiting`, and through its hand-over if it also fires it;
    // `inner`'s other edges are paired with references to it; its hand-over back to `outer` is
    // the pair of `outer`'s `Waiting`, already counted.
    let back_to_outer = ist.hand_over().is_some_and(|(t, _)| {
        matches!(
            &t.try_borrow().map(|t| t
                .result
                .waits_on()
                .is_some_and(|w| CellRc::ptr_eq(w, inner))),
            Ok(true)
        )
    });
    let from_outer = 1 + usize::from(
        outer
            .hand_over()
            .is_some_and(|(t, _)| CellRc::ptr_eq(&t, inner)),
    );
    let own = ref_budget(&ist) - usize::from(back_to_outer);
    CellRc::strong_count(inner) > from_outer + own
}

/// A set of chains nothing outside reaches.
struct Garbage {
    set: Vec<CellRc>,
    /// Per chain (same index): reached from the Deferred of a combinator whose state is garbage
    /// too (through its trigger, then on through the set's edges).
    from_joins: Vec<bool>,
}

/// A node of the walk: a chain, or a combinator's state (`join.rs`).
enum Node {
    Chain(CellRc),
    Join(Rc<dyn Join>),
}

impl Node {
    fn is(&self, other: &Node) -> bool {
        match (self, other) {
            (Node::Chain(a), Node::Chain(b)) => CellRc::ptr_eq(a, b),
            (Node::Join(a), Node::Join(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }

    fn strong_count(&self) -> usize {
        match self {
            Node::Chain(c) => CellRc::strong_count(c),
            Node::Join(j) => Rc::strong_count(j),
        }
    }
}

/// The walk's record of one node.
struct Seen {
    node: Node,
    /// References to it from explored nodes (and the caller's, for the start).
    inbound: usize,
    /// The nodes it keeps alive (indices); `None` until explored.
    next: Option<Vec<usize>>,
    /// Reached through a combinator's trigger.
    held_by_join: bool,
}

/// The chains reachable from `start` that nothing outside reaches: trial deletion, as a
/// cycle collector does. The walk explores at most [`LIMIT`] nodes (chains, and the combinators'
/// states between them, `join.rs`), counting the references each receives from the others. A
/// node with more references than that is held from outside: it, and everything it keeps alive,
/// stays. The rest is garbage. `None` if `start` itself stays, or if a node could not be seen
/// through (a running chain, a coroutine a foreign waker may resume, a combinator in use).
fn unreachable_set(start: &CellRc, held: usize) -> Option<Garbage> {
    if waits_on_something_held(&*start.try_borrow().ok()?) {
        return None;
    }
    let mut seen: Vec<Seen> = vec![Seen {
        node: Node::Chain(start.clone()),
        inbound: held,
        next: None,
        held_by_join: false,
    }];
    // Reaching `node` from an explored one: its index, added if new and there is room.
    fn reach(seen: &mut Vec<Seen>, node: Node, counted: bool, by_join: bool) -> Option<usize> {
        let i = match seen.iter().position(|s| s.node.is(&node)) {
            Some(i) => i,
            None if seen.len() == LIMIT => return None,
            None => {
                seen.push(Seen {
                    node,
                    inbound: 0,
                    next: None,
                    held_by_join: false,
                });
                seen.len() - 1
            }
        };
        seen[i].inbound += usize::from(counted);
        seen[i].held_by_join |= by_join;
        Some(i)
    }
    let mut i = 0;
    while i < seen.len() {
        let here = i;
        i += 1;
        let mut next = Vec::new();
        match &seen[here].node {
            Node::Join(j) => {
                // In use: it may be about to fire anything; no verdict.
                let holds = j.holds()?;
                if let Some(c) = holds {
                    // Out of room: the rest of this node's references go uncounted, which only
                    // makes their targets look held from outside.
                    let Some(k) = reach(&mut seen, Node::Chain(c), true, true) else {
                        break;
                    };
                    next.push(k);
                }
            }
            Node::Chain(c) => {
                let c = c.clone();
                // Running, or resumable from elsewhere: what it keeps alive is unknown; no verdict.
                let edges = edges_of(&c)?;
                drop(c);
                seen[here].inbound += edges.from_coroutines;
                let counted = edges.refs.into_iter().map(|c| (Node::Chain(c), true));
                let reached = edges
                    .via_coroutines
                    .into_iter()
                    .map(|c| (Node::Chain(c), false));
                let joins = edges.joins.into_iter().map(|j| (Node::Join(j), true));
                for (node, counted) in counted.chain(reached).chain(joins) {
                    let Some(k) = reach(&mut seen, node, counted, false) else {
                        break;
                    };
                    next.push(k);
                }
            }
        }
        seen[here].next = Some(next);
    }
    // Held from outside: more references than the explored nodes (and the walk's own clone)
    // account for. Everything such a node keeps alive stays.
    let mut alive: Vec<bool> = vec![false; seen.len()];
    let mut stack: Vec<usize> = (0..seen.len())
        .filter(|&k| seen[k].next.is_none() || seen[k].node.strong_count() > seen[k].inbound + 1)
        .collect();
    while let Some(k) = stack.pop() {
        if !std::mem::replace(&mut alive[k], true)
            && let Some(next) = &seen[k].next
        {
            stack.extend(next.iter().copied());
        }
    }
    if alive[0] {
        return None;
    }
    // What the garbage combinators' Deferreds lead to, through the set's edges.
    let mut from_joins = vec![false; seen.len()];
    let mut stack: Vec<usize> = (0..seen.len())
        .filter(|&k| !alive[k] && seen[k].held_by_join)
        .collect();
    while let Some(k) = stack.pop() {
        if !std::mem::replace(&mut from_joins[k], true)
            && let Some(next) = &seen[k].next
        {
            stack.extend(next.iter().copied().filter(|&n| !alive[n]));
        }
    }
    let mut set = Vec::new();
    let mut fed = Vec::new();
    for ((s, alive), from_join) in seen.into_iter().zip(alive).zip(from_joins) {
        if let (Node::Chain(c), false) = (s.node, alive) {
            set.push(c);
            fed.push(from_join);
        }
    }
    Some(Garbage {
        set,
        from_joins: fed,
    })
}
