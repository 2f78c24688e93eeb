//! The engine: one chain's state and the loop that runs it.
//!
//! Every `Deferred<T>`, whatever its `T`, points at a [`Cell`]. Running a chain is a loop, never
//! recursion (Twisted's `_runCallbacks` with its explicit chain stack): when a chain finishes a
//! Deferred that another chain waits on, or one linked by `chain_deferred`, or one a coroutine is
//! suspended on, the loop *moves on to* that other chain instead of calling into it. Because a
//! `Deferred` handle is unique and consumed by the step that returns it, the hand-over marker is
//! always the last step of its chain, so moving on is a tail call and the loop needs no stack.
//!
//! No user code (a step, a canceller, the drop of a captured value) ever runs while a cell's
//! `RefCell` is borrowed: everything is taken out first, so user code may freely fire, pause,
//! cancel or add steps to any chain, including the running one.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::rc::Rc;
use std::task::Waker;

use crate::errors::{CancelledError, CircularChainError};
use crate::failure::Failure;
use crate::step::{Current, RunStep};
use crate::value::Value;

/// One chain's shared state.
pub(crate) struct Cell {
    /// Dropped by hand in `Drop for Cell`: the drop glue of an empty state (every field's drop
    /// checked in turn) cost as much as the rest of dropping a chain.
    pub(crate) st: ManuallyDrop<RefCell<State>>,
}

pub(crate) struct State {
    pub(crate) result: Slot,
    pub(crate) steps: Steps,
    /// `pause()` calls not yet matched by `unpause()`. Waiting on another Deferred is tracked by
    /// `Slot::Waiting`, not here, so an unmatched `unpause()` can never wedge the chain.
    pub(crate) pauses: u32,
    pub(crate) running: bool,
    pub(crate) called: bool,
    pub(crate) cancelled: bool,
    pub(crate) canceller: Canceller,
    pub(crate) awaiter: Option<Awaiter>,
}

/// The chain's current result.
pub(crate) enum Slot {
    /// Not fired yet, or the result was handed on (Twisted's `None` after chaining).
    Empty,
    Value(Value),
    Failure(Failure),
    /// A step returned this pending Deferred; the chain resumes with its result.
    Waiting(Rc<Cell>),
}

/// A chain's queue of steps. The first two live inline: most chains have one or two steps (a
/// Deferred returned by a step has its own step and the hand-over back), and a `VecDeque`
/// allocates a buffer at its first push.
#[derive(Default)]
pub(crate) struct Steps {
    /// Invariant: the queue is `first`, then `second`, then `rest`, front to back, where an empty
    /// inline slot is simply skipped. Popping takes the first occupied place and never shifts
    /// the others; pushing goes to `rest` as soon as anything behind an inline slot is occupied.
    first: Option<Step>,
    second: Option<Step>,
    /// Boxed, so that a chain with at most two steps (most chains) carries one word for it and
    /// has nothing to free (clippy's `box_collection` assumes the box buys nothing).
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<Step>>>,
}

impl Steps {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
            && self.second.is_none()
            && self.rest.as_ref().is_none_or(|r| r.is_empty())
    }

    #[inline]
    pub(crate) fn push_back(&mut self, step: Step) {
        if self.second.is_some() || self.rest.as_ref().is_some_and(|r| !r.is_empty()) {
            self.rest.get_or_insert_default().push_back(step);
        } else if self.first.is_none() {
            self.first = Some(step);
        } else {
            self.second = Some(step);
        }
    }

    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<Step> {
        // Checked before taking: once the inline slots are spent, a long chain pops from `rest`
        // without writing them again.
        if self.first.is_some() {
            return self.first.take();
        }
        if self.second.is_some() {
            return self.second.take();
        }
        self.rest.as_mut()?.pop_front()
    }
}

pub(crate) enum Step {
    /// A step, and where it was added (for a panic's failure, and `CircularChainError`).
    Run(Box<dyn RunStep>, &'static Location<'static>),
    /// Hand the result to another chain. One variant for both kinds, so that a `Step` stays
    /// three words (the compiler fits the tag in a niche; the assertion below checks the size):
    /// the queues of long chains are arrays of these.
    Hand(Rc<Cell>, Hand),
}

/// Where a [`Step::Hand`] hands the result.
#[derive(Clone, Copy)]
pub(crate) enum Hand {
    /// To a chain that waits on this one (Twisted's `_CONTINUE`).
    Continue,
    /// To the (unfired) chain of `chain_deferred`, firing it.
    ChainTo,
}

