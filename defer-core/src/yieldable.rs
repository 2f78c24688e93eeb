//! [`Yieldable`]: what `yield_!` accepts, and the compile error for anything else.

use crate::{Deferred, DeferredFuture};

/// What [`yield_!`](crate::yield_) waits for: a [`Deferred`], and nothing else.
///
/// `yield_!(x)` requires `x: Yieldable<T>`, where `T` is what the Deferred fires with. The trait exists for its compile error: `yield_!` of an
/// `async fn`'s future, or of any other value, says which type was given and how to turn it into
/// a Deferred ([`ensure_deferred`](crate::ensure_deferred) for a future that needs no runtime,
/// `defer_core::tokio::from_future` for one that needs tokio, [`succeed`](crate::succeed) for a
/// plain value). Sealed: implemented only for `Deferred<T>`.
///
/// ```
/// use defer_core::{Deferred, Failure, ensure_deferred, inline_callbacks, yield_, testing::success_result_of};
///
/// async fn fetch() -> Result<u32, Failure> { Ok(41) }
///
/// #[inline_callbacks]
/// fn total() -> Deferred<u32> {
///     // `yield_!(fetch())` does not compile: a future is not a Deferred.
///     let v = yield_!(ensure_deferred(fetch()))?;
///     Ok(v + 1)
/// }
/// assert_eq!(success_result_of(total()), 42);
/// ```
#[diagnostic::on_unimplemented(
    message = "`yield_!` waits for a `Deferred`, and `{Self}` is not one",
    label = "not a `Deferred`",
    note = "a future (an `async fn`'s, an `async` block) becomes a Deferred with \
            `defer_core::ensure_deferred(future)`, or with `defer_core::tokio::from_future(future)` \
            when it needs the tokio runtime; a plain value is `defer_core::succeed(value)`"
)]
// `T` is a parameter rather than an associated type: with an associated type, the await of a
// non-Deferred would be a second error (its output type cannot be named), and the point of the
// trait is one error, at the user's expression.
pub trait Yieldable<T: 'static>: sealed::Sealed + Sized {
    /// What `yield_!(d)` becomes: an await of `d` that records the yield point in failures.
    /// Not a method (no `self`): a `Deferred` moved twice is then reported as moved by the
    /// `yield_!`, not by a method call.
    #[doc(hidden)]
    fn __yield_point(
        deferred: Self,
        at: &'static std::panic::Location<'static>,
    ) -> DeferredFuture<T>;
}

mod sealed {
    pub trait Sealed {}
    impl<T> Sealed for crate::Deferred<T> {}
}

impl<T: 'static> Yieldable<T> for Deferred<T> {
    #[inline]
    fn __yield_point(
        deferred: Self,
        at: &'static std::panic::Location<'static>,
    ) -> DeferredFuture<T> {
        crate::coroutine::yield_point(deferred, at)
    }
}
