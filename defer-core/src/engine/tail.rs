//! What receives a chain's result once its steps have run: the chain it is handed to, or the
//! task or coroutine that awaits it.

use std::rc::Rc;
use std::task::Waker;

use super::cell::CellRc;
use super::raw::one_of::{Lent, OneOf, Pick};

/// A coroutine driver (`coroutine.rs`): one type whatever the coroutine's, so a reference to it
/// is one word.
pub(crate) type DriverRc = Rc<crate::coroutine::Driver>;
/// A weak reference to a coroutine driver.
pub(crate) type DriverWeak = std::rc::Weak<crate::coroutine::Driver>;

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
    Continue(CellRc),
    /// Hand the result to the (unfired) chain of `chain_deferred`, firing it.
    ChainTo(CellRc),
    /// Tell an executor's task (`Deferred` awaited in tokio, futures, ...). Boxed: a waker is
    /// two words, and every chain has a tail (issue 11); an executor's await pays the box.
    Waker(Box<Waker>),
    /// Resume one of our own coroutine drivers, as a tail call of the loop.
    Driver(DriverRc),
}

/// A chain's [`Tail`], if it has one, in one word (`raw/one_of.rs`; issue 11: every chain has
/// a tail, and as an enum it was two words). Taken out to be used, or looked at in place.
pub(crate) struct TailSlot(OneOf<CellRc, CellRc, Box<Waker>, DriverRc>);

const _: () = assert!(size_of::<TailSlot>() == size_of::<usize>());

impl TailSlot {
    #[inline(always)]
    pub(crate) fn empty() -> Self {
        TailSlot(OneOf::new(Pick::Neither))
    }

    #[inline(always)]
    fn pack(tail: Option<Tail>) -> OneOf<CellRc, CellRc, Box<Waker>, DriverRc> {
        OneOf::new(match tail {
            Some(Tail::Continue(c)) => Pick::First(c),
            Some(Tail::ChainTo(c)) => Pick::Second(c),
            Some(Tail::Waker(w)) => Pick::Third(w),
            Some(Tail::Driver(d)) => Pick::Fourth(d),
            None => Pick::Neither,
        })
    }

    /// Takes the tail out, leaving none.
    #[inline(always)]
    pub(crate) fn take(&mut self) -> Option<Tail> {
        // Most chains have no tail when they finish running: one test.
        if self.is_none() {
            return None;
        }
        match std::mem::replace(&mut self.0, OneOf::new(Pick::Neither)).into_pick() {
            Pick::First(c) => Some(Tail::Continue(c)),
            Pick::Second(c) => Some(Tail::ChainTo(c)),
            Pick::Third(w) => Some(Tail::Waker(w)),
            Pick::Fourth(d) => Some(Tail::Driver(d)),
            Pick::Neither => None,
        }
    }

    /// Puts `tail` in, giving back what was there.
    #[inline(always)]
    pub(crate) fn replace(&mut self, tail: Option<Tail>) -> Option<Tail> {
        // The common case, a chain with no tail yet: nothing to unpack.
        let old = if self.is_none() { None } else { self.take() };
        self.0 = Self::pack(tail);
        old
    }

    #[inline(always)]
    pub(crate) fn is_none(&self) -> bool {
        self.0.kind().is_none()
    }

    /// The chain the result is handed to, and how, lent.
    #[inline(always)]
    pub(crate) fn hand_over(&self) -> Option<(Lent<'_, CellRc>, Hand)> {
        match self.0.kind() {
            Some(0) => self.0.first().map(|c| (c, Hand::Continue)),
            Some(1) => self.0.second().map(|c| (c, Hand::ChainTo)),
            _ => None,
        }
    }

    #[inline(always)]
    pub(crate) fn is_hand_over(&self) -> bool {
        matches!(self.0.kind(), Some(0 | 1))
    }

    #[inline(always)]
    pub(crate) fn is_waker(&self) -> bool {
        self.0.kind() == Some(2)
    }

    #[inline(always)]
    pub(crate) fn is_awaiter(&self) -> bool {
        matches!(self.0.kind(), Some(2 | 3))
    }

    /// The coroutine driver awaiting the result, lent.
    #[inline(always)]
    pub(crate) fn driver(&self) -> Option<Lent<'_, DriverRc>> {
        self.0.fourth()
    }
}

/// Who is told when a chain has finished running and holds its final result: what a future
/// registers (becoming the chain's [`Tail`]).
pub(crate) enum Awaiter {
    /// An executor's task (`Deferred` awaited in tokio, futures, ...).
    Waker(Waker),
    /// One of our own coroutine drivers: resumed directly, as a tail call of the loop.
    Driver(DriverRc),
}

/// A coroutine driver, as the chain loop sees it.
pub(crate) trait Resume {
    /// Polls the coroutine. When it finishes, its own Deferred has been given its result (but not
    /// run): the caller runs it next.
    fn resume(self: Rc<Self>) -> Option<CellRc>;
    /// Cancels what the coroutine waits on; returns the chain to cancel.
    fn cancel_current(&self) -> Option<CellRc>;
    /// If nothing but the chains it awaits can resume the coroutine (it is not running, and no
    /// foreign future kept a clone of its waker), those chains; `None` if it may be resumed
    /// otherwise. For `engine/reclaim.rs`.
    fn stuck_on(&self) -> Option<Vec<CellRc>>;
    /// The coroutine's own Deferred's chain, if it was made (until then the program's handle
    /// holds the coroutine itself).
    fn own_cell(&self) -> Option<CellRc>;
    /// Drops the coroutine's body (and with it its awaits), for `engine/reclaim.rs` once it found
    /// the coroutine unreachable.
    fn free_body(&self);
    /// Where the coroutine is and what it waits on, for `Debug` and `debug::snapshot`.
    fn inspect(&self) -> crate::debug::Inspected;
}
