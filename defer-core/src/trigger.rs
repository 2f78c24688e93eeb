//! [`Trigger<T>`]: the producer side of a Deferred.

use std::fmt;
use std::marker::PhantomData;
use std::panic::Location;

use crate::engine::value::Value;
use crate::engine::{self as chain, CellRc, Slot};
use crate::errors::TriggerDropped;
use crate::failure::{Failure, IntoFailure};

/// The producer side of a [`Deferred`](crate::Deferred): fires it once, with a value or a failure.
///
/// [`callback`](Trigger::callback) and [`errback`](Trigger::errback) take the trigger by value, so
/// firing twice does not compile (Twisted's `AlreadyCalledError` becomes a compile error). Firing
/// after the Deferred was cancelled does nothing and returns `false`, and
/// [`is_cancelled`](Trigger::is_cancelled) lets the producer stop its work early.
///
/// Dropping a trigger without firing it fails its Deferred with
/// [`TriggerDropped`](crate::errors::TriggerDropped), so a forgotten producer shows up as an error
/// instead of callbacks that never run (unless nothing at all is listening). The failure names the
/// line where the trigger was created (the call of [`Deferred::new`](crate::Deferred::new) or
/// [`with_canceller`](crate::Deferred::with_canceller)). To leave a Deferred pending on purpose,
/// [`detach`](Trigger::detach) the trigger instead of dropping it.
///
/// A step that captures its own chain's trigger keeps the chain alive in a reference cycle until
/// the chain fires or is cancelled; a chain in that state that is never fired is leaked, as any
/// `Rc` cycle is.
///
/// ```
/// use defer_core::{Deferred, testing::success_result_of};
/// let (d, trigger) = Deferred::new();
/// assert!(trigger.callback(42));
/// assert_eq!(success_result_of(d), 42);
/// ```
pub struct Trigger<T> {
    /// One word: where the trigger was made (named by the `TriggerDropped` its drop raises) is
    /// where its Deferred was, which the chain keeps.
    cell: Option<CellRc>,
    /// Invariant in `T`, like every handle: a contravariant trigger would accept a value of
    /// another type (a longer-lived function pointer, say) into the type-erased chain.
    _value: PhantomData<fn(T) -> T>,
}