// Three words, like the queue entry of the `rc_minimal` cost model: one more word per entry
// made W2's 2000-step queue 64 KiB, the size at which glibc's `free` consolidates its fast bins,
// which made every allocation after it slow.
const _: () = assert!(size_of::<Step>() == 3 * size_of::<usize>());

pub(crate) enum Canceller {
    None,
    Once(Box<dyn FnOnce(Rc<Cell>)>),
    /// A coroutine's Deferred: cancelling it cancels what the coroutine waits on, every time.
    Coroutine(std::rc::Weak<dyn Resume>),
}

/// Who is told when a chain has finished running and holds its final result.
pub(crate) enum Awaiter {
    /// An executor's task (`Deferred` awaited in tokio, futures, ...).
    Waker(Waker),
    /// One of our own coroutine drivers: resumed directly, as a tail call of the loop.
    Driver(Rc<dyn Resume>),
}

/// A coroutine driver, as the chain loop sees it.
pub(crate) trait Resume {
    /// Polls the coroutine. When it finishes, its own Deferred has been given its result (but not
    /// run): the caller runs it next.
    fn resume(self: Rc<Self>) -> Option<Rc<Cell>>;
    /// Cancels what the coroutine waits on; returns the chain to cancel.
    fn cancel_current(&self) -> Option<Rc<Cell>>;
}

impl Default for Cell {
    fn default() -> Self {
        Cell {
            st: ManuallyDrop::new(RefCell::new(State::empty())),
        }
    }
}

impl Cell {
    pub(crate) fn new(canceller: Canceller) -> Rc<Cell> {
        // `Rc::default` builds the state in place in the new allocation; `Rc::new` builds it on
        // the stack and copies it in (a `memcpy` as costly as the rest of the constructor).
        let mut cell = Rc::<Cell>::default();
        if !matches!(canceller, Canceller::None) {
            let only = Rc::get_mut(&mut cell).expect("a new Rc is unique");
            only.st.get_mut().canceller = canceller;
        }
        cell
    }

    pub(crate) fn fired(result: Slot) -> Rc<Cell> {
        let cell = Cell::new(Canceller::None);
        {
            let mut st = cell.st.borrow_mut();
            st.called = true;
            put(&mut st.result, result);
        }
        cell
    }
}

impl State {
    /// Fired, and its result can be taken right now.
    pub(crate) fn is_ready(&self) -> bool {
        self.called
            && self.pauses == 0
            && !self.running
            && self.steps.is_empty()
            && matches!(self.result, Slot::Value(_) | Slot::Failure(_))
    }
}

/// Appends a step and runs the chain if it has fired (Twisted: the step runs inside `add*`).
/// Inlined into each `add_*`: adding a step to a pending chain is the hot path of building one.
#[inline(always)]
pub(crate) fn add_step(cell: &Rc<Cell>, step: Step) {
    let runnable = {
        let mut st = cell.st.borrow_mut();
        st.steps.push_back(step);
        st.called && !st.running && st.pauses == 0
    };
    if runnable {
        run(cell.clone());
    }
}

/// Fires an unfired chain. Returns false, dropping `result`, if it had already fired (it can only
/// have been fired by `cancel`).
pub(crate) fn fire(cell: &Rc<Cell>, result: Slot) -> bool {
    let canceller = {
        let mut st = cell.st.borrow_mut();
        if st.called {
            drop(st);
            drop(result);
            return false;
        }
        st.called = true;
        put(&mut st.result, result);
        // Twisted clears the canceller when the Deferred fires, breaking the d <-> canceller cycle.
        std::mem::replace(&mut st.canceller, Canceller::None)
    };
    drop(canceller);
    run(cell.clone());
    true
}

/// Gives a fired result to a chain without running it (the caller's loop runs it next).
pub(crate) fn set_result(cell: &Rc<Cell>, result: Slot) -> bool {
    let mut st = cell.st.borrow_mut();
    if st.called {
        return false;
    }
    st.called = true;
    put(&mut st.result, result);
    let old = std::mem::replace(&mut st.canceller, Canceller::None);
    drop(st);
    drop(old);
    true
}

