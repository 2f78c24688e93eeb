//! A chain's state: the [`State`] every `Deferred<T>` points at through a [`CellRc`], whatever
//! its `T`.
//!
//! The rule every file of the engine keeps: **no user code runs while a chain's state is
//! borrowed.** Whatever user code needs (a step, a canceller, a result, an awaiter to wake) is
//! taken out of the state first and the borrow released, so user code may fire, pause, cancel,
//! add steps to or drop any chain, the running one included. User code is then called through
//! `user_code.rs`, and what a chain owns is dropped through `drop_queue.rs`.

use std::panic::Location;

use super::drop_queue::{self, Item};
use super::raw::one_of::Lent;
use super::raw::shared::{Dispose, Shared, SharedWeak};
pub(crate) use super::slot::{Canceller, Slot};
pub(crate) use super::step_queue::{Step, Steps};
pub(crate) use super::tail::{Awaiter, DriverRc, DriverWeak, Hand, Resume, Tail, TailSlot};

/// A handle to one chain's state: counted and borrow-checked like an `Rc<RefCell<State>>`, in a
/// block with 8 bytes of header instead of 24 (`raw/shared.rs`).
pub(crate) type CellRc = Shared<State>;
/// A weak handle to one chain's state.
pub(crate) type CellWeak = SharedWeak<State>;

/// One chain's shared state.
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
    pub(crate) tail: TailSlot,
    /// Where the Deferred was made (`Deferred::new`, `succeed`, a combinator, a coroutine): for
    /// `Debug`, the unhandled-failure report and the `debug` snapshot. A `&'static` costs nothing
    /// to keep.
    pub(crate) created_at: &'static Location<'static>,
}

// A chain's state is what every pending Deferred costs (issue 11): the result slot (4 words),
// the step queue (3: a lone step, or the box of several), the pause count and flags (1), the
// tail (1: its kind in the pointer's low bits) and the creation site (1); with the block's counts
// and borrow flag (1), an 88-byte block. A field added here fails the build, and
// `tests/tests/memory_sizes.rs` the tests.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<State>() == 80);

impl Shared<State> {
    /// A new chain, made where the chain of `#[track_caller]` functions that called this began
    /// (the user's `Deferred::new`, `DeferredList::build`, ...).
    #[track_caller]
    pub(crate) fn new(canceller: Option<Canceller>) -> CellRc {
        CellRc::new_at(canceller, Location::caller())
    }

    /// A new chain made at `at`.
    #[inline(always)]
    pub(crate) fn new_at(canceller: Option<Canceller>, at: &'static Location<'static>) -> CellRc {
        // Built in place, after the allocation (`Shared::new_with`): nothing needing a drop is
        // alive across it when there is no canceller, so nothing is first copied to the stack
        // for a landing pad, and copied again into the block in pieces the processor cannot
        // forward from the stores (which made `W5_inline_pending` 10 % slower).
        match canceller {
            None => Shared::new_with(|| State::new(Slot::Empty, false, at)),
            Some(k) => Shared::new_with(move || State::new(Slot::Cancellable(k), false, at)),
        }
    }

    /// A chain that has fired with `result`, made where the caller's `#[track_caller]` chain
    /// began.
    #[track_caller]
    pub(crate) fn fired(result: Slot) -> CellRc {
        CellRc::fired_at(result, Location::caller())
    }

    /// A chain that has fired with `result`, made at `at`.
    pub(crate) fn fired_at(result: Slot, at: &'static Location<'static>) -> CellRc {
        Shared::new_with(|| State::new(result, true, at))
    }
}

impl State {
    /// Fired, and its result can be taken right now.
    #[inline]
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
    pub(crate) fn hand_over(&self) -> Option<(Lent<'_, CellRc>, Hand)> {
        self.tail.hand_over()
    }

    #[inline]
    pub(crate) fn has_hand_over(&self) -> bool {
        self.tail.is_hand_over()
    }

    /// Takes the hand-over out, if the tail is one, and gives its target.
    pub(crate) fn take_hand_over(&mut self) -> Option<CellRc> {
        if !self.tail.is_hand_over() {
            return None;
        }
        match self.tail.take() {
            Some(Tail::Continue(c) | Tail::ChainTo(c)) => Some(c),
            _ => unreachable!("checked: a hand-over"),
        }
    }

    /// The coroutine driver awaiting the result, if any.
    #[inline]
    pub(crate) fn awaiting_driver(&self) -> Option<Lent<'_, DriverRc>> {
        self.tail.driver()
    }

    /// Whether an executor's task awaits the result.
    #[inline]
    pub(crate) fn awaited_by_waker(&self) -> bool {
        self.tail.is_waker()
    }

    /// Whether anything awaits the result (a task or a driver).
    #[inline]
    pub(crate) fn has_awaiter(&self) -> bool {
        self.tail.is_awaiter()
    }

    /// Takes out the awaiter, if the tail is one.
    pub(crate) fn take_awaiter(&mut self) -> Option<Awaiter> {
        if !self.tail.is_awaiter() {
            return None;
        }
        match self.tail.take() {
            Some(Tail::Waker(w)) => Some(Awaiter::Waker(*w)),
            Some(Tail::Driver(d)) => Some(Awaiter::Driver(d)),
            _ => unreachable!("checked: an awaiter"),
        }
    }

    /// Makes `awaiter` the one told of the result; gives back what it replaces, to be dropped
    /// with no borrow held.
    #[inline]
    pub(crate) fn set_awaiter(&mut self, awaiter: Awaiter) -> Option<Tail> {
        self.set_tail(match awaiter {
            Awaiter::Waker(w) => Tail::Waker(Box::new(w)),
            Awaiter::Driver(d) => Tail::Driver(d),
        })
    }

    /// Makes `target` the chain the result is handed to; gives back what it replaces.
    pub(crate) fn set_hand_over(&mut self, target: CellRc, hand: Hand) -> Option<Tail> {
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
        let old = self.tail.replace(Some(tail));
        debug_assert!(
            old.is_none()
                || (self.has_awaiter() && matches!(old, Some(Tail::Waker(_) | Tail::Driver(_)))),
            "a chain's result has one consumer"
        );
        old
    }
}

impl Dispose for State {
    /// The last handle to the chain went. The state is never dropped by its glue (the drop glue of
    /// an empty state, every field's drop checked in turn, cost as much as the rest of dropping a
    /// chain): what it holds is dropped here or not at all.
    fn dispose(&mut self) {
        let st = self;
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
        // nothing to drop but the step queue's spare buffer, if it has one.
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
    #[inline(always)]
    fn new(result: Slot, called: bool, created_at: &'static Location<'static>) -> State {
        State {
            result,
            steps: Steps::default(),
            pauses: 0,
            running: false,
            called,
            cancelled: false,
            held_by_join: false,
            tail: TailSlot::empty(),
            created_at,
        }
    }

    /// What a disposed-of state leaves in place: nothing to drop.
    fn empty() -> State {
        State::new(Slot::Empty, false, Location::caller())
    }
}
