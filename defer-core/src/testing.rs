//! Reading a Deferred's result synchronously in tests, as Twisted's trial does
//! (`successResultOf`, `failureResultOf`, `assertNoResult`, `assertFailure`).
//!
//! | trial | here |
//! |---|---|
//! | `successResultOf(d)` | [`success_result_of`] |
//! | `failureResultOf(d)` | [`failure_result_of`] |
//! | `failureResultOf(d, E)` | [`failure_result_of_kind::<E>`](failure_result_of_kind) |
//! | `failureResultOf(d, E1, E2)` | [`failure_result_of_one_of::<(E1, E2)>`](failure_result_of_one_of) |
//! | `assertNoResult(d)` | [`assert_no_result`] |
//! | `assertFailure(d, E)` | [`assert_failure::<E>`](assert_failure) |
//! | `assertFailure(d, E1, E2)` | [`assert_failure_one_of::<(E1, E2)>`](assert_failure_one_of) |
//! | `flushLoggedErrors()` | [`unhandled_during`] |
//!
//! ```
//! use defer_core::{Deferred, testing::{assert_no_result, success_result_of}};
//! let (d, t) = Deferred::new();
//! let d = d.add_callback(|x: u8| Ok(x + 1));
//! assert_no_result(&d);
//! t.callback(1);
//! assert_eq!(success_result_of(d), 2);
//! ```

use std::error::Error;
use std::fmt;
use std::panic::Location;
use std::rc::Rc;

use crate::deferred::Deferred;
use crate::engine::{self as chain, CellRc, Slot};
use crate::failure::{Failure, Trapped};

fn describe(cell: &CellRc) -> String {
    let Ok(st) = cell.try_borrow() else {
        return "its chain is running".into();
    };
    let paused = if st.pauses > 0 {
        format!(" (paused {} time(s))", st.pauses)
    } else {
        String::new()
    };
    match &st.result {
        Slot::Empty if st.called => format!("its result was already handed on{paused}"),
        Slot::Empty | Slot::Cancellable(_) => format!("it is still pending{paused}"),
        Slot::Value(_) => format!("it holds a success{paused}"),
        // Formatted below, with no borrow held: the error's `Display` is user code.
        Slot::Failure(f) => describe_failure(f.clone(), paused, st),
        Slot::CancellableWaiting(_) => {
            format!("it is pending, chained from another Deferred{paused}")
        }
        Slot::Waiting(_) if !st.called => {
            format!("it is pending, chained from another Deferred{paused}")
        }
        Slot::Waiting(_) => format!("it is waiting on another Deferred{paused}"),
    }
}

fn describe_failure(
    f: Failure,
    paused: String,
    st: crate::engine::raw::shared::Ref<'_, crate::engine::cell::State>,
) -> String {
    drop(st);
    format!("it holds a failure{paused}:\n{f}")
}

/// The success a Deferred holds right now; panics, saying what it held instead, if it has no
/// result or failed. It consumes the result, as trial's `successResultOf` does.
///
/// ```
/// use defer_core::{succeed, testing::success_result_of};
/// assert_eq!(success_result_of(succeed(3)), 3);
/// ```
#[track_caller]
pub fn success_result_of<T: 'static>(d: Deferred<T>) -> T {
    match chain::take_ready(&d.cell()) {
        Some(Ok(value)) => value
            .take::<T>()
            .unwrap_or_else(|f| panic!("success_result_of: {f}")),
        Some(Err(f)) => {
            panic!("success_result_of: expected a success, but the Deferred failed:\n{f}")
        }
        None => panic!(
            "success_result_of: expected a success, but the Deferred has no result: {}",
            describe(&d.cell())
        ),
    }
}

/// The failure a Deferred holds right now; panics, saying what it held instead, if it has no
/// result or succeeded. It consumes the failure, so it is not reported as unhandled.
///
/// ```
/// use defer_core::{fail, Failure, testing::failure_result_of};
/// assert_eq!(failure_result_of(fail::<()>(Failure::msg("x"))).message(), "x");
/// ```
#[track_caller]
pub fn failure_result_of<T: 'static>(d: Deferred<T>) -> Failure {
    match chain::take_ready(&d.cell()) {
        Some(Err(f)) => f,
        Some(Ok(_)) => {
            panic!("failure_result_of: expected a failure, but the Deferred succeeded")
        }
        None => panic!(
            "failure_result_of: expected a failure, but the Deferred has no result: {}",
            describe(&d.cell())
        ),
    }
}

