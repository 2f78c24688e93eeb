//! Conformance: a step that returns a Deferred ("chaining", twisted-semantics.md §2.6) and
//! `chain_deferred`: cases C21–C35 of §4, asserting the same order of calls and values as the
//! oracle script. Where Twisted adds steps to a Deferred *after* it was returned from a step, Rust
//! has moved that Deferred into the step (ui-tests/cases/fail/c97_second_consumer.rs); those tests
//! check what the move leaves observable instead.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use defer_core::errors::{CancelledError, CircularChainError};
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{Deferred, Failure, Trigger, fail, succeed};

#[macro_use]
#[path = "support/error_kinds.rs"]
mod error_kinds;

// Python's ValueError and RuntimeError, as the cases name them.
error_kind!(ValueError, RuntimeError);

type Log<T> = Rc<RefCell<Vec<T>>>;

fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

use defer_core::testing::unhandled_during as reports_during;

#[test]
fn c21_outer_waits_for_a_paused_inner_deferred_until_it_is_unpaused() {
    let got = log();
    let (d1, t1) = Deferred::<i32>::new();
    let (d2, t2) = Deferred::<i32>::new();
    d2.pause();
    let d2_ctl = d2.control();
    let g = got.clone();
    let d1 = d1.add_callback(move |_| d2).add_callback(move |r| {
        g.borrow_mut().push(r);
        Ok(())
    });
    t1.callback(1);
    assert!(got.borrow().is_empty());
    t2.callback(2);
    assert!(got.borrow().is_empty());
    assert_no_result(&d1);
    assert!(d2_ctl.unpause());
    assert_eq!(*got.borrow(), [2]);
    success_result_of(d1);
}

#[test]
fn c22_errback_returning_a_pending_deferred_makes_the_chain_wait_for_it() {
    let vals = log();
    let (d, t) = Deferred::<&str>::new();
    let (d2, t2) = Deferred::<&str>::new();
    let v = vals.clone();
    let d = d.add_errback(move |_f| d2).add_callback(move |r| {
        v.borrow_mut().push(r);
        Ok(())
    });
    t.errback(ValueError::new(""));
    assert_no_result(&d);
    assert!(vals.borrow().is_empty());
    // Twisted's repr: "<Deferred at 0x… waiting on Deferred at 0x…>".
    assert!(format!("{d:?}").contains("waiting on Deferred at"), "{d:?}");
    t2.callback("result");
    assert_eq!(*vals.borrow(), ["result"]);
    success_result_of(d);
}

#[test]
fn c23_a_paused_inner_deferred_with_a_result_holds_the_outer_until_unpaused() {
    let expected = Rc::new(());
    let (paused, pt) = Deferred::<Rc<()>>::new();
    pt.callback(expected.clone());
    paused.pause();
    let paused_ctl = paused.control();
    let (chained, ct) = Deferred::<()>::new();
    let chained = chained.add_callback(move |()| paused);
    ct.callback(());
    let out = log();
    let o = out.clone();
    let chained = chained.add_callback(move |r| {
        o.borrow_mut().push(r);
        Ok(())
    });
    assert!(out.borrow().is_empty());
    assert!(paused_ctl.unpause());
    assert_eq!(out.borrow().len(), 1);
    assert!(Rc::ptr_eq(&out.borrow()[0], &expected));
    success_result_of(chained);
}

#[test]
fn c25_step_returning_a_fired_deferred_takes_its_result_at_once() {
    let r = Rc::new("R");
    let first = succeed(r.clone());
    let first_ctl = first.control();
    let (second, t) = Deferred::<()>::new();
    let second = second.add_callback(move |()| first);
    t.callback(());
    // Twisted: first's later steps see None. Rust: `first` was moved into the step (adding to it
    // again does not compile, ui c97_second_consumer.rs); its chain gave up its result and is
    // gone, so nothing else can observe it. (A live chain that fired stays `is_called`.)
    assert!(!first_ctl.is_called());
    let a = log();
    let a2 = a.clone();
    let second = second.add_callback(move |v| {
        a2.borrow_mut().push(v);
        Ok(())
    });
    // The value moved over synchronously, inside add_callback.
    assert_eq!(a.borrow().len(), 1);
    assert!(Rc::ptr_eq(&a.borrow()[0], &r));
    success_result_of(second);
}

