//! Conformance: the basic chain, re-entrancy, firing twice, pause, and `maybe_deferred` /
//! `execute` (twisted-semantics.md §4, C1–C19 and C64). Each test is named after its case and
//! asserts the same order of calls and the same values as the oracle script
//! (`twisted-oracle.py`). `rec(L)` steps push into a shared log and return `Ok(())`, which is
//! Twisted's "returns nothing": the next step sees `()`.

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::rc::Rc;

use defer_core::errors::{CancelledError, MessageError, Panicked};
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{
    Deferred, Failure, Trigger, ensure_deferred, execute, fail, maybe_deferred, succeed,
};

#[macro_use]
#[path = "support/error_kinds.rs"]
mod error_kinds;

error_kind!(E1, E2);

/// Python's `ZeroDivisionError` for `1 // 0`, raised with `checked_div(..).ok_or(..)?`.
#[derive(Debug)]
struct ZeroDivisionError;
impl fmt::Display for ZeroDivisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("integer division or modulo by zero")
    }
}
impl Error for ZeroDivisionError {}

type Log<T> = Rc<RefCell<Vec<T>>>;

fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

/// The last segment of a failure's type name: `"E1"` for `core_chain::E1`.
fn kind(f: &Failure) -> &'static str {
    f.type_name().rsplit("::").next().unwrap_or_default()
}

// ------------------------------------------------------------------------------- basic chain

#[test]
fn c01_callback_sees_the_value_and_its_return_is_the_result() {
    let got = log();
    let (d, t) = Deferred::<i32>::new();
    let g = got.clone();
    let d = d.add_callback(move |r| {
        g.borrow_mut().push(r);
        Ok(r + 1)
    });
    assert_no_result(&d);
    assert!(got.borrow().is_empty());
    assert!(t.callback(1));
    assert_eq!(*got.borrow(), [1]);
    assert_eq!(success_result_of(d), 2);
}

#[test]
fn c02_extra_arguments_follow_the_result() {
    // Python's extra positional and keyword arguments are values the closure captures.
    let got = log();
    let (d, t) = Deferred::<&str>::new();
    let (extra, kw) = ("world", "k");
    let g = got.clone();
    let d = d.add_callback(move |r| {
        g.borrow_mut().push((r, extra, kw));
        Ok(r)
    });
    t.callback("hello");
    assert_eq!(*got.borrow(), [("hello", "world", "k")]);
    assert_eq!(success_result_of(d), "hello");
}

#[test]
fn c03_errback_recovers_and_later_callbacks_continue() {
    let seen = log();
    let (d, t) = Deferred::<i32>::new();
    let s = seen.clone();
    let d = d
        .add_callback(|r| Ok(r + 1))
        .add_callback(|r| -> Result<i32, Failure> { Err(Failure::new(E1(r.to_string()))) })
        .add_errback(move |f| {
            s.borrow_mut().push(f.downcast_ref::<E1>().cloned());
            Ok(10)
        })
        .add_callback(|r| Ok(r * 2));
    t.callback(1);
    assert_eq!(*seen.borrow(), [Some(E1::new("2"))]);
    assert_eq!(success_result_of(d), 20);
}

#[test]
fn c04_error_in_callback_goes_to_next_errback_which_recovers_with_unit() {
    let l = log::<Failure>();
    let (d, t) = Deferred::<i32>::new();
    let l2 = l.clone();
    let d = d
        .add_callback(|r: i32| {
            let _quotient = r.checked_div(0).ok_or(ZeroDivisionError)?; // 1 // 0
            Ok(())
        })
        .add_errback(move |f| {
            l2.borrow_mut().push(f);
            Ok(())
        });
    t.callback(1);
    assert_eq!(l.borrow().len(), 1);
    assert!(l.borrow()[0].check::<ZeroDivisionError>());
    // The errback "returned nothing": the chain recovered with ().
    success_result_of(d);
}

#[test]
fn c05_callback_returning_a_failure_keeps_that_very_failure_and_skips_callbacks() {
    let rte = Failure::new(E1::new("rte"));
    let calls = log();
    let (d, t) = Deferred::<i32>::new();
    t.callback(6);
    let (r1, c1) = (rte.clone(), calls.clone());
    let (r2, c2) = (rte.clone(), calls.clone());
    let d = d
        .add_callback(move |x| {
            c1.borrow_mut().push(("first", x));
            Err::<i32, _>(r1)
        })
        .add_callback(move |x| {
            c2.borrow_mut().push(("second", x));
            Err::<i32, _>(r2)
        });
    assert_eq!(*calls.borrow(), [("first", 6)]);
    assert!(failure_result_of(d).same_as(&rte));
}

