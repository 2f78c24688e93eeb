//! The chain loop: runs one chain's steps, and moves on to the chains it hands its result to.
//!
//! This is Twisted's `_runCallbacks` with its explicit chain stack. When a chain finishes a
//! Deferred that another chain waits on, or one linked by `chain_deferred`, or one a coroutine is
//! suspended on, the loop *moves on to* that other chain instead of calling into it. Because a
//! `Deferred` handle is unique and consumed by the step that returns it (or by `chain_deferred`,
//! or by `IntoFuture`), what receives a chain's result is its `Tail`, taken once its steps have
//! run, so moving on is a tail call and needs no stack.
//!
//! The loop is started only by the work loop (`work_loop.rs`): the functions here that may run a
//! chain (`add_step`, `fire`, `unpause`) hand it a [`Work::Run`](super::work_loop::Work::Run).

use std::panic::Location;

use super::cell::{CellRc, Hand, Resume, Slot, State, Step, Tail};
use super::raw::erased_step::ErasedStep;
use super::reclaim;
use super::step::Current;
use super::user_code;
use super::value::Value;
use super::work_loop;
use crate::errors::CircularChainError;
use crate::failure::Failure;

/// Appends a step and runs the chain if it has fired (Twisted: the step runs inside `add*`).
/// Inlined into each `add_*`: adding a step to a pending chain is the hot path of building one.
/// The step is made by `make`, in its place in the queue (see `Steps::push_back`).
#[inline(always)]
pub(crate) fn add_step(
    cell: &CellRc,
    make: impl FnOnce() -> ErasedStep,
    at: &'static Location<'static>,
) {
    let runnable = {
        let mut st = cell.borrow_mut();
        st.steps.push_back(make, at);
        st.called && !st.running && st.pauses == 0
    };
    if runnable {
        work_loop::run(cell.clone());
    }
}

/// Makes `target` the chain `cell` hands its result to when its steps have run, and runs `cell`
/// if it has fired. (`chain_deferred`; a step's returned Deferred gets its hand-over in
/// `wait_on`.)
pub(crate) fn add_hand_over(cell: &CellRc, target: CellRc, hand: Hand) {
    let (runnable, old) = {
        let mut st = cell.borrow_mut();
        let old = st.set_hand_over(target, hand);
        (st.called && !st.running && st.pauses == 0, old)
    };
    user_code::drop_value(old);
    if runnable {
        work_loop::run(cell.clone());
    }
}

/// Fires an unfired chain: [`set_result`], then runs it. Returns false, dropping `result`, if it
/// had already fired (it can only have been fired by `cancel`).
pub(crate) fn fire(cell: &CellRc, result: Slot) -> bool {
    if !set_result(cell, result) {
        return false;
    }
    work_loop::run(cell.clone());
    true
}

/// Gives a fired result to a chain without running it (the caller's loop runs it next). Inlined
/// into `fire`, the hot path of every trigger.
#[inline(always)]
pub(crate) fn set_result(cell: &CellRc, result: Slot) -> bool {
    let before = {
        let mut st = cell.borrow_mut();
        if st.called {
            drop(st);
            user_code::drop_value(result);
            return false;
        }
        st.called = true;
        // Empty; or the canceller, which Twisted clears when the Deferred fires (breaking the
        // d <-> canceller cycle); or (a `chain_deferred` target) the source it held while it
        // waited: dropped below, with no borrow held.
        std::mem::replace(&mut st.result, result)
    };
    // The canceller's captured state is the user's: its `Drop` may panic, and must not stop the
    // chain from running.
    drop_source(before);
    true
}

/// What a result slot held before the chain fired: nothing, its canceller, or the source a
/// `chain_deferred` target held while it waited.
#[inline]
fn drop_source(source: Slot) {
    if matches!(source, Slot::Empty) {
        std::mem::forget(source);
    } else {
        user_code::drop_value(source);
    }
}

/// Takes the final result if it is ready.
pub(crate) fn take_ready(cell: &CellRc) -> Option<Result<Value, Failure>> {
    take_ready_in(&mut cell.borrow_mut())
}

/// [`take_ready`] on a state already borrowed.
#[inline]
pub(crate) fn take_ready_in(st: &mut State) -> Option<Result<Value, Failure>> {
    if !st.is_ready() {
        return None;
    }
    match std::mem::replace(&mut st.result, Slot::Empty) {
        Slot::Value(h) => Some(Ok(h)),
        Slot::Failure(f) => Some(Err(f)),
        _ => unreachable!("is_ready checked the slot"),
    }
}