#[test]
fn c27_taking_a_failed_deferreds_result_handles_it_for_the_first() {
    let original = Failure::new(RuntimeError::new("First Deferred's Failure"));
    let o = original.clone();
    let reports = reports_during(move || {
        let first = fail::<()>(o);
        let (second, t) = Deferred::<()>::new();
        let second = second.add_callback(move |()| first);
        t.callback(());
        let f = failure_result_of(second);
        assert!(f.check::<RuntimeError>());
        assert!(f.same_as(&original));
    });
    // Twisted: first.cb sees None, so first logs no unhandled error. Here: nothing is reported.
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn c28_async_failure_of_the_inner_deferred_flows_into_the_outer_chain() {
    let (first, ft) = Deferred::<()>::new();
    let (second, st) = Deferred::<()>::new();
    let second = second.add_callback(move |()| first);
    st.callback(());
    let se = log::<Failure>();
    let sr = log::<()>();
    let (se2, sr2) = (se.clone(), sr.clone());
    let second = second
        .add_errback(move |f| {
            se2.borrow_mut().push(f);
            Ok(())
        })
        .add_callback(move |r| {
            sr2.borrow_mut().push(r);
            Ok(())
        });
    // (Twisted's `first.cb(rec F)` here does not compile: `first` was moved into the step.)
    assert_no_result(&second);
    let reports = reports_during(|| {
        ft.errback(RuntimeError::new("x"));
    });
    assert!(reports.is_empty(), "{reports:?}");
    assert_eq!(se.borrow().len(), 1);
    assert!(se.borrow()[0].check::<RuntimeError>());
    assert_eq!(sr.borrow().len(), 1);
    success_result_of(second);
}

#[test]
fn c30_inner_callbacks_run_before_the_outer_chain_continues() {
    let results: Log<(&str, String)> = log();
    let (inner, it) = Deferred::<String>::new();
    let r = results.clone();
    let outer = succeed("outer")
        .add_callback(move |result| {
            r.borrow_mut().push(("start-of-cb", result.to_owned()));
            let (r1, r2) = (r.clone(), r.clone());
            succeed("inner")
                .add_callback(move |_| {
                    r1.borrow_mut().push(("firstCallback", "inner".to_owned()));
                    inner
                })
                .add_callback(move |s: String| {
                    r2.borrow_mut().push(("secondCallback", s.clone()));
                    Ok(s.repeat(2))
                })
        })
        .add_callback({
            let r = results.clone();
            move |s| {
                r.borrow_mut().push(("result", s));
                Ok(())
            }
        });
    let own = |a: &'static str, b: &str| (a, b.to_owned());
    assert_eq!(
        *results.borrow(),
        [own("start-of-cb", "outer"), own("firstCallback", "inner")]
    );
    it.callback("orange".to_owned());
    assert_eq!(
        *results.borrow(),
        [
            own("start-of-cb", "outer"),
            own("firstCallback", "inner"),
            own("secondCallback", "orange"),
            own("result", "orangeorange"),
        ]
    );
    success_result_of(outer);
}

#[test]
fn c32_the_continuation_need_not_be_the_inner_deferreds_first_step() {
    // As Twisted's test: the inner Deferred is `gatherResults([a])`, a pending Deferred whose
    // continuation (the outer chain's hand-over) is not its first step.
    let results: Log<String> = log();
    let (a, at) = Deferred::<&str>::new();
    let (outer, ot) = Deferred::<&str>::new();
    let r = results.clone();
    let outer = outer
        .add_callback(move |result| {
            r.borrow_mut().push(format!("cb {result}"));
            let (d, dt) = Deferred::<()>::new();
            let (r1, r2) = (r.clone(), r.clone());
            let ret = d
                .add_callback(move |()| {
                    r1.borrow_mut().push("firstCallback ()".to_owned());
                    defer_core::gather_results([a])
                })
                .add_callback(move |v: Vec<&str>| {
                    r2.borrow_mut().push(format!("secondCallback {v:?}"));
                    Ok(())
                });
            dt.callback(());
            ret
        })
        .add_callback({
            let r = results.clone();
            move |()| {
                r.borrow_mut().push("final ()".to_owned());
                Ok(())
            }
        });
    ot.callback("outer");
    assert_eq!(*results.borrow(), ["cb outer", "firstCallback ()"]);
    at.callback("withers");
    assert_eq!(
        *results.borrow(),
        [
            "cb outer",
            "firstCallback ()",
            "secondCallback [\"withers\"]",
            "final ()"
        ]
    );
    success_result_of(outer);
}

/// The address of a local: a measure of how deep the stack is where it is called.
#[inline(never)]
fn stack_address() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// C33's scenario for `n`: `n + 1` Deferreds, each one's callback returning the next, fired
/// first to last; returns the stack address seen by the top Deferred's next callback.
fn depth_of_top_callback(n: usize) -> usize {
    let depth = Rc::new(Cell::new(None));
    let mut pairs: Vec<(Deferred<()>, Trigger<()>)> = (0..=n).map(|_| Deferred::new()).collect();
    let (last, last_trigger) = pairs.pop().unwrap();
    let mut next = last;
    let mut triggers = Vec::with_capacity(n);
    while let Some((d, t)) = pairs.pop() {
        let inner = next;
        next = d.add_callback(move |()| inner);
        triggers.push(t);
    }
    let dd = depth.clone();
    let top = next.add_callback(move |()| {
        dd.set(Some(stack_address()));
        Ok(())
    });
    for t in triggers.into_iter().rev() {
        t.callback(());
    }
    assert_eq!(depth.get(), None, "the top waits until the last one fires");
    last_trigger.callback(());
    success_result_of(top);
    depth.get().expect("the top's callback ran")
}

#[test]
fn c33_deep_chains_of_waiting_deferreds_run_at_the_same_stack_depth() {
    let depths = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(|| {
            [1, 2, 100_000]
                .into_iter()
                .map(depth_of_top_callback)
                .collect::<Vec<_>>()
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(depths[0], depths[1], "{depths:?}");
    assert_eq!(depths[1], depths[2], "{depths:?}");
}

#[test]
fn c34_step_returning_its_own_deferred_fails_with_circular_chain_error() {
    // Returning `d` from `d`'s own step does not compile (ui c34_step_returns_own_deferred.rs).
    // Smuggled through a slot, it is caught at run time: the chain fails with
    // CircularChainError (Twisted only warns, then hangs), which the next errback sees.
    let slot: Rc<RefCell<Option<Deferred<i32>>>> = Rc::new(RefCell::new(None));
    let seen = log::<Failure>();
    let (d, t) = Deferred::<i32>::new();
    let (s, l) = (slot.clone(), seen.clone());
    let d = d.add_callback(move |_| s.borrow_mut().take().expect("the handle is in the slot"));
    let d = d.add_errback(move |f| {
        l.borrow_mut().push(f);
        Ok(-1)
    });
    *slot.borrow_mut() = Some(d);
    let reports = reports_during(|| {
        t.callback(1);
    });
    assert!(reports.is_empty(), "{reports:?}");
    assert_eq!(seen.borrow().len(), 1);
    let f = seen.borrow()[0].clone();
    assert!(f.check::<CircularChainError>());
    // The failure entered the chain at the step that returned its own Deferred.
    assert_eq!(f.location().file(), file!());
    let source_line = include_str!("core_chaining.rs")
        .lines()
        .nth(f.location().line() as usize - 1)
        .unwrap();
    assert!(
        source_line.contains("d.add_callback(move |_| s.borrow_mut().take()"),
        "{source_line}"
    );
    assert!(slot.borrow().is_none());
}

#[test]
fn c34_unhandled_circular_chain_error_is_reported_once() {
    let slot: Rc<RefCell<Option<Deferred<i32>>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let reports = reports_during(move || {
        let (d, t) = Deferred::<i32>::new();
        let d = d.add_callback(move |_| s.borrow_mut().take().unwrap());
        *slot.borrow_mut() = Some(d);
        t.callback(1);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].check::<CircularChainError>());
}

#[test]
fn c35_chain_deferred_hands_the_result_over_one_way() {
    let (a, at) = Deferred::<i32>::new();
    let (b, bt) = Deferred::<i32>::new();
    // Twisted: b's result becomes None after the hand-over. Rust: chain_deferred consumed `b`, so
    // its chain ends there and nothing can add to it.
    b.chain_deferred(at);
    assert_no_result(&a);
    assert!(format!("{a:?}").contains("pending"));
    bt.callback(3);
    assert_eq!(success_result_of(a), 3);

    // Firing `a` does not fire `b`: `a`'s trigger belongs to `b`'s chain now, so the only way to
    // fire `a` is to cancel it. `b` stays unfired and its late result is dropped quietly.
    let (a, at) = Deferred::<i32>::new();
    let (b, bt) = Deferred::<i32>::new();
    let b_ctl = b.control();
    let b = b.add_callback(|x| Ok(x * 2));
    b.chain_deferred(at);
    a.cancel();
    assert!(!b_ctl.is_called());
    assert!(!bt.is_cancelled());
    let reports = reports_during(|| {
        assert!(bt.callback(1));
    });
    assert!(reports.is_empty(), "{reports:?}");
    assert!(failure_result_of(a).check::<CancelledError>());
}
