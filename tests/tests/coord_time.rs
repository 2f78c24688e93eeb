//! Time (twisted-semantics.md §1.6, §2.13): the manual `Clock`, `DelayedCall`, `defer_later` and
//! `add_timeout`; cases C65–C72 and C100.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::rc::Rc;
use std::time::Duration;

use defer_core::clock::Clock;
use defer_core::errors::{CancelledError, DelayedCallError, TimeoutError, TriggerDropped};
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{Deferred, Failure, Scheduler, defer_later, succeed};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[macro_use]
#[path = "support/error_kinds.rs"]
mod error_kinds;

error_kind!(ValueError);

// ---- addTimeout --------------------------------------------------------------------------------

#[test]
fn c65_timeout_is_chainable_and_leaves_no_timer_once_fired() {
    let clock = Clock::new();
    let (d, producer) = Deferred::<()>::new();
    let d = d.add_timeout(secs(5), &clock).add_callback(|()| Ok("done"));
    producer.callback(());
    assert_eq!(success_result_of(d), "done");
    assert!(
        clock.pending_calls().is_empty(),
        "firing in time cancels the timer"
    );

    let clock = Clock::new();
    let d = succeed(1).add_timeout(secs(10), &clock);
    assert!(clock.pending_calls().is_empty());
    assert_eq!(success_result_of(d), 1);
}

#[test]
fn c66_times_out_only_when_the_time_has_come() {
    let clock = Clock::new();
    let (d, producer) = Deferred::<u8>::new();
    let d = d.add_timeout(secs(10), &clock);
    clock.advance(Duration::from_millis(9_990));
    assert_no_result(&d);
    clock.advance(secs(5));
    assert!(producer.is_cancelled());
    let f = failure_result_of(d);
    let e = f.downcast_ref::<TimeoutError>().expect("a TimeoutError");
    assert_eq!(e.timeout(), secs(10));
    assert_eq!(f.message(), "the Deferred timed out after 10s");
}

#[test]
fn c67_custom_on_timeout_cancel_and_canceller_results() {
    // onTimeoutCancel's result replaces the result.
    let clock = Clock::new();
    let (d, _p) = Deferred::<&str>::new();
    let d = d.add_timeout_with(secs(10), &clock, |_r, _t| Ok("OVERRIDDEN"));
    clock.advance(secs(15));
    assert_eq!(success_result_of(d), "OVERRIDDEN");

    // A canceller's success is kept.
    let clock = Clock::new();
    let (d, _p) = Deferred::with_canceller(|t| {
        t.callback("I was cancelled!");
    });
    let d = d.add_timeout(secs(10), &clock);
    clock.advance(secs(15));
    assert_eq!(success_result_of(d), "I was cancelled!");

    // A canceller's failure is kept: the very same failure.
    let err = Failure::new(ValueError::new("what!"));
    let clock = Clock::new();
    let e = err.clone();
    let (d, _p) = Deferred::<&str>::with_canceller(move |t| {
        t.errback(e);
    });
    let d = d.add_timeout(secs(10), &clock);
    clock.advance(secs(15));
    assert!(failure_result_of(d).same_as(&err));

    // A canceller's failure, then a custom onTimeoutCancel: the custom result wins.
    let clock = Clock::new();
    let (d, _p) = Deferred::<&str>::with_canceller(|t| {
        t.errback(ValueError::new("what!"));
    });
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let d = d.add_timeout_with(secs(10), &clock, move |r, t| {
        s.borrow_mut().push((r.unwrap_err().message(), t));
        Ok("OVERRIDDEN")
    });
    clock.advance(secs(15));
    assert_eq!(success_result_of(d), "OVERRIDDEN");
    assert_eq!(*seen.borrow(), [("what!".to_owned(), secs(10))]);
}