#[test]
fn c06_failure_skips_callbacks_until_an_errback_recovers() {
    let calls: Log<(&str, String)> = log();
    let (c1, c2, c3, c4) = (calls.clone(), calls.clone(), calls.clone(), calls.clone());
    let d = fail::<&str>(E1::new("x"))
        .add_callback(move |r| {
            c1.borrow_mut().push(("cb1", r.to_owned()));
            Ok(r)
        })
        .add_callback(move |r| {
            c2.borrow_mut().push(("cb2", r.to_owned()));
            Ok(r)
        })
        .add_errback(move |f| {
            c3.borrow_mut().push(("eb", kind(&f).to_owned()));
            Ok("recovered")
        })
        .add_callback(move |r| {
            c4.borrow_mut().push(("cb3", r.to_owned()));
            Ok(())
        });
    assert_eq!(
        *calls.borrow(),
        [("eb", "E1".to_owned()), ("cb3", "recovered".to_owned())]
    );
    success_result_of(d);
}

#[test]
fn c07_errback_returning_nothing_recovers() {
    let got = log::<()>();
    let g = got.clone();
    let d = fail::<()>(E1::new("x"))
        .add_errback(|_f| Ok(())) // handles, returns nothing
        .add_callback(move |r| {
            g.borrow_mut().push(r);
            Ok(())
        });
    assert_eq!(
        got.borrow().len(),
        1,
        "the callback after the errback ran once"
    );
    success_result_of(d);
}

#[test]
fn c09_add_both_sees_success_or_failure() {
    let seen: Log<String> = log();
    let s = seen.clone();
    let d = succeed(5).add_both(move |r| {
        s.borrow_mut().push(format!("{:?}", r.as_ref().ok()));
        r
    });
    let s = seen.clone();
    let d2 = fail::<i32>(E1::new("x")).add_both(move |r| {
        s.borrow_mut().push(match r {
            Ok(v) => format!("value {v}"),
            Err(f) => format!("Failure({})", kind(&f)),
        });
        Ok(())
    });
    assert_eq!(*seen.borrow(), ["Some(5)", "Failure(E1)"]);
    assert_eq!(success_result_of(d), 5);
    success_result_of(d2); // h returned nothing: the result is ()
}

#[test]
fn c10_add_callbacks_with_pass_through_errback_keeps_the_identical_error() {
    let err = Failure::new(E1::new("oopsie"));
    let cb = log();
    let (d, t) = Deferred::<i32>::new();
    let c = cb.clone();
    // Twisted's `addCallbacks(cb, None)`: the errback half passes the failure through.
    let d = d.add_callbacks(
        move |r| {
            c.borrow_mut().push(r);
            Ok(r)
        },
        Err::<i32, Failure>,
    );
    t.errback(err.clone());
    let r = failure_result_of(d);
    assert!(cb.borrow().is_empty());
    assert!(r.same_as(&err));
    assert!(std::ptr::eq(
        r.downcast_ref::<E1>().unwrap(),
        err.downcast_ref::<E1>().unwrap()
    ));
}

#[test]
fn c11_steps_added_to_a_fired_deferred_run_inside_add() {
    let l = log();
    let l1 = l.clone();
    let d = succeed("success").add_callback(move |r| {
        l1.borrow_mut().push(r);
        Ok(())
    });
    // Nothing fired in between: the callback ran inside add_callback.
    assert_eq!(*l.borrow(), ["success"]);
    success_result_of(d);

    let l2 = log::<Failure>();
    let l3 = l2.clone();
    let d = fail::<()>(E1::new("fail")).add_errback(move |f| {
        l3.borrow_mut().push(f);
        Ok(())
    });
    assert_eq!(l2.borrow()[0].message(), "fail");
    success_result_of(d);
}

#[test]
fn c12_firing_with_a_failure_keeps_it_and_errback_wraps_an_error_with_its_type() {
    // Twisted's `callback(failure)` is `errback(failure)`; in Rust the failure path is the typed
    // `errback`, and it keeps the very same failure.
    let f = Failure::new(E1::new("v"));
    let (d, t) = Deferred::<i32>::new();
    t.errback(f.clone());
    assert!(failure_result_of(d).same_as(&f));

    let (d, t) = Deferred::<i32>::new();
    t.errback(E2::new("w"));
    let r = failure_result_of(d);
    assert_eq!(r.downcast_ref::<E2>(), Some(&E2::new("w")));
    assert_eq!(kind(&r), "E2");
    assert!(r.check::<E2>() && !r.check::<E1>());

    // Deliberate difference: on a `Deferred<Failure>`, `callback(f)` is a *value*, never a
    // failure (as Twisted's `callback(someDeferred)` does not chain, §2.3).
    let (d, t) = Deferred::<Failure>::new();
    t.callback(f.clone());
    assert!(success_result_of(d).same_as(&f));
}