impl<T: 'static> Trigger<T> {
    /// A trigger for `cell` (made where the chain was: its `created_at`).
    pub(crate) fn from_cell(cell: CellRc) -> Self {
        Trigger {
            cell: Some(cell),
            _value: PhantomData,
        }
    }

    /// Where this trigger was created: the line that called [`Deferred::new`](crate::Deferred::new)
    /// or [`Deferred::with_canceller`](crate::Deferred::with_canceller) (for a canceller's trigger,
    /// that same line).
    ///
    /// ```
    /// let (_d, trigger) = defer_core::Deferred::<u8>::new();
    /// assert_eq!(trigger.created_at().line(), line!() - 1);
    /// # trigger.callback(0);
    /// ```
    pub fn created_at(&self) -> &'static Location<'static> {
        created_at(self.cell.as_ref())
    }

    /// Lets go of the trigger without firing it and without failing the Deferred: the Deferred
    /// stays pending, and only its canceller (if it has one) can still fire it. For a Deferred
    /// that is meant never to fire, like a server's "run until stopped", or one that only
    /// [`cancel`](crate::Deferred::cancel) ends.
    ///
    /// Nothing is leaked: the trigger's reference to the chain goes, so when the last handle to
    /// the Deferred is dropped, the chain and its steps are dropped with it, and nothing is
    /// reported. (Dropping the trigger instead would fail the Deferred with
    /// [`TriggerDropped`](crate::errors::TriggerDropped).)
    ///
    /// ```
    /// use defer_core::{Deferred, errors::CancelledError, testing::{assert_no_result, failure_result_of}};
    ///
    /// // Runs until cancelled: nothing ever fires it but `cancel`.
    /// let (serving, trigger) = Deferred::<()>::with_canceller(|_own| {});
    /// trigger.detach();
    /// assert_no_result(&serving);          // still pending: no TriggerDropped
    /// serving.cancel();
    /// assert!(failure_result_of(serving).check::<CancelledError>());
    /// ```
    pub fn detach(self) {
        let cell = self.into_cell();
        // Only this reference goes: a chain that nothing else reaches any more (a coroutine
        // that waited on this Deferred alone, say) is reclaimed as after any other release.
        chain::reclaim::release(cell);
    }

    pub(crate) fn into_cell(mut self) -> CellRc {
        self.cell.take().expect("a live trigger has its cell")
    }

    /// Fires the Deferred with `value`, running its chain before returning. Returns `false` (and
    /// drops `value`) if the Deferred had been cancelled.
    ///
    /// ```
    /// let (d, t) = defer_core::Deferred::new();
    /// let d = d.add_callback(|x: i32| Ok(x * 2));
    /// t.callback(21);
    /// assert_eq!(defer_core::testing::success_result_of(d), 42);
    /// ```
    pub fn callback(self, value: T) -> bool {
        let cell = self.into_cell();
        let fired = chain::fire(&cell, Slot::Value(Value::new(value)));
        chain::reclaim::release(cell);
        fired
    }

    /// Fires the Deferred with a failure. Returns `false` if it had been cancelled.
    ///
    /// ```
    /// let (d, t) = defer_core::Deferred::<u8>::new();
    /// t.errback(std::fmt::Error);
    /// assert!(defer_core::testing::failure_result_of(d).check::<std::fmt::Error>());
    /// ```
    #[track_caller]
    pub fn errback(self, failure: impl IntoFailure) -> bool {
        let failure = failure.into_failure();
        let cell = self.into_cell();
        let fired = chain::fire(&cell, Slot::Failure(failure));
        chain::reclaim::release(cell);
        fired
    }

    /// Fires with `Ok` as [`callback`](Trigger::callback), `Err` as [`errback`](Trigger::errback).
    ///
    /// ```
    /// let (d, t) = defer_core::Deferred::<u8>::new();
    /// t.resolve(Ok(1));
    /// assert_eq!(defer_core::testing::success_result_of(d), 1);
    /// ```
    pub fn resolve(self, result: Result<T, Failure>) -> bool {
        match result {
            Ok(v) => self.callback(v),
            Err(f) => self.errback(f),
        }
    }

    /// Whether the Deferred was cancelled: the producer may stop its work.
    ///
    /// ```
    /// let (d, t) = defer_core::Deferred::<u8>::new();
    /// assert!(!t.is_cancelled());
    /// d.cancel();
    /// assert!(t.is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.cell.as_ref().is_some_and(|c| c.borrow().cancelled)
    }

    /// Whether anything could still see this trigger's result: a handle to the Deferred, a
    /// step, an awaiting coroutine or future. A waiter whose Deferred was dropped has none.
    pub(crate) fn has_listener(&self) -> bool {
        self.cell
            .as_ref()
            .is_some_and(|c| chain::has_listener(c, 1))
    }

    /// Hands this trigger to a combinator's shared state (a list's, a race's, a gather's), which
    /// the reclaim walk sees through (`engine/join.rs`): marks the chain as held by one.
    pub(crate) fn held_by_join(self) -> Self {
        if let Some(c) = &self.cell {
            c.borrow_mut().held_by_join = true;
        }
        self
    }

    /// The chain this trigger fires, for a combinator's `Join::holds`.
    pub(crate) fn cell(&self) -> Option<&CellRc> {
        self.cell.as_ref()
    }
}

impl<T> Drop for Trigger<T> {
    fn drop(&mut self) {
        let Some(cell) = self.cell.take() else { return };
        let unfired = {
            let st = cell.borrow();
            !st.called && !st.cancelled
        };
        let mut orphan = None;
        if unfired {
            // Nobody holds the Deferred and no step waits: nothing could ever see the result.
            if chain::has_listener(&cell, 1) {
                // Quiet until a step sees it: a handle dropped without ever looking reports
                // nothing.
                // Located at the trigger's creation, the user's line: a `Drop` has no caller
                // to name, and the line in this file would tell the user nothing.
                let created = created_at(Some(&cell));
                let failure = Failure::new_at(TriggerDropped::new(created), created);
                chain::fire(&cell, Slot::Failure(failure.quiet()));
            } else {
                // Nothing can ever run its hand-overs: drop them, which frees a chain waiting on
                // this one (the two hold each other) instead of leaking both.
                orphan = chain::forget_unreachable(&cell);
            }
        }
        // The trigger may have been the last reference from outside to chains that now only
        // hold each other.
        chain::reclaim::release(cell);
        if let Some(orphan) = orphan {
            chain::reclaim::release(orphan);
        }
    }
}

/// Where the chain (and so its trigger) was made. Never borrowed while user code runs, so the
/// borrow succeeds; this file's line if it ever does not.
fn created_at(cell: Option<&CellRc>) -> &'static Location<'static> {
    cell.and_then(|c| c.try_borrow().ok().map(|st| st.created_at))
        .unwrap_or_else(|| Location::caller())
}

impl<T> fmt::Debug for Trigger<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cell {
            Some(c) => write!(
                f,
                "Trigger(for Deferred at {:p}, created at {})",
                CellRc::as_ptr(c),
                created_at(Some(c))
            ),
            None => write!(f, "Trigger(spent)"),
        }
    }
}
