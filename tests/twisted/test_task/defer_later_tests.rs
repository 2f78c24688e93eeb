//! Ports of Twisted's `test_task.py` `DeferLaterTests`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use defer_core::errors::CancelledError;
use defer_core::task::{Clock, defer_later};
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{Failure, fail};

error_kind!(TestException);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn test_callback() {
    let results = Rc::new(RefCell::new(Vec::new()));
    let flag = Rc::new(());
    let (r, f) = (results.clone(), flag.clone());
    let (foo, bar) = ("foo", "bar");
    let clock = Clock::new();
    let d = defer_later(&clock, secs(3.0), move || {
        r.borrow_mut().push((foo, bar));
        Ok(f)
    });
    clock.advance(secs(2.0));
    assert!(results.borrow().is_empty());
    clock.advance(secs(1.0));
    assert_eq!(*results.borrow(), [("foo", "bar")]);
    assert!(Rc::ptr_eq(&success_result_of(d), &flag));
}

#[test]
fn test_errback() {
    let clock = Clock::new();
    let d = defer_later(&clock, secs(1.0), || {
        fail::<()>(TestException::new("raised"))
    });
    clock.advance(secs(1.0));
    assert!(failure_result_of(d).check::<TestException>());
    // A raising callable written as `Err`:
    let d = defer_later(&clock, secs(1.0), || {
        Err::<(), Failure>(TestException::new("raised").into())
    });
    clock.advance(secs(1.0));
    assert!(failure_result_of(d).check::<TestException>());
}

#[test]
fn test_cancel() {
    let called = Rc::new(RefCell::new(Vec::new()));
    let clock = Clock::new();
    let c = called.clone();
    let d = defer_later(&clock, secs(1.0), move || {
        c.borrow_mut().push(());
        Ok(())
    });
    d.cancel();
    let f = failure_result_of(d);
    assert!(f.check::<CancelledError>());
    // Make sure there are no calls outstanding.
    assert!(clock.pending_calls().is_empty());
    // And make sure the call didn't somehow happen already.
    clock.advance(secs(1.0));
    assert!(called.borrow().is_empty());
}

#[test]
fn test_no_callback() {
    let clock = Clock::new();
    // Twisted's `deferLater(clock, 2.0)` with no callable: nothing to compute.
    let d = defer_later(&clock, secs(2.0), || Ok(()));
    assert_no_result(&d);
    clock.advance(secs(2.0));
    let () = success_result_of(d);
}
