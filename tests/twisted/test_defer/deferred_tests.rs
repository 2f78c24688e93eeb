//! Ports of Twisted's `test_defer.py` `DeferredTests`.
//!
//! Twisted's tests keep using a Deferred after handing it to a list or returning it from a step;
//! here those handles were moved. Where Twisted reads an input's result after a list (`failureResultOf(
//! deferredOne, CancelledError)`), the port reads it where Rust leaves it: in the list's results,
//! in a `FirstError`, or — for a failure that stays in the input's own chain — in the unhandled
//! report made when that chain goes (`unhandled_during`, trial's `flushLoggedErrors`). Where
//! Twisted adds a step to a Deferred it no longer owns, the row in `tests/TWISTED.md` also names
//! the compile-fail case that shows it cannot be written.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use defer_core::errors::{CancelledError, CircularChainError, FirstError, Panicked};
use defer_core::list::{FirstResult, gather_results_consuming_errors};
use defer_core::testing::{
    assert_no_result, failure_result_of, failure_result_of_kind, success_result_of,
    unhandled_during,
};
use defer_core::{
    Deferred, DeferredList, Failure, Trigger, ensure_deferred, fail, gather_results,
    maybe_deferred, succeed,
};

error_kind!(
    GenericError,
    RuntimeError,
    ValueError,
    TypeError,
    ZeroDivisionError,
    SomeException
);

type Log<T> = Rc<RefCell<Vec<T>>>;

fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

/// Pushes onto a log; the step returns `()`, Twisted's "returns None".
fn push<T>(l: &Log<T>, v: T) {
    l.borrow_mut().push(v);
}

/// What `DeferredTests.setUp` records: the arguments `_callback`, `_callback2` and `_errback`
/// were called with (positional, then keyword), or `None` if they were not called.
#[derive(Default, Clone)]
struct Calls {
    callback: Rc<RefCell<Option<Args>>>,
    callback2: Rc<RefCell<Option<Args>>>,
    errback: Rc<RefCell<Option<ErrArgs>>>,
}

/// Positional, then keyword arguments.
type Args = (Vec<String>, Vec<(String, String)>);
/// The failure, then keyword arguments.
type ErrArgs = (Failure, Vec<(String, String)>);

impl Calls {
    /// `_callback(result, *args, **kwargs)`: records and returns its first argument.
    fn callback<T: ToString + 'static>(
        &self,
        args: &'static [&'static str],
        kwargs: &'static [(&'static str, &'static str)],
    ) -> impl FnOnce(T) -> Result<T, Failure> + 'static {
        let slot = self.callback.clone();
        move |result| {
            *slot.borrow_mut() = Some(record(result.to_string(), args, kwargs));
            Ok(result)
        }
    }

    /// `_callback2(result)`: records, returns nothing.
    fn callback2<T: ToString + 'static>(&self) -> impl FnOnce(T) -> Result<(), Failure> + 'static {
        let slot = self.callback2.clone();
        move |result| {
            *slot.borrow_mut() = Some(record(result.to_string(), &[], &[]));
            Ok(())
        }
    }

    /// `_errback(failure)`: records, returns nothing (which recovers).
    fn errback<T: Default + 'static>(
        &self,
    ) -> impl FnOnce(Failure) -> Result<T, Failure> + 'static {
        let slot = self.errback.clone();
        move |f| {
            *slot.borrow_mut() = Some((f, Vec::new()));
            Ok(T::default())
        }
    }

    fn callback_results(&self) -> Option<Args> {
        self.callback.borrow().clone()
    }
}

fn record(first: String, args: &[&str], kwargs: &[(&str, &str)]) -> Args {
    let mut positional = vec![first];
    positional.extend(args.iter().map(|a| a.to_string()));
    let keywords = kwargs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (positional, keywords)
}

fn args(positional: &[&str], keywords: &[(&str, &str)]) -> Option<Args> {
    Some((
        positional.iter().map(|a| a.to_string()).collect(),
        keywords
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ))
}

/// Twisted's `fakeCallbackCanceller`: a canceller that succeeds with "Callback Result".
fn fake_callback_canceller() -> (Deferred<&'static str>, Trigger<&'static str>) {
    Deferred::with_canceller(|d| {
        d.callback("Callback Result");
    })
}

/// `assertImmediateFailure(deferred, E)`: the Deferred's current result is a failure of kind
/// `E`; returns the failure.
#[track_caller]
fn assert_immediate_failure<E: std::error::Error + 'static, T: 'static>(d: Deferred<T>) -> Failure {
    let failures = log();
    let f = failures.clone();
    let d = d.add_errback(move |e| {
        push(&f, e);
        Err(Failure::msg("handled"))
    });
    drop(failure_result_of(d));
    let failures = failures.borrow();
    assert_eq!(failures.len(), 1);
    assert!(failures[0].check::<E>(), "{:?}", failures[0]);
    failures[0].clone()
}

/// The address of a chain, as `Debug` prints it (`DeferredControl(0x…)`): Twisted's `id(d)`.
fn address<T>(d: &Deferred<T>) -> String {
    let shown = format!("{:?}", d.control());
    shown
        .trim_start_matches("DeferredControl(")
        .trim_end_matches(')')
        .to_owned()
}

// ---------------------------------------------------------------------------------- callbacks

#[test]
fn test_callback_without_args() {
    let calls = Calls::default();
    let (deferred, t) = Deferred::<&str>::new();
    let deferred = deferred.add_callback(calls.callback(&[], &[]));
    t.callback("hello");
    assert!(calls.errback.borrow().is_none());
    assert_eq!(calls.callback_results(), args(&["hello"], &[]));
    assert_eq!(success_result_of(deferred), "hello");
}

#[test]
fn test_callback_with_args() {
    // `addCallback(f, "world")`: the extra argument is a value the closure captures.
    let calls = Calls::default();
    let (deferred, t) = Deferred::<&str>::new();
    let deferred = deferred.add_callback(calls.callback(&["world"], &[]));
    t.callback("hello");
    assert!(calls.errback.borrow().is_none());
    assert_eq!(calls.callback_results(), args(&["hello", "world"], &[]));
    success_result_of(deferred);
}

#[test]
fn test_callback_with_kw_args() {
    let calls = Calls::default();
    let (deferred, t) = Deferred::<&str>::new();
    let deferred = deferred.add_callback(calls.callback(&[], &[("world", "world")]));
    t.callback("hello");
    assert!(calls.errback.borrow().is_none());
    assert_eq!(
        calls.callback_results(),
        args(&["hello"], &[("world", "world")])
    );
    success_result_of(deferred);
}

#[test]
fn test_two_callbacks() {
    let calls = Calls::default();
    let (deferred, t) = Deferred::<&str>::new();
    let deferred = deferred
        .add_callback(calls.callback(&[], &[]))
        .add_callback(calls.callback2());
    t.callback("hello");
    assert!(calls.errback.borrow().is_none());
    assert_eq!(calls.callback_results(), args(&["hello"], &[]));
    assert_eq!(*calls.callback2.borrow(), args(&["hello"], &[]));
    success_result_of(deferred);
}

#[test]
fn test_add_callbacks_none_errback() {
    // `addCallbacks(cb, None)`: the errback half is a pass-through, here `|f| Err(f)`.
    let calls = Calls::default();
    let error = Failure::new(GenericError::new("oopsie"));
    let (deferred, t) = Deferred::<&str>::new();
    let deferred = deferred
        .add_callbacks(calls.callback(&[], &[]), Err)
        .add_errback(calls.errback());
    t.errback(error.clone());
    assert!(calls.callback_results().is_none());
    let (f, kwargs) = calls.errback.borrow().clone().expect("errback called");
    assert!(f.same_as(&error));
    assert_eq!(
        f.downcast_ref::<GenericError>(),
        Some(&GenericError::new("oopsie"))
    );
    assert!(kwargs.is_empty());
    success_result_of(deferred);
}

#[test]
fn test_add_callbacks_none_callback_args() {
    // No argument tuples to default: the callback is called with the result alone.
    let calls = Calls::default();
    let (deferred, t) = Deferred::<&str>::new();
    let deferred = deferred.add_callbacks(calls.callback(&[], &[]), calls.errback());
    t.callback("hello");
    assert!(calls.errback.borrow().is_none());
    assert_eq!(calls.callback_results(), args(&["hello"], &[]));
    success_result_of(deferred);
}

