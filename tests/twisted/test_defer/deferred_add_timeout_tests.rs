//! Ports of Twisted's `test_defer.py` `DeferredAddTimeoutTests`.
//!
//! `addTimeout(t, clock, onTimeoutCancel=f)` is `add_timeout_with(t, &clock, f)`. `_overrideFunc`
//! returns "OVERRIDDEN" whatever the Deferred's type; here the type must match, so the
//! Deferreds of the `Custom` variants carry a `&str`. Twisted checks that an inner Deferred
//! returned after the timeout point is not cancelled with `assertNoResult(innerDeferred)`; the
//! inner Deferred is moved into the chain here, so the ports check its producer was not
//! cancelled, and that the outer chain still waits on it.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use defer_core::clock::Clock;
use defer_core::errors::{CancelledError, TimeoutError};
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{Deferred, Failure};

error_kind!(ValueError);

/// Twisted's `_overrideFunc`.
fn override_func<T>(_v: Result<T, Failure>, _t: Duration) -> Result<&'static str, Failure> {
    Ok("OVERRIDDEN")
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

type Slot<T> = Rc<RefCell<Option<T>>>;

#[test]
fn test_timeout_chainable() {
    let (d, t) = Deferred::<()>::new();
    let d = d.add_timeout(secs(5), &Clock::new());
    let d = d.add_callback(|_| Ok("done"));
    t.callback(());
    assert_eq!("done", success_result_of(d));
}

/// The success half of `test_successResultBeforeTimeout` and its `Custom` variant.
fn success_before_timeout(custom: bool) {
    let clock = Clock::new();
    let (d, t) = Deferred::<&str>::new();
    let d = if custom {
        d.add_timeout_with(secs(10), &clock, override_func)
    } else {
        d.add_timeout(secs(10), &clock)
    };
    // addTimeout is added first, so that if d were timed out it would be cancelled before
    // innerDeferred is returned from a callback on d.
    let (inner_deferred, inner) = Deferred::<&str>::new();
    let d_callbacked: Slot<&str> = Rc::default();
    let dc = d_callbacked.clone();
    let d = d.add_callback(move |results| {
        *dc.borrow_mut() = Some(results);
        inner_deferred
    });
    t.callback("results");
    // d is callbacked at once, before innerDeferred is returned from the callback on d.
    assert_eq!(*d_callbacked.borrow(), Some("results"));
    // The timeout never happens: if it did, d would be cancelled, and innerDeferred with it.
    clock.advance(secs(15));
    assert!(!inner.is_cancelled());
    assert_no_result(&d);
}

#[test]
fn test_success_result_before_timeout() {
    success_before_timeout(false);
}

#[test]
fn test_success_result_before_timeout_custom() {
    success_before_timeout(true);
}

/// `test_failureBeforeTimeout` and its `Custom` variant.
fn failure_before_timeout(custom: bool) {
    let clock = Clock::new();
    let (d, t) = Deferred::<&str>::new();
    let d = if custom {
        d.add_timeout_with(secs(10), &clock, override_func)
    } else {
        d.add_timeout(secs(10), &clock)
    };
    let (inner_deferred, inner) = Deferred::<&str>::new();
    let d_errbacked: Slot<Failure> = Rc::default();
    let de = d_errbacked.clone();
    let d = d.add_errback(move |f| {
        *de.borrow_mut() = Some(f);
        inner_deferred
    });
    let error = Failure::new(ValueError::new("fail"));
    t.errback(error.clone());
    // d is errbacked at once, with that very failure.
    assert!(d_errbacked.borrow().as_ref().unwrap().same_as(&error));
    assert!(d_errbacked.borrow().as_ref().unwrap().check::<ValueError>());
    clock.advance(secs(15));
    assert!(!inner.is_cancelled());
    assert_no_result(&d);
}

#[test]
fn test_failure_before_timeout() {
    failure_before_timeout(false);
}

#[test]
fn test_failure_before_timeout_custom() {
    failure_before_timeout(true);
}

#[test]
fn test_timed_out() {
    let clock = Clock::new();
    let (d, _t) = Deferred::<()>::new();
    let d = d.add_timeout(secs(10), &clock);
    assert_no_result(&d);
    clock.advance(secs(15));
    assert!(failure_result_of(d).check::<TimeoutError>());
}

#[test]
fn test_timed_out_custom() {
    let clock = Clock::new();
    let (d, _t) = Deferred::<&str>::new();
    let d = d.add_timeout_with(secs(10), &clock, override_func);
    assert_no_result(&d);
    clock.advance(secs(15));
    assert_eq!("OVERRIDDEN", success_result_of(d));
}

#[test]
fn test_timed_out_provided_cancel_success() {
    let clock = Clock::new();
    let (d, _t) = Deferred::<&str>::with_canceller(|c| {
        c.callback("I was cancelled!");
    });
    let d = d.add_timeout(secs(10), &clock);
    assert_no_result(&d);
    clock.advance(secs(15));
    assert_eq!(success_result_of(d), "I was cancelled!");
}

#[test]
fn test_timed_out_provided_cancel_failure() {
    let clock = Clock::new();
    let error = Failure::new(ValueError::new("what!"));
    let e = error.clone();
    let (d, _t) = Deferred::<()>::with_canceller(move |c| {
        c.errback(e);
    });
    let d = d.add_timeout(secs(10), &clock);
    assert_no_result(&d);
    clock.advance(secs(15));
    let f = failure_result_of(d);
    assert!(f.check::<ValueError>());
    assert!(f.same_as(&error));
}