// ------------------------------------------------------------------------------- re-entrancy

#[test]
fn c14_step_added_from_inside_a_step_runs_after_it_in_the_same_pass() {
    let called = log();
    let inside: Log<Vec<i32>> = log();
    let slot: Rc<RefCell<Option<Deferred<()>>>> = Rc::new(RefCell::new(None));
    let (d, t) = Deferred::<()>::new();
    let (c, i, s) = (called.clone(), inside.clone(), slot.clone());
    let d = d.add_callback(move |()| {
        c.borrow_mut().push(1);
        let handle = s
            .borrow_mut()
            .take()
            .expect("the chain's handle is in the slot");
        let c2 = c.clone();
        let handle = handle.add_callback(move |()| {
            c2.borrow_mut().push(2);
            Ok(())
        });
        *s.borrow_mut() = Some(handle);
        // The added step has not run yet: the chain is running this step.
        i.borrow_mut().push(c.borrow().clone());
        Ok(())
    });
    *slot.borrow_mut() = Some(d);
    t.callback(());
    assert_eq!(*inside.borrow(), [vec![1]]);
    assert_eq!(*called.borrow(), [1, 2]);
    let d = slot.borrow_mut().take().unwrap();
    success_result_of(d);
}

#[test]
fn c15_failure_of_a_step_added_from_inside_a_step_is_the_chains_failure() {
    let slot: Rc<RefCell<Option<Deferred<()>>>> = Rc::new(RefCell::new(None));
    let (d, t) = Deferred::<()>::new();
    let s = slot.clone();
    let d = d.add_callback(move |()| {
        let handle = s.borrow_mut().take().unwrap();
        let handle = handle.add_callback(|()| -> Result<(), Failure> {
            Err(Failure::msg("callback raised exception"))
        });
        *s.borrow_mut() = Some(handle);
        Ok(())
    });
    *slot.borrow_mut() = Some(d);
    t.callback(());
    let d = slot.borrow_mut().take().unwrap();
    let f = failure_result_of(d);
    assert_eq!(f.message(), "callback raised exception");
    assert!(f.check::<MessageError>());
}

#[test]
fn c16_step_firing_its_own_deferred_is_refused_without_disturbing_the_chain() {
    // Twisted: `callback()` from inside the chain's own step raises AlreadyCalledError. Rust: the
    // trigger is taken by value, so only a Deferred fired by `cancel` still has a trigger a step
    // could reach (ui-tests/cases/fail/c16_fire_own_deferred_in_step.rs shows the compile error).
    // Firing it from inside the running chain is refused (`false`) and changes nothing.
    let slot: Rc<RefCell<Option<Trigger<i32>>>> = Rc::new(RefCell::new(None));
    let seen = log();
    let (d, t) = Deferred::<i32>::new();
    let (s, l) = (slot.clone(), seen.clone());
    let d = d.add_errback(move |f| {
        let own = s.borrow_mut().take().expect("the trigger is in the slot");
        l.borrow_mut().push(own.is_cancelled());
        l.borrow_mut().push(own.callback(2)); // fire own Deferred while its chain runs
        Err(f)
    });
    *slot.borrow_mut() = Some(t);
    d.cancel();
    assert_eq!(*seen.borrow(), [true, false]);
    assert!(failure_result_of(d).check::<CancelledError>());
}

// ------------------------------------------------------------------------------- firing twice

