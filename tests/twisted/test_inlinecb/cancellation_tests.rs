//! Ports of Twisted's `test_inlinecb.py` `CancellationTests`: cancelling the Deferred `D` of an
//! inline-callbacks function `G` cancels the Deferred `C` that `G` waits on, and `G` sees the
//! cancellation at that `yield_!` and may translate it.
//!
//! Twisted's `sampleInlineCB` reaches `C` directly, or through a coroutine stacked between `G`
//! and `C`, optionally after a first wait (`…OnSecondDeferred`). Its source swaps the two stacked
//! kinds (`STACKED_INLINECB` yields `stackedCoro`, `STACKED_CORO` yields `stackedInlineCB`);
//! [`sample_inline_cb`] runs what Twisted runs, so each test exercises the same layering as its
//! Twisted namesake.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::rc::Rc;

use defer_core::errors::CancelledError;
use defer_core::testing::{
    assert_no_result, failure_result_of, success_result_of, unhandled_during,
};
use defer_core::{Deferred, Failure, Trigger, ensure_deferred, fail, inline_callbacks, yield_};

error_kind!(UntranslatedError, TranslatedError);

/// Twisted's `DontFail(actual)`: an error carrying the value to recover with.
#[derive(Debug)]
struct DontFail(i32);
impl fmt::Display for DontFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DontFail({})", self.0)
    }
}
impl Error for DontFail {}

/// Twisted's `CancellationTestsStackedType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StackType {
    NotStacked,
    StackedInlineCb,
    StackedCoro,
}

/// `getChildDeferred`: makes `C`.
type GetChild = Box<dyn FnOnce() -> Deferred<i32>>;

/// Twisted's `stackedInlineCB`.
#[inline_callbacks]
fn stacked_inline_cb(get_child_deferred: GetChild) -> Deferred<i32> {
    let x = yield_!(get_child_deferred())?;
    Ok(x)
}

/// Twisted's `stackedCoro`.
async fn stacked_coro(get_child_deferred: GetChild) -> Result<i32, Failure> {
    get_child_deferred().await
}

/// Twisted's `sampleInlineCB`, `G`: waits on `C` (through `stack_type`), translates
/// `UntranslatedError` into `TranslatedError`, recovers from `DontFail(v)` with `v - 2`, and
/// returns `x + 1`.
#[inline_callbacks]
fn sample_inline_cb(
    stack_type: StackType,
    get_child_deferred: GetChild,
    first_deferred: Option<Deferred<i32>>,
) -> Deferred<i32> {
    // try:
    let result: Result<i32, Failure> = 'try_: {
        if stack_type == StackType::NotStacked {
            break 'try_ yield_!(get_child_deferred());
        }
        if let Some(first) = first_deferred
            && let Err(f) = yield_!(first)
        {
            break 'try_ Err(f);
        }
        // As in Twisted's source: STACKED_INLINECB stacks the coroutine, STACKED_CORO the
        // inline-callbacks function.
        if stack_type == StackType::StackedInlineCb {
            yield_!(ensure_deferred(stacked_coro(get_child_deferred)))
        } else {
            yield_!(stacked_inline_cb(get_child_deferred))
        }
    };
    let x = match result {
        Ok(x) => x,
        // except UntranslatedError: raise TranslatedError()
        Err(f) if f.check::<UntranslatedError>() => {
            return Err(TranslatedError::new("translated").into());
        }
        // except DontFail as df: x = df.actualValue - 2
        Err(f) => f.trap::<DontFail>()?.0 - 2,
    };
    Ok(x + 1)
}

/// The test case's `deferredsOutstanding`, with `getDeferred`, `deferredGotten`, and `tearDown`
/// (on drop: fires whatever is still outstanding).
#[derive(Clone, Default)]
struct Outstanding(Rc<RefCell<VecDeque<Trigger<i32>>>>);

impl Outstanding {
    /// Twisted's `getDeferred`.
    fn get_deferred(&self) -> Deferred<i32> {
        let (d, t) = Deferred::new();
        self.0.borrow_mut().push_back(t);
        d
    }

