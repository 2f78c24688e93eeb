//! Misuse and bad input (issue 2): panics in steps and in the unhandled-error hook, `unpause`
//! without `pause`, firing while a chain runs, adding steps from inside a step, and the rule that
//! an unconsumed failure is reported exactly once and a consumed one never.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use defer_core::errors::{CancelledError, Panicked, TriggerDropped};
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::unhandled::with_hook;
use defer_core::{Deferred, Failure, fail, succeed};

#[macro_use]
#[path = "support/error_kinds.rs"]
mod error_kinds;

error_kind!(E1);

type Log<T> = Rc<RefCell<Vec<T>>>;

fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

use defer_core::testing::unhandled_during as reports_during;

// ------------------------------------------------------------------------------- panics

#[test]
fn panic_in_a_callback_becomes_a_failure_and_the_firing_caller_goes_on() {
    let after = log::<String>();
    let (d, t) = Deferred::<i32>::new();
    let a = after.clone();
    let d = d
        .add_callback(|x| -> Result<i32, Failure> { panic!("bad input {x}") })
        .add_callback(|x| Ok(x + 1)) // skipped: the chain holds a failure
        .add_errback(move |f| {
            a.borrow_mut().push(f.message());
            Err(f)
        });
    let accepted = t.callback(7);
    // The caller that fired is still running, and knows the Deferred took the value.
    assert!(accepted);
    assert_eq!(*after.borrow(), ["panicked: bad input 7"]);
    let f = failure_result_of(d);
    assert!(f.is_panic());
    assert_eq!(
        f.downcast_ref::<Panicked>().unwrap().message(),
        "bad input 7"
    );
}

#[test]
fn panic_from_integer_division_by_zero_in_a_callback_is_a_failure() {
    // Python's `1 // 0` raises; Rust's panics, and the panic becomes the chain's failure.
    let zero = std::hint::black_box(0);
    let d = succeed(1).add_callback(move |x: i32| Ok(x / zero));
    let f = failure_result_of(d);
    assert!(f.is_panic());
    assert!(f.message().contains("divide by zero"), "{}", f.message());
}

#[test]
fn panic_in_an_errback_becomes_a_failure_and_later_steps_see_it() {
    let (d, t) = Deferred::<i32>::new();
    let d = d
        .add_errback(|f| -> Result<i32, Failure> { panic!("errback broke on {}", f.message()) })
        .add_errback(|f| {
            assert!(f.is_panic());
            Ok(f.message().len() as i32)
        });
    assert!(t.errback(E1::new("boom")));
    assert_eq!(
        success_result_of(d),
        "panicked: errback broke on boom".len() as i32
    );
}

#[test]
fn panic_in_a_step_run_inside_add_both_is_contained() {
    // The step runs inside add_both (the Deferred has fired): the panic must not escape it.
    let d =
        fail::<i32>(E1::new("x")).add_both(|_| -> Result<i32, Failure> { panic!("in finally") });
    assert_eq!(failure_result_of(d).message(), "panicked: in finally");
}

#[test]
fn panic_inside_the_unhandled_error_hook_does_not_escape() {
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let went_on = with_hook(
        move |_| {
            c.set(c.get() + 1);
            panic!("the hook itself is broken");
        },
        || {
            drop(fail::<()>(E1::new("first")));
            drop(fail::<()>(E1::new("second")));
            true
        },
    );
    assert!(went_on);
    assert_eq!(
        calls.get(),
        2,
        "the hook kept being called after it panicked"
    );
    // The previous hook is back and works.
    let reports = reports_during(|| drop(fail::<()>(E1::new("third"))));
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].message(), "third");
}

// ------------------------------------------------------------------------------- unpause