#[test]
fn test_add_callbacks_none_errback_args() {
    // No argument tuples to default: the errback is called with the failure alone.
    let calls = Calls::default();
    let error = Failure::new(GenericError::new("oopsie"));
    let (deferred, t) = Deferred::<&str>::new();
    let deferred = deferred.add_callbacks(calls.callback(&[], &[]), calls.errback());
    t.errback(error.clone());
    let errback_results = calls.errback.borrow().clone().expect("errback called");
    // `deferred.addErrback(self._errback)` afterwards: the first errback recovered, so it is
    // not called again.
    let again = Calls::default();
    let deferred = deferred.add_errback(again.errback());
    assert!(again.errback.borrow().is_none());
    assert!(calls.callback_results().is_none());
    assert!(errback_results.0.same_as(&error));
    assert!(errback_results.1.is_empty());
    success_result_of(deferred);
}

// ------------------------------------------------------------------------------ DeferredList

#[test]
fn test_deferred_list() {
    let result: Log<Result<&str, Failure>> = log();
    let reported = unhandled_during(|| {
        let (defr1, t1) = Deferred::<&str>::new();
        let (defr2, t2) = Deferred::<&str>::new();
        let (defr3, t3) = Deferred::<&str>::new();
        let dl = DeferredList::new([defr1, defr2, defr3]).build();
        let r = result.clone();
        let dl = dl.add_callbacks(
            move |list| {
                r.borrow_mut().extend(list);
                Ok(())
            },
            Err,
        );
        t1.callback("1");
        // Twisted adds `catch` to defr2 after the list to eat the failure the list passes on;
        // here defr2 was moved into the list, so the failure stays in its chain and is reported
        // (below) instead.
        t2.errback(GenericError::new("2"));
        t3.callback("3");
        success_result_of(dl);
    });
    let result = result.borrow();
    assert_eq!(result.len(), 3);
    assert_eq!(result[0].as_ref().ok(), Some(&"1"));
    assert_eq!(result[1].as_ref().unwrap_err().message(), "2");
    assert_eq!(result[2].as_ref().ok(), Some(&"3"));
    assert_eq!(reported.len(), 1);
    assert!(reported[0].same_as(result[1].as_ref().unwrap_err()));
}

#[test]
fn test_empty_deferred_list() {
    let dl1 = DeferredList::<()>::new([]).build();
    assert!(success_result_of(dl1).is_empty());

    let dl2 = DeferredList::<()>::new([]).fire_on_one_callback().build();
    assert_no_result(&dl2);
}

#[test]
fn test_deferred_list_fire_on_one_error() {
    let result: Log<Failure> = log();
    let reported = unhandled_during(|| {
        let (defr1, t1) = Deferred::<&str>::new();
        let (defr2, t2) = Deferred::<&str>::new();
        let (defr3, _t3) = Deferred::<&str>::new();
        let dl = DeferredList::new([defr1, defr2, defr3])
            .fire_on_one_errback(true)
            .build();
        let r = result.clone();
        let _dl = dl.add_errback(move |f| {
            push(&r, f);
            Ok(Vec::new())
        });
        // fire one Deferred's callback, no result yet
        t1.callback("1");
        assert!(result.borrow().is_empty());
        // fire one Deferred's errback -- now we have a result
        t2.errback(GenericError::new("from def2"));
        assert_eq!(result.borrow().len(), 1);
    });
    let a_failure = result.borrow()[0].clone();
    // the type of the failure is a FirstError
    let first_error = a_failure
        .downcast_ref::<FirstError>()
        .unwrap_or_else(|| panic!("failure's type is {}", a_failure.type_name()));
    // the GenericError from the Deferred at index 1 is intact inside it
    assert_eq!(
        first_error.sub_failure().downcast_ref::<GenericError>(),
        Some(&GenericError::new("from def2"))
    );
    assert_eq!(first_error.index(), 1);
    // Twisted's `catch` on defr2 is not needed: the failure the list failed with is the
    // caller's, not also kept by defr2.
    assert!(reported.is_empty(), "{reported:?}");
}

#[test]
fn test_deferred_list_dont_consume_errors() {
    let result_lists: Log<Vec<Result<(), Failure>>> = log();
    // Twisted's `errorTrap` errback on d1 after the list: here d1 was moved into the list, and
    // the failure it keeps is reported when its chain goes.
    let error_trap = unhandled_during(|| {
        let (d1, t1) = Deferred::<()>::new();
        let dl = DeferredList::new([d1]).build();
        let r = result_lists.clone();
        let _dl = dl.add_callback(move |l| {
            push(&r, l);
            Ok(())
        });
        t1.errback(GenericError::new("Bang"));
    });
    assert_eq!(error_trap.len(), 1);
    assert_eq!(error_trap[0].message(), "Bang");
    let result_lists = result_lists.borrow();
    assert_eq!(result_lists.len(), 1);
    assert_eq!(result_lists[0][0].as_ref().unwrap_err().message(), "Bang");
}

#[test]
fn test_deferred_list_consume_errors() {
    let result_lists: Log<Vec<Result<(), Failure>>> = log();
    let error_trap = unhandled_during(|| {
        let (d1, t1) = Deferred::<()>::new();
        let dl = DeferredList::new([d1]).consume_errors(true).build();
        let r = result_lists.clone();
        let _dl = dl.add_callback(move |l| {
            push(&r, l);
            Ok(())
        });
        t1.errback(GenericError::new("Bang"));
    });
    assert!(error_trap.is_empty(), "{error_trap:?}");
    let result_lists = result_lists.borrow();
    assert_eq!(result_lists.len(), 1);
    assert_eq!(result_lists[0][0].as_ref().unwrap_err().message(), "Bang");
}

#[test]
fn test_deferred_list_fire_on_one_error_with_already_fired_deferreds() {
    let result: Log<Failure> = log();
    let reported = unhandled_during(|| {
        // Create some deferreds, and errback one
        let (d1, t1) = Deferred::<()>::new();
        let (d2, _t2) = Deferred::<()>::new();
        t1.errback(GenericError::new("Bang"));
        // *Then* build the DeferredList, with fireOnOneErrback=True
        let dl = DeferredList::new([d1, d2])
            .fire_on_one_errback(true)
            .build();
        let r = result.clone();
        let _dl = dl.add_errback(move |f| {
            push(&r, f);
            Ok(Vec::new())
        });
        assert_eq!(result.borrow().len(), 1);
    });
    // d1's failure is the list's (in its FirstError): nothing left to swallow.
    assert!(reported.is_empty(), "{reported:?}");
}

#[test]
fn test_deferred_list_with_already_fired_deferreds() {
    let result: Log<Vec<Result<i32, Failure>>> = log();
    let reported = unhandled_during(|| {
        // Create some deferreds, and err one, call the other
        let (d1, t1) = Deferred::<i32>::new();
        let (d2, t2) = Deferred::<i32>::new();
        t1.errback(GenericError::new("Bang"));
        t2.callback(2);
        // *Then* build the DeferredList
        let dl = DeferredList::new([d1, d2]).build();
        let r = result.clone();
        let _dl = dl.add_callback(move |l| {
            push(&r, l);
            Ok(())
        });
        assert_eq!(result.borrow().len(), 1);
    });
    // Twisted swallows d1's error with an errback added afterwards; here d1 keeps it (no
    // consume_errors) and it is reported once.
    assert_eq!(reported.len(), 1);
    assert!(reported[0].check::<GenericError>());
}

#[test]
fn test_cancel_deferred_list() {
    let (mut c1, mut c2) = (false, false);
    let reported = unhandled_during(|| {
        let (deferred_one, t1) = Deferred::<()>::new();
        let (deferred_two, t2) = Deferred::<()>::new();
        let deferred_list = DeferredList::new([deferred_one, deferred_two]).build();
        deferred_list.cancel();
        (c1, c2) = (t1.is_cancelled(), t2.is_cancelled());
        let results = success_result_of(deferred_list);
        assert!(
            results
                .iter()
                .all(|r| r.as_ref().unwrap_err().check::<CancelledError>())
        );
    });
    assert!(c1 && c2);
    // failureResultOf(deferredOne/Two, CancelledError): each input's own chain holds its
    // CancelledError (the list did not consume it).
    assert_eq!(reported.len(), 2, "{reported:?}");
    assert!(reported.iter().all(|f| f.check::<CancelledError>()));
}

#[test]
fn test_cancel_deferred_list_callback() {
    let reported = unhandled_during(|| {
        let (deferred_one, _t1) = fake_callback_canceller();
        let (deferred_two, t2) = Deferred::new();
        let deferred_list = DeferredList::new([deferred_one, deferred_two]).build();
        deferred_list.cancel();
        assert!(t2.is_cancelled());
        let result = success_result_of(deferred_list);
        assert_eq!(result[0].as_ref().ok(), Some(&"Callback Result"));
        assert!(result[1].as_ref().unwrap_err().check::<CancelledError>());
    });
    // failureResultOf(deferredTwo, CancelledError)
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(reported[0].check::<CancelledError>());
}