/// `test_cancelBeforeTimeout` and its `Custom` variant.
fn cancel_before_timeout(custom: bool) {
    let clock = Clock::new();
    let (d, _t) = Deferred::<&str>::new();
    let d = if custom {
        d.add_timeout_with(secs(10), &clock, override_func)
    } else {
        d.add_timeout(secs(10), &clock)
    };
    let (inner_deferred, inner) = Deferred::<&str>::new();
    let d_canceled: Slot<Failure> = Rc::default();
    let dc = d_canceled.clone();
    let d = d.add_errback(move |f| {
        *dc.borrow_mut() = Some(f);
        inner_deferred
    });
    d.cancel();
    // d is cancelled at once, and the original CancelledError is kept (no override).
    assert!(
        d_canceled
            .borrow()
            .as_ref()
            .unwrap()
            .check::<CancelledError>()
    );
    // The timeout never happens: if it did, d would be cancelled again, and innerDeferred too.
    clock.advance(secs(15));
    assert!(!inner.is_cancelled());
    assert_no_result(&d);
}

#[test]
fn test_cancel_before_timeout() {
    cancel_before_timeout(false);
}

#[test]
fn test_cancel_before_timeout_custom() {
    cancel_before_timeout(true);
}

#[test]
fn test_provided_cancel_called_before_timeout_custom() {
    let clock = Clock::new();
    let (d, _t) = Deferred::<&str>::with_canceller(|c| {
        c.errback(ValueError::new("what!"));
    });
    let d = d.add_timeout_with(secs(10), &clock, override_func);
    assert_no_result(&d);
    clock.advance(secs(15));
    assert_eq!("OVERRIDDEN", success_result_of(d));
}

/// An errback, added before the timeout, that records the failure and returns it.
fn recording_errback<T>(
    slot: &Slot<Failure>,
) -> impl FnOnce(Failure) -> Result<T, Failure> + use<T> {
    let s = slot.clone();
    move |f| {
        *s.borrow_mut() = Some(f.clone());
        Err(f)
    }
}

#[test]
fn test_errback_added_before_timeout() {
    let clock = Clock::new();
    let (d, _t) = Deferred::<()>::new();
    let d_errbacked: Slot<Failure> = Rc::default();
    let d = d.add_errback(recording_errback(&d_errbacked));
    let d = d.add_timeout(secs(10), &clock);
    clock.advance(secs(15));
    assert!(
        d_errbacked
            .borrow()
            .as_ref()
            .unwrap()
            .check::<CancelledError>()
    );
    assert!(failure_result_of(d).check::<TimeoutError>());
}

#[test]
fn test_errback_added_before_timeout_suppresses_cancellation() {
    let clock = Clock::new();
    let (d, _t) = Deferred::<()>::new();
    let d_errbacked: Slot<Failure> = Rc::default();
    let de = d_errbacked.clone();
    let d = d.add_errback(move |f| {
        *de.borrow_mut() = Some(f.clone());
        f.trap::<CancelledError>()?;
        Ok(())
    });
    let d = d.add_timeout(secs(10), &clock);
    clock.advance(secs(15));
    assert!(
        d_errbacked
            .borrow()
            .as_ref()
            .unwrap()
            .check::<CancelledError>()
    );
    success_result_of(d);
}

#[test]
fn test_errback_added_before_timeout_custom() {
    let clock = Clock::new();
    let (d, _t) = Deferred::<&str>::new();
    let d_errbacked: Slot<Failure> = Rc::default();
    let d = d.add_errback(recording_errback(&d_errbacked));
    let d = d.add_timeout_with(secs(10), &clock, override_func);
    clock.advance(secs(15));
    assert!(
        d_errbacked
            .borrow()
            .as_ref()
            .unwrap()
            .check::<CancelledError>()
    );
    assert_eq!("OVERRIDDEN", success_result_of(d));
}

#[test]
fn test_errback_added_before_timeout_suppresses_cancellation_custom() {
    let clock = Clock::new();
    let (d, _t) = Deferred::<&str>::new();
    let d_errbacked: Slot<Failure> = Rc::default();
    let de = d_errbacked.clone();
    let d = d.add_errback(move |f| {
        *de.borrow_mut() = Some(f);
        Ok("suppressed")
    });
    let d = d.add_timeout_with(secs(10), &clock, override_func);
    clock.advance(secs(15));
    assert!(
        d_errbacked
            .borrow()
            .as_ref()
            .unwrap()
            .check::<CancelledError>()
    );
    assert_eq!("OVERRIDDEN", success_result_of(d));
}

/// `test_callbackAddedToCancelerBeforeTimeout` and its `Custom` variant.
fn callback_added_to_canceler_before_timeout(custom: bool) {
    let clock = Clock::new();
    let success = "success";
    let (d, _t) = Deferred::<&str>::with_canceller(move |d| {
        d.callback(success);
    });
    let d_callbacked: Slot<&str> = Rc::default();
    let dc = d_callbacked.clone();
    let d = d.add_callback(move |value| {
        *dc.borrow_mut() = Some(value);
        Ok(value)
    });
    let d = if custom {
        d.add_timeout_with(secs(10), &clock, override_func)
    } else {
        d.add_timeout(secs(10), &clock)
    };
    clock.advance(secs(15));
    assert_eq!(*d_callbacked.borrow(), Some(success));
    let expected = if custom { "OVERRIDDEN" } else { success };
    assert_eq!(success_result_of(d), expected);
}

#[test]
fn test_callback_added_to_canceler_before_timeout() {
    callback_added_to_canceler_before_timeout(false);
}

#[test]
fn test_callback_added_to_canceler_before_timeout_custom() {
    callback_added_to_canceler_before_timeout(true);
}