#[test]
fn c17_a_late_fire_after_the_first_outcome_is_refused_and_changes_nothing() {
    // Firing twice does not compile (ui-tests/cases/fail/c17_fire_twice.rs). What Rust can
    // express: a Deferred that fired first by `cancel` or by its canceller, then the producer's
    // callback or errback. Each pair (first, second) keeps the first outcome; the second fire
    // returns false.
    #[derive(Clone, Copy, Debug)]
    enum First {
        Cancelled,
        CancellerCallback,
        CancellerErrback,
    }
    for first in [
        First::Cancelled,
        First::CancellerCallback,
        First::CancellerErrback,
    ] {
        for second_is_callback in [true, false] {
            let seen: Log<String> = log();
            let (d, t) = match first {
                First::Cancelled => Deferred::<&str>::new(),
                First::CancellerCallback => Deferred::with_canceller(|k| {
                    k.callback("hello");
                }),
                First::CancellerErrback => Deferred::with_canceller(|k| {
                    k.errback(E1::new("first"));
                }),
            };
            let (s1, s2) = (seen.clone(), seen.clone());
            let d = d.add_callbacks(
                move |v| {
                    s1.borrow_mut().push(v.to_owned());
                    Ok(())
                },
                move |f| {
                    s2.borrow_mut().push(format!("err {}", kind(&f)));
                    Ok(())
                },
            );
            d.cancel();
            let accepted = if second_is_callback {
                t.callback("twice")
            } else {
                t.errback(E2::new("twice"))
            };
            assert!(!accepted, "{first:?} then a second fire");
            let expected = match first {
                First::Cancelled => "err CancelledError",
                First::CancellerCallback => "hello",
                First::CancellerErrback => "err E1",
            };
            assert_eq!(*seen.borrow(), [expected], "{first:?}");
            success_result_of(d);
        }
    }
}

#[test]
fn c18_failure_records_where_it_was_fired_instead_of_debug_stacks() {
    // No debug mode and no second invoker (firing twice does not compile, see C17). What the
    // creator/invoker stacks were for, Rust's failure has always: the place it entered the chain.
    fn creator() -> (Deferred<i32>, Trigger<i32>) {
        Deferred::new()
    }
    fn inv1(t: Trigger<i32>) -> u32 {
        let (_, line) = (t.errback(E1::new("from inv1")), line!());
        line
    }
    let (d, t) = creator();
    let line = inv1(t);
    let f = failure_result_of(d);
    assert_eq!(f.location().file(), file!());
    assert_eq!(f.location().line(), line);
    assert!(f.to_string().contains(&format!("{}:{}:", file!(), line)));
}

// ------------------------------------------------------------------------------- pause

#[test]
fn c19_paused_failure_holds_back_errbacks_until_unpaused() {
    let l = log::<Failure>();
    let d = fail::<()>(E1::new("fail"));
    d.pause();
    let l2 = l.clone();
    let d = d.add_errback(move |f| {
        l2.borrow_mut().push(f);
        Ok(())
    });
    assert!(l.borrow().is_empty());
    assert_no_result(&d);
    assert!(d.unpause());
    assert_eq!(l.borrow()[0].message(), "fail");
    success_result_of(d);
}

// ------------------------------------------------------------------------------- maybe_deferred, execute

#[test]
fn c64_maybe_deferred_and_execute() {
    // f -> obj gives obj (identity).
    let obj = Rc::new("obj");
    let o = obj.clone();
    let got = success_result_of(maybe_deferred(move || Ok(o)));
    assert!(Rc::ptr_eq(&got, &obj));

    // f(x) = x + 5 with 10 gives 15 (the argument is captured).
    let x = 10;
    assert_eq!(success_result_of(maybe_deferred(move || Ok(x + 5))), 15);

    // Raising: an `Err` and a panic both give a failure with the message.
    let f = failure_result_of(maybe_deferred(|| -> Result<(), Failure> {
        Err(E1::new("that value is unacceptable"))?
    }));
    assert_eq!(f.message(), "that value is unacceptable");
    let f = failure_result_of(maybe_deferred(|| -> Result<(), Failure> {
        panic!("that value is unacceptable")
    }));
    assert_eq!(
        f.downcast_ref::<Panicked>().unwrap().message(),
        "that value is unacceptable"
    );

    // Returning a failure gives the same failure.
    let tf = Failure::new(E2::new("type error"));
    let tf2 = tf.clone();
    assert!(failure_result_of(maybe_deferred(move || Err::<(), _>(tf2))).same_as(&tf));

    // Returning a Deferred gives that Deferred itself: the same chain (pausing one pauses the
    // other), still pending until its own trigger fires.
    let (d1, t1) = Deferred::<i32>::new();
    let ctl = d1.control();
    let d2 = maybe_deferred(move || d1);
    ctl.pause();
    assert!(d2.is_paused());
    assert!(ctl.unpause());
    assert_no_result(&d2);
    t1.callback(4);
    assert_eq!(success_result_of(d2), 4);

    // An async fn returning 7 gives 7.
    let seven = || ensure_deferred(async { Ok(7) });
    assert_eq!(success_result_of(maybe_deferred(seven)), 7);

    // execute(-> 3) gives 3; execute(raise) gives a failure.
    assert_eq!(success_result_of(execute(|| 3)), 3);
    let f = failure_result_of(execute(|| -> i32 { panic!("raises") }));
    assert!(f.is_panic());
    assert_eq!(f.message(), "panicked: raises");
}
