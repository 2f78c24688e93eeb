//! What receives a chain's result once its steps have run: the chain it is handed to, or the
//! task or coroutine that awaits it.

use std::rc::Rc;
use std::task::Waker;

use super::cell::CellRc;

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

const _: () = assert!(size_of::<Option<Tail>>() == 2 * size_of::<usize>());

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
