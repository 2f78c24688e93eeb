//! Conformance: `#[inline_callbacks]` with `yield_!`, `ensure_deferred` with `.await`, their
//! cancellation and their failure trace (twisted-semantics.md §4, C79–C98; §2.11 and §2.15).
//! Each test is named after its case and asserts the same order of events and the same values as
//! the oracle script (`twisted-oracle.py`). Where Rust's types make a case different (Python's
//! plain-value `yield 5`, `ensureDeferred(d) is d`, two consumers of one Deferred), the test checks
//! what the types leave expressible, and `tests/CASES.md` says why.
//!
//! Twisted raises at the `yield`; here `yield_!(d)` and `d.await` evaluate to `Result<T, Failure>`,
//! so `match` on it is the `try`/`except`, and `?` raises.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use defer_core::clock::Clock;
use defer_core::errors::CancelledError;
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::unhandled;
use defer_core::{
    Deferred, Failure, Trigger, ensure_deferred, fail, inline_callbacks, succeed, yield_,
};

#[macro_use]
#[path = "support/error_kinds.rs"]
mod error_kinds;

error_kind!(
    E1,
    ZeroDivisionError,
    ValueError,
    Untranslated,
    Translated,
    ErrorMarker
);

/// The oracle's `DontFail(v)`: an error that carries the value to recover with.
#[derive(Debug)]
struct DontFail(i32);
impl fmt::Display for DontFail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "don't fail: {}", self.0)
    }
}
impl Error for DontFail {}

type Log<T> = Rc<RefCell<Vec<T>>>;

fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

/// The last segment of a failure's type name: `"E1"` for `coro_cases::E1`.
fn kind(f: &Failure) -> &'static str {
    f.type_name().rsplit("::").next().unwrap_or_default()
}

/// Runs `body` with a thread-local unhandled-failure hook and asserts that nothing was reported:
/// a failure a coroutine received at a `yield_!` or `.await`, or that a test took with
/// `failure_result_of`, is handled (DESIGN §8).
fn no_unhandled(body: impl FnOnce()) {
    let reported = log();
    let r = reported.clone();
    unhandled::with_hook(move |f| r.borrow_mut().push(f.to_string()), body);
    assert!(
        reported.borrow().is_empty(),
        "reported as unhandled: {:?}",
        reported.borrow()
    );
}

// On a 2 MiB stack, the size DESIGN §5 promises to stay within.
#[path = "support/small_stack.rs"]
mod small_stack;
use small_stack::on_small_stack;

// ---------------------------------------------------------------------------- inlineCallbacks