#[test]
fn test_cancel_deferred_list_with_fire_on_one_callback() {
    let reported = unhandled_during(|| {
        let (deferred_one, t1) = Deferred::<()>::new();
        let (deferred_two, t2) = Deferred::<()>::new();
        let deferred_list = DeferredList::new([deferred_one, deferred_two])
            .fire_on_one_callback()
            .build();
        deferred_list.cancel();
        assert!(t1.is_cancelled() && t2.is_cancelled());
        match success_result_of(deferred_list) {
            FirstResult::AllFailed(failures) => {
                assert!(failures.iter().all(|f| f.check::<CancelledError>()))
            }
            FirstResult::Success { .. } => panic!("nothing succeeded"),
        }
    });
    // failureResultOf(deferredOne/Two, CancelledError)
    assert_eq!(reported.len(), 2, "{reported:?}");
    assert!(reported.iter().all(|f| f.check::<CancelledError>()));
}

#[test]
fn test_cancel_deferred_list_with_fire_on_one_callback_and_deferred_callback() {
    let reported = unhandled_during(|| {
        let (deferred_one, _t1) = fake_callback_canceller();
        let (deferred_two, t2) = Deferred::new();
        let deferred_list = DeferredList::new([deferred_one, deferred_two])
            .fire_on_one_callback()
            .build();
        deferred_list.cancel();
        assert!(t2.is_cancelled());
        match success_result_of(deferred_list) {
            FirstResult::Success { index, value } => {
                assert_eq!((value, index), ("Callback Result", 0))
            }
            FirstResult::AllFailed(f) => panic!("{f:?}"),
        }
    });
    // failureResultOf(deferredTwo, CancelledError)
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(reported[0].check::<CancelledError>());
}

#[test]
fn test_cancel_deferred_list_with_fire_on_one_errback() {
    let reported = unhandled_during(|| {
        let (deferred_one, t1) = Deferred::<()>::new();
        let (deferred_two, t2) = Deferred::<()>::new();
        let deferred_list = DeferredList::new([deferred_one, deferred_two])
            .fire_on_one_errback(true)
            .build();
        deferred_list.cancel();
        assert!(t1.is_cancelled() && t2.is_cancelled());
        let first_error = failure_result_of_kind::<FirstError>(deferred_list);
        assert!(first_error.sub_failure().check::<CancelledError>());
    });
    // deferredOne's CancelledError is the one in the FirstError; deferredTwo's, arriving after
    // the list failed, stays in its chain: failureResultOf(deferredTwo, CancelledError).
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(reported[0].check::<CancelledError>());
}

#[test]
fn test_cancel_deferred_list_with_fire_on_one_errback_all_deferreds_callback() {
    let (deferred_one, _t1) = fake_callback_canceller();
    let (deferred_two, _t2) = fake_callback_canceller();
    let deferred_list = DeferredList::new([deferred_one, deferred_two])
        .fire_on_one_errback(true)
        .build();
    deferred_list.cancel();
    let result = success_result_of(deferred_list);
    assert_eq!(result[0].as_ref().ok(), Some(&"Callback Result"));
    assert_eq!(result[1].as_ref().ok(), Some(&"Callback Result"));
}

#[test]
fn test_cancel_deferred_list_with_original_deferreds() {
    let reported = unhandled_during(|| {
        let (deferred_one, t1) = Deferred::<()>::new();
        let (deferred_two, t2) = Deferred::<()>::new();
        let mut argument_list = vec![deferred_one, deferred_two];
        let deferred_list = DeferredList::new(argument_list.drain(..)).build();
        let (deferred_three, t3) = Deferred::<()>::new();
        argument_list.push(deferred_three);
        deferred_list.cancel();
        assert!(t1.is_cancelled() && t2.is_cancelled());
        assert!(!t3.is_cancelled());
        assert_no_result(&argument_list[0]);
        drop(success_result_of(deferred_list));
        drop(t3);
    });
    // failureResultOf(deferredOne/Two, CancelledError); deferredThree, never fired, reports
    // nothing.
    assert_eq!(reported.len(), 2, "{reported:?}");
    assert!(reported.iter().all(|f| f.check::<CancelledError>()));
}

#[test]
fn test_cancel_deferred_list_with_exception() {
    let reported = unhandled_during(|| {
        // A canceller that raises: here, one that panics.
        let (deferred_one, _t1) = Deferred::<()>::with_canceller(|_d| panic!("test"));
        let (deferred_two, t2) = Deferred::<()>::new();
        let deferred_list = DeferredList::new([deferred_one, deferred_two]).build();
        deferred_list.cancel();
        assert!(t2.is_cancelled());
        let results = success_result_of(deferred_list);
        // The panic becomes deferredOne's failure (Twisted logs it from cancel() and leaves
        // deferredOne unfired); deferredTwo is still cancelled.
        assert!(results[0].as_ref().unwrap_err().is_panic());
        assert!(results[1].as_ref().unwrap_err().check::<CancelledError>());
    });
    // flushLoggedErrors(RuntimeError) has one: the canceller's panic, kept by deferredOne. And
    // deferredTwo's CancelledError (failureResultOf(deferredTwo, CancelledError)).
    let panics: Vec<_> = reported.iter().filter(|f| f.is_panic()).collect();
    assert_eq!(panics.len(), 1, "{reported:?}");
    assert_eq!(
        panics[0].downcast_ref::<Panicked>().unwrap().message(),
        "test"
    );
    assert_eq!(
        reported
            .iter()
            .filter(|f| f.check::<CancelledError>())
            .count(),
        1
    );
}

#[test]
fn test_cancel_fired_on_one_callback_deferred_list() {
    let (deferred_one, t1) = Deferred::<()>::new();
    let (deferred_two, t2) = Deferred::<()>::new();
    let deferred_list = DeferredList::new([deferred_one, deferred_two])
        .fire_on_one_callback()
        .build();
    t1.callback(());
    deferred_list.cancel();
    // assertNoResult(deferredTwo): it was not cancelled, and still fires normally.
    assert!(!t2.is_cancelled());
    assert!(matches!(
        success_result_of(deferred_list),
        FirstResult::Success { index: 0, .. }
    ));
    assert!(t2.callback(()));
}

#[test]
fn test_cancel_fired_on_one_errback_deferred_list() {
    let (deferred_one, t1) = Deferred::<()>::new();
    let (deferred_two, t2) = Deferred::<()>::new();
    let deferred_list = DeferredList::new([deferred_one, deferred_two])
        .fire_on_one_errback(true)
        .build();
    t1.errback(GenericError::new("test"));
    deferred_list.cancel();
    // assertNoResult(deferredTwo)
    assert!(!t2.is_cancelled());
    // failureResultOf(deferredList, FirstError), and deferredOne's GenericError inside it
    // (failureResultOf(deferredOne, GenericError)).
    let first_error = failure_result_of_kind::<FirstError>(deferred_list);
    assert!(first_error.sub_failure().check::<GenericError>());
    assert!(t2.callback(()));
}

// ------------------------------------------------------------------------- succeed / fail

#[test]
fn test_immediate_success() {
    let l = log();
    let d = succeed("success");
    let ll = l.clone();
    let d = d.add_callback(move |v| {
        push(&ll, v);
        Ok(())
    });
    assert_eq!(*l.borrow(), ["success"]);
    success_result_of(d);
}

#[test]
fn test_succeed_matches_manual_success() {
    // Twisted compares the two objects' `__dict__`; here their observable state: what `Debug`
    // shows (result, pauses; not where each was made), whether they have fired, and their
    // result.
    let (d, t) = Deferred::<&str>::new();
    t.callback("success");
    let d2 = succeed("success");
    assert_eq!(repr(&d), repr(&d2));
    assert_eq!(d.is_called(), d2.is_called());
    assert_eq!(d.is_paused(), d2.is_paused());
    assert_eq!(success_result_of(d), success_result_of(d2));
}

#[test]
fn test_immediate_failure() {
    let l: Log<Failure> = log();
    let d = fail::<()>(GenericError::new("fail"));
    let ll = l.clone();
    let d = d.add_errback(move |f| {
        push(&ll, f);
        Ok(())
    });
    assert_eq!(l.borrow()[0].error().to_string(), "fail");
    success_result_of(d);
}

#[test]
fn test_paused_failure() {
    let l: Log<Failure> = log();
    let d = fail::<()>(GenericError::new("fail"));
    d.pause();
    let ll = l.clone();
    let d = d.add_errback(move |f| {
        push(&ll, f);
        Ok(())
    });
    assert!(l.borrow().is_empty());
    d.unpause();
    assert_eq!(l.borrow()[0].error().to_string(), "fail");
    success_result_of(d);
}