/// The failure a Deferred holds right now, which must be of kind `E` (as
/// [`Failure::check`] matches it: the error or anything in its `source()` chain), typed: trial's
/// `failureResultOf(d, E)`. Panics, saying what the Deferred held instead, if it has no result,
/// succeeded, or failed with another kind. The failure is consumed either way, so it is not
/// reported as unhandled.
///
/// The [`Trapped`] dereferences to the error and gives the whole failure with
/// [`failure`](Trapped::failure) / [`into_failure`](Trapped::into_failure). For "one of several
/// kinds", see [`failure_result_of_one_of`].
///
/// ```
/// use defer_core::{fail, errors::CancelledError, testing::failure_result_of_kind, Deferred};
/// let (d, _producer) = Deferred::<u8>::new();
/// d.cancel();
/// let e = failure_result_of_kind::<CancelledError>(d);
/// assert_eq!(e.to_string(), "the Deferred was cancelled");
///
/// let wrong = std::panic::catch_unwind(|| failure_result_of_kind::<CancelledError>(fail::<u8>(std::fmt::Error)));
/// assert!(wrong.is_err());
/// ```
#[track_caller]
pub fn failure_result_of_kind<E: Error + 'static>(d: Deferred<impl Sized + 'static>) -> Trapped<E> {
    let f = failure_result_of(d);
    match f.trap::<E>() {
        Ok(t) => t,
        Err(f) => panic!(
            "failure_result_of_kind: expected a failure of kind {}, but the Deferred failed with:\n{f}",
            std::any::type_name::<E>()
        ),
    }
}

/// The failure a Deferred holds right now, which must be of one of the kinds `K`, a tuple of
/// error types (`(E1,)`, `(E1, E2)`, … up to eight; see [`FailureKinds`]): trial's
/// `failureResultOf(d, E1, E2)`. Panics, saying what the Deferred held instead, otherwise. The
/// failure is consumed either way.
///
/// ```
/// use defer_core::{fail, errors::{CancelledError, TimeoutError}, testing::failure_result_of_one_of};
/// let f = failure_result_of_one_of::<(CancelledError, TimeoutError)>(fail::<u8>(CancelledError));
/// assert!(f.check::<CancelledError>());
/// ```
#[track_caller]
pub fn failure_result_of_one_of<K: FailureKinds>(d: Deferred<impl Sized + 'static>) -> Failure {
    let f = failure_result_of(d);
    if !K::matches(&f) {
        panic!(
            "failure_result_of_one_of: expected a failure of kind {}, but the Deferred failed with:\n{f}",
            K::describe()
        );
    }
    f
}

/// A list of error kinds, written as a tuple of error types: `(E1,)`, `(E1, E2)`, … up to eight.
/// It is how the `_one_of` helpers take what trial takes as `*expectedFailures`
/// ([`failure_result_of_one_of`], [`assert_failure_one_of`]). A failure is of the list's kinds
/// when [`Failure::check`] matches any of them. (A single kind needs no tuple: use
/// [`failure_result_of_kind`] and [`assert_failure`].)
///
/// ```
/// use defer_core::{Failure, errors::{CancelledError, MessageError}, testing::FailureKinds};
/// type Expected = (CancelledError, MessageError);
/// assert!(Expected::matches(&Failure::msg("x")));
/// assert!(!<(CancelledError,)>::matches(&Failure::msg("x")));
/// assert_eq!(Expected::describe(), "defer_core::errors::CancelledError or defer_core::errors::MessageError");
/// ```
pub trait FailureKinds: 'static {
    /// Whether `failure` is of one of the kinds.
    ///
    /// ```
    /// use defer_core::{Failure, errors::CancelledError, testing::FailureKinds};
    /// assert!(<(CancelledError, std::fmt::Error)>::matches(&Failure::new(std::fmt::Error)));
    /// ```
    fn matches(failure: &Failure) -> bool;

    /// The kinds' type names, for messages: `"A or B"`.
    ///
    /// ```
    /// use defer_core::testing::FailureKinds;
    /// assert_eq!(<(std::fmt::Error,)>::describe(), "core::fmt::Error");
    /// ```
    fn describe() -> String;
}

macro_rules! failure_kinds {
    ($($e:ident),+) => {
        impl<$($e: Error + 'static),+> FailureKinds for ($($e,)+) {
            fn matches(failure: &Failure) -> bool {
                false $(|| failure.check::<$e>())+
            }
            fn describe() -> String {
                [$(std::any::type_name::<$e>()),+].join(" or ")
            }
        }
    };
}
failure_kinds!(A);
failure_kinds!(A, B);
failure_kinds!(A, B, C);
failure_kinds!(A, B, C, D);
failure_kinds!(A, B, C, D, E);
failure_kinds!(A, B, C, D, E, F);
failure_kinds!(A, B, C, D, E, F, G);
failure_kinds!(A, B, C, D, E, F, G, H);

