//! A chain's state: the [`Cell`] every `Deferred<T>` points at, whatever its `T`.
//!
//! The rule every file of the engine keeps: **no user code runs while a cell's `RefCell` is
//! borrowed.** Whatever user code needs (a step, a canceller, a result, an awaiter to wake) is
//! taken out of the state first and the borrow released, so user code may fire, pause, cancel,
//! add steps to or drop any chain, the running one included. User code is then called through
//! `user_code.rs`, and what a chain owns is dropped through `drop_queue.rs`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::panic::Location;
use std::rc::Rc;
use std::task::Waker;

use super::drop_queue::{self, Item};
use super::step::RunStep;
use super::value::Value;
use crate::failure::Failure;

/// One chain's shared state.
pub(crate) struct Cell {
    /// Dropped by hand in `Drop for Cell`: the drop glue of an empty state (every field's drop
    /// checked in turn) cost as much as the rest of dropping a chain.
    pub(crate) st: ManuallyDrop<RefCell<State>>,
}

pub(crate) struct State {
    /// The result, and before the chain fires its canceller (see [`Slot`]).
    pub(crate) result: Slot,
    pub(crate) steps: Steps,
    /// `pause()` calls not yet matched by `unpause()`. Waiting on another Deferred is tracked by
    /// `Slot::Waiting`, not here, so an unmatched `unpause()` can never wedge the chain.
    pub(crate) pauses: u32,
    pub(crate) running: bool,
    pub(crate) called: bool,
    pub(crate) cancelled: bool,
    /// Its trigger is held by a combinator's shared state (see `join.rs`): one more reference
    /// that another chain may hold, through that state.
    pub(crate) held_by_join: bool,
    /// Who gets the result when the steps have run: a hand-over or an awaiter.
    pub(crate) tail: Option<Tail>,
    /// Where the Deferred was made (`Deferred::new`, `succeed`, a combinator, a coroutine): for
    /// `Debug`, the unhandled-failure report and the `debug` snapshot. A `&'static` costs nothing
    /// to keep.
    pub(crate) created_at: &'static Location<'static>,
}

// A chain's state is what every pending Deferred costs (issue 11): the result slot (4 words),
// the first step and the box of the others (4), the pause count and flags (1), the tail (3) and
// the creation site (1); with the `RefCell`'s flag and `Rc`'s two counts, a 128-byte block. A
// field added here fails the build, and `tests/tests/memory_sizes.rs` the tests.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<State>() == 104 && size_of::<Cell>() == 112);

/// The chain's current result; before the chain fires, its canceller.
///
/// A canceller is needed only until the chain fires (Twisted clears it then), and a result only
/// from then on, so the two share this slot: a canceller costs a pending chain nothing beyond the
/// slot it already has (issue 11). The one state with both, an unfired `chain_deferred` target
/// that holds its source and has a canceller, is rare and boxed.
pub(crate) enum Slot {
    /// Not fired yet and no canceller, or the result was handed on (Twisted's `None` after
    /// chaining).
    Empty,
    Value(Value),
    Failure(Failure),
    /// A step returned this pending Deferred; the chain resumes with its result. In an unfired
    /// chain: a `chain_deferred` target holding the source that will fire it.
    Waiting(Rc<Cell>),
    /// Not fired yet, with a canceller.
    Cancellable(Canceller),
    /// Not fired yet, with a canceller, and holding its `chain_deferred` source.
    CancellableWaiting(Box<(Rc<Cell>, Canceller)>),
}

impl Slot {
    /// The chain this one waits on: fired and waiting, or an unfired `chain_deferred` target's
    /// source.
    #[inline]
    pub(crate) fn waits_on(&self) -> Option<&Rc<Cell>> {
        match self {
            Slot::Waiting(c) => Some(c),
            Slot::CancellableWaiting(b) => Some(&b.0),
            _ => None,
        }
    }

