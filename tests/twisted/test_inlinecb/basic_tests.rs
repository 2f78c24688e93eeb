//! Ports of Twisted's `test_inlinecb.py` `BasicTests`.
//!
//! `@inlineCallbacks` is `#[inline_callbacks]`; `yield d` is `yield_!(d)`, which evaluates to the
//! Deferred's `Result`, so `try`/`except` at a yield is a `match` and `raise` is `?`. Twisted's
//! `getValueViaDeferred` fires from `reactor.callLater(0, ...)`: here from a manual [`Clock`] that
//! the test advances, where trial would spin the reactor. Trial fails a test that leaves an
//! unhandled failure behind; [`trial`] checks the same.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use defer_core::clock::Clock;
use defer_core::testing::{
    assert_no_result, failure_result_of, success_result_of, unhandled_during,
};
use defer_core::{
    Deferred, Failure, defer_later, ensure_deferred, fail, inline_callbacks, succeed, yield_,
};

error_kind!(ZeroDivisionError, TerminalException);

use crate::child_process;
use crate::small_stack;

/// Runs a scenario that would overflow the stack if the library recursed, in a child process on a
/// 2 MiB stack: an overflow then fails this test alone instead of aborting the test binary.
fn isolated(name: &'static str, scenario: fn()) {
    let name = format!("test_inlinecb::basic_tests::{name}");
    child_process::assert_child_succeeds(&name, Duration::from_secs(60), move || {
        small_stack::on_small_stack_named("stack-usage", scenario);
    });
}

/// Runs a test body and fails if it left a failure nobody handled, as trial does.
fn trial(body: impl FnOnce()) {
    let lost = unhandled_during(body);
    assert!(lost.is_empty(), "unhandled failures: {lost:?}");
}

/// Twisted's `getValueViaDeferred`: a Deferred that fires with `value` on the next turn of the
/// clock (`reactor.callLater(0, d.callback, value)`).
fn get_value_via_deferred<T: 'static>(clock: &Clock, value: T) -> Deferred<T> {
    let (d, t) = Deferred::new();
    clock.call_later(Duration::ZERO, move || {
        t.callback(value);
    });
    d
}

/// Twisted's `getValueViaCoro`: an `async` function awaiting [`get_value_via_deferred`].
async fn get_value_via_coro<T: 'static>(clock: Clock, value: T) -> Result<T, Failure> {
    get_value_via_deferred(&clock, value).await
}

/// Twisted's `getDivisionFailure`: a failure of a divide-by-zero error.
fn get_division_failure(msg: &str) -> Failure {
    Failure::new(ZeroDivisionError::new(msg))
}

/// Twisted's `getDivisionFailureCoro`: a coroutine that waits a turn, then raises.
async fn get_division_failure_coro(clock: Clock, msg: &'static str) -> Result<(), Failure> {
    get_value_via_deferred(&clock, "value").await?;
    Err(ZeroDivisionError::new(msg))?
}

/// Runs the clock's due calls until none is left (trial spinning the reactor).
fn spin(clock: &Clock) {
    while !clock.pending_calls().is_empty() {
        clock.advance(Duration::ZERO);
    }
}

#[test]
fn test_basics() {
    trial(|| {
        #[inline_callbacks]
        fn gen_basics(clock: Clock, caught: Rc<RefCell<Vec<String>>>) -> Deferred<&'static str> {
            let x = yield_!(get_value_via_deferred(&clock, "hi"))?;
            assert_eq!(x, "hi");
            match yield_!(fail::<()>(get_division_failure("OMG"))) {
                Ok(()) => {}
                Err(f) => {
                    let e = f.trap::<ZeroDivisionError>()?;
                    assert_eq!(e.to_string(), "OMG");
                    caught.borrow_mut().push(e.to_string());
                }
            }
            Ok("WOOSH")
        }
        let clock = Clock::new();
        let caught = Rc::default();
        let d = gen_basics(clock.clone(), Rc::clone(&caught));
        assert_no_result(&d);
        spin(&clock);
        assert_eq!(success_result_of(d), "WOOSH");
        assert_eq!(*caught.borrow(), ["OMG"]);
    });
}