/// For a Deferred that is expected to fail with kind `E`: trial's `assertFailure(d, E)`. The
/// Deferred it returns succeeds with the error (a [`Trapped`], which dereferences to it and keeps
/// the failure) when `d` fails with kind `E`, and fails with an [`AssertionError`] when `d`
/// succeeds or fails with another kind. Unlike [`failure_result_of_kind`], it waits: `d` need
/// not have fired yet, so it fits a test that hands the result on.
///
/// ```
/// use defer_core::{Deferred, errors::CancelledError, testing::*};
/// let (d, producer) = Deferred::<u8>::new();
/// let checked = assert_failure::<CancelledError>(d);
/// assert_no_result(&checked);
/// producer.errback(CancelledError);
/// assert_eq!(success_result_of(checked).to_string(), "the Deferred was cancelled");
///
/// // Succeeding, or failing with another kind, fails the returned Deferred.
/// let e = failure_result_of_kind::<AssertionError>(assert_failure::<CancelledError>(defer_core::succeed(1)));
/// assert!(e.to_string().contains("succeeded"));
/// ```
#[track_caller]
pub fn assert_failure<E: Error + 'static>(
    d: Deferred<impl Sized + 'static>,
) -> Deferred<Trapped<E>> {
    let at = Location::caller();
    d.add_callbacks(
        move |v| {
            let e = AssertionError::succeeded(std::any::type_name::<E>(), &v);
            Err(e.into_failure_at(at))
        },
        move |f| {
            f.trap::<E>().map_err(|f| {
                AssertionError::other_kind(std::any::type_name::<E>(), f).into_failure_at(at)
            })
        },
    )
}

/// [`assert_failure`] for several kinds: trial's `assertFailure(d, E1, E2)`. The Deferred it
/// returns succeeds with `d`'s failure when that is of one of the kinds `K` (a tuple, see
/// [`FailureKinds`]), and fails with an [`AssertionError`] otherwise.
///
/// ```
/// use defer_core::{fail, errors::{CancelledError, TimeoutError}, testing::*};
/// let d = assert_failure_one_of::<(CancelledError, TimeoutError)>(fail::<()>(CancelledError));
/// assert!(success_result_of(d).check::<CancelledError>());
///
/// let d = assert_failure_one_of::<(CancelledError, TimeoutError)>(fail::<()>(std::fmt::Error));
/// let e = failure_result_of_kind::<AssertionError>(d);
/// assert!(e.unexpected_failure().unwrap().check::<std::fmt::Error>());
/// ```
#[track_caller]
pub fn assert_failure_one_of<K: FailureKinds>(
    d: Deferred<impl Sized + 'static>,
) -> Deferred<Failure> {
    let at = Location::caller();
    d.add_callbacks(
        move |v| Err(AssertionError::succeeded(&K::describe(), &v).into_failure_at(at)),
        move |f| {
            if K::matches(&f) {
                Ok(f)
            } else {
                Err(AssertionError::other_kind(&K::describe(), f).into_failure_at(at))
            }
        },
    )
}

/// What [`assert_failure`] and [`assert_failure_one_of`] fail with when the Deferred did not fail
/// as expected: trial's `failureException`. Its message says what happened instead; the failure
/// of an unexpected kind is kept, but not as the [`source`](Error::source), so that
/// [`Failure::check`] on the assertion's failure does not match the unexpected kind.
///
/// ```
/// use defer_core::{succeed, errors::CancelledError, testing::*};
/// let e = failure_result_of_kind::<AssertionError>(assert_failure::<CancelledError>(succeed(5_u8)));
/// assert_eq!(e.to_string(), "expected a failure of kind defer_core::errors::CancelledError, but the Deferred succeeded with a value of type u8");
/// assert!(e.unexpected_failure().is_none());
/// ```
pub struct AssertionError {
    message: String,
    unexpected: Option<Failure>,
}

impl AssertionError {
    fn succeeded<T>(expected: &str, value: &T) -> Self {
        AssertionError {
            message: format!(
                "expected a failure of kind {expected}, but the Deferred succeeded with a value of type {}",
                std::any::type_name_of_val(value)
            ),
            unexpected: None,
        }
    }

    fn other_kind(expected: &str, failure: Failure) -> Self {
        AssertionError {
            message: format!(
                "expected a failure of kind {expected}, but the Deferred failed with:\n{failure}"
            ),
            unexpected: Some(failure),
        }
    }

    fn into_failure_at(self, at: &'static Location<'static>) -> Failure {
        Failure::new_at(self, at)
    }

    /// The failure of another kind that the Deferred failed with, if that is what happened
    /// (`None` when it succeeded).
    ///
    /// ```
    /// use defer_core::{fail, Failure, errors::CancelledError, testing::*};
    /// let d = assert_failure::<CancelledError>(fail::<()>(Failure::msg("other")));
    /// let e = failure_result_of_kind::<AssertionError>(d);
    /// assert_eq!(e.unexpected_failure().unwrap().message(), "other");
    /// ```
    pub fn unexpected_failure(&self) -> Option<&Failure> {
        self.unexpected.as_ref()
    }
}

