//! Ports of Twisted's `test_defer.py` `DeferredCancellerTests`.
//!
//! Twisted's `AlreadyCalledError` for a second fire is a compile error here (the trigger is
//! consumed by the first fire: ui `c17_fire_twice.rs`); a fire after `cancel` returns `false`, so
//! the producer is told that it was ignored.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use defer_core::errors::CancelledError;
use defer_core::testing::success_result_of;
use defer_core::{Deferred, Failure, Trigger};

error_kind!(GenericError);

/// Twisted's `setUp`/`tearDown`: what `_callback`, `_errback` and the canceller saw.
#[derive(Default)]
struct Seen {
    callback_results: Rc<RefCell<Option<String>>>,
    errback_results: Rc<RefCell<Option<Failure>>>,
    canceller_call_count: Rc<Cell<u32>>,
}

impl Seen {
    /// `d.addCallbacks(self._callback, self._errback)`.
    fn add_callbacks(&self, d: Deferred<String>) -> Deferred<()> {
        let (cb, eb) = (self.callback_results.clone(), self.errback_results.clone());
        d.add_callbacks(
            move |data| {
                *cb.borrow_mut() = Some(data);
                Ok(())
            },
            move |error| {
                *eb.borrow_mut() = Some(error);
                Ok(())
            },
        )
    }

    /// A canceller that counts its calls and then does `then` with its Deferred's trigger.
    fn canceller<F>(&self, then: F) -> impl FnOnce(Trigger<String>) + 'static + use<F>
    where
        F: FnOnce(Trigger<String>) + 'static,
    {
        let count = self.canceller_call_count.clone();
        move |t| {
            count.set(count.get() + 1);
            then(t)
        }
    }

    fn errback_type_is<E: std::error::Error + 'static>(&self) -> bool {
        self.errback_results
            .borrow()
            .as_ref()
            .is_some_and(|f| f.check::<E>())
    }
}

impl Drop for Seen {
    /// Twisted's `tearDown`: the canceller was called at most once.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(self.canceller_call_count.get() <= 1);
        }
    }
}

#[test]
fn test_no_canceller() {
    let seen = Seen::default();
    let (d, _producer) = Deferred::<String>::new();
    let d = seen.add_callbacks(d);
    d.cancel();
    assert!(seen.errback_type_is::<CancelledError>());
    assert!(seen.callback_results.borrow().is_none());
}

#[test]
fn test_raises_after_cancel_and_callback() {
    let seen = Seen::default();
    let (d, producer) = Deferred::<String>::new();
    let d = seen.add_callbacks(d);
    d.cancel();
    // A single extra callback is swallowed (and the producer told so); a second fire does not
    // compile (ui c17_fire_twice.rs).
    assert!(!producer.callback("late".into()));
    assert!(seen.callback_results.borrow().is_none());
    assert!(seen.errback_type_is::<CancelledError>());
}

#[test]
fn test_raises_after_cancel_and_errback() {
    let seen = Seen::default();
    let (d, producer) = Deferred::<String>::new();
    let d = seen.add_callbacks(d);
    d.cancel();
    assert!(!producer.errback(GenericError::new("late")));
    assert!(seen.errback_type_is::<CancelledError>());
}

#[test]
fn test_no_canceller_multiple_cancels_after_cancel_and_callback() {
    let seen = Seen::default();
    let (d, producer) = Deferred::<String>::new();
    let d = seen.add_callbacks(d);
    d.cancel();
    let current_failure = seen.errback_results.borrow().clone().unwrap();
    producer.callback("ignored".into());
    d.cancel();
    assert!(current_failure.same_as(seen.errback_results.borrow().as_ref().unwrap()));
}

#[test]
fn test_no_canceller_multiple_cancels_after_cancel_and_errback() {
    let seen = Seen::default();
    let (d, producer) = Deferred::<String>::new();
    let d = seen.add_callbacks(d);
    d.cancel();
    assert!(seen.errback_type_is::<CancelledError>());
    let current_failure = seen.errback_results.borrow().clone().unwrap();
    producer.errback(GenericError::new("ignored"));
    assert!(seen.errback_type_is::<CancelledError>());
    d.cancel();
    assert!(current_failure.same_as(seen.errback_results.borrow().as_ref().unwrap()));
}

#[test]
fn test_no_canceller_multiple_cancel() {
    let seen = Seen::default();
    let (d, _producer) = Deferred::<String>::new();
    let d = seen.add_callbacks(d);
    d.cancel();
    assert!(seen.errback_type_is::<CancelledError>());
    let current_failure = seen.errback_results.borrow().clone().unwrap();
    d.cancel();
    assert!(current_failure.same_as(seen.errback_results.borrow().as_ref().unwrap()));
}