#[test]
fn test_callback_errors() {
    // `lambda _: 1 // 0`: raising is `Err`/`?`; a real integer division by zero panics, and the
    // panic becomes a failure too.
    let l: Log<Failure> = log();
    let (d, t) = Deferred::<i32>::new();
    let ll = l.clone();
    let d = d
        .add_callback(|x| {
            1_i32
                .checked_div(x - 1)
                .ok_or(ZeroDivisionError::new("division by zero"))
                .map_err(Failure::from)
        })
        .add_errback(move |f| {
            push(&ll, f);
            Ok(0)
        });
    t.callback(1);
    assert!(l.borrow()[0].check::<ZeroDivisionError>());
    success_result_of(d);

    let l: Log<Failure> = log();
    let (d, t) = Deferred::<i32>::new();
    let ll = l.clone();
    let d = d
        .add_callback(|x| Ok(1 / std::hint::black_box(x - 1)))
        .add_errback(move |f| {
            push(&ll, f);
            Ok(0)
        });
    t.callback(1);
    assert!(l.borrow()[0].is_panic());
    assert!(l.borrow()[0].message().contains("divide by zero"));
    success_result_of(d);

    // `lambda _: Failure(ZeroDivisionError())`: a step returning a failure.
    let l: Log<Failure> = log();
    let (d2, t2) = Deferred::<i32>::new();
    let ll = l.clone();
    let d2 = d2
        .add_callback(|_| Err::<i32, _>(Failure::new(ZeroDivisionError::new(""))))
        .add_errback(move |f| {
            push(&ll, f);
            Ok(0)
        });
    t2.callback(1);
    assert!(l.borrow()[0].check::<ZeroDivisionError>());
    success_result_of(d2);
}

#[test]
fn test_unpause_before_callback() {
    // Twisted only checks that this sequence raises nothing. Here also: the step waits for the
    // result, and runs when it comes.
    let calls = Calls::default();
    let (d, t) = Deferred::<&str>::new();
    d.pause();
    let d = d.add_callback(calls.callback(&[], &[]));
    assert!(d.unpause());
    assert!(calls.callback_results().is_none());
    t.callback("later");
    assert_eq!(calls.callback_results(), args(&["later"], &[]));
    success_result_of(d);
}

// --------------------------------------------------------------- steps returning Deferreds

#[test]
fn test_callback_returns_deferred() {
    let calls = Calls::default();
    let (d1, t1) = Deferred::<i32>::new();
    let (d2, t2) = Deferred::<i32>::new();
    d2.pause();
    // d2 is moved into the step: a control pauses and unpauses it afterwards.
    let d2_control = d2.control();
    let d1 = d1
        .add_callback(move |_| d2)
        .add_callback(calls.callback(&[], &[]));
    t1.callback(1);
    assert!(
        calls.callback_results().is_none(),
        "Should not have been called yet."
    );
    t2.callback(2);
    assert!(
        calls.callback_results().is_none(),
        "Still should not have been called yet."
    );
    assert!(d2_control.unpause());
    assert_eq!(
        calls.callback_results(),
        args(&["2"], &[]),
        "Result should have been from second deferred"
    );
    success_result_of(d1);
}

#[test]
fn test_callback_maybe_returns_failure() {
    let rte = Failure::new(RuntimeError::new(""));
    let maybe_fail = |should_fail: bool, rte: Failure| {
        move |result: i32| {
            if should_fail {
                Err(rte)
            } else {
                Ok(result + 1)
            }
        }
    };
    let (d, t) = Deferred::<i32>::new();
    t.callback(6);
    assert_eq!(
        success_result_of(d.add_callback(maybe_fail(false, rte.clone()))),
        7
    );

    let (d, t) = Deferred::<i32>::new();
    t.callback(6);
    let d = d
        .add_callback(maybe_fail(true, rte.clone()))
        .add_callback(maybe_fail(true, rte.clone()));
    let failure = failure_result_of_kind::<RuntimeError>(d);
    assert!(failure.failure().same_as(&rte));
}

#[test]
fn test_errback_returns_deferred() {
    let result_values: Log<&str> = log();
    let (d, t) = Deferred::<&str>::new();
    let (d2, t2) = Deferred::<&str>::new();
    let rv = result_values.clone();
    let d = d.add_errback(move |_result| d2).add_callback(move |r| {
        push(&rv, r);
        Ok(())
    });
    t.errback(ValueError::new(""));
    assert_no_result(&d);
    assert!(result_values.borrow().is_empty());
    t2.callback("result");
    assert_eq!(*result_values.borrow(), ["result"]);
    success_result_of(d);
}

#[test]
fn test_chained_paused_deferred_with_result() {
    let expected = Rc::new(());
    let (paused, pt) = Deferred::<Rc<()>>::new();
    pt.callback(expected.clone());
    paused.pause();
    let paused_control = paused.control();
    let (chained, ct) = Deferred::<()>::new();
    let chained = chained.add_callback(move |_ignored| paused);
    ct.callback(());

    let result: Log<Rc<()>> = log();
    let r = result.clone();
    let chained = chained.add_callback(move |v| {
        push(&r, v);
        Ok(())
    });
    assert!(result.borrow().is_empty());
    assert!(paused_control.unpause());
    assert_eq!(result.borrow().len(), 1);
    assert!(Rc::ptr_eq(&result.borrow()[0], &expected));
    success_result_of(chained);
}

#[test]
fn test_paused_deferred_chained() {
    // Twisted adds `result.append` to `second` after returning it from `first`'s step, which
    // does not compile here (ui c97_second_consumer.rs). What it checks holds: a paused `first`
    // waiting on `second` does not stop `second`'s own steps from running when it fires.
    let result: Log<()> = log();
    let (first, ft) = Deferred::<()>::new();
    let (second, st) = Deferred::<()>::new();
    let r = result.clone();
    let second = second.add_callback(move |v| {
        push(&r, v);
        Ok(())
    });
    let first = first.add_callback(move |_ignored| second);
    ft.callback(());
    first.pause();
    st.callback(());
    assert_eq!(*result.borrow(), [()]);
    assert_no_result(&first);
    assert!(first.unpause());
    success_result_of(first);
}

// ------------------------------------------------------------------------------ gatherResults

#[test]
fn test_gather_results() {
    // test successful list of deferreds
    let results: Log<Vec<i32>> = log();
    let r = results.clone();
    let d = gather_results([succeed(1), succeed(2)]).add_callback(move |v| {
        push(&r, v);
        Ok(())
    });
    assert_eq!(*results.borrow(), [vec![1, 2]]);
    success_result_of(d);

    // test failing list of deferreds
    let errors: Log<Failure> = log();
    let reported = unhandled_during(|| {
        let e = errors.clone();
        let dl = [succeed(1), fail(ValueError::new(""))];
        let d = gather_results(dl).add_errback(move |f| {
            push(&e, f);
            Ok(Vec::new())
        });
        success_result_of(d);
    });
    assert_eq!(errors.borrow().len(), 1);
    assert!(errors.borrow()[0].check::<ValueError>());
    // "get rid of error" (`dl[1].addErrback`) is not needed: the failure is the gather's.
    assert!(reported.is_empty(), "{reported:?}");
}

#[test]
fn test_gather_results_with_consume_errors() {
    let gathered_errors: Log<Failure> = log();
    let unconsumed_errors = unhandled_during(|| {
        let dgood = succeed(1);
        let dbad = fail(RuntimeError::new("oh noes"));
        let d = gather_results_consuming_errors([dgood, dbad]);
        let g = gathered_errors.clone();
        let d = d.add_errback(move |f| {
            push(&g, f);
            Ok(Vec::new())
        });
        success_result_of(d);
    });
    assert_eq!(
        (unconsumed_errors.len(), gathered_errors.borrow().len()),
        (0, 1)
    );
    let gathered = gathered_errors.borrow()[0].clone();
    let first_error = gathered.downcast_ref::<FirstError>().expect("a FirstError");
    assert!(
        first_error
            .sub_failure()
            .downcast_ref::<RuntimeError>()
            .is_some()
    );
}

#[test]
fn test_cancel_gather_results() {
    let reported = unhandled_during(|| {
        let (deferred_one, t1) = Deferred::<()>::new();
        let (deferred_two, t2) = Deferred::<()>::new();
        let result = gather_results([deferred_one, deferred_two]);
        result.cancel();
        assert!(t1.is_cancelled() && t2.is_cancelled());
        let first_error = failure_result_of_kind::<FirstError>(result);
        // deferredOne's CancelledError
        assert!(first_error.sub_failure().check::<CancelledError>());
    });
    // deferredTwo's CancelledError, after the gather failed, stays in its chain.
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(reported[0].check::<CancelledError>());
}