    /// Takes out the chain this one waits on (see [`waits_on`](Slot::waits_on)), keeping the
    /// canceller.
    pub(crate) fn take_waits_on(&mut self) -> Option<Rc<Cell>> {
        match std::mem::replace(self, Slot::Empty) {
            Slot::Waiting(c) => Some(c),
            Slot::CancellableWaiting(b) => {
                let (c, k) = *b;
                *self = Slot::Cancellable(k);
                Some(c)
            }
            other => {
                *self = other;
                None
            }
        }
    }

    /// An unfired chain starts holding its `chain_deferred` source, keeping its canceller; what
    /// it held before (a previous source) is given back to be dropped.
    pub(crate) fn hold_source(&mut self, source: Rc<Cell>) -> Option<Rc<Cell>> {
        match std::mem::replace(self, Slot::Empty) {
            Slot::Cancellable(k) => {
                *self = Slot::CancellableWaiting(Box::new((source, k)));
                None
            }
            Slot::CancellableWaiting(b) => {
                let (old, k) = *b;
                *self = Slot::CancellableWaiting(Box::new((source, k)));
                Some(old)
            }
            Slot::Waiting(old) => {
                *self = Slot::Waiting(source);
                Some(old)
            }
            _ => {
                *self = Slot::Waiting(source);
                None
            }
        }
    }

    /// The canceller of an unfired chain.
    #[inline]
    pub(crate) fn canceller(&self) -> Option<&Canceller> {
        match self {
            Slot::Cancellable(k) => Some(k),
            Slot::CancellableWaiting(b) => Some(&b.1),
            _ => None,
        }
    }

    /// Whether this is a coroutine's own (unfired) chain.
    #[inline]
    pub(crate) fn is_coroutines(&self) -> bool {
        matches!(self.canceller(), Some(Canceller::Coroutine(_)))
    }

    /// Takes out the canceller, keeping a source held.
    pub(crate) fn take_canceller(&mut self) -> Option<Canceller> {
        match std::mem::replace(self, Slot::Empty) {
            Slot::Cancellable(k) => Some(k),
            Slot::CancellableWaiting(b) => {
                let (c, k) = *b;
                *self = Slot::Waiting(c);
                Some(k)
            }
            other => {
                *self = other;
                None
            }
        }
    }

    /// Gives an unfired chain its canceller (in place of one it had).
    pub(crate) fn put_canceller(&mut self, k: Canceller) {
        match std::mem::replace(self, Slot::Empty) {
            Slot::Waiting(c) => *self = Slot::CancellableWaiting(Box::new((c, k))),
            Slot::CancellableWaiting(b) => {
                *self = Slot::CancellableWaiting(Box::new((b.0, k)));
            }
            _ => *self = Slot::Cancellable(k),
        }
    }
}

/// A chain's queue of steps: the first inline, the others in a box made when a second one comes.
///
/// Most chains have one step (a user's callback, a combinator's input, a coroutine's await
/// needs none); what hands the result on when they are done is the chain's [`Tail`], not a step.
/// A pending chain that never has a second step (issue 11: S1, S3) pays one inline step for its
/// queue; the second step costs one allocation, which holds it and the queue behind it, whose
/// buffer is allocated at the third.
#[derive(Default)]
pub(crate) struct Steps {
    /// Invariant: the queue is `first`, then the box's `second`, then its `rest`, front to back,
    /// where an empty place is simply skipped. Popping takes the first occupied place and never
    /// shifts the others; pushing goes behind the last occupied place.
    first: Option<Step>,
    more: Option<Box<MoreSteps>>,
}

/// The steps behind the first (see [`Steps`]).
#[derive(Default)]
struct MoreSteps {
    second: Option<Step>,
    rest: VecDeque<Step>,
}

impl MoreSteps {
    #[inline]
    fn is_empty(&self) -> bool {
        self.second.is_none() && self.rest.is_empty()
    }
}