    /// Twisted's `deferredGotten`: fires the least recent outstanding Deferred.
    fn deferred_gotten(&self, result: i32) {
        let t = self.0.borrow_mut().pop_front();
        if let Some(t) = t {
            t.callback(result);
        }
    }
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        if Rc::strong_count(&self.0) == 1 {
            while !self.0.borrow().is_empty() {
                self.deferred_gotten(0);
            }
        }
    }
}

/// Runs a test body with a fresh fixture and fails if the body left a failure nobody handled, as
/// trial does.
fn trial(body: impl FnOnce(&Outstanding)) {
    let lost = unhandled_during(|| {
        let fixture = Outstanding::default();
        body(&fixture);
    });
    assert!(lost.is_empty(), "unhandled failures: {lost:?}");
}

/// Calls `G`; with `cancel_on_second_deferred`, `G` first waits on a Deferred that is fired
/// before the function returns, so that the cancel reaches `G` at its second wait.
fn sample(
    stack_type: StackType,
    get_child_deferred: GetChild,
    cancel_on_second_deferred: bool,
) -> Deferred<i32> {
    if cancel_on_second_deferred {
        let (first_deferred, first) = Deferred::new();
        let d = sample_inline_cb(stack_type, get_child_deferred, Some(first_deferred));
        assert_no_result(&d);
        first.callback(1);
        d
    } else {
        sample_inline_cb(stack_type, get_child_deferred, None)
    }
}

/// Twisted's `doCascadeCancellingOnCancel`: cancelling `D` cancels `C` at once.
fn do_cascade_cancelling_on_cancel(stack_type: StackType, cancel_on_second_deferred: bool) {
    trial(|_| {
        let child_result_holder: Rc<Cell<Option<bool>>> = Rc::default();
        let producers: Rc<RefCell<Vec<Trigger<i32>>>> = Rc::default();
        let (holder, keep) = (child_result_holder.clone(), producers.clone());
        let get_child_deferred: GetChild = Box::new(move || {
            let (d, t) = Deferred::<i32>::new();
            keep.borrow_mut().push(t);
            d.add_errback(move |result| {
                holder.set(Some(result.check::<CancelledError>()));
                Err(result)
            })
        });
        let d = sample(stack_type, get_child_deferred, cancel_on_second_deferred)
            .add_errback(|_result| Ok(0));
        assert_eq!(child_result_holder.get(), None);
        d.cancel();
        assert_eq!(
            child_result_holder.get(),
            Some(true),
            "no cascade cancelling occurs"
        );
        assert!(producers.borrow()[0].is_cancelled());
        drop(d);
    });
}

#[test]
fn test_cascade_cancelling_on_cancel_not_stacked() {
    do_cascade_cancelling_on_cancel(StackType::NotStacked, false);
}

#[test]
fn test_cascade_cancelling_on_cancel_stacked_inline_cb() {
    do_cascade_cancelling_on_cancel(StackType::StackedInlineCb, false);
}

#[test]
fn test_cascade_cancelling_on_cancel_stacked_inline_cb_on_second_deferred() {
    do_cascade_cancelling_on_cancel(StackType::StackedInlineCb, true);
}

#[test]
fn test_cascade_cancelling_on_cancel_stacked_coro() {
    do_cascade_cancelling_on_cancel(StackType::StackedCoro, false);
}

#[test]
fn test_cascade_cancelling_on_cancel_stacked_coro_on_second_deferred() {
    do_cascade_cancelling_on_cancel(StackType::StackedCoro, true);
}

/// Twisted's `doErrbackCancelledErrorOnCancel`: `C`'s `CancelledError` reaches `D`.
fn do_errback_cancelled_error_on_cancel(stack_type: StackType, cancel_on_second_deferred: bool) {
    trial(|fixture| {
        let f = fixture.clone();
        let d = sample(
            stack_type,
            Box::new(move || f.get_deferred()),
            cancel_on_second_deferred,
        );
        assert_no_result(&d);
        d.cancel();
        let failure = failure_result_of(d);
        assert!(failure.check::<CancelledError>(), "{failure}");
    });
}