#[test]
fn c79_yield_sends_values_in_and_raises_failures_at_the_yield() {
    no_unhandled(|| {
        #[inline_callbacks]
        fn g(later: Deferred<&'static str>, seen: Log<String>) -> Deferred<&'static str> {
            let x = yield_!(later)?;
            seen.borrow_mut().push(format!("x = {x}"));
            // try: yield fail(ZeroDivisionError("OMG")) / except ZeroDivisionError as e
            match yield_!(fail::<()>(ZeroDivisionError::new("OMG"))) {
                Ok(()) => seen.borrow_mut().push("no exception".into()),
                Err(f) => {
                    let e = f.trap::<ZeroDivisionError>()?;
                    seen.borrow_mut().push(format!("caught {}", *e));
                }
            }
            Ok("WOOSH")
        }

        let seen = log();
        let (later, t) = Deferred::new();
        let d = g(later, seen.clone());
        assert_no_result(&d);
        assert!(seen.borrow().is_empty());
        assert!(t.callback("hi"));
        assert_eq!(*seen.borrow(), ["x = hi", "caught OMG"]);
        assert_eq!(success_result_of(d), "WOOSH");
    });
}

#[test]
fn c80_an_error_after_or_before_the_first_yield_fails_the_result_and_is_never_raised() {
    no_unhandled(|| {
        #[inline_callbacks]
        fn g(w: Deferred<()>, divisor: i32) -> Deferred<i32> {
            yield_!(w)?;
            // 1 / 0
            let q = 1i32
                .checked_div(divisor)
                .ok_or_else(|| ZeroDivisionError::new("division by zero"))?;
            Ok(q)
        }
        let (w, t) = Deferred::new();
        let d = g(w, 0);
        assert_no_result(&d);
        t.callback(());
        let f = failure_result_of(d);
        assert_eq!(kind(&f), "ZeroDivisionError");
        assert_eq!(f.message(), "division by zero");
        // The failure's trace names the function it was raised in.
        assert_eq!(f.frames().next().map(|fr| fr.function()), Some("g"));

        // Raised before the first yield: the call returns normally with a failed Deferred.
        #[inline_callbacks]
        fn early(input: &'static str) -> Deferred<i32> {
            let n: i32 = input
                .parse()
                .map_err(|_| ValueError::new("before first yield"))?;
            Ok(yield_!(succeed(n))?)
        }
        let f = failure_result_of(early("not a number"));
        assert_eq!(kind(&f), "ValueError");
        assert_eq!(f.message(), "before first yield");
        // Even a panic before the first yield is not raised to the caller: it fails the Deferred.
        #[inline_callbacks]
        fn early_panic(input: Deferred<i32>) -> Deferred<i32> {
            if input.is_called() {
                panic!("before first yield");
            }
            yield_!(input)
        }
        let f = failure_result_of(early_panic(succeed(1)));
        assert!(f.is_panic());
        assert_eq!(f.message(), "panicked: before first yield");

        // A body that never yields gives its value (Python: a generator that never yields gives None).
        #[inline_callbacks]
        fn nothing() -> Deferred<()> {
            Ok(())
        }
        success_result_of(nothing());
    });
}

#[test]
fn c81_a_handled_terminal_failure_gives_unit() {
    no_unhandled(|| {
        #[inline_callbacks]
        fn h(d: Deferred<()>) -> Deferred<()> {
            if let Err(f) = yield_!(d) {
                f.trap::<E1>()?; // except E1: pass
            }
            Ok(())
        }
        success_result_of(h(fail(E1::new("Handled Terminal Failure"))));

        // The same with a Deferred that fails later.
        let (src, t) = Deferred::new();
        let d = h(src);
        assert_no_result(&d);
        t.errback(E1::new("x"));
        success_result_of(d);

        // A failure of another kind is not handled: it passes through the `?`.
        let f = failure_result_of(h(fail(ValueError::new("other"))));
        assert_eq!((kind(&f), f.message()), ("ValueError", "other".into()));
    });
}

#[test]
fn c82_thousands_of_yields_of_fired_deferreds_do_not_grow_the_stack() {
    no_unhandled(|| {
        on_small_stack(|| {
            #[inline_callbacks]
            fn s1() -> Deferred<i32> {
                for _ in 0..5000 {
                    yield_!(succeed(1))?;
                }
                Ok(0)
            }
            // Python's `yield 1` (a plain value sent straight back): an already-ready future.
            fn s2() -> Deferred<i32> {
                ensure_deferred(async {
                    for _ in 0..5000 {
                        std::future::ready(1).await;
                    }
                    Ok(0)
                })
            }
            #[inline_callbacks]
            fn big() -> Deferred<u64> {
                let mut t = 0;
                for _ in 0..100_000 {
                    t += yield_!(succeed(1))?;
                }
                Ok(t)
            }
            fn big_await() -> Deferred<u64> {
                ensure_deferred(async {
                    let mut t = 0;
                    for _ in 0..100_000 {
                        t += succeed(1).await?;
                    }
                    Ok(t)
                })
            }
            assert_eq!(success_result_of(s1()), 0);
            assert_eq!(success_result_of(s2()), 0);
            assert_eq!(success_result_of(big()), 100_000);
            assert_eq!(success_result_of(big_await()), 100_000);
        });
    });
}

#[test]
fn c83_yielded_values_return_and_early_return() {
    no_unhandled(|| {
        // `x = yield 5; return x`: Python's plain value is `succeed(5)` here.
        #[inline_callbacks]
        fn y() -> Deferred<i32> {
            let x = yield_!(succeed(5))?;
            Ok(x)
        }
        assert_eq!(success_result_of(y()), 5);

        // `yield 5; return` gives None: unit here.
        #[inline_callbacks]
        fn noret() -> Deferred<()> {
            yield_!(succeed(5))?;
            Ok(())
        }
        success_result_of(noret());

        // `yield 5; returnValue(6)`: an early `return` leaves the body there.
        #[inline_callbacks]
        fn rv(after: Log<&'static str>) -> Deferred<i32> {
            let x = yield_!(succeed(5))?;
            if x == 5 {
                return Ok(6);
            }
            after.borrow_mut().push("after the return");
            Ok(x)
        }
        let after = log();
        assert_eq!(success_result_of(rv(after.clone())), 6);
        assert!(after.borrow().is_empty());

        // `yield d; return 14` gives 14 once d fires.
        #[inline_callbacks]
        fn f(d: Deferred<()>) -> Deferred<i32> {
            yield_!(d)?;
            Ok(14)
        }
        let (d1, t) = Deferred::new();
        let d2 = f(d1);
        assert_no_result(&d2);
        t.callback(());
        assert_eq!(success_result_of(d2), 14);

        // Twisted's TypeError for a decorated plain function cannot happen: a body with no `yield_!`
        // is a coroutine that finishes at once with its value, or its `return`.
        #[inline_callbacks]
        fn plain() -> Deferred<i32> {
            Ok(5)
        }
        #[inline_callbacks]
        fn plain_return(early: bool) -> Deferred<i32> {
            if early {
                return Ok(5);
            }
            Ok(6)
        }
        assert_eq!(success_result_of(plain()), 5);
        assert_eq!(success_result_of(plain_return(true)), 5);
        assert_eq!(success_result_of(plain_return(false)), 6);
    });
}

#[test]
fn c84_the_body_runs_synchronously_until_an_unfired_yield() {
    no_unhandled(|| {
        #[inline_callbacks]
        fn g(w: Deferred<&'static str>, log: Log<i32>) -> Deferred<&'static str> {
            log.borrow_mut().push(1);
            yield_!(succeed(()))?;
            log.borrow_mut().push(2);
            yield_!(succeed(5))?;
            log.borrow_mut().push(3);
            let x = yield_!(w)?;
            log.borrow_mut().push(4);
            Ok(x)
        }
        let l = log();
        let (w, t) = Deferred::new();
        let d = g(w, l.clone());
        assert_eq!(*l.borrow(), [1, 2, 3]);
        assert_no_result(&d);
        t.callback("w");
        assert_eq!(*l.borrow(), [1, 2, 3, 4]);
        assert_eq!(success_result_of(d), "w");
    });
}

type Exp = Log<(&'static str, i32)>;
type Pending = Log<(Trigger<i32>, i32)>;

fn c85_expected() -> Vec<(&'static str, i32)> {
    vec![
        ("f3 enter", 1),
        ("f2 enter", 1),
        ("f1 enter", 1),
        ("f1 exit", 2),
        ("f2 exit", 4),
        ("f3 exit", 8),
    ]
}

#[test]
fn c85_stacked_inline_callbacks_resume_innermost_first() {
    no_unhandled(|| {
        #[inline_callbacks]
        fn f1(x: i32, exp: Exp, pending: Pending) -> Deferred<i32> {
            exp.borrow_mut().push(("f1 enter", x));
            let (d, t) = Deferred::new();
            pending.borrow_mut().push((t, x));
            let x = yield_!(d)? + 1;
            exp.borrow_mut().push(("f1 exit", x));
            Ok(x)
        }
        #[inline_callbacks]
        fn f2(x: i32, exp: Exp, pending: Pending) -> Deferred<i32> {
            exp.borrow_mut().push(("f2 enter", x));
            let x = yield_!(f1(x, exp.clone(), pending))? + 2;
            exp.borrow_mut().push(("f2 exit", x));
            Ok(x)
        }
        #[inline_callbacks]
        fn f3(x: i32, exp: Exp, pending: Pending) -> Deferred<i32> {
            exp.borrow_mut().push(("f3 enter", x));
            let x = yield_!(f2(x, exp.clone(), pending))? + 4;
            exp.borrow_mut().push(("f3 exit", x));
            Ok(x)
        }
        let (exp, pending) = (log(), log());
        let r = f3(1, exp.clone(), pending.clone());
        assert_no_result(&r);
        let fire: Vec<_> = pending.borrow_mut().drain(..).collect();
        assert_eq!(fire.len(), 1);
        for (t, x) in fire {
            t.callback(x);
        }
        assert_eq!(success_result_of(r), 8);
        assert_eq!(*exp.borrow(), c85_expected());
    });
}

#[test]
fn c85_stacked_async_functions_resume_innermost_first() {
    no_unhandled(|| {
        // The `…Coro` variant: only the outermost coroutine is wrapped; inner awaits are native.
        async fn f1(x: i32, exp: Exp, pending: Pending) -> Result<i32, Failure> {
            exp.borrow_mut().push(("f1 enter", x));
            let (d, t) = Deferred::new();
            pending.borrow_mut().push((t, x));
            let x = d.await? + 1;
            exp.borrow_mut().push(("f1 exit", x));
            Ok(x)
        }
        async fn f2(x: i32, exp: Exp, pending: Pending) -> Result<i32, Failure> {
            exp.borrow_mut().push(("f2 enter", x));
            let x = f1(x, exp.clone(), pending).await? + 2;
            exp.borrow_mut().push(("f2 exit", x));
            Ok(x)
        }
        async fn f3(x: i32, exp: Exp, pending: Pending) -> Result<i32, Failure> {
            exp.borrow_mut().push(("f3 enter", x));
            let x = f2(x, exp.clone(), pending).await? + 4;
            exp.borrow_mut().push(("f3 exit", x));
            Ok(x)
        }
        let (exp, pending) = (log(), log());
        let r = ensure_deferred(f3(1, exp.clone(), pending.clone()));
        assert_no_result(&r);
        let fire: Vec<_> = pending.borrow_mut().drain(..).collect();
        for (t, x) in fire {
            t.callback(x);
        }
        assert_eq!(success_result_of(r), 8);
        assert_eq!(*exp.borrow(), c85_expected());
    });
}

#[test]
fn c87_a_callback_added_between_two_coroutines_runs_in_order() {
    no_unhandled(|| {
        fn expected() -> Vec<(&'static str, i32)> {
            vec![
                ("f3 enter", 1),
                ("f1 enter", 1),
                ("f1 exit", 2),
                ("f2 enter", 2),
                ("f2 exit", 4),
                ("f3 exit", 8),
            ]
        }
        // f1 yields a Deferred: an already-fired one (…AndNoWaiting) or a pending one (…Waiting).
        #[inline_callbacks]
        fn f1(x: i32, wait: Deferred<()>, exp: Exp) -> Deferred<i32> {
            exp.borrow_mut().push(("f1 enter", x));
            yield_!(wait)?;
            let x = yield_!(succeed(x))? + 1;
            exp.borrow_mut().push(("f1 exit", x));
            Ok(x)
        }
        fn f2(x: i32, exp: &Exp) -> Result<i32, Failure> {
            exp.borrow_mut().push(("f2 enter", x));
            let x = x + 2;
            exp.borrow_mut().push(("f2 exit", x));
            Ok(x)
        }
        #[inline_callbacks]
        fn f3(x: i32, wait: Deferred<()>, exp: Exp) -> Deferred<i32> {
            exp.borrow_mut().push(("f3 enter", x));
            let e = exp.clone();
            let d = f1(x, wait, exp.clone()).add_callback(move |x| f2(x, &e));
            let x = yield_!(d)? + 4;
            exp.borrow_mut().push(("f3 exit", x));
            Ok(x)
        }

        let exp = log();
        assert_eq!(success_result_of(f3(1, succeed(()), exp.clone())), 8);
        assert_eq!(*exp.borrow(), expected());

        let exp = log();
        let (wait, t) = Deferred::new();
        let r = f3(1, wait, exp.clone());
        assert_no_result(&r);
        assert_eq!(*exp.borrow(), [("f3 enter", 1), ("f1 enter", 1)]);
        t.callback(());
        assert_eq!(success_result_of(r), 8);
        assert_eq!(*exp.borrow(), expected());
    });
}

// --------------------------------------------------------------- inlineCallbacks cancellation

/// The oracle's `_sample`: G waits on `child`, translates `Untranslated` into `Translated` and
/// recovers from `DontFail(v)` with `v - 2`; it returns `x + 1`.
#[inline_callbacks]
fn sample(child: Deferred<i32>) -> Deferred<i32> {
    let x = match yield_!(child) {
        Ok(x) => x,
        Err(f) if f.check::<Untranslated>() => return Err(Translated::new("translated").into()),
        Err(f) => f.trap::<DontFail>()?.0 - 2,
    };
    Ok(x + 1)
}

/// How the test reaches G: directly, stacked under another `#[inline_callbacks]` function, stacked
/// under an `ensure_deferred` coroutine, and (Twisted's `…OnSecondDeferred`) with the cancel
/// arriving at G's second wait.
#[derive(Clone, Copy, Debug)]
enum Via {
    Direct,
    Stacked,
    Coroutine,
    SecondWait,
}

const VIAS: [Via; 4] = [Via::Direct, Via::Stacked, Via::Coroutine, Via::SecondWait];

#[inline_callbacks]
fn stacked(child: Deferred<i32>) -> Deferred<i32> {
    yield_!(sample(child))
}

#[inline_callbacks]
fn second_wait(first: Deferred<()>, child: Deferred<i32>) -> Deferred<i32> {
    yield_!(first)?;
    yield_!(sample(child))
}

/// Calls G through `via`; for `SecondWait`, G's first wait is fired before the function returns.
fn call(via: Via, child: Deferred<i32>) -> Deferred<i32> {
    match via {
        Via::Direct => sample(child),
        Via::Stacked => stacked(child),
        Via::Coroutine => ensure_deferred(async move { sample(child).await }),
        Via::SecondWait => {
            let (first, t) = Deferred::new();
            let d = second_wait(first, child);
            assert_no_result(&d);
            t.callback(());
            d
        }
    }
}

#[test]
fn c89_cancel_cascades_to_the_awaited_deferred_and_fails_with_cancelled_error() {
    no_unhandled(|| {
        for via in VIAS {
            // C's errback sees the CancelledError: the cancel cascaded to it.
            let holder = Rc::new(Cell::new(None));
            let (c, producer) = Deferred::<i32>::new();
            let h = holder.clone();
            let c = c.add_errback(move |f| {
                h.set(Some(f.check::<CancelledError>()));
                Err(f)
            });
            let d = call(via, c);
            assert_no_result(&d);
            d.cancel();
            assert_eq!(holder.get(), Some(true), "{via:?}");
            assert!(producer.is_cancelled(), "{via:?}");
            let f = failure_result_of(d);
            assert!(f.check::<CancelledError>(), "{via:?}: {f}");

            // A plain pending child: D fails with CancelledError.
            let (c, producer) = Deferred::new();
            let d = call(via, c);
            d.cancel();
            assert!(producer.is_cancelled(), "{via:?}");
            assert!(failure_result_of(d).check::<CancelledError>(), "{via:?}");
        }
    });
}

#[test]
fn c90_the_body_translates_the_cancellation_into_an_error_or_a_value() {
    no_unhandled(|| {
        for via in VIAS {
            // C's canceller errbacks Untranslated: G raises Translated.
            let (c, _producer) = Deferred::with_canceller(|t| {
                t.errback(Untranslated::new("untranslated"));
            });
            let d = call(via, c);
            d.cancel();
            let f = failure_result_of(d);
            assert_eq!(kind(&f), "Translated", "{via:?}: {f}");

            // C's canceller errbacks DontFail(4321): G recovers with 4321 - 2 + 1.
            let (c, _producer) = Deferred::with_canceller(|t| {
                t.errback(DontFail(4321));
            });
            let out = log();
            let o = out.clone();
            let d = call(via, c).add_callback(move |x| {
                o.borrow_mut().push(x);
                Ok(())
            });
            assert!(out.borrow().is_empty());
            d.cancel();
            assert_eq!(*out.borrow(), [4320], "{via:?}");
            success_result_of(d);
        }
    });
}

#[test]
fn c90_asynchronous_cancellation_waits_for_the_deferred_that_c_errback_returns() {
    no_unhandled(|| {
        // Twisted's test_AsynchronousCancellation*: C's errback returns another Deferred; D stays
        // unfired until that one fires with 6543, then G returns 6544.
        for via in VIAS {
            let (c, producer) = Deferred::<i32>::new();
            let (later, later_t) = Deferred::new();
            let c = c.add_errback(move |f| {
                assert!(f.check::<CancelledError>());
                later
            });
            let d = call(via, c);
            d.cancel();
            assert!(producer.is_cancelled(), "{via:?}");
            assert_no_result(&d);
            later_t.callback(6543);
            assert_eq!(success_result_of(d), 6544, "{via:?}");
        }
    });
}

#[test]
fn c93_cancel_then_late_fire_is_ignored_and_a_finished_coroutine_keeps_its_result() {
    no_unhandled(|| {
        #[inline_callbacks]
        fn g(w: Deferred<&'static str>) -> Deferred<&'static str> {
            let x = yield_!(w)?;
            Ok(x)
        }
        let (w, t) = Deferred::new();
        let d = g(w);
        d.cancel();
        let f = failure_result_of(d);
        assert!(f.check::<CancelledError>(), "{f}");
        // The producer fires later: refused quietly, and it can tell.
        assert!(t.is_cancelled());
        assert!(!t.callback("late"));

        // Cancelling a coroutine that has finished does nothing.
        #[inline_callbacks]
        fn done() -> Deferred<i32> {
            yield_!(succeed(()))?;
            Ok(1)
        }
        let d = done();
        d.cancel();
        assert_eq!(success_result_of(d), 1);

        // The same with `ensure_deferred`.
        let (w, t) = Deferred::<&str>::new();
        let d = ensure_deferred(async move { w.await });
        d.cancel();
        assert!(failure_result_of(d).check::<CancelledError>());
        assert!(!t.callback("late"));
        let d = ensure_deferred(async { Ok(succeed(1).await? + 1) });
        d.cancel();
        assert_eq!(success_result_of(d), 2);
    });
}

#[test]
fn c93_a_captured_cancel_lets_the_body_wait_again_and_a_second_cancel_cancels_that() {
    no_unhandled(|| {
        // Twisted's test_inlineCallbacksCancelCaptured: G catches the CancelledError and waits on
        // another Deferred; D stays unfired; a second D.cancel() cancels what G waits on next.
        #[inline_callbacks]
        fn g(w1: Deferred<i32>, w2: Deferred<i32>, seen: Log<String>) -> Deferred<i32> {
            match yield_!(w1) {
                Ok(v) => return Ok(v),
                Err(f) => seen.borrow_mut().push(format!("first: {}", kind(&f))),
            }
            match yield_!(w2) {
                Ok(v) => Ok(v),
                Err(f) => {
                    seen.borrow_mut().push(format!("second: {}", kind(&f)));
                    Ok(-1)
                }
            }
        }
        let run = |second: fn(Deferred<i32>) -> Deferred<i32>| {
            let seen = log();
            let (w1, t1) = Deferred::new();
            let (w2, t2) = Deferred::new();
            let d = second(g(w1, w2, seen.clone()));
            d.cancel();
            assert!(t1.is_cancelled());
            assert!(!t2.is_cancelled());
            assert_eq!(*seen.borrow(), ["first: CancelledError"]);
            assert_no_result(&d);
            d.cancel();
            assert!(t2.is_cancelled());
            assert_eq!(
                *seen.borrow(),
                ["first: CancelledError", "second: CancelledError"]
            );
            assert_eq!(success_result_of(d), -1);
        };
        run(|d| d);
        // Stacked under another coroutine of each kind: the cancel goes down the stack both times.
        run(|d| {
            #[inline_callbacks]
            fn outer(d: Deferred<i32>) -> Deferred<i32> {
                yield_!(d)
            }
            outer(d)
        });
        run(|d| ensure_deferred(async move { d.await }));

        // A body that recovers from the cancel and then finishes with a value of its own.
        #[inline_callbacks]
        fn recover(w: Deferred<i32>) -> Deferred<i32> {
            let v = yield_!(w).or_else(|f| f.trap::<CancelledError>().map(|_| 0))?;
            Ok(v + yield_!(succeed(10))?)
        }
        let (w, _t) = Deferred::new();
        let d = recover(w);
        d.cancel();
        assert_eq!(success_result_of(d), 10);
    });
}

// ---------------------------------------------------------- coroutines, ensureDeferred, await

#[test]
fn c95_await_raises_failures_returns_values_and_waits_for_chained_deferreds() {
    no_unhandled(|| {
        async fn t(seen: Log<String>) -> Result<i32, Failure> {
            match fail::<()>(ValueError::new("Boom")).await {
                Ok(()) => Ok(0),
                Err(f) => {
                    let e = f.trap::<ValueError>()?;
                    seen.borrow_mut().push(e.0.clone());
                    Ok(1)
                }
            }
        }
        let seen = log();
        assert_eq!(success_result_of(ensure_deferred(t(seen.clone()))), 1);
        assert_eq!(*seen.borrow(), ["Boom"]);

        async fn boom() -> Result<(), Failure> {
            succeed("foo").await?;
            Err(ValueError::new("Oh no!"))?
        }
        let f = failure_result_of(ensure_deferred(boom()));
        assert_eq!((kind(&f), f.message()), ("ValueError", "Oh no!".into()));

        // `await d` where d's callback returned d2, which fires "bye" later (from the clock).
        let clock = Rc::new(Clock::new());
        let c = clock.clone();
        let d = ensure_deferred(async move {
            let (d, t) = Deferred::<()>::new();
            let (d2, t2) = Deferred::new();
            let d = d.add_callback(move |()| d2);
            t.callback(());
            let _call = c.call_later(Duration::ZERO, move || {
                t2.callback("bye");
            });
            d.await
        });
        assert_no_result(&d);
        clock.advance(Duration::from_millis(100));
        assert_eq!(success_result_of(d), "bye");
    });
}

#[test]
fn c96_ensure_deferred_of_a_coroutine_and_of_a_deferred() {
    no_unhandled(|| {
        async fn run() -> Result<&'static str, Failure> {
            succeed("foo").await
        }
        assert_eq!(success_result_of(ensure_deferred(run())), "foo");

        // `ensureDeferred(d) is d`: a Deferred is not a future (it is `IntoFuture`), so
        // `ensure_deferred(d)` does not compile, nor does `ensure_deferred` of a string, an integer,
        // `None` or a closure (Twisted's NotACoroutineError). The nearest expressible form,
        // `ensure_deferred(d.into_future())`, behaves as d: same result, same pending time, and
        // cancelling it cancels d.
        use std::future::IntoFuture;
        let (d, t) = Deferred::new();
        let e = ensure_deferred(d.into_future());
        assert_no_result(&e);
        t.callback("value");
        assert_eq!(success_result_of(e), "value");

        let (d, t) = Deferred::<&str>::new();
        let e = ensure_deferred(d.into_future());
        e.cancel();
        assert!(t.is_cancelled());
        assert!(failure_result_of(e).check::<CancelledError>());

        let f = failure_result_of(ensure_deferred(fail::<()>(E1::new("x")).into_future()));
        assert_eq!((kind(&f), f.message()), ("E1", "x".into()));
    });
}

#[test]
fn c97_one_consumer_per_deferred_and_an_explicit_fan_out_gives_both_the_value() {
    no_unhandled(|| {
        // Twisted: two consumers yield the same d; the second gets None. Here `yield_!(d)` moves d,
        // so a second `yield_!` of it does not compile (ui `c97_second_consumer.rs` shows the same
        // rule for two steps on one handle). A second consumer needs its own Deferred, fed from the
        // first chain explicitly, and then both see the value.
        #[inline_callbacks]
        fn consumer(d: Deferred<&'static str>) -> Deferred<&'static str> {
            let x = yield_!(d)?;
            Ok(x)
        }
        let (shared, t) = Deferred::new();
        let (copy, copy_t) = Deferred::new();
        let shared = shared.add_callback(move |v| {
            copy_t.callback(v);
            Ok(v)
        });
        let a = consumer(shared);
        let b = consumer(copy);
        assert_no_result(&a);
        assert_no_result(&b);
        t.callback("value");
        assert_eq!(success_result_of(a), "value");
        assert_eq!(success_result_of(b), "value");
    });
}

// ------------------------------------------------------------------------------- the trace

/// The 1-based number of the line of this file that ends with the comment `marker`, and that line.
fn marked_line(marker: &str) -> (u32, &'static str) {
    let source = include_str!("coro_cases.rs");
    let (i, line) = source
        .lines()
        .enumerate()
        .find(|(_, l)| l.trim_end().ends_with(marker))
        .unwrap_or_else(|| panic!("no line marked {marker:?}"));
    (u32::try_from(i + 1).unwrap(), line)
}

#[test]
fn c98_a_failure_crossing_nested_coroutines_carries_each_yield_outermost_first() {
    no_unhandled(|| {
        #[inline_callbacks]
        fn erroring() -> Deferred<()> {
            yield_!(succeed("forcing generator"))?;
            Err(ErrorMarker::new("Error Marker"))? // trace: raise
        }
        #[inline_callbacks]
        fn calling3() -> Deferred<()> {
            yield_!(erroring()) // trace: calling3
        }
        #[inline_callbacks]
        fn calling2() -> Deferred<()> {
            yield_!(calling3()) // trace: calling2
        }
        #[inline_callbacks]
        fn calling() -> Deferred<()> {
            yield_!(calling2()) // trace: calling
        }

        let f = failure_result_of(calling());
        assert_eq!(
            (kind(&f), f.message()),
            ("ErrorMarker", "Error Marker".into())
        );
        let frames: Vec<_> = f.frames().collect();
        let expected = [
            ("calling", "// trace: calling"),
            ("calling2", "// trace: calling2"),
            ("calling3", "// trace: calling3"),
            ("erroring", "// trace: raise"),
        ];
        assert_eq!(frames.len(), expected.len(), "{f}");
        for (frame, (function, marker)) in frames.iter().zip(expected) {
            let (line, text) = marked_line(marker);
            assert_eq!(frame.function(), function, "{f}");
            assert!(frame.file().ends_with("coro_cases.rs"), "{frame}");
            assert_eq!(frame.line(), line, "{frame}");
            if function != "erroring" {
                // Each yield frame points at the user's `yield_` token.
                let at = usize::try_from(frame.column()).unwrap() - 1;
                assert!(text[at..].starts_with("yield_!"), "{frame}: {text}");
            }
        }
        assert_eq!(f.location().line(), marked_line("// trace: raise").0);

        let tb = f.to_string();
        let pos = |s: &str| tb.find(s).unwrap_or_else(|| panic!("{s:?} not in\n{tb}"));
        let order = [
            pos("in calling at"),
            pos("in calling2 at"),
            pos("in calling3 at"),
            pos("in erroring at"),
            pos("Error Marker"),
        ];
        assert!(order.is_sorted(), "{order:?} in\n{tb}");
    });
}

#[test]
fn c98_the_trace_crosses_inline_callbacks_and_async_functions_alike() {
    no_unhandled(|| {
        async fn erroring() -> Result<(), Failure> {
            succeed("forcing").await?;
            Err(ErrorMarker::new("Error Marker"))? // mixed: raise
        }
        #[inline_callbacks]
        fn calling3() -> Deferred<()> {
            yield_!(ensure_deferred(erroring())) // mixed: calling3
        }
        async fn calling2() -> Result<(), Failure> {
            calling3().await // mixed: calling2
        }
        #[inline_callbacks]
        fn calling() -> Deferred<()> {
            yield_!(ensure_deferred(calling2())) // mixed: calling
        }

        let f = failure_result_of(calling());
        assert_eq!(
            (kind(&f), f.message()),
            ("ErrorMarker", "Error Marker".into())
        );
        let got: Vec<_> = f.frames().map(|fr| (fr.function(), fr.line())).collect();
        // The coroutine started by `ensure_deferred` names the failure raised in its `async fn`
        // and the `.await` the failure crossed in it, as an `#[inline_callbacks]` function names
        // its own.
        assert_eq!(
            got,
            [
                ("calling", marked_line("// mixed: calling").0),
                ("calling2", marked_line("// mixed: calling2").0),
                ("calling3", marked_line("// mixed: calling3").0),
                ("erroring", marked_line("// mixed: raise").0),
            ],
            "{f}"
        );
        for frame in f.frames().filter(|fr| fr.function() != "erroring") {
            assert!(frame.file().ends_with("coro_cases.rs"), "{frame}");
            // A `yield_!` frame points at the `yield_` token, an `.await` frame at `await`.
            let text = include_str!("coro_cases.rs")
                .lines()
                .nth(frame.line() as usize - 1);
            let at = usize::try_from(frame.column()).unwrap() - 1;
            let token = if frame.line() == marked_line("// mixed: calling2").0 {
                "await"
            } else {
                "yield_!"
            };
            assert!(text.unwrap()[at..].starts_with(token), "{frame}");
        }
        assert_eq!(f.location().line(), marked_line("// mixed: raise").0);

        let tb = f.to_string();
        let pos = |s: &str| tb.find(s).unwrap_or_else(|| panic!("{s:?} not in\n{tb}"));
        let calling2_at = format!(
            "  in calling2 at {}:{}:",
            file!(),
            marked_line("// mixed: calling2").0
        );
        let raised_at = format!(
            "raised at {}:{}:",
            file!(),
            marked_line("// mixed: raise").0
        );
        let order = [
            pos("in calling at"),
            pos(&calling2_at),
            pos("in calling3 at"),
            pos(&raised_at),
            pos("Error Marker"),
        ];
        assert!(order.is_sorted(), "{order:?} in\n{tb}");
    });
}
