//! A chain's result slot: its current result, and before the chain fires its canceller.

use super::cell::{CellRc, DriverWeak};
use super::value::Value;
use crate::failure::Failure;

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
    Waiting(CellRc),
    /// Not fired yet, with a canceller.
    Cancellable(Canceller),
    /// Not fired yet, with a canceller, and holding its `chain_deferred` source.
    CancellableWaiting(Box<(CellRc, Canceller)>),
}

impl Slot {
    /// The chain this one waits on: fired and waiting, or an unfired `chain_deferred` target's
    /// source.
    #[inline]
    pub(crate) fn waits_on(&self) -> Option<&CellRc> {
        match self {
            Slot::Waiting(c) => Some(c),
            Slot::CancellableWaiting(b) => Some(&b.0),
            _ => None,
        }
    }

    /// Takes out the chain this one waits on (see [`waits_on`](Slot::waits_on)), keeping the
    /// canceller.
    pub(crate) fn take_waits_on(&mut self) -> Option<CellRc> {
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
    /// it held before (a previous source) is given back to be dropped with no borrow held.
    pub(crate) fn hold_source(&mut self, source: CellRc) -> Option<CellRc> {
        let canceller = self.take_canceller();
        let old = self.take_waits_on();
        *self = Slot::Waiting(source);
        if let Some(k) = canceller {
            self.put_canceller(k);
        }
        old
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

    /// Gives an unfired chain that has none its canceller (at creation, or put back after
    /// [`take_canceller`](Slot::take_canceller)).
    pub(crate) fn put_canceller(&mut self, k: Canceller) {
        debug_assert!(matches!(self, Slot::Empty | Slot::Waiting(_)));
        *self = match std::mem::replace(self, Slot::Empty) {
            Slot::Waiting(c) => Slot::CancellableWaiting(Box::new((c, k))),
            _ => Slot::Cancellable(k),
        };
    }
}

/// What cancelling an unfired chain runs (kept in its [`Slot`]).
pub(crate) enum Canceller {
    Once(Box<dyn FnOnce(CellRc)>),
    /// A coroutine's Deferred: cancelling it cancels what the coroutine waits on, every time.
    Coroutine(DriverWeak),
}