#[test]
fn test_basics_async() {
    trial(|| {
        // `yield getValueViaCoro("hi")`: an `async` function's coroutine, yielded from inline
        // callbacks through `ensure_deferred`.
        #[inline_callbacks]
        fn gen_basics(clock: Clock) -> Deferred<&'static str> {
            let x = yield_!(ensure_deferred(get_value_via_coro(clock.clone(), "hi")))?;
            assert_eq!(x, "hi");
            match yield_!(ensure_deferred(get_division_failure_coro(clock, "OMG"))) {
                Ok(()) => Ok("no exception"),
                Err(f) => {
                    let e = f.trap::<ZeroDivisionError>()?;
                    assert_eq!(e.to_string(), "OMG");
                    // returnValue("WOOSH") inside the except clause.
                    return Ok("WOOSH");
                }
            }
        }
        let clock = Clock::new();
        let d = gen_basics(clock.clone());
        assert_no_result(&d);
        spin(&clock);
        assert_eq!(success_result_of(d), "WOOSH");
    });
}

#[test]
fn test_produces_exception() {
    trial(|| {
        #[inline_callbacks]
        fn gen_produce_exception(clock: Clock, divisor: i32) -> Deferred<i32> {
            yield_!(get_value_via_deferred(&clock, "hi"))?;
            // 1 / 0, raised as an error.
            Ok(1i32
                .checked_div(divisor)
                .ok_or_else(|| ZeroDivisionError::new("division by zero"))?)
        }
        let clock = Clock::new();
        let d = gen_produce_exception(clock.clone(), 0);
        assert_no_result(&d);
        spin(&clock);
        let f = failure_result_of(d);
        assert!(f.check::<ZeroDivisionError>(), "{f}");

        // Rust's own `1 / 0` panics instead of raising: the panic becomes the failure too.
        #[inline_callbacks]
        fn gen_divide(clock: Clock, divisor: i32) -> Deferred<i32> {
            yield_!(get_value_via_deferred(&clock, "hi"))?;
            Ok(1 / divisor)
        }
        let d = gen_divide(clock.clone(), 0);
        spin(&clock);
        let f = failure_result_of(d);
        assert!(f.is_panic(), "{f}");
        assert!(f.message().contains("attempt to divide by zero"), "{f}");
    });
}

#[test]
fn test_nothing() {
    trial(|| {
        #[inline_callbacks]
        #[allow(unreachable_code, clippy::diverging_sub_expression)]
        fn gen_nothing() -> Deferred<()> {
            if false {
                yield_!(succeed(1))?;
            }
            Ok(())
        }
        let () = success_result_of(gen_nothing());
    });
}

#[test]
fn test_handled_terminal_failure() {
    trial(|| {
        #[inline_callbacks]
        fn gen_handled_terminal_failure() -> Deferred<()> {
            match yield_!(fail::<()>(TerminalException::new(
                "Handled Terminal Failure"
            ))) {
                Ok(()) => Ok(()),
                Err(f) => {
                    f.trap::<TerminalException>()?;
                    Ok(())
                }
            }
        }
        let () = success_result_of(gen_handled_terminal_failure());
    });
}

#[test]
fn test_handled_terminal_async_failure() {
    trial(|| {
        #[inline_callbacks]
        fn gen_handled_terminal_async_failure(d: Deferred<()>) -> Deferred<()> {
            if let Err(f) = yield_!(d) {
                f.trap::<TerminalException>()?;
            }
            Ok(())
        }
        let (d, t) = Deferred::new();
        let deferred_generator_result_deferred = gen_handled_terminal_async_failure(d);
        assert_no_result(&deferred_generator_result_deferred);
        t.errback(TerminalException::new("Handled Terminal Failure"));
        let () = success_result_of(deferred_generator_result_deferred);
    });
}