/// The chain loop, for one continuation (see the module docs).
///
/// While it runs a chain's steps it keeps the current result in a local, and holds the chain's
/// state borrowed except while a step (user code) runs: one borrow per step.
pub(crate) fn run_chain(mut cur: CellRc) {
    'chains: loop {
        let mut st = cur.borrow_mut();
        if st.running {
            return;
        }
        if st.pauses > 0 {
            drop(st);
            // A result handed over to a paused chain that only a paused coroutine's await (or
            // nothing) still reaches: see `reclaim.rs`.
            reclaim::release(cur);
            return;
        }
        let mut current: Current = match std::mem::replace(&mut st.result, Slot::Empty) {
            Slot::Value(h) => Some(Ok(h)),
            Slot::Failure(f) => Some(Err(f)),
            other => {
                // Not fired, or waiting on another chain.
                put(&mut st.result, other);
                return;
            }
        };
        loop {
            let Some(step) = st.steps.pop_front() else {
                // The chain has finished for now: hand its result on, or keep it and tell whoever
                // awaits it.
                let tail = st.tail.take();
                let current = match tail {
                    Some(Tail::Continue(_) | Tail::ChainTo(_)) => current,
                    _ => {
                        put(&mut st.result, into_slot(current));
                        None
                    }
                };
                drop(st);
                match tail {
                    None => return,
                    Some(Tail::Waker(w)) => {
                        // A foreign executor's waker: user code.
                        if let Err(payload) = user_code::call(move || w.wake()) {
                            user_code::drop_payload(payload);
                        }
                        return;
                    }
                    Some(Tail::Driver(driver)) => match driver.resume() {
                        Some(next) => {
                            cur = next;
                            continue 'chains;
                        }
                        None => return,
                    },
                    Some(Tail::Continue(next)) => {
                        let old = {
                            let mut nst = next.borrow_mut();
                            std::mem::replace(&mut nst.result, into_slot(current))
                        };
                        // `old` is `Waiting(cur)` (or, after a cycle was broken, what broke it):
                        // dropped outside the borrow.
                        user_code::drop_value(old);
                        cur = next;
                        continue 'chains;
                    }
                    Some(Tail::ChainTo(next)) => {
                        if !set_result(&next, into_slot(current)) {
                            // The target was cancelled: like a late `callback`, the result is
                            // dropped. The hand-over was a reference to the target, which may
                            // have been the last one from outside a set of chains that only hold
                            // each other.
                            reclaim::release(next);
                            return;
                        }
                        cur = next;
                        continue 'chains;
                    }
                }
            };
            match step {
                Step::Run(step, added_at) => {
                    st.running = true;
                    drop(st);
                    if let Some(Err(f)) = &current {
                        f.seen();
                    }
                    // The step replaces `current` with its result, in place, catching its own
                    // panics (it knows where it was added) through `user_code`.
                    if let Some(inner) = step.run(&mut current, added_at) {
                        current = match wait_on(&cur, inner, added_at) {
                            Slot::Value(h) => Some(Ok(h)),
                            Slot::Failure(f) => Some(Err(f)),
                            waiting => {
                                let mut st = cur.borrow_mut();
                                st.running = false;
                                put(&mut st.result, waiting);
                                drop(st);
                                // Whether nothing reaches the pair any more is decided when a
                                // reference to it goes: this loop's own is one (the hand-over
                                // that led here, a coroutine that just finished into it), and
                                // the reference that started this continuation (a trigger, a
                                // handle) is released after it. See `reclaim.rs`.
                                reclaim::release(cur);
                                return;
                            }
                        };
                    }
                    st = cur.borrow_mut();
                    st.running = false;
                    if st.pauses > 0 {
                        // Paused by the step itself (or by code it called): stop here. A chain
                        // that nothing can unpause any more (a control is weak) is looked at as
                        // this loop lets go of it, as in the paused branch above.
                        put(&mut st.result, into_slot(current));
                        drop(st);
                        reclaim::release(cur);
                        return;
                    }
                }
            }
        }
    }
}

/// Puts `new` in a result slot that is empty (everywhere this is called): the old slot is only
/// dropped, out of line, if it was not, instead of calling `Slot`'s drop glue every time.
#[inline(always)]
pub(crate) fn put(slot: &mut Slot, new: Slot) {
    let old = std::mem::replace(slot, new);
    if matches!(old, Slot::Empty) {
        // Nothing to drop; `forget` says so to the compiler, which would call the glue anyway.
        std::mem::forget(old);
    } else {
        drop_slot(old);
    }
}

#[cold]
#[inline(never)]
fn drop_slot(old: Slot) {
    user_code::drop_value(old);
}

fn into_slot(result: Current) -> Slot {
    match result {
        Some(Ok(h)) => Slot::Value(h),
        Some(Err(f)) => Slot::Failure(f),
        None => Slot::Empty,
    }
}