impl Steps {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.more.as_ref().is_none_or(|m| m.is_empty())
    }

    /// How many steps wait.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some())
            + self
                .more
                .as_ref()
                .map_or(0, |m| usize::from(m.second.is_some()) + m.rest.len())
    }

    /// Whether a step feeds a combinator's state (`join.rs`). Written out, not as an iterator:
    /// it runs each time a combinator's input lets go of its state.
    pub(crate) fn feeds_a_join(&self) -> bool {
        let feeds = |step: &Step| step.join().is_some();
        self.first.as_ref().is_some_and(feeds)
            || self
                .more
                .as_ref()
                .is_some_and(|m| m.second.as_ref().is_some_and(feeds) || m.rest.iter().any(feeds))
    }

    /// Every step, front to back.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Step> {
        self.first.iter().chain(
            self.more
                .iter()
                .flat_map(|m| m.second.iter().chain(m.rest.iter())),
        )
    }

    /// Takes every step out, leaving the queue empty.
    pub(crate) fn take_all(&mut self) -> Steps {
        std::mem::take(self)
    }

    #[inline]
    pub(crate) fn push_back(&mut self, step: Step) {
        match &mut self.more {
            Some(m) if !m.is_empty() => m.rest.push_back(step),
            _ if self.first.is_none() => self.first = Some(step),
            Some(m) => m.second = Some(step),
            None => self.push_second(step),
        }
    }

    /// The second step: out of line, so that adding the first stays small enough to inline.
    #[inline(never)]
    fn push_second(&mut self, step: Step) {
        self.more = Some(Box::new(MoreSteps {
            second: Some(step),
            rest: VecDeque::new(),
        }));
    }

    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<Step> {
        // Checked before taking: once the inline place is spent, a long chain pops from `rest`
        // without writing it again.
        if self.first.is_some() {
            return self.first.take();
        }
        let m = self.more.as_mut()?;
        if m.second.is_some() {
            return m.second.take();
        }
        m.rest.pop_front()
    }
}

pub(crate) enum Step {
    /// A step, and where it was added (for a panic's failure, and `CircularChainError`). (An
    /// enum of one variant rather than a struct: the tuple-variant patterns read as what they
    /// are.)
    Run(Box<dyn RunStep>, &'static Location<'static>),
}

impl Step {
    /// The combinator's state this step feeds, if it is a combinator's input.
    #[inline]
    pub(crate) fn join(&self) -> Option<Rc<dyn super::join::Join>> {
        match self {
            Step::Run(s, _) => s.join(),
        }
    }
}

// Three words, like the queue entry of the `rc_minimal` cost model: one more word per entry
// made W2's 2000-step queue 64 KiB, the size at which glibc's `free` consolidates its fast bins,
// which made every allocation after it slow. And an empty place costs no more than a step.
const _: () = assert!(size_of::<Step>() == 3 * size_of::<usize>());
const _: () = assert!(size_of::<Option<Step>>() == 3 * size_of::<usize>());

/// Where a hand-over hands the result.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hand {
    /// To a chain that waits on this one (Twisted's `_CONTINUE`).
    Continue,
    /// To the (unfired) chain of `chain_deferred`, firing it.
    ChainTo,
}

/// What happens to a chain's result once its steps have run: it is handed to another chain, or
/// whoever awaits it is told. One place for both: a chain's result has one consumer. The chain
/// handed to is the one a step returned this chain's `Deferred` to, or the target of the
/// `chain_deferred` that consumed it; an awaiter is the future `IntoFuture` consumed it into.
/// Each consumes the only handle, so a chain never has two of them (`State::set_tail` checks).
pub(crate) enum Tail {
    /// Hand the result to a chain that waits on this one (Twisted's `_CONTINUE`).
    Continue(Rc<Cell>),
    /// Hand the result to the (unfired) chain of `chain_deferred`, firing it.
    ChainTo(Rc<Cell>),
    /// Tell an executor's task (`Deferred` awaited in tokio, futures, ...).
    Waker(Waker),
    /// Resume one of our own coroutine drivers, as a tail call of the loop.
    Driver(Rc<dyn Resume>),
}

const _: () = assert!(size_of::<Option<Tail>>() == 3 * size_of::<usize>());