#[test]
fn test_handled_coro_async_failure() {
    trial(|| {
        // The failure reaches the inline callbacks through a coroutine awaiting `d`.
        async fn coro(d: Deferred<()>) -> Result<(), Failure> {
            d.await
        }
        #[inline_callbacks]
        fn function(d: Deferred<()>) -> Deferred<()> {
            if let Err(f) = yield_!(ensure_deferred(coro(d))) {
                f.trap::<TerminalException>()?;
            }
            Ok(())
        }
        let (d, t) = Deferred::new();
        let inline_result_deferred = function(d);
        assert_no_result(&inline_result_deferred);
        t.errback(TerminalException::new("Handled Terminal Failure"));
        let () = success_result_of(inline_result_deferred);
    });
}

#[test]
fn test_stack_usage() {
    isolated("test_stack_usage", || {
        trial(|| {
            #[inline_callbacks]
            fn gen_stack_usage() -> Deferred<i32> {
                for _ in 0..5000 {
                    yield_!(succeed(1))?;
                }
                Ok(0)
            }
            assert_eq!(success_result_of(gen_stack_usage()), 0);
        });
    });
}

#[test]
fn test_stack_usage2() {
    isolated("test_stack_usage2", || {
        trial(|| {
            // `yield 1`, a plain value: `yield_!(1)` does not compile (ui
            // `yield_not_a_deferred.rs`); an immediately ready future that is not a Deferred is the
            // nearest thing, and the body may `.await` it.
            #[inline_callbacks]
            fn gen_stack_usage2() -> Deferred<i32> {
                for _ in 0..5000 {
                    assert_eq!(std::future::ready(1).await, 1);
                }
                Ok(0)
            }
            assert_eq!(success_result_of(gen_stack_usage2()), 0);
        });
    });
}

#[test]
fn test_yield_non_deferred() {
    trial(|| {
        // `yield 5` passes 5 back: a plain value is `succeed(5)` here (`yield_!(5)` is a type
        // error, ui `yield_not_a_deferred.rs`).
        #[inline_callbacks]
        fn test() -> Deferred<i32> {
            let x = yield_!(succeed(5))?;
            assert_eq!(x, 5);
            Ok(5)
        }
        assert_eq!(success_result_of(test()), 5);
    });
}

#[test]
fn test_return_no_value() {
    trial(|| {
        #[inline_callbacks]
        #[allow(clippy::needless_return)]
        fn no_return() -> Deferred<()> {
            yield_!(succeed(5))?;
            return Ok(());
        }
        let () = success_result_of(no_return());
    });
}

#[test]
fn test_return_value_deprecated() {
    trial(|| {
        // `returnValue(6)` is an early `return Ok(6)`; there is no `returnValue`, so nothing to
        // deprecate or warn about.
        #[inline_callbacks]
        fn ret(after: Rc<RefCell<bool>>) -> Deferred<i32> {
            let x = yield_!(succeed(5))?;
            if x == 5 {
                return Ok(6);
            }
            *after.borrow_mut() = true;
            Ok(x)
        }
        let after = Rc::default();
        assert_eq!(success_result_of(ret(Rc::clone(&after))), 6);
        assert!(!*after.borrow(), "the body went on after the return");
    });
}

#[test]
fn test_non_generator_return() {
    trial(|| {
        // Twisted raises TypeError when a decorated function is not a generator. Here a body
        // without `yield_!` is a coroutine like any other: it runs at once and its Deferred fires
        // with its value. The mistake Twisted catches at call time, a body that produces a plain
        // value instead of the coroutine's result, is a compile error at that value (ui
        // `inline_callbacks_body_not_a_result.rs`).
        #[inline_callbacks]
        fn no_yield() -> Deferred<i32> {
            Ok(5)
        }
        assert_eq!(success_result_of(no_yield()), 5);
    });
}

/// Both "doesn't leak" tests: `inner` finishes after a turn of the clock, then the outer function
/// raises `TerminalException`. Python's concern is an internal flow-control exception
/// (`_DefGen_Return`, `StopIteration`) chained into the traceback of the outer exception; here
/// the question is whether the failure's recorded trace carries anything of the inner coroutine,
/// which returned normally. It must hold the outer function alone.
fn assert_trace_has_only_the_raiser(f: &Failure, message: &str) {
    assert!(f.check::<TerminalException>(), "{f}");
    let tb = f.to_string();
    assert!(
        tb.contains(&format!("TerminalException: {message}")),
        "{tb}"
    );
    assert!(
        !tb.contains("returns"),
        "the inner coroutine leaked into\n{tb}"
    );
    let frames: Vec<_> = f.frames().map(|fr| fr.function()).collect();
    assert_eq!(frames, ["raises"], "{tb}");
    assert!(f.location().file().ends_with("basic_tests.rs"), "{tb}");
}