#[test]
fn test_cancel_gather_results_with_all_deferreds_callback() {
    let (deferred_one, _t1) = fake_callback_canceller();
    let (deferred_two, _t2) = fake_callback_canceller();
    let result = gather_results([deferred_one, deferred_two]);
    result.cancel();
    let callback_result = success_result_of(result);
    assert_eq!(callback_result[0], "Callback Result");
    assert_eq!(callback_result[1], "Callback Result");
}

// ------------------------------------------------------------------------------ maybeDeferred

#[test]
fn test_maybe_deferred_sync() {
    let result = Rc::new(());
    let results: Log<Rc<()>> = log();
    let errors: Log<Failure> = log();
    let r = result.clone();
    let d = maybe_deferred(move || Ok(r));
    let (rs, es) = (results.clone(), errors.clone());
    let d = d.add_callbacks(
        move |v| {
            push(&rs, v);
            Ok(())
        },
        move |f| {
            push(&es, f);
            Ok(())
        },
    );
    assert!(errors.borrow().is_empty());
    assert_eq!(results.borrow().len(), 1);
    assert!(Rc::ptr_eq(&results.borrow()[0], &result));
    success_result_of(d);
}

#[test]
fn test_maybe_deferred_sync_with_args() {
    let plus_five = |x: i32| x + 5;
    let results: Log<i32> = log();
    let errors: Log<Failure> = log();
    let d: Deferred<i32> = maybe_deferred(move || Ok(plus_five(10)));
    let (rs, es) = (results.clone(), errors.clone());
    let d = d.add_callbacks(
        move |v| {
            push(&rs, v);
            Ok(())
        },
        move |f| {
            push(&es, f);
            Ok(())
        },
    );
    assert!(errors.borrow().is_empty());
    assert_eq!(*results.borrow(), [15]);
    success_result_of(d);
}

#[test]
fn test_maybe_deferred_sync_exception() {
    let expected = ValueError::new("that value is unacceptable");
    // Raising is returning `Err`; a panic is caught the same way.
    let raises_exception: [Box<dyn FnOnce() -> Result<i32, Failure>>; 2] = [
        Box::new({
            let e = expected.clone();
            move || Err(e.into())
        }),
        Box::new(|| panic!("that value is unacceptable")),
    ];
    for raises in raises_exception {
        let results: Log<i32> = log();
        let errors: Log<Failure> = log();
        let (rs, es) = (results.clone(), errors.clone());
        let d = maybe_deferred(raises).add_callbacks(
            move |v| {
                push(&rs, v);
                Ok(())
            },
            move |f| {
                push(&es, f);
                Ok(())
            },
        );
        assert!(results.borrow().is_empty());
        assert_eq!(errors.borrow().len(), 1);
        let f = errors.borrow()[0].clone();
        let message = match f.downcast_ref::<Panicked>() {
            Some(p) => p.message().to_owned(),
            None => f.message(),
        };
        assert_eq!(message, expected.to_string());
        success_result_of(d);
    }
}

#[test]
fn test_maybe_deferred_sync_failure() {
    let expected = Failure::new(TypeError::new(
        "can only concatenate str (not \"int\") to str",
    ));
    let results: Log<i32> = log();
    let errors: Log<Failure> = log();
    let e = expected.clone();
    let d = maybe_deferred(move || Err::<i32, _>(e));
    let (rs, es) = (results.clone(), errors.clone());
    let d = d.add_callbacks(
        move |v| {
            push(&rs, v);
            Ok(())
        },
        move |f| {
            push(&es, f);
            Ok(())
        },
    );
    assert!(results.borrow().is_empty());
    assert_eq!(errors.borrow().len(), 1);
    assert!(errors.borrow()[0].same_as(&expected));
    success_result_of(d);
}

#[test]
fn test_maybe_deferred_async() {
    let (d1, t1) = Deferred::<&str>::new();
    let d1_address = address(&d1);
    let d2 = maybe_deferred(move || d1);
    // The Deferred passes by as is: the same chain.
    assert_eq!(address(&d2), d1_address);
    t1.callback("Success");
    let result = log();
    let r = result.clone();
    let d2 = d2.add_callback(move |v| {
        push(&r, v);
        Ok(())
    });
    assert_eq!(*result.borrow(), ["Success"]);
    success_result_of(d2);
}

#[test]
fn test_maybe_deferred_async_error() {
    let (d1, t1) = Deferred::<()>::new();
    let d2 = maybe_deferred(move || d1);
    t1.errback(Failure::new(RuntimeError::new("")));
    assert_immediate_failure::<RuntimeError, _>(d2);
}

#[test]
fn test_maybe_deferred_coroutine_success() {
    async fn f() -> Result<i32, Failure> {
        Ok(7)
    }
    // A closure returning a future is not an Outcome: it wraps the coroutine with
    // `ensure_deferred`, as Twisted's `maybeDeferred` does for it.
    let coroutine_deferred: Deferred<i32> = maybe_deferred(|| ensure_deferred(f()));
    assert_eq!(success_result_of(coroutine_deferred), 7);
}

#[test]
fn test_maybe_deferred_coroutine_success_indirect() {
    async fn f() -> Result<i32, Failure> {
        Ok(7)
    }
    // The function itself is not a coroutine function.
    fn g() -> Deferred<i32> {
        ensure_deferred(f())
    }
    let typed_callback = |result: i32| Ok(result + 1);
    let coroutine_deferred = maybe_deferred(g);
    let modified_deferred = coroutine_deferred.add_callback(typed_callback);
    assert_eq!(success_result_of(modified_deferred), 8);
}

#[test]
fn test_maybe_deferred_coroutine_failure() {
    async fn f() -> Result<(), Failure> {
        Err(SomeException::new(""))?
    }
    fn g() -> Deferred<()> {
        ensure_deferred(f())
    }
    let f = failure_result_of(maybe_deferred(g));
    assert_eq!(f.type_name(), std::any::type_name::<SomeException>());
}

// ------------------------------------------------------------------------- chained Deferreds

#[test]
fn test_inner_callbacks_preserved() {
    #[derive(Debug, PartialEq, Clone)]
    enum R {
        Pair(&'static str, String),
        One(String),
    }
    let results: Log<R> = log();
    let failures: Log<Failure> = log();
    let (inner, inner_t) = Deferred::<String>::new();

    let (rs, fs) = (results.clone(), failures.clone());
    let cb = move |result: &'static str| {
        push(&rs, R::Pair("start-of-cb", result.into()));
        let d = succeed("inner".to_owned());
        let (r1, r2) = (rs.clone(), rs.clone());
        let first_callback = move |_result: String| {
            push(&r1, R::Pair("firstCallback", "inner".into()));
            inner
        };
        let second_callback = move |result: String| {
            push(&r2, R::Pair("secondCallback", result.clone()));
            Ok(result.repeat(2))
        };
        d.add_callback(first_callback)
            .add_callback(second_callback)
            .add_errback(move |f| {
                push(&fs, f);
                Ok(String::new())
            })
    };
    let outer = succeed("outer").add_callback(cb);
    inner_t.callback("orange".into());
    let rs = results.clone();
    let outer = outer.add_callback(move |v| {
        push(&rs, R::One(v));
        Ok(())
    });
    // `inner.addErrback(failures.append)`: inner was moved into the step that returned it.
    let fs = failures.clone();
    let outer = outer.add_errback(move |f| {
        push(&fs, f);
        Ok(())
    });
    assert!(failures.borrow().is_empty());
    assert_eq!(
        *results.borrow(),
        [
            R::Pair("start-of-cb", "outer".into()),
            R::Pair("firstCallback", "inner".into()),
            R::Pair("secondCallback", "orange".into()),
            R::One("orangeorange".into()),
        ]
    );
    success_result_of(outer);
}