/// Takes the final result if it is ready.
pub(crate) fn take_ready(cell: &Rc<Cell>) -> Option<Result<Value, Failure>> {
    take_ready_in(&mut cell.st.borrow_mut())
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

/// The chain loop.
///
/// While it runs a chain's steps it keeps the current result in a local, and holds the chain's
/// `RefCell` borrowed except while a step (user code) runs: one borrow per step.
pub(crate) fn run(mut cur: Rc<Cell>) {
    'chains: loop {
        let mut st = cur.st.borrow_mut();
        if st.running || st.pauses > 0 {
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
                // The chain has finished for now: tell whoever awaits its result.
                put(&mut st.result, into_slot(current));
                let awaiter = st.awaiter.take();
                drop(st);
                match awaiter {
                    None => return,
                    Some(Awaiter::Waker(w)) => {
                        w.wake();
                        return;
                    }
                    Some(Awaiter::Driver(driver)) => match driver.resume() {
                        Some(next) => {
                            cur = next;
                            continue 'chains;
                        }
                        None => return,
                    },
                }
            };
            match step {
                Step::Run(step, added_at) => {
                    st.running = true;
                    drop(st);
                    // The step replaces `current` with its result, in place, catching its own
                    // panics (it knows where it was added).
                    if let Some(inner) = step.run(&mut current, added_at) {
                        current = match wait_on(&cur, inner, added_at) {
                            Slot::Value(h) => Some(Ok(h)),
                            Slot::Failure(f) => Some(Err(f)),
                            waiting => {
                                let mut st = cur.st.borrow_mut();
                                st.running = false;
                                put(&mut st.result, waiting);
                                return;
                            }
                        };
                    }
                    st = cur.st.borrow_mut();
                    st.running = false;
                    if st.pauses > 0 {
                        // Paused by the step itself (or by code it called): stop here.
                        put(&mut st.result, into_slot(current));
                        return;
                    }
                }
                Step::Hand(next, Hand::Continue) => {
                    drop(st);
                    let old = {
                        let mut nst = next.st.borrow_mut();
                        std::mem::replace(&mut nst.result, into_slot(current))
                    };
                    // `old` is `Waiting(cur)`: dropped outside the borrow.
                    drop(old);
                    cur = next;
                    continue 'chains;
                }
                Step::Hand(next, Hand::ChainTo) => {
                    drop(st);
                    if !set_result(&next, into_slot(current)) {
                        // The target was cancelled: like a late `callback`, the result is dropped.
                        return;
                    }
                    cur = next;
                    continue 'chains;
                }
            }
        }
    }
}