/// What cancelling an unfired chain runs (kept in its [`Slot`]).
pub(crate) enum Canceller {
    Once(Box<dyn FnOnce(Rc<Cell>)>),
    /// A coroutine's Deferred: cancelling it cancels what the coroutine waits on, every time.
    Coroutine(std::rc::Weak<dyn Resume>),
}

/// Who is told when a chain has finished running and holds its final result: what a future
/// registers (becoming the chain's [`Tail`]).
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
    /// If nothing but the chains it awaits can resume the coroutine (it is not running, and no
    /// foreign future kept a clone of its waker), those chains; `None` if it may be resumed
    /// otherwise. For `engine/reclaim.rs`.
    fn stuck_on(&self) -> Option<Vec<Rc<Cell>>>;
    /// The coroutine's own Deferred.
    fn own_cell(&self) -> Rc<Cell>;
    /// Drops the coroutine's body (and with it its awaits), for `engine/reclaim.rs` once it found
    /// the coroutine unreachable.
    fn free_body(&self);
    /// Where the coroutine is and what it waits on, for `Debug` and `debug::snapshot`.
    fn inspect(&self) -> crate::debug::Inspected;
}

impl Default for Cell {
    fn default() -> Self {
        Cell {
            st: ManuallyDrop::new(RefCell::new(State::empty())),
        }
    }
}

impl Cell {
    /// A new chain, made where the chain of `#[track_caller]` functions that called this began
    /// (the user's `Deferred::new`, `DeferredList::build`, ...).
    #[track_caller]
    pub(crate) fn new(canceller: Option<Canceller>) -> Rc<Cell> {
        Cell::new_at(canceller, Location::caller())
    }

    /// A new chain made at `at`.
    pub(crate) fn new_at(canceller: Option<Canceller>, at: &'static Location<'static>) -> Rc<Cell> {
        // `Rc::default` builds the state in place in the new allocation; `Rc::new` builds it on
        // the stack and copies it in (a `memcpy` as costly as the rest of the constructor).
        let mut cell = Rc::<Cell>::default();
        let only = Rc::get_mut(&mut cell).expect("a new Rc is unique");
        let st = only.st.get_mut();
        st.created_at = at;
        if let Some(k) = canceller {
            st.result = Slot::Cancellable(k);
        }
        cell
    }

    /// A chain that has fired with `result`, made where the caller's `#[track_caller]` chain
    /// began.
    #[track_caller]
    pub(crate) fn fired(result: Slot) -> Rc<Cell> {
        Cell::fired_at(result, Location::caller())
    }