#[test]
fn test_errback_cancelled_error_on_cancel() {
    do_errback_cancelled_error_on_cancel(StackType::NotStacked, false);
}

#[test]
fn test_errback_cancelled_error_on_cancel_stacked_inline_cb() {
    do_errback_cancelled_error_on_cancel(StackType::StackedInlineCb, false);
}

#[test]
fn test_errback_cancelled_error_on_cancel_stacked_inline_cb_on_second_deferred() {
    do_errback_cancelled_error_on_cancel(StackType::StackedInlineCb, true);
}

#[test]
fn test_errback_cancelled_error_on_cancel_stacked_coro() {
    do_errback_cancelled_error_on_cancel(StackType::StackedCoro, false);
}

#[test]
fn test_errback_cancelled_error_on_cancel_stacked_coro_on_second_deferred() {
    do_errback_cancelled_error_on_cancel(StackType::StackedCoro, true);
}

/// Twisted's `doErrorToErrorTranslation`: `C`'s canceller fails it with `UntranslatedError`, which
/// `G` translates into `TranslatedError`.
fn do_error_to_error_translation(stack_type: StackType, cancel_on_second_deferred: bool) {
    trial(|_| {
        let (a, _producer) = Deferred::<i32>::with_canceller(|it| {
            it.errback(UntranslatedError::new("untranslated"));
        });
        let d = sample(stack_type, Box::new(move || a), cancel_on_second_deferred);
        d.cancel();
        let failure = failure_result_of(d);
        assert!(failure.check::<TranslatedError>(), "{failure}");
    });
}

#[test]
fn test_error_to_error_translation() {
    do_error_to_error_translation(StackType::NotStacked, false);
}

#[test]
fn test_error_to_error_translation_stacked_inline_cb() {
    do_error_to_error_translation(StackType::StackedInlineCb, false);
}

#[test]
fn test_error_to_error_translation_stacked_inline_cb_on_second_deferred() {
    do_error_to_error_translation(StackType::StackedInlineCb, true);
}

#[test]
fn test_error_to_error_translation_stacked_coro() {
    do_error_to_error_translation(StackType::StackedCoro, false);
}

#[test]
fn test_error_to_error_translation_stacked_coro_on_second_deferred() {
    do_error_to_error_translation(StackType::StackedCoro, true);
}

/// Twisted's `doErrorToSuccessTranslation`: `C`'s canceller fails it with `DontFail(4321)`, from
/// which `G` recovers with a value.
fn do_error_to_success_translation(stack_type: StackType, cancel_on_second_deferred: bool) {
    trial(|_| {
        let (a, _producer) = Deferred::<i32>::with_canceller(|it| {
            it.errback(DontFail(4321));
        });
        let d = sample(stack_type, Box::new(move || a), cancel_on_second_deferred);
        let results: Rc<RefCell<Vec<i32>>> = Rc::default();
        let r = results.clone();
        let d = d.add_callback(move |x| {
            r.borrow_mut().push(x);
            Ok(())
        });
        assert!(results.borrow().is_empty());
        d.cancel();
        assert_eq!(*results.borrow(), [4320]);
        let () = success_result_of(d);
    });
}

#[test]
fn test_error_to_success_translation() {
    do_error_to_success_translation(StackType::NotStacked, false);
}

#[test]
fn test_error_to_success_translation_stacked_inline_cb() {
    do_error_to_success_translation(StackType::StackedInlineCb, false);
}

#[test]
fn test_error_to_success_translation_stacked_inline_cb_on_second_deferred() {
    do_error_to_success_translation(StackType::StackedInlineCb, true);
}

#[test]
fn test_error_to_success_translation_stacked_coro() {
    do_error_to_success_translation(StackType::StackedCoro, false);
}

