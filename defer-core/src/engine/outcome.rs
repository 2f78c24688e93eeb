//! What a step may return: the [`Outcome`] trait.

use crate::deferred::Deferred;
use crate::failure::Failure;

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for Result<T, crate::Failure> {}
    impl<T> Sealed for crate::Deferred<T> {}
    impl<T: 'static> Sealed for super::StepResult<T> {}
}

/// What a step returns: either `Result<U, Failure>` (`Ok` is a success, `Err` or `?` a failure)
/// or a [`Deferred<U>`](Deferred), whose result the chain then waits for.
///
/// It is implemented for exactly those two families, which is what lets `|x| Ok(x + 1)` and `?`
/// inside a closure infer without annotations. Sealed.
///
/// ```
/// use defer_core::{succeed, testing::success_result_of};
///
/// let d = succeed(1)
///     .add_callback(|x| Ok(x + 1))                 // a Result
///     .add_callback(|x| succeed(x * 10))           // a Deferred
///     .add_callback(|x| Ok::<_, defer_core::Failure>(format!("{x}")));
/// assert_eq!(success_result_of(d), "20");
/// ```
#[diagnostic::on_unimplemented(
    message = "a step returns `Result<_, Failure>` or a `Deferred`, not `{Self}`",
    label = "wrap the value in `Ok(..)`: a step returns `Ok(value)`, `Err(failure)` or a `Deferred`",
    note = "Twisted's `return value` in a callback is `Ok(value)` here, and `raise` is `Err(failure)` or `?`"
)]
pub trait Outcome: sealed::Sealed + 'static {
    /// The success type of the chain after the step.
    type Value: 'static;

    #[doc(hidden)]
    fn into_step_result(self) -> StepResult<Self::Value>;
}

/// How the chain sees a step's [`Outcome`]. Internal.
#[doc(hidden)]
pub enum StepResult<T: 'static> {
    Ok(T),
    Err(Failure),
    Wait(Deferred<T>),
}

impl<T: 'static> Outcome for Result<T, Failure> {
    type Value = T;
    #[inline]
    fn into_step_result(self) -> StepResult<T> {
        match self {
            Ok(v) => StepResult::Ok(v),
            Err(f) => StepResult::Err(f),
        }
    }
}

impl<T: 'static> Outcome for Deferred<T> {
    type Value = T;
    #[inline]
    fn into_step_result(self) -> StepResult<T> {
        StepResult::Wait(self)
    }
}

/// What an errback's [`Recovery`](crate::Recovery) becomes: the errback's result as the chain
/// sees it.
impl<T: 'static> Outcome for StepResult<T> {
    type Value = T;
    #[inline]
    fn into_step_result(self) -> StepResult<T> {
        self
    }
}
