//! Reading a Deferred's result synchronously in tests, as Twisted's trial does
//! (`successResultOf`, `failureResultOf`, `assertNoResult`).
//!
//! ```
//! use defer_core::{Deferred, testing::{assert_no_result, success_result_of}};
//! let (d, t) = Deferred::new();
//! let d = d.add_callback(|x: u8| Ok(x + 1));
//! assert_no_result(&d);
//! t.callback(1);
//! assert_eq!(success_result_of(d), 2);
//! ```

use std::rc::Rc;

use crate::deferred::Deferred;
use crate::engine::{self as chain, Cell, Slot};
use crate::failure::Failure;

fn describe(cell: &Rc<Cell>) -> String {
    let Ok(st) = cell.st.try_borrow() else {
        return "its chain is running".into();
    };
    let paused = if st.pauses > 0 {
        format!(" (paused {} time(s))", st.pauses)
    } else {
        String::new()
    };
    match &st.result {
        Slot::Empty if st.called => format!("its result was already handed on{paused}"),
        Slot::Empty => format!("it is still pending{paused}"),
        Slot::Value(_) => format!("it holds a success{paused}"),
        // Formatted below, with no borrow held: the error's `Display` is user code.
        Slot::Failure(f) => describe_failure(f.clone(), paused, st),
        Slot::Waiting(_) if !st.called => {
            format!("it is pending, chained from another Deferred{paused}")
        }
        Slot::Waiting(_) => format!("it is waiting on another Deferred{paused}"),
    }
}

fn describe_failure(
    f: Failure,
    paused: String,
    st: std::cell::Ref<'_, crate::engine::cell::State>,
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
        let st = cell.st.borrow();
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
