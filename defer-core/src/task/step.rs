//! What one unit of a cooperative task's work yields: [`Step`], and [`IntoStep`] for the item
//! types a task's iterator may have.

use crate::deferred::Deferred;
use crate::failure::Failure;

/// What one `next()` of a [`CooperativeTask`](super::CooperativeTask)'s iterator asks of its
/// cooperator. Twisted's iterators yield anything, and a Deferred means "wait"; a Rust iterator
/// has one item type, so its items convert into this ([`IntoStep`]).
///
/// ```
/// use defer_core::{Deferred, task::{Clock, Cooperator, Step}, testing::*};
/// use std::time::Duration;
/// let clock = Clock::new();
/// let (d, trigger) = Deferred::<()>::new();
/// let done = Cooperator::new(clock.clone()).coiterate(vec![Step::Continue, Step::Wait(d), Step::Continue]);
/// clock.advance(Duration::from_secs(1));
/// assert_no_result(&done);          // waiting for `d`
/// trigger.callback(());
/// clock.advance(Duration::from_secs(1));
/// success_result_of(done);
/// ```
#[derive(Debug)]
pub enum Step {
    /// Go on: the cooperator may run this task again when its turn comes.
    Continue,
    /// Pause the task until this Deferred fires; a failure of it fails the task.
    Wait(Deferred<()>),
    /// The task fails with this failure (Twisted: `next()` raised).
    Fail(Failure),
}

/// An item type a cooperative task's iterator may have: converts into a [`Step`].
///
/// - `()` and `Ok(_)` (of `Result<T, Failure>`, whose value is ignored as Twisted ignores yielded
///   values): go on;
/// - `Err(failure)`: the task fails;
/// - a `Deferred<T>`: wait for it (its value is ignored);
/// - `Option<Deferred<T>>`: `None` goes on, `Some(d)` waits, for iterators that wait only
///   sometimes;
/// - a [`Step`] itself.
///
/// ```
/// use defer_core::{Deferred, Failure, task::IntoStep, task::Step};
/// assert!(matches!(().into_step(), Step::Continue));
/// assert!(matches!(Ok::<u8, Failure>(1).into_step(), Step::Continue));
/// assert!(matches!(Err::<u8, _>(Failure::msg("x")).into_step(), Step::Fail(_)));
/// assert!(matches!(None::<Deferred<u8>>.into_step(), Step::Continue));
/// assert!(matches!(Some(defer_core::succeed(1)).into_step(), Step::Wait(_)));
/// ```
pub trait IntoStep: 'static {
    /// The step this item stands for.
    fn into_step(self) -> Step;
}

impl IntoStep for Step {
    fn into_step(self) -> Step {
        self
    }
}

impl IntoStep for () {
    fn into_step(self) -> Step {
        Step::Continue
    }
}

impl<T: 'static> IntoStep for Result<T, Failure> {
    fn into_step(self) -> Step {
        match self {
            Ok(_) => Step::Continue,
            Err(f) => Step::Fail(f),
        }
    }
}

impl<T: 'static> IntoStep for Deferred<T> {
    fn into_step(self) -> Step {
        Step::Wait(self.add_callback(|_| Ok(())))
    }
}

impl<T: 'static> IntoStep for Option<Deferred<T>> {
    fn into_step(self) -> Step {
        match self {
            Some(d) => d.into_step(),
            None => Step::Continue,
        }
    }
}