#[test]
fn unpause_without_pause_returns_false_and_the_deferred_still_works() {
    // Twisted drives the counter to -1 and the Deferred never runs its chain again.
    let (d, t) = Deferred::<i32>::new();
    assert!(!d.unpause());
    assert!(!d.control().unpause());
    assert!(!d.is_paused());
    let d = d.add_callback(|x| Ok(x + 1));
    t.callback(1);
    assert_eq!(success_result_of(d), 2);

    // On a fired Deferred: the late step still runs at once.
    let d = succeed(1);
    assert!(!d.unpause());
    let d = d.add_callback(|x| Ok(x * 10));
    assert_eq!(success_result_of(d), 10);

    // A spurious unpause banks no credit: a later pause still holds the chain until unpaused.
    let d = succeed(1);
    assert!(!d.unpause());
    d.pause();
    let d = d.add_callback(|x| Ok(x + 1));
    assert_no_result(&d);
    assert!(d.unpause());
    assert!(!d.unpause());
    assert_eq!(success_result_of(d), 2);
}

// ------------------------------------------------------------------------------- firing while running

#[test]
fn a_step_cancelling_its_own_running_chain_is_a_no_op() {
    let seen = log::<String>();
    let cancelled = Rc::new(Cell::new(false));
    let k = cancelled.clone();
    let (d, t) = Deferred::<i32>::with_canceller(move |_| k.set(true));
    let ctl = d.control();
    let (s1, s2) = (seen.clone(), seen.clone());
    let d = d
        .add_callback(move |x| {
            ctl.cancel(); // the chain is running: it has fired, and waits on nothing
            s1.borrow_mut()
                .push(format!("cb1 {x} called={}", ctl.is_called()));
            Ok(x + 1)
        })
        .add_both(move |r| {
            s2.borrow_mut().push(format!("both {r:?}"));
            r
        });
    assert!(t.callback(1));
    assert!(
        !cancelled.get(),
        "the canceller must not run after the Deferred fired"
    );
    assert_eq!(*seen.borrow(), ["cb1 1 called=true", "both Ok(2)"]);
    assert_eq!(success_result_of(d), 2);
}

#[test]
fn a_step_firing_another_deferred_whose_chain_feeds_back_into_the_running_one() {
    // A's step fires B; B's step (running inside A's step) pauses and cancels A, and adds a step
    // to A; A's step then returns B, which has already fired, so A takes its result at once.
    let order = log::<String>();
    let slot: Rc<RefCell<Option<Deferred<i32>>>> = Rc::new(RefCell::new(None));
    let (a, at) = Deferred::<i32>::new();
    let (b, bt) = Deferred::<i32>::new();
    let a_ctl = a.control();
    let (o, s) = (order.clone(), slot.clone());
    let b = b.add_callback(move |x| {
        o.borrow_mut().push(format!("b {x}"));
        a_ctl.pause(); // paused and unpaused before A's step ends: A's pass goes on
        a_ctl.cancel(); // A has fired and waits on nothing: cancelling it is a no-op
        let a = s.borrow_mut().take().expect("A's handle is in the slot");
        let o2 = o.clone();
        let a = a.add_callback(move |y| {
            o2.borrow_mut().push(format!("added {y}"));
            Ok(y + 1)
        });
        *s.borrow_mut() = Some(a);
        assert!(a_ctl.unpause());
        Ok(x * 10)
    });
    let (o1, o2) = (order.clone(), order.clone());
    let a = a
        .add_callback(move |x| {
            o1.borrow_mut().push(format!("a1 {x}"));
            assert!(bt.callback(x + 1));
            o1.borrow_mut().push("a1 after firing b".to_owned());
            b
        })
        .add_callback(move |y| {
            o2.borrow_mut().push(format!("a2 {y}"));
            Ok(y)
        });
    *slot.borrow_mut() = Some(a);
    assert!(at.callback(1));
    assert_eq!(
        *order.borrow(),
        ["a1 1", "b 2", "a1 after firing b", "a2 20", "added 20"]
    );
    let a = slot.borrow_mut().take().unwrap();
    assert_eq!(success_result_of(a), 21);
}

#[test]
fn pause_from_inside_a_step_holds_the_rest_of_the_pass_until_unpaused() {
    // Twisted only checks the pause counter before a pass, so its pass runs on (§2.7, a quirk
    // "not to copy blindly"). Here the chain stops after the pausing step, as `pause` says.
    let order = log::<i32>();
    let (d, t) = Deferred::<i32>::new();
    let ctl = d.control();
    let (o1, o2) = (order.clone(), order.clone());
    let d = d
        .add_callback(move |x| {
            o1.borrow_mut().push(x);
            ctl.pause();
            Ok(x + 1)
        })
        .add_callback(move |x| {
            o2.borrow_mut().push(x);
            Ok(x + 1)
        });
    t.callback(1);
    assert_eq!(*order.borrow(), [1]);
    assert!(d.is_paused());
    assert_no_result(&d);
    assert!(d.unpause());
    assert_eq!(*order.borrow(), [1, 2]);
    assert_eq!(success_result_of(d), 3);
}