#[test]
fn test_error_to_success_translation_stacked_coro_on_second_deferred() {
    do_error_to_success_translation(StackType::StackedCoro, true);
}

/// Twisted's `doAsynchronousCancellation`: `C`'s errback answers the cancellation with another
/// Deferred; `D` does not fire until that one does.
fn do_asynchronous_cancellation(stack_type: StackType, cancel_on_second_deferred: bool) {
    trial(|_| {
        let (more_deferred, more) = Deferred::<i32>::new();
        let producers: Rc<RefCell<Vec<Trigger<i32>>>> = Rc::default();
        let keep = producers.clone();
        let defer_me: GetChild = Box::new(move || {
            let (d, t) = Deferred::<i32>::new();
            keep.borrow_mut().push(t);
            // deferMeMore
            d.add_errback(move |result| match result.trap::<CancelledError>() {
                Ok(_) => more_deferred,
                Err(other) => fail(other),
            })
        });
        let d = sample(stack_type, defer_me, cancel_on_second_deferred);
        d.cancel();
        assert_no_result(&d);
        assert!(producers.borrow()[0].is_cancelled());
        more.callback(6543);
        assert_eq!(success_result_of(d), 6544);
    });
}

#[test]
fn test_asynchronous_cancellation() {
    do_asynchronous_cancellation(StackType::NotStacked, false);
}

#[test]
fn test_asynchronous_cancellation_stacked_inline_cb() {
    do_asynchronous_cancellation(StackType::StackedInlineCb, false);
}

#[test]
fn test_asynchronous_cancellation_stacked_inline_cb_on_second_deferred() {
    do_asynchronous_cancellation(StackType::StackedInlineCb, true);
}

#[test]
fn test_asynchronous_cancellation_stacked_coro() {
    do_asynchronous_cancellation(StackType::StackedCoro, false);
}

#[test]
fn test_asynchronous_cancellation_stacked_coro_on_second_deferred() {
    do_asynchronous_cancellation(StackType::StackedCoro, true);
}

#[test]
fn test_inline_callbacks_cancel_captured() {
    trial(|_| {
        // A canceller that records its call (Twisted's `canceller1Calls.append`) and does not
        // fire: the Deferred then fails with CancelledError.
        type Calls = Rc<RefCell<Vec<Trigger<()>>>>;
        let canceller1_calls: Calls = Rc::default();
        let canceller2_calls: Calls = Rc::default();
        let c1 = canceller1_calls.clone();
        let (d1, _p1) = Deferred::<()>::with_canceller(move |t| c1.borrow_mut().push(t));
        let c2 = canceller2_calls.clone();
        let (d2, _p2) = Deferred::<()>::with_canceller(move |t| c2.borrow_mut().push(t));
        let (d1_ref, d2_ref) = (d1.control(), d2.control());

        #[inline_callbacks]
        fn test_func(d1: Deferred<()>, d2: Deferred<()>) -> Deferred<()> {
            // try: yield d1 / except Exception: pass
            let _ = yield_!(d1);
            yield_!(d2)
        }

        let func_d = test_func(d1, d2);
        assert!(!d1_ref.is_called());
        assert!(!d2_ref.is_called());
        assert_no_result(&func_d);
        assert!(canceller1_calls.borrow().is_empty());
        assert!(canceller2_calls.borrow().is_empty());

        // The first cancel cancels d1; the function catches it and waits on d2.
        func_d.cancel();
        assert_eq!(canceller1_calls.borrow().len(), 1);
        assert!(canceller1_calls.borrow()[0].is_cancelled());
        assert!(canceller2_calls.borrow().is_empty());
        assert_no_result(&func_d);

        // The second cancel cancels d2, which the function does not catch.
        func_d.cancel();
        let failure = failure_result_of(func_d);
        assert!(failure.check::<CancelledError>(), "{failure}");
        assert_eq!(canceller2_calls.borrow().len(), 1);
        assert!(canceller2_calls.borrow()[0].is_cancelled());
    });
}
