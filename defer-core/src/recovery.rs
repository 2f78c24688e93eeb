//! What an errback may return: [`Recovery`], which adds `Result<Deferred<T>, _>` to what any step
//! returns, so that Twisted's `f.trap(E); return more_work()` is
//! `f.trap::<E>()?; Ok(more_work())`.
//!
//! # Why only errbacks, and why [`StepFailure`]
//!
//! A step's [`Outcome`](crate::Outcome) is `Result<U, Failure>` for *every* `U`, a `Deferred<U>`
//! included, so `Result<Deferred<U>, Failure>` already means "succeed with a Deferred as the
//! value", and Rust has no way to give it a second meaning. An errback's output type is known
//! (the chain's own `T`), and that is what lets [`Recovery<T>`] tell the two apart:
//! `Result<T, Failure>` recovers with a value, `Result<Deferred<T>, StepFailure>` with a Deferred to
//! wait for. Its error type is [`StepFailure`] rather than `Failure` so that an errback that only
//! re-raises (`|f| Err(f)`) still has one reading and infers with no annotation. Nobody writes
//! `StepFailure`: `?` converts into it, and the closure's type is inferred.

use std::error::Error;
use std::fmt;

use crate::deferred::Deferred;
use crate::engine::outcome::StepResult;
use crate::failure::Failure;

/// What an errback ([`add_errback`](crate::Deferred::add_errback), the second function of
/// [`add_callbacks`](crate::Deferred::add_callbacks)) returns for a chain of `T`: `Ok(t)` /
/// `Err(failure)` (or `?`), a `Deferred<T>` to wait for, or `Ok(deferred)` after a `?`.
///
/// ```
/// use defer_core::{Deferred, Failure, fail, succeed, errors::CancelledError, testing::success_result_of};
///
/// fn more_work() -> Deferred<&'static str> { succeed("retried") }
///
/// // Twisted: d.addErrback(lambda f: (f.trap(CancelledError), more_work())[1])
/// let d = fail::<&str>(CancelledError).add_errback(|f| {
///     f.trap::<CancelledError>()?;      // anything else goes on down the chain
///     Ok(more_work())                    // the chain waits for this Deferred
/// });
/// assert_eq!(success_result_of(d), "retried");
/// ```
#[diagnostic::on_unimplemented(
    message = "an errback of a `Deferred<{T}>` returns `Result<{T}, Failure>` or a `Deferred<{T}>`, not `{Self}`",
    label = "wrap the value in `Ok(..)`: an errback returns `Ok(value)`, `Err(failure)`, a `Deferred`, or `Ok(deferred)` after a `?`",
    note = "Twisted's `return value` in an errback is `Ok(value)` here, and re-raising is `Err(failure)` or `?`"
)]
pub trait Recovery<T: 'static>: sealed::Sealed + 'static {
    #[doc(hidden)]
    fn into_step_result(self) -> StepResult<T>;
}

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for Result<T, crate::Failure> {}
    impl<T> Sealed for crate::Deferred<T> {}
    impl<T> Sealed for Result<crate::Deferred<T>, super::StepFailure> {}
}

impl<T: 'static> Recovery<T> for Result<T, Failure> {
    #[inline]
    fn into_step_result(self) -> StepResult<T> {
        match self {
            Ok(v) => StepResult::Ok(v),
            Err(f) => StepResult::Err(f),
        }
    }
}

impl<T: 'static> Recovery<T> for Deferred<T> {
    #[inline]
    fn into_step_result(self) -> StepResult<T> {
        StepResult::Wait(self)
    }
}

impl<T: 'static> Recovery<T> for Result<Deferred<T>, StepFailure> {
    #[inline]
    fn into_step_result(self) -> StepResult<T> {
        match self {
            Ok(d) => StepResult::Wait(d),
            Err(e) => StepResult::Err(e.0),
        }
    }
}

/// The error type of an errback that returns `Ok(deferred)` after a `?` (see [`Recovery`]): a
/// [`Failure`], converted from one or from any [`Error`] by `?`, as `Failure` is. Not written by
/// hand; the errback's return type is inferred.
///
/// ```
/// use defer_core::{Failure, StepFailure};
/// let e: StepFailure = Failure::msg("no").into();
/// assert_eq!(e.into_failure().message(), "no");
/// ```
pub struct StepFailure(Failure);

impl StepFailure {
    /// The failure.
    ///
    /// ```
    /// let e: defer_core::StepFailure = std::fmt::Error.into();
    /// assert!(e.into_failure().check::<std::fmt::Error>());
    /// ```
    pub fn into_failure(self) -> Failure {
        self.0
    }
}

impl From<Failure> for StepFailure {
    fn from(failure: Failure) -> Self {
        StepFailure(failure)
    }
}

impl<E: Error + 'static> From<E> for StepFailure {
    #[track_caller]
    fn from(error: E) -> Self {
        StepFailure(Failure::new(error))
    }
}

impl fmt::Debug for StepFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}