// ------------------------------------------------------------------------------- adding steps from a step

#[test]
fn steps_added_from_inside_steps_run_in_order_before_the_fire_returns() {
    let order = log::<&str>();
    let slot: Rc<RefCell<Option<Deferred<()>>>> = Rc::new(RefCell::new(None));
    let (d, t) = Deferred::<()>::new();
    let (o, s) = (order.clone(), slot.clone());
    let push = |o: &Log<&'static str>, what: &'static str| o.borrow_mut().push(what);
    let d = d
        .add_callback(move |()| {
            push(&o, "first");
            let h = s.borrow_mut().take().unwrap();
            let (o2, o3, s2) = (o.clone(), o.clone(), s.clone());
            let h = h
                .add_callback(move |()| {
                    push(&o2, "added by first");
                    // A step added by an added step.
                    let h = s2.borrow_mut().take().unwrap();
                    let o4 = o2.clone();
                    let h = h.add_callback(move |()| {
                        push(&o4, "added by added");
                        Ok(())
                    });
                    *s2.borrow_mut() = Some(h);
                    Ok(())
                })
                .add_callback(move |()| {
                    push(&o3, "second added by first");
                    Ok(())
                });
            *s.borrow_mut() = Some(h);
            push(&o, "first ends");
            Ok(())
        })
        .add_callback({
            let o = order.clone();
            move |()| {
                push(&o, "second");
                Ok(())
            }
        });
    *slot.borrow_mut() = Some(d);
    t.callback(());
    assert_eq!(
        *order.borrow(),
        [
            "first",
            "first ends",
            "second",
            "added by first",
            "second added by first",
            "added by added"
        ]
    );
    success_result_of(slot.borrow_mut().take().unwrap());
}

#[test]
fn a_step_added_from_a_step_that_returned_a_pending_deferred_waits_for_it() {
    let order = log::<String>();
    let slot: Rc<RefCell<Option<Deferred<i32>>>> = Rc::new(RefCell::new(None));
    let (d, t) = Deferred::<i32>::new();
    let (inner, it) = Deferred::<i32>::new();
    let (o, s) = (order.clone(), slot.clone());
    let d = d.add_callback(move |x| {
        let h = s.borrow_mut().take().unwrap();
        let o2 = o.clone();
        *s.borrow_mut() = Some(h.add_callback(move |y| {
            o2.borrow_mut().push(format!("added {y}"));
            Ok(y)
        }));
        o.borrow_mut().push(format!("step {x}"));
        inner
    });
    *slot.borrow_mut() = Some(d);
    t.callback(1);
    assert_eq!(*order.borrow(), ["step 1"]);
    it.callback(5);
    assert_eq!(*order.borrow(), ["step 1", "added 5"]);
    assert_eq!(success_result_of(slot.borrow_mut().take().unwrap()), 5);
}

// ------------------------------------------------------------------------------- unhandled: once, never twice

#[test]
fn an_unconsumed_failure_passing_through_steps_is_reported_once() {
    let reports = reports_during(|| {
        let (d, t) = Deferred::<i32>::new();
        let d = d
            .add_callback(|x| Ok(x + 1))
            .add_errback(Err) // re-raises
            .add_both(|r| r.map(|x| x * 2)) // passes the failure on
            .add_callbacks(
                |x| Ok(x.to_string()),
                |f| Err(f.trap::<E1>()?.into_failure()),
            );
        t.errback(E1::new("lost"));
        drop(d);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].message(), "lost");
}