#[test]
fn test_internal_def_gen_return_value_doesnt_leak() {
    trial(|| {
        // returnValue(...) after a yield: an early `return`.
        #[inline_callbacks]
        fn returns(clock: Clock) -> Deferred<&'static str> {
            yield_!(defer_later(&clock, Duration::ZERO, || Ok(())))?;
            if clock.seconds() >= 0.0 {
                return Ok("actual-value-not-used-for-the-test");
            }
            Ok("")
        }
        #[inline_callbacks]
        fn raises(clock: Clock) -> Deferred<String> {
            yield_!(returns(clock))?;
            Err(TerminalException::new("boom returnValue"))?
        }
        let clock = Clock::new();
        let d = raises(clock.clone());
        clock.advance(Duration::ZERO);
        assert_trace_has_only_the_raiser(&failure_result_of(d), "boom returnValue");
    });
}

#[test]
fn test_internal_stop_iteration_doesnt_leak() {
    trial(|| {
        // `return 6` at the end of the body: its tail value.
        #[inline_callbacks]
        fn returns(clock: Clock) -> Deferred<i32> {
            yield_!(defer_later(&clock, Duration::ZERO, || Ok(())))?;
            Ok(6)
        }
        #[inline_callbacks]
        fn raises(clock: Clock) -> Deferred<String> {
            yield_!(returns(clock))?;
            Err(TerminalException::new("boom normal return"))?
        }
        let clock = Clock::new();
        let d = raises(clock.clone());
        clock.advance(Duration::ZERO);
        assert_trace_has_only_the_raiser(&failure_result_of(d), "boom normal return");
    });
}

#[test]
fn test_inline_callbacks_no_circular_reference() {
    trial(|| {
        type Obj = Rc<RefCell<HashSet<u8>>>;
        #[inline_callbacks]
        fn func(a: Obj) -> Deferred<Obj> {
            // `yield a`: a plain value.
            yield_!(succeed(Rc::clone(&a)))?;
            Ok(a)
        }

        let obj: Obj = Rc::default();
        let obj_weak_ref = Rc::downgrade(&obj);

        let func_d = func(Rc::clone(&obj));
        // A weak handle to the coroutine's Deferred (Python's `weakref.ref(funcD)`).
        let func_d_weak_ref = func_d.control();
        let result = success_result_of(func_d);
        assert!(Rc::ptr_eq(&obj, &result));

        drop(obj);
        drop(result);

        // Nothing of the finished coroutine keeps its argument or its Deferred alive.
        assert!(obj_weak_ref.upgrade().is_none());
        assert!(
            !func_d_weak_ref.is_called(),
            "the coroutine's Deferred is still alive"
        );

        // The same when the function first waits on a Deferred that fires later, and when it is
        // cancelled while waiting.
        #[inline_callbacks]
        fn func_waiting(a: Obj, wait: Deferred<()>) -> Deferred<Obj> {
            yield_!(wait)?;
            Ok(a)
        }
        let obj: Obj = Rc::default();
        let obj_weak_ref = Rc::downgrade(&obj);
        let (wait, t) = Deferred::new();
        let func_d = func_waiting(obj, wait);
        let func_d_weak_ref = func_d.control();
        t.callback(());
        drop(success_result_of(func_d));
        assert!(obj_weak_ref.upgrade().is_none());
        assert!(!func_d_weak_ref.is_called());

        let obj: Obj = Rc::default();
        let obj_weak_ref = Rc::downgrade(&obj);
        let (wait, _t) = Deferred::new();
        let func_d = func_waiting(obj, wait);
        func_d.cancel();
        assert!(obj_weak_ref.upgrade().is_none());
        drop(failure_result_of(func_d));
    });
}