/// `test_continueCallbackNotFirst` and `test_callbackOrderPreserved` record these.
#[derive(Debug, PartialEq, Clone)]
enum Step {
    Cb(&'static str),
    FirstCallback,
    SecondCallback(Vec<&'static str>),
    Final,
}

/// Their `cb`: a Deferred whose first step returns `gatherResults([a])`.
fn cb_gathering(
    results: &Log<Step>,
    failures: &Log<Failure>,
    a: Deferred<&'static str>,
) -> impl FnOnce(&'static str) -> Deferred<()> + 'static {
    let (results, failures) = (results.clone(), failures.clone());
    move |result| {
        push(&results, Step::Cb(result));
        let (d, t) = Deferred::<()>::new();
        let (r1, r2) = (results.clone(), results.clone());
        let first_callback = move |_result: ()| {
            push(&r1, Step::FirstCallback);
            gather_results([a])
        };
        let second_callback = move |result: Vec<&'static str>| {
            push(&r2, Step::SecondCallback(result));
            Ok(())
        };
        let returner = d
            .add_callback(first_callback)
            .add_callback(second_callback)
            .add_errback(move |f| {
                push(&failures, f);
                Ok(())
            });
        t.callback(());
        returner
    }
}

#[test]
fn test_continue_callback_not_first() {
    let results: Log<Step> = log();
    let failures: Log<Failure> = log();
    let (a, a_t) = Deferred::<&'static str>::new();
    let fs = failures.clone();
    let d = succeed("outer")
        .add_callback(cb_gathering(&results, &failures, a))
        .add_errback(move |f| {
            push(&fs, f);
            Ok(())
        });
    assert_eq!(*results.borrow(), [Step::Cb("outer"), Step::FirstCallback]);
    a_t.callback("withers");
    assert!(failures.borrow().is_empty());
    assert_eq!(
        *results.borrow(),
        [
            Step::Cb("outer"),
            Step::FirstCallback,
            Step::SecondCallback(vec!["withers"])
        ]
    );
    success_result_of(d);
}

#[test]
fn test_callback_order_preserved() {
    let results: Log<Step> = log();
    let failures: Log<Failure> = log();
    let (a, a_t) = Deferred::<&'static str>::new();
    let (outer, outer_t) = Deferred::<&'static str>::new();
    let (rs, fs) = (results.clone(), failures.clone());
    let outer = outer
        .add_callback(cb_gathering(&results, &failures, a))
        .add_callback(move |_x| {
            push(&rs, Step::Final);
            Ok(())
        })
        .add_errback(move |f| {
            push(&fs, f);
            Ok(())
        });
    outer_t.callback("outer");
    assert_eq!(*results.borrow(), [Step::Cb("outer"), Step::FirstCallback]);
    a_t.callback("withers");
    assert!(failures.borrow().is_empty());
    assert_eq!(
        *results.borrow(),
        [
            Step::Cb("outer"),
            Step::FirstCallback,
            Step::SecondCallback(vec!["withers"]),
            Step::Final,
        ]
    );
    success_result_of(outer);
}

/// A Deferred's handle, kept where its own steps can reach it (Twisted's closures simply name
/// `deferred`): a step takes it out, adds to the chain, and puts the new handle back.
type Slot = Rc<RefCell<Option<Deferred<()>>>>;

#[test]
fn test_reentrant_run_callbacks() {
    let slot: Slot = Rc::default();
    let called: Log<i32> = log();
    let (deferred, t) = Deferred::<()>::new();
    let (c1, c2, s) = (called.clone(), called.clone(), slot.clone());
    let callback1 = move |_: ()| {
        push(&c1, 1);
        let deferred = s.borrow_mut().take().expect("the handle is in the slot");
        let c3 = c1.clone();
        *s.borrow_mut() = Some(deferred.add_callback(move |_| {
            push(&c3, 3);
            Ok(())
        }));
        Ok(())
    };
    let callback2 = move |_: ()| {
        push(&c2, 2);
        Ok(())
    };
    *slot.borrow_mut() = Some(deferred.add_callback(callback1).add_callback(callback2));
    t.callback(());
    assert_eq!(*called.borrow(), [1, 2, 3]);
    let d = slot.borrow_mut().take().unwrap();
    success_result_of(d);
}

#[test]
fn test_non_reentrant_callbacks() {
    let slot: Slot = Rc::default();
    let called: Log<i32> = log();
    let (deferred, t) = Deferred::<()>::new();
    let (c1, s) = (called.clone(), slot.clone());
    let callback1 = move |_: ()| {
        push(&c1, 1);
        let deferred = s.borrow_mut().take().expect("the handle is in the slot");
        let c2 = c1.clone();
        *s.borrow_mut() = Some(deferred.add_callback(move |_| {
            push(&c2, 2);
            Ok(())
        }));
        assert_eq!(*c1.borrow(), [1]);
        Ok(())
    };
    *slot.borrow_mut() = Some(deferred.add_callback(callback1));
    t.callback(());
    assert_eq!(*called.borrow(), [1, 2]);
    let d = slot.borrow_mut().take().unwrap();
    success_result_of(d);
}

#[test]
fn test_reentrant_run_callbacks_with_failure() {
    let exception_message = "callback raised exception";
    let slot: Slot = Rc::default();
    let (deferred, t) = Deferred::<()>::new();
    let s = slot.clone();
    let callback1 = move |_: ()| {
        let deferred = s.borrow_mut().take().expect("the handle is in the slot");
        let callback2 = move |_: ()| Err(GenericError::new(exception_message).into());
        *s.borrow_mut() = Some(deferred.add_callback(callback2));
        Ok(())
    };
    *slot.borrow_mut() = Some(deferred.add_callback(callback1));
    t.callback(());
    let d = slot.borrow_mut().take().unwrap();
    let exception = assert_immediate_failure::<GenericError, _>(d);
    assert_eq!(exception.message(), exception_message);
}

#[test]
fn test_synchronous_implicit_chain() {
    // Twisted then adds a step to `first` and sees None: `first` was moved into `second`'s step
    // (ui c97_second_consumer.rs). `second` gets `first`'s result.
    let result = Rc::new(());
    let first = succeed(result.clone());
    let (second, t) = Deferred::<()>::new();
    let second = second.add_callback(move |_ign| first);
    t.callback(());
    let results: Log<Rc<()>> = log();
    let r = results.clone();
    let second = second.add_callback(move |v| {
        push(&r, v);
        Ok(())
    });
    assert!(Rc::ptr_eq(&results.borrow()[0], &result));
    success_result_of(second);
}

#[test]
fn test_asynchronous_implicit_chain() {
    let (first, first_t) = Deferred::<Rc<()>>::new();
    let (second, second_t) = Deferred::<()>::new();
    let second = second.add_callback(move |_ign| first);
    second_t.callback(());
    let second_result: Log<Rc<()>> = log();
    let r = second_result.clone();
    let second = second.add_callback(move |v| {
        push(&r, v);
        Ok(())
    });
    assert!(second_result.borrow().is_empty());
    let result = Rc::new(());
    first_t.callback(result.clone());
    assert_eq!(second_result.borrow().len(), 1);
    assert!(Rc::ptr_eq(&second_result.borrow()[0], &result));
    success_result_of(second);
}

#[test]
fn test_synchronous_implicit_error_chain() {
    let reported = unhandled_during(|| {
        let first = fail::<()>(RuntimeError::new("First Deferred's Failure"));
        let (second, t) = Deferred::<()>::new();
        let second = second.add_callback(move |_| first);
        t.callback(());
        assert_immediate_failure::<RuntimeError, _>(second);
    });
    // No unhandled error for `first`: its failure was handed to `second`.
    assert!(reported.is_empty(), "{reported:?}");
}

#[test]
fn test_asynchronous_implicit_error_chain() {
    let second_error: Log<Failure> = log();
    let second_result: Log<()> = log();
    let reported = unhandled_during(|| {
        let (first, first_t) = Deferred::<()>::new();
        let (second, second_t) = Deferred::<()>::new();
        let second = second.add_callback(move |_ign| first);
        second_t.callback(());
        let (e, r) = (second_error.clone(), second_result.clone());
        let second = second
            .add_errback(move |f| {
                push(&e, f);
                Ok(())
            })
            .add_callback(move |v| {
                push(&r, v);
                Ok(())
            });
        assert!(second_result.borrow().is_empty());
        first_t.errback(RuntimeError::new("First Deferred's Failure"));
        success_result_of(second);
    });
    assert!(second_error.borrow()[0].check::<RuntimeError>());
    assert_eq!(second_result.borrow().len(), 1);
    assert!(reported.is_empty(), "{reported:?}");
}

#[test]
fn test_double_asynchronous_implicit_chaining() {
    let (first, first_t) = Deferred::<Rc<()>>::new();
    let (second, second_t) = Deferred::<()>::new();
    let second = second.add_callback(move |_ign| first);
    let (third, third_t) = Deferred::<()>::new();
    let third = third.add_callback(move |_ign| second);
    let third_result: Log<Rc<()>> = log();
    let r = third_result.clone();
    let third = third.add_callback(move |v| {
        push(&r, v);
        Ok(())
    });
    let result = Rc::new(());
    // After this, second is waiting for first to tell it to continue.
    second_t.callback(());
    // And after this, third is waiting for second to tell it to continue.
    third_t.callback(());
    // Still waiting
    assert!(third_result.borrow().is_empty());
    // This will tell second to continue which will tell third to continue.
    first_t.callback(result.clone());
    assert_eq!(third_result.borrow().len(), 1);
    assert!(Rc::ptr_eq(&third_result.borrow()[0], &result));
    success_result_of(third);
}

#[test]
fn test_nested_asynchronous_chained_deferreds() {
    #[derive(Debug, PartialEq, Clone)]
    enum R {
        Pair(&'static str, String),
        One(String),
    }
    let results: Log<R> = log();
    let failures: Log<Failure> = log();
    // A Deferred returned in the inner callback.
    let (inner, inner_t) = Deferred::<String>::new();
    let (rs, fs) = (results.clone(), failures.clone());
    let cb = move |result: &'static str| {
        push(&rs, R::Pair("start-of-cb", result.into()));
        let d = succeed("inner".to_owned());
        let (r1, r2) = (rs.clone(), rs.clone());
        let first_callback = move |_result: String| {
            push(&r1, R::Pair("firstCallback", "inner".into()));
            // Return a Deferred that definitely has not fired yet, so we can fire the
            // Deferreds out of order.
            inner
        };
        let second_callback = move |result: String| {
            push(&r2, R::Pair("secondCallback", result.clone()));
            Ok(result.repeat(2))
        };
        d.add_callback(first_callback)
            .add_callback(second_callback)
            .add_errback(move |f| {
                push(&fs, f);
                Ok(String::new())
            })
    };
    // A synchronous Deferred with a callback `cb` that returns a Deferred `d` that has fired
    // but is now waiting on an unfired Deferred `inner`.
    let rs = results.clone();
    let outer = succeed("outer").add_callback(cb).add_callback(move |v| {
        push(&rs, R::One(v));
        Ok(())
    });
    // `cb` has been entered, and the first callback of `d` has been called.
    assert_eq!(
        *results.borrow(),
        [
            R::Pair("start-of-cb", "outer".into()),
            R::Pair("firstCallback", "inner".into())
        ]
    );
    // Once the inner Deferred is fired, processing of the outer Deferred's chain continues.
    inner_t.callback("orange".into());
    // Make sure there are no errors (`inner` was moved; `outer` gets the errback).
    let fs = failures.clone();
    let outer = outer.add_errback(move |f| {
        push(&fs, f);
        Ok(())
    });
    assert!(
        failures.borrow().is_empty(),
        "Got errbacks but wasn't expecting any."
    );
    assert_eq!(
        *results.borrow(),
        [
            R::Pair("start-of-cb", "outer".into()),
            R::Pair("firstCallback", "inner".into()),
            R::Pair("secondCallback", "orange".into()),
            R::One("orangeorange".into()),
        ]
    );
    success_result_of(outer);
}

#[test]
fn test_nested_asynchronous_chained_deferreds_with_extra_callbacks() {
    #[derive(Debug, PartialEq, Clone)]
    enum R {
        Pair(&'static str, String),
        List(&'static str, Vec<String>),
        Final(Vec<String>),
    }
    let results: Log<R> = log();
    let failures: Log<Failure> = log();
    // A Deferred returned in the inner callback after a callback is added to it.
    let (inner, inner_t) = Deferred::<String>::new();
    let (rs, fs) = (results.clone(), failures.clone());
    let cb = move |result: &'static str| {
        push(&rs, R::Pair("start-of-cb", result.into()));
        let d = succeed("inner".to_owned());
        let (r1, r2) = (rs.clone(), rs.clone());
        let first_callback = move |result: String| {
            push(&r1, R::Pair("firstCallback", result));
            // A result-transforming callback, so we can see how it affects the results.
            let transform = |result: String| Ok(vec![result]);
            inner.add_callback(transform)
        };
        let second_callback = move |result: Vec<String>| {
            push(&r2, R::List("secondCallback", result.clone()));
            Ok([result.clone(), result].concat())
        };
        d.add_callback(first_callback)
            .add_callback(second_callback)
            .add_errback(move |f| {
                push(&fs, f);
                Ok(Vec::new())
            })
    };
    let rs = results.clone();
    let outer = succeed("outer").add_callback(cb).add_callback(move |v| {
        push(&rs, R::Final(v));
        Ok(())
    });
    assert_eq!(
        *results.borrow(),
        [
            R::Pair("start-of-cb", "outer".into()),
            R::Pair("firstCallback", "inner".into())
        ]
    );
    inner_t.callback("withers".into());
    let fs = failures.clone();
    let outer = outer.add_errback(move |f| {
        push(&fs, f);
        Ok(())
    });
    assert!(
        failures.borrow().is_empty(),
        "Got errbacks but wasn't expecting any."
    );
    assert_eq!(
        *results.borrow(),
        [
            R::Pair("start-of-cb", "outer".into()),
            R::Pair("firstCallback", "inner".into()),
            R::List("secondCallback", vec!["withers".into()]),
            R::Final(vec!["withers".into(), "withers".into()]),
        ]
    );
    success_result_of(outer);
}

// ------------------------------------------------------------ recorded chaining, via Debug

#[test]
fn test_chain_deferred_records_explicit_chain() {
    // `a._chainedTo is b`: a's Debug names the chain it is chained from, by address.
    let (a, a_t) = Deferred::<()>::new();
    let (b, b_t) = Deferred::<()>::new();
    let b_address = address(&b);
    b.chain_deferred(a_t);
    assert_eq!(
        repr(&a),
        format!("Deferred(pending, chained from Deferred at {b_address})")
    );
    b_t.callback(());
    success_result_of(a);
}

/// A Deferred's `Debug` without its last part, where it was created (checked to be this file).
fn repr<T: std::fmt::Debug>(d: &Deferred<T>) -> String {
    let shown = format!("{d:?}");
    let at = shown
        .rfind(", created at ")
        .unwrap_or_else(|| panic!("no creation site in {shown}"));
    assert!(
        shown[at..].contains("deferred_tests.rs:"),
        "the creation site is this file's: {shown}"
    );
    format!("{})", &shown[..at])
}

#[test]
fn test_explicit_chain_cleared_when_resolved() {
    let (a, a_t) = Deferred::<()>::new();
    let (b, b_t) = Deferred::<()>::new();
    b.chain_deferred(a_t);
    b_t.callback(());
    // `a._chainedTo is None`: nothing about b any more, only a's own result.
    let shown = format!("{a:?}");
    assert!(!shown.contains("chained"), "{shown}");
    assert_eq!(repr(&a), "Deferred(current result: Ok(()))");
    success_result_of(a);
}

#[test]
fn test_chain_deferred_records_implicit_chain() {
    let (a, a_t) = Deferred::<()>::new();
    let (b, b_t) = Deferred::<()>::new();
    let b_address = address(&b);
    let a = a.add_callback(move |_ignored| b);
    a_t.callback(());
    // `a._chainedTo is b`
    // The Deferred waited on is named by address and by where it was created.
    let shown = repr(&a);
    let expected = format!("Deferred(waiting on Deferred at {b_address} created at ");
    assert!(shown.starts_with(&expected), "{shown}");
    b_t.callback(());
    success_result_of(a);
}

#[test]
fn test_circular_chain_warning() {
    // Twisted warns "Callback returned the Deferred it was attached to" (and the chain hangs).
    // Written directly, it does not compile (ui c34_step_returns_own_deferred.rs); smuggled
    // through shared state, the chain fails with CircularChainError, reported once.
    let slot: Slot = Rc::default();
    let s = slot.clone();
    let circular_warnings = unhandled_during(move || {
        let (d, t) = Deferred::<()>::new();
        let circular_callback = move |_result: ()| s.borrow_mut().take().expect("d is in the slot");
        *slot.borrow_mut() = Some(d.add_callback(circular_callback));
        t.callback(());
    });
    assert_eq!(circular_warnings.len(), 1);
    let warning = &circular_warnings[0];
    assert!(warning.check::<CircularChainError>());
    let pattern = "returned the Deferred it was attached to";
    assert!(
        warning.message().contains(pattern),
        "\nExpected match: {pattern:?}\nGot: {:?}",
        warning.message()
    );
}

#[test]
fn test_circular_chain_exception() {
    // The failure is the Deferred's result (failureResultOf(d); failure.trap(...)).
    let slot: Slot = Rc::default();
    let s = slot.clone();
    let (d, t) = Deferred::<()>::new();
    let circular_callback = move |_result: ()| s.borrow_mut().take().expect("d is in the slot");
    let d = d.add_callback(circular_callback);
    // The handle the step returns is the chain's own; `d` observes it through a control.
    let (observer, observer_t) = Deferred::<()>::new();
    let d = d.add_both(move |r| {
        observer_t.resolve(r.clone());
        r
    });
    *slot.borrow_mut() = Some(d);
    let reported = unhandled_during(|| {
        t.callback(());
    });
    let failure = failure_result_of(observer);
    assert!(failure.trap::<CircularChainError>().is_ok());
    // The chain itself, which nobody holds any more, reports the same failure once.
    assert_eq!(reported.len(), 1);
}

#[test]
fn test_repr() {
    // Twisted: "<Deferred at 0x…>". The Debug form names the state; the address is the
    // chain's (see `address`), not part of it.
    let (d, _t) = Deferred::<()>::new();
    assert_eq!(repr(&d), "Deferred(pending)");
}

#[test]
fn test_repr_with_result() {
    let (d, t) = Deferred::<&str>::new();
    t.callback("orange");
    assert_eq!(repr(&d), "Deferred(current result: Ok(\"orange\"))");
    success_result_of(d);
}

#[test]
fn test_repr_with_chaining() {
    // Twisted: "<Deferred at a waiting on Deferred at b>". Here `a` has not fired, so it says
    // it is pending, chained from b.
    let (a, a_t) = Deferred::<()>::new();
    let (b, b_t) = Deferred::<()>::new();
    let b_address = address(&b);
    b.chain_deferred(a_t);
    assert_eq!(
        repr(&a),
        format!("Deferred(pending, chained from Deferred at {b_address})")
    );
    b_t.callback(());
    success_result_of(a);
}

/// `chainDeferreds(howMany)`: the stack depth at which the last step of `top` runs when `last`
/// fires `how_many` Deferreds deep. The depth is the address of a local in that step (the
/// stack grows down: a deeper call has a lower address).
fn chain_deferreds(how_many: usize) -> usize {
    let stack: Log<usize> = log();
    let record_stack_depth = {
        let stack = stack.clone();
        move |_ignored: ()| {
            let probe = 0_u8;
            push(&stack, std::hint::black_box(&probe) as *const u8 as usize);
            Ok(())
        }
    };
    let (top, top_t) = Deferred::<()>::new();
    let (last, last_t) = Deferred::<()>::new();
    // Built innermost first: inner 0 returns `last`, inner k returns inner k-1, and `top`
    // returns the outermost.
    let mut inner_triggers = Vec::new();
    let mut inner = last;
    for _ in 0..how_many {
        let (d, t) = Deferred::<()>::new();
        let next = inner;
        inner = d.add_callback(move |_ign| next);
        inner_triggers.push(t);
    }
    let top = top
        .add_callback(move |_ignored| inner)
        .add_callback(record_stack_depth);
    top_t.callback(());
    for t in inner_triggers {
        t.callback(());
    }
    // Sanity check - the record callback is not intended to have fired yet.
    assert!(stack.borrow().is_empty());
    // Now fire the last thing and return the stack depth at which the callback was invoked.
    last_t.callback(());
    success_result_of(top);
    stack.borrow()[0]
}

#[test]
fn test_bounded_stack_depth() {
    // Callbacks should be invoked at the same stack depth regardless of how many Deferreds are
    // chained.
    assert_eq!(chain_deferreds(1), chain_deferreds(2));
    assert_eq!(chain_deferreds(1), chain_deferreds(1000));
}

#[test]
fn test_result_of_deferred_result_of_deferred_of_fired_deferred_called() {
    // Twisted adds the step to `second` after returning it from `first`'s step (ui
    // c97_second_consumer.rs); here it is added just before. It is still a step of the middle
    // Deferred added after `second` chained to `third`, and it runs once `third` fires.
    let results: Log<()> = log();
    let (first, first_t) = Deferred::<()>::new();
    let (second, second_t) = Deferred::<()>::new();
    let (third, third_t) = Deferred::<()>::new();
    let second = second.add_callback(move |_ignored| third);
    second_t.callback(());
    let r = results.clone();
    let second = second.add_callback(move |v| {
        push(&r, v);
        Ok(())
    });
    let first = first.add_callback(move |_ignored| second);
    first_t.callback(());
    assert!(results.borrow().is_empty());
    third_t.callback(());
    assert_eq!(*results.borrow(), [()]);
    success_result_of(first);
}

#[test]
fn test_error_in_callback_does_not_capture_vars() {
    // Twisted: without debugging, the failure of a raising callback holds no frame locals or
    // globals. A Failure here never records variables: its frames are the yield points it
    // crossed (none here), and it does not keep the step's locals alive.
    let (d, t) = Deferred::<()>::new();
    t.callback(());
    let captured = Rc::new(());
    let local = captured.clone();
    let raise_error = move |_ignored: ()| -> Result<(), Failure> {
        let _frame_local = local;
        Err(GenericError::new("Bang").into())
    };
    let l: Log<Failure> = log();
    let ll = l.clone();
    let d = d.add_callback(raise_error).add_errback(move |f| {
        push(&ll, f);
        Ok(())
    });
    let fail = l.borrow()[0].clone();
    assert!(fail.check::<GenericError>());
    assert_eq!(fail.frames().count(), 0);
    assert_eq!(
        Rc::strong_count(&captured),
        1,
        "the failure keeps no local alive"
    );
    success_result_of(d);
}

#[test]
fn test_from_coroutine() {
    async fn returns_int() -> Result<i32, Failure> {
        Ok(1)
    }
    let d: Deferred<i32> = ensure_deferred(returns_int());
    assert_eq!(1, success_result_of(d));
}

// -------------------------------------------------------- canceller reference cycles

/// Twisted's `DummyCanceller`: a canceller object that holds the Deferred it cancels, a
/// reference cycle (chain → canceller → Deferred → chain) until the chain lets go of its
/// canceller.
#[derive(Default)]
struct DummyCanceller {
    deferred: RefCell<Option<Deferred<DropFlag>>>,
}

/// A value that says when it is dropped: the chain holding it was freed (Twisted's
/// `weakref.ref(deferred)`).
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// A Deferred whose canceller holds a `DummyCanceller` that holds the Deferred. Returns a weak
/// reference to the canceller object and the trigger.
fn deferred_with_circular_canceller() -> (Weak<DummyCanceller>, Trigger<DropFlag>) {
    let canceller = Rc::new(DummyCanceller::default());
    let weak_canceller = Rc::downgrade(&canceller);
    let held = canceller.clone();
    let (deferred, trigger) = Deferred::with_canceller(move |_d| {
        // Not expected to be called.
        let _ = &held;
    });
    *canceller.deferred.borrow_mut() = Some(deferred);
    (weak_canceller, trigger)
}

#[test]
fn test_canceller_circular_reference_callback() {
    let freed = Rc::new(Cell::new(false));
    let (weak_canceller, trigger) = deferred_with_circular_canceller();
    trigger.callback(DropFlag(freed.clone()));
    // Every local reference has been dropped: the canceller, and the Deferred, are freed.
    assert!(weak_canceller.upgrade().is_none());
    assert!(freed.get());
}

#[test]
fn test_canceller_circular_reference_errback() {
    let (weak_canceller, trigger) = deferred_with_circular_canceller();
    let canceller = weak_canceller.upgrade().unwrap();
    // The chain's value is never a DropFlag here: the Deferred is dropped with the canceller.
    let freed = Rc::new(Cell::new(false));
    let flag = DropFlag(freed.clone());
    let failure = Failure::new(GenericError::new("The test demands failures."));
    trigger.errback(failure);
    // failureResultOf(deferred): consumed, keeping the handle where the canceller holds it.
    let d = canceller.deferred.borrow_mut().take().unwrap();
    let seen: Log<Failure> = log();
    let s = seen.clone();
    let d = d.add_errback(move |f| {
        push(&s, f);
        Ok(flag)
    });
    *canceller.deferred.borrow_mut() = Some(d);
    assert!(seen.borrow()[0].check::<GenericError>());
    assert!(!freed.get());
    drop(canceller);
    assert!(weak_canceller.upgrade().is_none());
    assert!(freed.get());
}

#[test]
fn test_canceller_circular_reference_non_final() {
    let (weak_canceller, trigger) = deferred_with_circular_canceller();
    let canceller = weak_canceller.upgrade().unwrap();
    // The Deferred then waits on one that has not fired.
    let (waited, _waited_t) = Deferred::<DropFlag>::new();
    let d = canceller.deferred.borrow_mut().take().unwrap();
    *canceller.deferred.borrow_mut() = Some(d.add_callback(move |_| waited));
    trigger.callback(DropFlag(Rc::default()));
    drop(canceller);
    assert!(weak_canceller.upgrade().is_none());
}