#[test]
fn c69_manual_cancel_before_the_timeout_keeps_cancelled_error() {
    for custom in [false, true] {
        let clock = Clock::new();
        let (d, _p) = Deferred::<&str>::new();
        let custom_calls = Rc::new(Cell::new(0));
        let cc = custom_calls.clone();
        let d = if custom {
            d.add_timeout_with(secs(10), &clock, move |_r, _t| {
                cc.set(cc.get() + 1);
                Ok("OVERRIDDEN")
            })
        } else {
            d.add_timeout(secs(10), &clock)
        };
        let (inner, inner_producer) = Deferred::<&str>::new();
        let inner_ctl = inner.control();
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        let d = d.add_errback(move |f| {
            s.borrow_mut().push(f);
            inner
        });
        d.cancel();
        assert_eq!(seen.borrow().len(), 1);
        assert!(seen.borrow()[0].check::<CancelledError>());
        assert!(!seen.borrow()[0].check::<TimeoutError>());
        assert!(
            clock.pending_calls().is_empty(),
            "reaching the timeout point cancels the timer"
        );
        clock.advance(secs(15));
        assert!(
            !inner_ctl.is_called(),
            "the timeout never reaches a later step's Deferred"
        );
        assert!(!inner_producer.is_cancelled());
        assert_eq!(custom_calls.get(), 0);
        assert_no_result(&d);
        inner_producer.callback("later");
        assert_eq!(success_result_of(d), "later");
    }
}

#[test]
fn c71_step_before_the_timeout_sees_the_cancellers_success() {
    for custom in [false, true] {
        let clock = Clock::new();
        let (d, _p) = Deferred::with_canceller(|t| {
            t.callback("success");
        });
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        let d = d.add_callback(move |v: &'static str| {
            s.borrow_mut().push(v);
            Ok(v)
        });
        let d = if custom {
            d.add_timeout_with(secs(10), &clock, |_r, _t| Ok("OVERRIDDEN"))
        } else {
            d.add_timeout(secs(10), &clock)
        };
        clock.advance(secs(15));
        assert_eq!(*seen.borrow(), ["success"]);
        assert_eq!(
            success_result_of(d),
            if custom { "OVERRIDDEN" } else { "success" }
        );
    }
}

#[test]
fn c72_timeout_cancels_the_inner_deferred_a_step_before_it_waits_on() {
    let clock = Clock::new();
    let (inner, inner_producer) = Deferred::<()>::new();
    let (d, producer) = Deferred::<()>::new();
    let d = d.add_callback(move |()| inner).add_timeout(secs(5), &clock);
    producer.callback(());
    assert_no_result(&d);
    clock.advance(secs(5));
    assert!(
        inner_producer.is_cancelled(),
        "the inner Deferred was cancelled"
    );
    assert!(failure_result_of(d).check::<TimeoutError>());
}

#[test]
fn timeout_errback_added_before_sees_cancelled_error_and_may_recover() {
    // §2.13: errbacks added before the timeout see CancelledError; re-raised, it becomes a
    // TimeoutError; trapped, the result is a success.
    let clock = Clock::new();
    let (d, _p) = Deferred::<u8>::new();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let d = d
        .add_errback(move |f| {
            s.borrow_mut().push(f.check::<CancelledError>());
            Err(f)
        })
        .add_timeout(secs(1), &clock);
    clock.advance(secs(1));
    assert_eq!(*seen.borrow(), [true]);
    assert!(failure_result_of(d).check::<TimeoutError>());

    let clock = Clock::new();
    let (d, _p) = Deferred::<u8>::new();
    let d = d
        .add_errback(|f| {
            f.trap::<CancelledError>()?;
            Ok(0)
        })
        .add_timeout(secs(1), &clock);
    clock.advance(secs(1));
    assert_eq!(success_result_of(d), 0);
}

#[test]
fn timeout_accepts_a_dyn_scheduler_and_names_the_duration() {
    let clock = Clock::new();
    let scheduler: &dyn Scheduler = &clock;
    let (d, _p) = Deferred::<u8>::new();
    let d = d.add_timeout(Duration::from_millis(1500), scheduler);
    clock.advance(secs(2));
    let f = failure_result_of(d);
    assert_eq!(f.message(), "the Deferred timed out after 1.5s");
    assert_eq!(
        f.location().file(),
        file!(),
        "the failure points at the add_timeout call"
    );
    let e: &dyn Error = f.error();
    assert!(e.to_string().contains("1.5s"));
}