/// A step of `outer` (added at `added_at`) returned `inner`: take its result now if it has one,
/// else wait for it.
pub(crate) fn wait_on(outer: &CellRc, inner: CellRc, added_at: &'static Location<'static>) -> Slot {
    if CellRc::ptr_eq(outer, &inner) {
        // The failure enters the chain at the step that returned its own Deferred (the user's
        // `add_callback`), not here: `Location::caller()` in this non-`#[track_caller]` function
        // would point into the engine, which tells the user nothing (conformance test C34).
        return Slot::Failure(Failure::new_at(CircularChainError, added_at));
    }
    let mut ist = inner.borrow_mut();
    if ist.is_ready() {
        // Twisted: the outer Deferred takes the inner one's result, which becomes None.
        return std::mem::replace(&mut ist.result, Slot::Empty);
    }
    let old = ist.set_hand_over(outer.clone(), Hand::Continue);
    drop(ist);
    user_code::drop_value(old);
    Slot::Waiting(inner)
}

/// Whether anything could still see `cell`'s result, where `held_by_caller` of its strong
/// references are the caller's own (a trigger's, say): a handle, a future, a step, an awaiter,
/// or a chain that waits on it (or that it fires) and is itself listened to.
///
/// A chain that waits on this one holds it (its `Waiting` result) and is held by it (the
/// hand-over); that pair of references says nothing about a listener, so the question moves
/// on to the waiting chain, in a loop. A `chain_deferred` target likewise. A cycle of such
/// chains that comes back to `cell` has no listener outside it.
pub(crate) fn has_listener(cell: &CellRc, held_by_caller: usize) -> bool {
    let mut cur = cell.clone();
    // The caller's references, and the local `cur`.
    let mut known = held_by_caller + 1;
    loop {
        let next = {
            let st = cur.borrow();
            if st.has_awaiter() {
                return true;
            }
            let hand = only_hand_over(&st);
            // A chain waiting on `cur` (or fired by it: a `chain_deferred` target) holds it
            // through its `Waiting` result.
            let waited_on = usize::from(hand.is_some());
            if CellRc::strong_count(&cur) > known + waited_on {
                return true;
            }
            match hand {
                Some((next, _)) => next,
                // Steps are user code that listens.
                None => return !st.steps.is_empty(),
            }
        };
        if CellRc::ptr_eq(&next, cell) {
            return false;
        }
        // `next` is held by `cur`'s hand-over, and by the local.
        cur = next;
        known = 2;
    }
}

/// Called when `cell`'s trigger is dropped unfired and nothing listens: its steps and its
/// hand-over can never run, so they are dropped now, which frees a chain waiting on it that nobody holds (the
/// two hold each other: a cycle that `Rc` alone would leak). Returns the chain the hand-over
/// went to, for the caller to release once it has let go of `cell`.
pub(crate) fn forget_unreachable(cell: &CellRc) -> Option<CellRc> {
    let (steps, target) = {
        let mut st = cell.borrow_mut();
        (st.steps.take_all(), st.take_hand_over())
    };
    // A `chain_deferred` target this chain will now never fire holds it (its `Waiting` on its
    // source): it lets go, and may itself be garbage now.
    let source = target.as_ref().and_then(|t| {
        let mut tst = t.borrow_mut();
        // Only an unfired target (`chain_deferred`): a fired one waiting on this chain keeps
        // showing what it waits on, and the walk below sees the broken pair.
        match tst.result.waits_on() {
            Some(s) if !tst.called && CellRc::ptr_eq(s, cell) => tst.result.take_waits_on(),
            _ => None,
        }
    });
    user_code::drop_value(steps);
    user_code::drop_value(source);
    // The chain that lost its hand-over, to be looked at once the trigger has let go too.
    target
}

/// If no step is left but a hand-over, the chain it hands to, and whether that one waits on
/// this one (a `Continue`) rather than being fired by it (a `ChainTo`).
fn only_hand_over(st: &State) -> Option<(CellRc, bool)> {
    if !st.steps.is_empty() {
        return None;
    }
    st.hand_over()
        .map(|(next, hand)| (next.clone(), hand == Hand::Continue))
}

pub(crate) fn pause(cell: &CellRc) {
    let mut st = cell.borrow_mut();
    st.pauses = st.pauses.saturating_add(1);
}

/// Returns whether there was a pause to undo.
pub(crate) fn unpause(cell: &CellRc) -> bool {
    let resume = {
        let mut st = cell.borrow_mut();
        if st.pauses == 0 {
            return false;
        }
        st.pauses -= 1;
        st.pauses == 0 && st.called && !st.running
    };
    if resume {
        work_loop::run(cell.clone());
    }
    true
}