#[test]
fn a_failure_handed_between_chains_is_reported_once_by_the_last_one() {
    // Through a step returning a failed Deferred, then through chain_deferred.
    let reports = reports_during(|| {
        let (inner, it) = Deferred::<i32>::new();
        let (target, tt) = Deferred::<i32>::new();
        let outer = succeed(()).add_callback(move |()| inner);
        outer.chain_deferred(tt);
        it.errback(E1::new("handed on"));
        drop(target);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].message(), "handed on");

    // Replacing a failure with another: only the one left at the end is reported.
    let reports = reports_during(|| {
        drop(fail::<()>(E1::new("first")).add_errback(|_| Err(Failure::new(E1::new("second")))));
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert_eq!(reports[0].message(), "second");
}

#[test]
fn a_consumed_failure_is_never_reported() {
    let reports = reports_during(|| {
        // Recovered by an errback.
        drop(fail::<i32>(E1::new("a")).add_errback(|_| Ok(0)));
        // Recovered by add_callbacks' errback half and by add_both.
        drop(fail::<i32>(E1::new("b")).add_callbacks(Ok, |_| Ok(0)));
        drop(fail::<i32>(E1::new("c")).add_both(|r| Ok(r.is_err())));
        // Taken by a testing helper.
        assert_eq!(failure_result_of(fail::<()>(E1::new("d"))).message(), "d");
        // Taken by the outer chain, which handles it.
        let inner = fail::<i32>(E1::new("e"));
        drop(
            succeed(())
                .add_callback(move |()| inner)
                .add_errback(|_| Ok(1)),
        );
        // Chained into another Deferred, whose errback handles it.
        let (target, tt) = Deferred::<i32>::new();
        let target = target.add_errback(|_| Ok(2));
        fail::<i32>(E1::new("f")).chain_deferred(tt);
        assert_eq!(success_result_of(target), 2);
        // Swallowed by assert_no_result's panic (as trial's assertNoResult does).
        let d = fail::<()>(E1::new("g"));
        let panicked =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| assert_no_result(&d)));
        assert!(panicked.is_err());
        drop(d);
        // Awaited by a coroutine, which handles it.
        let co = defer_core::ensure_deferred(async {
            Ok(fail::<i32>(E1::new("h")).await.unwrap_or(-1))
        });
        assert_eq!(success_result_of(co), -1);
    });
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn a_cancelled_deferred_whose_failure_is_dropped_is_reported_once() {
    let reports = reports_during(|| {
        let (d, _t) = Deferred::<()>::new();
        d.cancel();
        d.cancel();
        drop(d);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].check::<CancelledError>());
}

// ------------------------------------------------------------------------------- dropped triggers

#[test]
fn a_trigger_dropped_unfired_fails_its_deferred_with_trigger_dropped() {
    let called = Rc::new(Cell::new(false));
    let c = called.clone();
    let (d, t) = Deferred::<i32>::new();
    let d = d.add_callback(move |x| {
        c.set(true);
        Ok(x)
    });
    let reports = reports_during(|| drop(t));
    assert!(
        reports.is_empty(),
        "the failure is still held by `d`: {reports:?}"
    );
    assert!(!called.get());
    let f = failure_result_of(d);
    assert!(f.check::<TriggerDropped>());

    // Also with no steps yet: the handle alone is listening.
    let (d, t) = Deferred::<i32>::new();
    drop(t);
    assert!(d.is_called());
    assert!(failure_result_of(d).check::<TriggerDropped>());

    // A forgotten producer that nobody handles is reported, once.
    let reports = reports_during(|| {
        let (d, t) = Deferred::<i32>::new();
        let _d = d.add_callback(Ok);
        drop(t);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].check::<TriggerDropped>());
}

#[test]
fn a_trigger_dropped_with_nobody_listening_is_not_reported() {
    let reports = reports_during(|| {
        let (d, t) = Deferred::<i32>::new();
        drop(d);
        drop(t);
    });
    assert!(reports.is_empty(), "{reports:?}");

    // Steps still listen when the handle is gone: a callback that would silently never run is
    // exactly the forgotten producer DESIGN §2 wants visible, so this one is reported, once.
    let reports = reports_during(|| {
        let (d, t) = Deferred::<i32>::new();
        drop(d.add_callback(|x| Ok(x + 1)));
        drop(t);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].check::<TriggerDropped>());
}