#[test]
fn timeout_of_a_dropped_chain_does_nothing() {
    let clock = Clock::new();
    let (d, producer) = Deferred::<u8>::new();
    let d = d.add_timeout(secs(1), &clock);
    drop(d);
    drop(producer);
    clock.advance(secs(2));
    assert!(clock.pending_calls().is_empty());
}

// ---- Clock, DelayedCall and deferLater ------------------------------------------------------------

#[test]
fn c100_clock_advance_order_delayed_call_moves_and_defer_later() {
    let clock = Clock::new();
    let order = Rc::new(RefCell::new(Vec::<String>::new()));
    let push = |name: &'static str| {
        let o = order.clone();
        move || o.borrow_mut().push(name.to_owned())
    };
    clock.call_later(secs(2), push("b"));
    clock.call_later(secs(1), push("a"));
    clock.call_later(secs(2), push("b2"));
    let (c, o) = (clock.clone(), order.clone());
    clock.call_later(Duration::from_millis(1500), move || {
        o.borrow_mut().push(format!("s@{}", c.seconds()));
        let o = o.clone();
        c.call_later(Duration::ZERO, move || o.borrow_mut().push("s0".to_owned()));
    });
    clock.advance(secs(1));
    assert_eq!(*order.borrow(), ["a"]);
    clock.advance(secs(1));
    // spawn sees the final time; equal times run first-come; calls due during the advance run.
    assert_eq!(*order.borrow(), ["a", "s@2", "b", "b2", "s0"]);

    let call = clock.call_later(secs(1), push("x"));
    call.delay(secs(1)).unwrap();
    assert_eq!(call.time(), secs(4));
    call.reset(secs(3)).unwrap();
    assert_eq!(call.time(), secs(5));
    call.cancel().unwrap();
    assert!(!call.active());
    assert!(clock.pending_calls().is_empty());

    // deferLater with a function and its arguments.
    let clock = Clock::new();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let (a, bar) = ("foo", "bar");
    let d = defer_later(&clock, secs(3), move || {
        s.borrow_mut().push((a, bar));
        Ok("flag")
    });
    clock.advance(secs(2));
    assert!(seen.borrow().is_empty());
    assert_no_result(&d);
    clock.advance(secs(1));
    assert_eq!(*seen.borrow(), [("foo", "bar")]);
    assert_eq!(success_result_of(d), "flag");

    // It fails if the function fails (raises: here, panics).
    let clock = Clock::new();
    let d = defer_later(&clock, secs(1), || -> Result<i32, Failure> {
        let zero = std::hint::black_box(0);
        Ok(1 / zero)
    });
    clock.advance(secs(1));
    let f = failure_result_of(d);
    assert!(f.is_panic());
    assert!(f.message().contains("divide by zero"));

    // Cancelled: CancelledError, no pending call, the function never runs.
    let clock = Clock::new();
    let called = Rc::new(Cell::new(false));
    let c = called.clone();
    let d = defer_later(&clock, secs(1), move || {
        c.set(true);
        Ok(())
    });
    d.cancel();
    assert!(failure_result_of(d).check::<CancelledError>());
    assert!(clock.pending_calls().is_empty());
    clock.advance(secs(5));
    assert!(!called.get());

    // With nothing to compute it gives ().
    let clock = Clock::new();
    let d = defer_later(&clock, Duration::from_secs_f64(2.0), || Ok(()));
    assert_no_result(&d);
    clock.advance(Duration::from_secs_f64(2.0));
    success_result_of(d);
}