#[test]
fn test_canceller_multiple_cancel() {
    let seen = Seen::default();
    let (d, _producer) = Deferred::with_canceller(seen.canceller(drop));
    let d = seen.add_callbacks(d);
    d.cancel();
    assert!(seen.errback_type_is::<CancelledError>());
    let current_failure = seen.errback_results.borrow().clone().unwrap();
    d.cancel();
    assert!(current_failure.same_as(seen.errback_results.borrow().as_ref().unwrap()));
    assert_eq!(seen.canceller_call_count.get(), 1);
}

#[test]
fn test_simple_canceller() {
    let seen = Seen::default();
    let kept = Rc::new(RefCell::new(None));
    let k = kept.clone();
    let (d, producer) =
        Deferred::with_canceller(seen.canceller(move |t| *k.borrow_mut() = Some(t)));
    let d = seen.add_callbacks(d);
    d.cancel();
    assert_eq!(seen.canceller_call_count.get(), 1);
    assert!(seen.errback_type_is::<CancelledError>());
    // Further fires are not swallowed: both sides are refused (Twisted's AlreadyCalledError).
    let from_canceller: Trigger<String> = kept.borrow_mut().take().unwrap();
    assert!(!from_canceller.callback("late".into()));
    assert!(!producer.errback(GenericError::new("late")));
    assert!(seen.errback_type_is::<CancelledError>());
}

#[test]
fn test_canceller_arg() {
    let seen = Seen::default();
    let given = Rc::new(RefCell::new(String::new()));
    let g = given.clone();
    let (d, producer) = Deferred::with_canceller(move |t: Trigger<String>| {
        *g.borrow_mut() = format!("{t:?}");
    });
    let expected = format!("{producer:?}");
    let d = seen.add_callbacks(d);
    d.cancel();
    // The canceller is given its own Deferred (its producer side, which names the same chain).
    assert_eq!(*given.borrow(), expected);
}

#[test]
fn test_cancel_after_callback() {
    let seen = Seen::default();
    let (d, producer) = Deferred::with_canceller(seen.canceller(|t| {
        t.errback(GenericError::new("from canceller"));
    }));
    let d = seen.add_callbacks(d);
    producer.callback("biff!".into());
    d.cancel();
    assert_eq!(seen.canceller_call_count.get(), 0);
    assert!(seen.errback_results.borrow().is_none());
    assert_eq!(seen.callback_results.borrow().as_deref(), Some("biff!"));
}

#[test]
fn test_cancel_after_errback() {
    let seen = Seen::default();
    let (d, producer) = Deferred::with_canceller(seen.canceller(|t| {
        t.errback(GenericError::new("from canceller"));
    }));
    let d = seen.add_callbacks(d);
    producer.errback(GenericError::new("first"));
    d.cancel();
    assert_eq!(seen.canceller_call_count.get(), 0);
    assert!(seen.errback_type_is::<GenericError>());
    assert_eq!(
        seen.errback_results.borrow().as_ref().unwrap().message(),
        "first"
    );
    assert!(seen.callback_results.borrow().is_none());
}

#[test]
fn test_canceller_that_errbacks() {
    let seen = Seen::default();
    let (d, _producer) = Deferred::with_canceller(seen.canceller(|t| {
        t.errback(GenericError::new("from canceller"));
    }));
    let d = seen.add_callbacks(d);
    d.cancel();
    assert_eq!(seen.canceller_call_count.get(), 1);
    assert!(seen.errback_type_is::<GenericError>());
}

#[test]
fn test_canceller_that_callbacks() {
    let seen = Seen::default();
    let (d, _producer) = Deferred::with_canceller(seen.canceller(|t| {
        t.callback("hello!".into());
    }));
    let d = seen.add_callbacks(d);
    d.cancel();
    assert_eq!(seen.canceller_call_count.get(), 1);
    assert_eq!(seen.callback_results.borrow().as_deref(), Some("hello!"));
    assert!(seen.errback_results.borrow().is_none());
}

#[test]
fn test_cancel_nested_deferred() {
    let seen = Seen::default();
    let (b, _b_producer) = Deferred::<String>::with_canceller(seen.canceller(drop));
    let (a, a_producer) = Deferred::<()>::with_canceller(|_t| panic!("a's canceller must not run"));
    a_producer.callback(());
    let a = a.add_callback(move |()| b);
    a.cancel();
    let d = seen.add_callbacks(a);
    // One cancellation: b's.
    assert_eq!(seen.canceller_call_count.get(), 1);
    // b's canceller did not fire it, so it failed with CancelledError, which reached a.
    assert!(seen.errback_type_is::<CancelledError>());
    success_result_of(d);
}