impl fmt::Display for AssertionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for AssertionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AssertionError({:?})", self.message)
    }
}

impl Error for AssertionError {}

/// Panics if the Deferred has a result (a failure it held is consumed first, so it is not
/// reported twice). Trial's `assertNoResult`.
///
/// ```
/// let (d, _t) = defer_core::Deferred::<u8>::new();
/// defer_core::testing::assert_no_result(&d);
/// ```
#[track_caller]
pub fn assert_no_result<T: 'static>(d: &Deferred<T>) {
    let (ready, failed) = {
        let cell = d.cell();
        let st = cell.borrow();
        (st.is_ready(), matches!(st.result, Slot::Failure(_)))
    };
    if ready {
        let what = describe(&d.cell());
        if failed {
            // Swallowed, as trial does, so the test's panic is the only report.
            drop(chain::take_ready(&d.cell()));
        }
        panic!("assert_no_result: the Deferred has a result: {what}");
    }
}

/// The failures reported as unhandled on this thread while `body` runs, in order, instead of
/// going to the hook (Twisted trial's `flushLoggedErrors`). Use it to assert that a chain does, or
/// does not, lose a failure.
///
/// ```
/// use defer_core::{fail, Failure, testing::unhandled_during};
/// let lost = unhandled_during(|| drop(fail::<()>(Failure::msg("nobody caught me"))));
/// assert_eq!(lost.len(), 1);
/// assert_eq!(lost[0].message(), "nobody caught me");
/// assert!(unhandled_during(|| drop(fail::<()>(Failure::msg("caught")).add_errback(|_| Ok(())))).is_empty());
/// ```
pub fn unhandled_during(body: impl FnOnce()) -> Vec<Failure> {
    let seen: Rc<std::cell::RefCell<Vec<Failure>>> = Rc::default();
    let s = seen.clone();
    crate::unhandled::with_hook(move |f| s.borrow_mut().push(f.clone()), body);
    seen.take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::errors::{CancelledError, MessageError, TimeoutError};
    use crate::{fail, succeed};

    fn panic_message(body: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(body).expect_err("it panics");
        match payload.downcast_ref::<&str>() {
            Some(s) => s.to_string(),
            None => payload
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default(),
        }
    }

    #[test]
    fn failure_result_of_kind_says_what_the_deferred_held_instead() {
        let m = panic_message(|| drop(failure_result_of_kind::<CancelledError>(succeed(1))));
        assert!(m.contains("succeeded"), "{m}");
        let m = panic_message(|| {
            let (d, _t) = Deferred::<u8>::new();
            drop(failure_result_of_kind::<CancelledError>(d));
        });
        assert!(m.contains("no result"), "{m}");
        let wrong = unhandled_during(|| {
            let m = panic_message(|| {
                drop(failure_result_of_kind::<CancelledError>(fail::<u8>(
                    Failure::msg("other"),
                )))
            });
            assert!(m.contains("CancelledError") && m.contains("other"), "{m}");
        });
        assert!(wrong.is_empty(), "the failure was consumed: {wrong:?}");
    }

    #[test]
    fn one_of_matches_any_listed_kind_and_only_those() {
        type Two = (CancelledError, MessageError);
        let f = failure_result_of_one_of::<Two>(fail::<u8>(Failure::msg("m")));
        assert_eq!(f.message(), "m");
        let m = panic_message(|| {
            drop(failure_result_of_one_of::<(CancelledError, TimeoutError)>(
                fail::<u8>(Failure::msg("m")),
            ))
        });
        assert!(m.contains("CancelledError or"), "{m}");
    }

    #[test]
    fn assert_failure_waits_and_keeps_the_unexpected_kind_out_of_check() {
        let (d, t) = Deferred::<u8>::new();
        let checked = assert_failure::<CancelledError>(d);
        assert_no_result(&checked);
        t.errback(Failure::msg("other kind"));
        let f = failure_result_of(checked);
        assert!(f.check::<AssertionError>());
        assert!(
            !f.check::<MessageError>(),
            "not the source: check sees only the assertion"
        );
        let e = f.downcast_ref::<AssertionError>().unwrap();
        assert_eq!(e.unexpected_failure().unwrap().message(), "other kind");
        assert_eq!(
            f.location().file(),
            file!(),
            "where assert_failure was called"
        );

        let d = assert_failure_one_of::<(CancelledError,)>(succeed("v"));
        let e = failure_result_of_kind::<AssertionError>(d);
        assert!(e.to_string().contains("&str"), "{e}");
    }
}