#[test]
fn delayed_call_refuses_to_cancel_or_move_twice() {
    let clock = Clock::new();
    let ran = clock.call_later(secs(1), || {});
    clock.advance(secs(1));
    assert_eq!(ran.cancel(), Err(DelayedCallError::AlreadyCalled));
    assert_eq!(ran.reset(secs(1)), Err(DelayedCallError::AlreadyCalled));
    assert_eq!(ran.delay(secs(1)), Err(DelayedCallError::AlreadyCalled));
    assert!(!ran.active());

    let cancelled = clock.call_later(secs(1), || {});
    cancelled.cancel().unwrap();
    assert_eq!(cancelled.cancel(), Err(DelayedCallError::AlreadyCancelled));
    assert_eq!(
        cancelled.reset(secs(1)),
        Err(DelayedCallError::AlreadyCancelled)
    );
    assert_eq!(
        cancelled.delay(secs(1)),
        Err(DelayedCallError::AlreadyCancelled)
    );
    assert_eq!(
        DelayedCallError::AlreadyCancelled.to_string(),
        "the delayed call was already cancelled"
    );
}

#[test]
fn reset_moves_a_call_earlier_and_later_in_the_queue() {
    let clock = Clock::new();
    let order = Rc::new(RefCell::new(Vec::new()));
    let (o1, o2) = (order.clone(), order.clone());
    let late = clock.call_later(secs(10), move || o1.borrow_mut().push("late"));
    clock.call_later(secs(5), move || o2.borrow_mut().push("five"));
    late.reset(secs(1)).unwrap();
    clock.advance(secs(1));
    assert_eq!(*order.borrow(), ["late"]);
    clock.advance(secs(4));
    assert_eq!(*order.borrow(), ["late", "five"]);

    let pushed = order.clone();
    let moved = clock.call_later(secs(1), move || pushed.borrow_mut().push("moved"));
    moved.delay(secs(9)).unwrap();
    clock.advance(secs(9));
    assert_eq!(order.borrow().len(), 2);
    clock.advance(secs(1));
    assert_eq!(order.borrow().last(), Some(&"moved"));
}

#[test]
fn pump_and_pending_calls_follow_the_queue() {
    let clock = Clock::new();
    let count = Rc::new(Cell::new(0));
    for s in [3, 1, 2] {
        let c = count.clone();
        clock.call_later(secs(s), move || c.set(c.get() + 1));
    }
    let times: Vec<u64> = clock
        .pending_calls()
        .iter()
        .map(|c| c.time().as_secs())
        .collect();
    assert_eq!(times, [1, 2, 3]);
    clock.pump([secs(1), secs(1)]);
    assert_eq!(count.get(), 2);
    assert_eq!(clock.pending_calls().len(), 1);
    assert_eq!(clock.now(), secs(2));
    assert_eq!(Scheduler::now(&clock), secs(2));
}

#[test]
fn a_panicking_call_leaves_the_clock_usable() {
    let clock = Clock::new();
    let after = Rc::new(Cell::new(false));
    let a = after.clone();
    clock.call_later(secs(1), || panic!("scheduled function failed"));
    clock.call_later(secs(2), move || a.set(true));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| clock.advance(secs(2))));
    assert!(
        outcome.is_err(),
        "the panic propagates out of advance, as in Twisted"
    );
    assert!(!after.get());
    clock.advance(Duration::ZERO);
    assert!(
        after.get(),
        "the rest of the queue runs on the next advance"
    );
}

#[test]
fn dropping_the_clock_cancels_its_calls_and_fails_a_waiting_defer_later() {
    struct DropFlag(Rc<Cell<bool>>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let clock = Clock::new();
    let dropped = Rc::new(Cell::new(false));
    let flag = DropFlag(dropped.clone());
    let call = clock.call_later(secs(1), move || drop(flag));
    let d = defer_later(&clock, secs(1), || Ok(5));
    drop(clock);
    assert!(
        dropped.get(),
        "the pending function was dropped with the clock"
    );
    assert!(!call.active());
    assert_eq!(call.cancel(), Err(DelayedCallError::AlreadyCancelled));
    // The Deferred can never fire now: its trigger was dropped with the clock.
    assert!(failure_result_of(d).check::<TriggerDropped>());
}
