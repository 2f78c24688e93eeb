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
    pub(crate) canceller: Canceller,
    pub(crate) awaiter: Option<Awaiter>,
    /// Where the Deferred was made (`Deferred::new`, `succeed`, a combinator, a coroutine): for
    /// `Debug`, the unhandled-failure report and the `debug` snapshot. A `&'static` costs nothing
    /// to keep.
    pub(crate) created_at: &'static Location<'static>,
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

/// A chain's queue of steps: the steps to run, then at most one hand-over, which always comes
/// last (a hand-over is added through the chain's last handle, consumed by adding it). The first
/// step and the hand-over live inline: most chains have one step, or one step and the hand-over
/// back (a Deferred returned by a step), and a `VecDeque` allocates a buffer at its first push.
#[derive(Default)]
pub(crate) struct Steps {
    /// Invariant: the queue is `first`, then `rest`, then `hand`, front to back. Popping takes
    /// `first` if occupied and never shifts the others; pushing goes to `rest` as soon as `first`
    /// or `rest` is occupied.
    first: Option<RunEntry>,
    /// Boxed, so that a chain with one step carries one word for it and has nothing to free
    /// (clippy's `box_collection` assumes the box buys nothing).
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<RunEntry>>>,
    /// The hand-over, if any: two words (the `Hand` leaves the `Option` a niche).
    hand: Option<(Rc<Cell>, Hand)>,
}

/// A step to run, and where it was added (`Step::Run`'s fields).
type RunEntry = (Box<dyn RunStep>, &'static Location<'static>);

impl Steps {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none()
            && self.hand.is_none()
            && self.rest.as_ref().is_none_or(|r| r.is_empty())
    }

    /// Whether the only step is the hand-over: its target and kind.
    pub(crate) fn only_hand_over(&self) -> Option<(&Rc<Cell>, Hand)> {
        if self.first.is_some() || self.rest.as_ref().is_some_and(|r| !r.is_empty()) {
            return None;
        }
        self.hand.as_ref().map(|(c, h)| (c, *h))
    }

    /// Whether the last step hands the result to another chain.
    #[inline]
    pub(crate) fn has_hand_over(&self) -> bool {
        self.hand.is_some()
    }

    /// The chain the hand-over hands the result to, if there is one.
    pub(crate) fn hand_over_target(&self) -> Option<&Rc<Cell>> {
        self.hand.as_ref().map(|(c, _)| c)
    }

    /// How many steps wait.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some())
            + usize::from(self.hand.is_some())
            + self.rest.as_ref().map_or(0, |r| r.len())
    }

    /// Every step to run (not the hand-over), front to back.
    pub(crate) fn runs(&self) -> impl Iterator<Item = &dyn RunStep> {
        self.first
            .iter()
            .chain(self.rest.iter().flat_map(|r| r.iter()))
            .map(|(step, _)| &**step)
    }

    /// Takes the hand-over out, and gives its target.
    pub(crate) fn take_hand_over(&mut self) -> Option<Rc<Cell>> {
        self.hand.take().map(|(c, _)| c)
    }

    /// Takes every step out, leaving the queue empty.
    pub(crate) fn take_all(&mut self) -> Steps {
        std::mem::take(self)
    }

    #[inline]
    pub(crate) fn push_back(&mut self, step: Step) {
        match step {
            Step::Run(run, at) => {
                // Never after a hand-over: the handle it would be added through was consumed.
                debug_assert!(self.hand.is_none(), "a step added after the hand-over");
                if self.first.is_some() || self.rest.as_ref().is_some_and(|r| !r.is_empty()) {
                    self.rest.get_or_insert_default().push_back((run, at));
                } else {
                    self.first = Some((run, at));
                }
            }
            Step::Hand(target, hand) => {
                // At most one: adding it consumed the chain's last handle.
                debug_assert!(self.hand.is_none(), "a second hand-over");
                if let Some(old) = self.hand.replace((target, hand)) {
                    // Never; kept rather than leaked if it ever happens (dropped outside).
                    super::drop_queue::dispose_value(old);
                }
            }
        }
    }

    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<Step> {
        // Checked before taking: once `first` is spent, a long chain pops from `rest` without
        // writing it again.
        if let Some((run, at)) = self.first.take() {
            return Some(Step::Run(run, at));
        }
        if let Some(rest) = self.rest.as_mut()
            && let Some((run, at)) = rest.pop_front()
        {
            return Some(Step::Run(run, at));
        }
        self.hand
            .take()
            .map(|(target, hand)| Step::Hand(target, hand))
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
    /// If nothing but the chains it awaits can resume the coroutine (it is not running, and no
    /// foreign future kept a clone of its waker), those chains; `None` if it may be resumed
    /// otherwise. For `engine/reclaim.rs`.
    fn stuck_on(&self) -> Option<Vec<Rc<Cell>>>;
    /// The coroutine's own Deferred.
    fn own_cell(&self) -> Rc<Cell>;
    /// Drops the coroutine's body (and with it its awaits), for `engine/reclaim.rs` once it found
    /// the coroutine unreachable.
    fn free_body(&self);
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
    pub(crate) fn new(canceller: Canceller) -> Rc<Cell> {
        Cell::new_at(canceller, Location::caller())
    }

    /// A new chain made at `at`.
    pub(crate) fn new_at(canceller: Canceller, at: &'static Location<'static>) -> Rc<Cell> {
        // `Rc::default` builds the state in place in the new allocation; `Rc::new` builds it on
        // the stack and copies it in (a `memcpy` as costly as the rest of the constructor).
        let mut cell = Rc::<Cell>::default();
        let only = Rc::get_mut(&mut cell).expect("a new Rc is unique");
        let st = only.st.get_mut();
        st.created_at = at;
        if !matches!(canceller, Canceller::None) {
            st.canceller = canceller;
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
        let cell = Cell::new_at(Canceller::None, at);
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
            && matches!(self.result, Slot::Value(_) | Slot::Failure(_))
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
                Slot::Failure(_) | Slot::Waiting(_) => false,
            }
            && matches!(st.canceller, Canceller::None)
            && st.awaiter.is_none()
        {
            drop(st.steps.rest.take());
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
            canceller: Canceller::None,
            awaiter: None,
            // Replaced by `Cell::new` with the caller's.
            created_at: Location::caller(),
        }
    }
}