/// Puts `new` in a result slot that is empty (everywhere this is called): the old slot is only
/// dropped, out of line, if it was not, instead of calling `Slot`'s drop glue every time.
#[inline(always)]
fn put(slot: &mut Slot, new: Slot) {
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
    drop(old);
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
fn wait_on(outer: &Rc<Cell>, inner: Rc<Cell>, added_at: &'static Location<'static>) -> Slot {
    if Rc::ptr_eq(outer, &inner) {
        // The failure enters the chain at the step that returned its own Deferred (the user's
        // `add_callback`), not here: `Location::caller()` in this non-`#[track_caller]` function
        // would point into chain.rs, which tells the user nothing (conformance test C34).
        return Slot::Failure(Failure::new_at(CircularChainError, added_at));
    }
    let mut ist = inner.st.borrow_mut();
    if ist.is_ready() {
        // Twisted: the outer Deferred takes the inner one's result, which becomes None.
        return std::mem::replace(&mut ist.result, Slot::Empty);
    }
    ist.steps
        .push_back(Step::Hand(outer.clone(), Hand::Continue));
    drop(ist);
    Slot::Waiting(inner)
}

/// Whether anything could still see `cell`'s result, where `internal` of its strong references
/// are the caller's own (a trigger's, say): a handle, a future, a step, or an awaiter.
pub(crate) fn has_listener(cell: &Rc<Cell>, internal: usize) -> bool {
    let st = cell.st.borrow();
    Rc::strong_count(cell) > internal || !st.steps.is_empty() || st.awaiter.is_some()
}

pub(crate) fn pause(cell: &Rc<Cell>) {
    let mut st = cell.st.borrow_mut();
    st.pauses = st.pauses.saturating_add(1);
}

/// Returns whether there was a pause to undo.
pub(crate) fn unpause(cell: &Rc<Cell>) -> bool {
    let resume = {
        let mut st = cell.st.borrow_mut();
        if st.pauses == 0 {
            return false;
        }
        st.pauses -= 1;
        st.pauses == 0 && st.called && !st.running
    };
    if resume {
        run(cell.clone());
    }
    true
}

enum CancelAction {
    Nothing,
    Errback,
    Canceller(Box<dyn FnOnce(Rc<Cell>)>),
    Forward(Rc<Cell>),
    Coroutine(Rc<dyn Resume>),
}

/// Twisted's `cancel()`, made a loop along chains of Deferreds waiting on one another.
pub(crate) fn cancel(cell: &Rc<Cell>) {
    let mut cur = cell.clone();
    loop {
        let action = {
            let mut st = cur.st.borrow_mut();
            if !st.called {
                match std::mem::replace(&mut st.canceller, Canceller::None) {
                    Canceller::None => {
                        st.cancelled = true;
                        CancelAction::Errback
                    }
                    Canceller::Once(k) => {
                        st.cancelled = true;
                        CancelAction::Canceller(k)
                    }
                    Canceller::Coroutine(driver) => {
                        // Cancelling a coroutine may be repeated: put the canceller back.
                        let strong = driver.upgrade();
                        st.canceller = Canceller::Coroutine(driver);
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
            CancelAction::Nothing => return,
            CancelAction::Errback => {
                fire(&cur, Slot::Failure(Failure::new(CancelledError)));
                return;
            }
            CancelAction::Canceller(k) => {
                let target = cur.clone();
                let outcome = catch_unwind(AssertUnwindSafe(move || k(target)));
                // A canceller that fired the Deferred decides its result. One that panicked
                // must not leave it unfired: it fails with the panic.
                let failure = match outcome {
                    Ok(()) => Failure::new(CancelledError),
                    Err(payload) => Failure::from_panic(payload),
                };
                fire(&cur, Slot::Failure(failure));
                return;
            }
            CancelAction::Forward(inner) => cur = inner,
            CancelAction::Coroutine(driver) => match driver.cancel_current() {
                Some(inner) => cur = inner,
                None => return,
            },
        }
    }
}

thread_local! {
    /// Whether a chain's state is being dropped on this thread, and the states whose drop was
    /// put off until that one is done.
    static DROPPING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static DROP_LATER: RefCell<Vec<State>> = const { RefCell::new(Vec::new()) };
}

impl Drop for Cell {
    fn drop(&mut self) {
        let st = self.st.get_mut();
        if let Slot::Failure(_) = st.result
            && let Slot::Failure(f) = std::mem::replace(&mut st.result, Slot::Empty)
        {
            crate::unhandled::report(&f);
        }
        // The common case owns nothing that could own another chain: nothing to queue, and
        // nothing to drop but the step queue's spare buffer, if it has one (the state itself is
        // `ManuallyDrop`: what it holds is dropped here or not at all).
        if st.steps.is_empty()
            && match &st.result {
                Slot::Empty => true,
                Slot::Value(v) => !v.needs_drop(),
                // (A failure was reported and taken out just above.)
                Slot::Failure(_) | Slot::Waiting(_) => false,
            }
            && matches!(st.canceller, Canceller::None)
            && st.awaiter.is_none()
        {
            drop(st.steps.rest.take());
            return;
        }
        // What is left behind is empty, holding nothing to drop.
        let state = std::mem::replace(st, State::empty());
        // Dropping a chain drops its steps, whose closures may own other Deferreds, whose chains
        // own more steps... and hand-over steps and `Waiting` results own other chains. Done
        // naively that recursion is as deep as the structure (a million levels overflow the
        // stack), so only the outermost drop on this thread drops anything: the ones it causes
        // queue their state, and it drops them in a loop.
        let nested = DROPPING.try_with(|d| d.replace(true)).unwrap_or(true);
        if nested {
            let mut state = Some(state);
            try_queue(&mut state);
            drop(state); // `None` if queued; else the thread is being torn down: no queue left
            return;
        }
        // Reset even if a user's `Drop` panics, so later drops on this thread are not all queued.
        struct Outermost;
        impl Drop for Outermost {
            fn drop(&mut self) {
                let _ = DROPPING.try_with(|d| d.set(false));
            }
        }
        let _outermost = Outermost;
        drop(state);
        while let Some(next) = DROP_LATER.with(|q| q.borrow_mut().pop()) {
            drop(next);
        }
    }
}

/// Moves the state into this thread's queue of states to drop, if the queue is still there.
fn try_queue(state: &mut Option<State>) {
    let _ = DROP_LATER.try_with(|q| {
        if let Ok(mut q) = q.try_borrow_mut() {
            q.extend(state.take());
        }
    });
}

impl State {
    fn empty() -> State {
        State {
            result: Slot::Empty,
            steps: Steps::default(),
            pauses: 0,
            running: false,
            called: false,
            cancelled: false,
            canceller: Canceller::None,
            awaiter: None,
        }
    }
}