    /// A chain that has fired with `result`, made at `at`.
    pub(crate) fn fired_at(result: Slot, at: &'static Location<'static>) -> Rc<Cell> {
        let cell = Cell::new_at(None, at);
        {
            let mut st = cell.st.borrow_mut();
            st.called = true;
            st.result = result;
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
            && !self.has_hand_over()
            && matches!(self.result, Slot::Value(_) | Slot::Failure(_))
    }

    /// The chain the result is handed to when the steps have run, and how.
    #[inline]
    pub(crate) fn hand_over(&self) -> Option<(&Rc<Cell>, Hand)> {
        match &self.tail {
            Some(Tail::Continue(c)) => Some((c, Hand::Continue)),
            Some(Tail::ChainTo(c)) => Some((c, Hand::ChainTo)),
            _ => None,
        }
    }

    #[inline]
    pub(crate) fn has_hand_over(&self) -> bool {
        matches!(self.tail, Some(Tail::Continue(_) | Tail::ChainTo(_)))
    }

    /// Takes the hand-over out, if the tail is one, and gives its target.
    pub(crate) fn take_hand_over(&mut self) -> Option<Rc<Cell>> {
        match self.tail.take() {
            Some(Tail::Continue(c) | Tail::ChainTo(c)) => Some(c),
            other => {
                self.tail = other;
                None
            }
        }
    }

    /// The coroutine driver awaiting the result, if any.
    #[inline]
    pub(crate) fn awaiting_driver(&self) -> Option<&Rc<dyn Resume>> {
        match &self.tail {
            Some(Tail::Driver(d)) => Some(d),
            _ => None,
        }
    }

    /// Whether an executor's task awaits the result.
    #[inline]
    pub(crate) fn awaited_by_waker(&self) -> bool {
        matches!(self.tail, Some(Tail::Waker(_)))
    }

    /// Whether anything awaits the result (a task or a driver).
    #[inline]
    pub(crate) fn has_awaiter(&self) -> bool {
        matches!(self.tail, Some(Tail::Waker(_) | Tail::Driver(_)))
    }

    /// Takes out the awaiter, if the tail is one.
    pub(crate) fn take_awaiter(&mut self) -> Option<Awaiter> {
        match self.tail.take() {
            Some(Tail::Waker(w)) => Some(Awaiter::Waker(w)),
            Some(Tail::Driver(d)) => Some(Awaiter::Driver(d)),
            other => {
                self.tail = other;
                None
            }
        }
    }

    /// Makes `awaiter` the one told of the result; gives back what it replaces, to be dropped
    /// with no borrow held.
    #[inline]
    pub(crate) fn set_awaiter(&mut self, awaiter: Awaiter) -> Option<Tail> {
        self.set_tail(match awaiter {
            Awaiter::Waker(w) => Tail::Waker(w),
            Awaiter::Driver(d) => Tail::Driver(d),
        })
    }

    /// Makes `target` the chain the result is handed to; gives back what it replaces.
    pub(crate) fn set_hand_over(&mut self, target: Rc<Cell>, hand: Hand) -> Option<Tail> {
        self.set_tail(match hand {
            Hand::Continue => Tail::Continue(target),
            Hand::ChainTo => Tail::ChainTo(target),
        })
    }

    /// Sets the tail. An awaiter may replace an awaiter (the same future polled again, by
    /// another task), and nothing else replaces anything: each kind of tail consumes the chain's
    /// only handle.
    #[inline]
    fn set_tail(&mut self, tail: Tail) -> Option<Tail> {
        let old = self.tail.replace(tail);
        debug_assert!(
            matches!(old, None | Some(Tail::Waker(_) | Tail::Driver(_))) && self.has_awaiter()
                || old.is_none(),
            "a chain's result has one consumer"
        );
        old
    }
}

impl Drop for Cell {
    fn drop(&mut self) {
        let st = self.st.get_mut();
        if let Slot::Failure(_) = st.result
            && let Slot::Failure(f) = std::mem::replace(&mut st.result, Slot::Empty)
        {
            // Reported unless nobody ever listened for it (`Failure::quiet`), naming the
            // Deferred it was left in.
            if !f.is_quiet() {
                f.set_unhandled_in(st.created_at);
                crate::unhandled::report(&f);
            }
        }
        // The common case owns nothing that could own another chain: nothing to queue, and
        // nothing to drop but the step queue's spare buffer, if it has one (the state itself is
        // `ManuallyDrop`: what it holds is dropped here or not at all).
        if st.steps.is_empty()
            && match &st.result {
                Slot::Empty => true,
                Slot::Value(v) => !v.needs_drop(),
                // (A failure was reported and taken out just above.)
                Slot::Failure(_)
                | Slot::Waiting(_)
                | Slot::Cancellable(_)
                | Slot::CancellableWaiting(_) => false,
            }
            && st.tail.is_none()
        {
            drop(st.steps.take_all());
            return;
        }
        // What is left behind is empty, holding nothing to drop. What the state owns (steps,
        // whose closures may own other Deferreds; `Waiting` results and hand-overs, which own
        // other chains) goes through the drop queue: no recursion, no `Drop` panic escaping.
        let state = std::mem::replace(st, State::empty());
        drop_queue::dispose(Item::State(state));
    }
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
            held_by_join: false,
            tail: None,
            // Replaced by `Cell::new` with the caller's.
            created_at: Location::caller(),
        }
    }
}
