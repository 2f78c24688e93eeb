//! Ports of Twisted's `test_cooperator.py` `CooperatorTests`.
//!
//! Twisted's `Cooperator()` runs on the global reactor; here the reactor is a manual `Clock`
//! that the test advances until the Deferred it waits for has fired (trial's reactor spinning),
//! and `reactor.callLater(0, ...)` is `clock.call_later(Duration::ZERO, ...)`. The tests that
//! give Twisted's `scheduler` argument use a fake `Scheduler` here.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use defer_core::task::{Clock, Cooperator, SchedulerStopped, Step};
use defer_core::testing::{failure_result_of, success_result_of};
use defer_core::{Deferred, DelayedCall, Failure, Scheduler, fail, gather_results};

/// Twisted's `FakeScheduler`, shared with `run_state_tests.rs`.
#[path = "fake_scheduler.rs"]
pub(super) mod fake_scheduler;
use fake_scheduler::{FakeDelayedCall, FakeScheduler};

error_kind!(RuntimeError);

const RESULT: &str = "done";

/// Twisted's `ebIter`: a `SchedulerStopped` becomes `RESULT`; anything else is re-raised.
fn eb_iter(err: Failure) -> Result<&'static str, Failure> {
    err.trap::<SchedulerStopped>()?;
    Ok(RESULT)
}

/// Twisted's `cbIter`: the task must not succeed.
fn cb_iter(_: ()) -> Result<&'static str, Failure> {
    Err(Failure::msg("cbIter: the task should not have succeeded"))
}

fn nothing() -> std::iter::Empty<Result<(), Failure>> {
    std::iter::empty()
}

/// Spins the "reactor" until `d` has a result (at most ten seconds of virtual time).
fn spin<T>(clock: &Clock, d: &Deferred<T>) {
    for _ in 0..10_000 {
        if d.is_called() {
            return;
        }
        clock.advance(Duration::from_millis(1));
    }
}

#[test]
fn test_stopped_rejects_new_tasks() {
    // `stuff` is Twisted's `doneDeferred`: absent, or a Deferred of ours to fire.
    fn testwith(done_deferred: bool) {
        let c = Cooperator::new(Clock::new());
        c.stop();
        let d = if done_deferred {
            let (d, trigger) = Deferred::new();
            c.coiterate(nothing()).chain_deferred(trigger);
            d
        } else {
            c.coiterate(nothing())
        };
        let d = d.add_callback(cb_iter).add_errback(eb_iter);
        assert_eq!(success_result_of(d), RESULT);
    }
    testwith(false);
    testwith(true);
}

#[test]
fn test_stop_running() {
    // A running iterator does not run to completion when the cooperator is stopped.
    let clock = Clock::new();
    let c = Cooperator::new(clock.clone());
    let value = Rc::new(Cell::new(-1));
    let v = value.clone();
    let myiter = (0..3).map(move |i| {
        v.set(i);
        Ok(())
    });
    let d = c
        .coiterate(myiter)
        .add_callback(cb_iter)
        .add_errback(eb_iter);
    c.stop();
    spin(&clock, &d);
    assert_eq!(success_result_of(d), RESULT);
    assert_eq!(value.get(), -1);
}

#[test]
fn test_stop_outstanding() {
    // An iterator paused on a Deferred it yielded fires its coiterate Deferred when the
    // cooperator is stopped.
    let clock = Clock::new();
    let (test_control_d, test_control) = Deferred::<()>::new();
    let (outstanding_d, outstanding) = Deferred::<&str>::new();
    let resumed = Rc::new(Cell::new(false));

    let mut test_control = Some(test_control);
    let mut outstanding_d = Some(outstanding_d);
    let (reactor, r) = (clock.clone(), resumed.clone());
    let mut step = 0;
    let myiter = std::iter::from_fn(move || {
        step += 1;
        if step == 1 {
            let t = test_control.take().unwrap();
            reactor.call_later(Duration::ZERO, move || {
                t.callback(());
            });
            outstanding_d.take()
        } else {
            r.set(true); // Twisted's self.fail()
            None
        }
    });
    let c = Cooperator::new(clock.clone());
    let d = c.coiterate(myiter);
    let c2 = c.clone();
    let _control = test_control_d.add_callback(move |_| {
        c2.stop();
        outstanding.callback("arglebargle");
        Ok(())
    });
    let d = d.add_callback(cb_iter).add_errback(eb_iter);
    spin(&clock, &d);
    assert_eq!(success_result_of(d), RESULT);
    assert!(!resumed.get());
}

#[test]
fn test_unexpected_error() {
    // Twisted's iterator raises from `next()`: here its item is an `Err`.
    let clock = Clock::new();
    let c = Cooperator::new(clock.clone());
    let d = c.coiterate(std::iter::once(Err::<(), _>(Failure::new(
        RuntimeError::new(""),
    ))));
    spin(&clock, &d);
    assert!(failure_result_of(d).check::<RuntimeError>());
    // A `next()` that panics, Rust's other way to raise, fails the task too.
    let d = c.coiterate(std::iter::from_fn(|| -> Option<Result<(), Failure>> {
        panic!("next() raised")
    }));
    spin(&clock, &d);
    assert!(failure_result_of(d).is_panic());
}

#[test]
fn test_unexpected_error_actually_later() {
    let clock = Clock::new();
    let reactor = clock.clone();
    let myiter = std::iter::once_with(move || {
        let (d, trigger) = Deferred::<()>::new();
        reactor.call_later(Duration::ZERO, move || {
            trigger.errback(RuntimeError::new(""));
        });
        d
    });
    let c = Cooperator::new(clock.clone());
    let d = c.coiterate(myiter);
    spin(&clock, &d);
    assert!(failure_result_of(d).check::<RuntimeError>());
}

#[test]
fn test_unexpected_error_not_actually_later() {
    let clock = Clock::new();
    let myiter = std::iter::once_with(|| fail::<()>(RuntimeError::new("")));
    let c = Cooperator::new(clock.clone());
    let d = c.coiterate(myiter);
    spin(&clock, &d);
    assert!(failure_result_of(d).check::<RuntimeError>());
}

#[test]
fn test_cooperation() {
    let l = Rc::new(RefCell::new(Vec::new()));
    let groups_of_things: [[&str; 3]; 4] = [
        ["a", "b", "c"],
        ["1", "2", "3"],
        ["d", "e", "f"],
        ["4", "5", "6"],
    ];
    let clock = Clock::new();
    let c = Cooperator::new(clock.clone());
    let tasks: Vec<_> = groups_of_things
        .into_iter()
        .map(|stuff| {
            let l = l.clone();
            c.coiterate(stuff.into_iter().map(move |th| {
                l.borrow_mut().push(th);
            }))
        })
        .collect();
    let all = gather_results(tasks);
    spin(&clock, &all);
    success_result_of(all);
    // sum(zip(*groupsOfThings), ())
    let expected: Vec<&str> = (0..3)
        .flat_map(|i| groups_of_things.iter().map(move |g| g[i]))
        .collect();
    assert_eq!(*l.borrow(), expected);
}

#[test]
fn test_resource_exhaustion() {
    let output = Rc::new(RefCell::new(Vec::new()));
    // Twisted's `_TPF.stopped`, shared by the iterator and the termination predicate.
    let stopped = Rc::new(Cell::new(false));
    let (o, s) = (output.clone(), stopped.clone());
    let myiter = (0..100).map(move |i| {
        o.borrow_mut().push(i);
        if i == 9 {
            s.set(true);
        }
        Ok(i)
    });
    let s = stopped.clone();
    let clock = Clock::new();
    let c = Cooperator::builder(clock.clone())
        .termination_predicate_factory(move || {
            let s = s.clone();
            move || s.get()
        })
        .build();
    let d = c.coiterate(myiter).add_errback(|f| eb_iter(f).map(|_| ()));
    // Twisted cancels the scheduled call and runs one `_tick` by hand: one advance of the clock
    // runs exactly one tick (the next is due 10 ns after it).
    clock.advance(Duration::from_secs(1));
    c.stop();
    assert!(stopped.get());
    assert_eq!(*output.borrow(), (0..10).collect::<Vec<_>>());
    success_result_of(d);
}

/// Twisted's `sched` of `testCallbackReCoiterate`: records each call, and whether one was
/// scheduled while another was still waiting (the bug the test was written for).
#[derive(Default)]
struct RecordingScheduler {
    calls: RefCell<Vec<Rc<FakeDelayedCall>>>,
    fake: FakeScheduler,
    double_scheduled: Cell<bool>,
}

impl Scheduler for RecordingScheduler {
    fn call_later(&self, delay: Duration, f: Box<dyn defer_core::ScheduledFn>) -> DelayedCall {
        if !self.calls.borrow().is_empty() {
            self.double_scheduled.set(true);
        }
        let call = self.fake.call_later(delay, f);
        let unit = self.fake.work.borrow_mut().pop().unwrap();
        self.calls.borrow_mut().push(unit);
        call
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

#[test]
fn test_callback_re_coiterate() {
    // If a callback to a Deferred returned by coiterate calls coiterate on the same Cooperator,
    // only the minimal amount of scheduling work is done.
    let sched = Rc::new(RecordingScheduler::default());
    let c = Cooperator::builder(sched.clone())
        .termination_predicate_factory(|| || true)
        .build();
    let d = c.coiterate(nothing());
    let done = Rc::new(RefCell::new(Vec::new()));
    let (c2, dn) = (c.clone(), done.clone());
    let _d = d.add_callback(move |_| {
        let dn = dn.clone();
        drop(c2.coiterate(nothing()).add_both(move |r| {
            dn.borrow_mut().push(r.is_ok());
            Ok(())
        }));
        Ok(())
    });
    let mut work = 0;
    while done.borrow().is_empty() {
        work += 1;
        loop {
            let next = {
                let mut calls = sched.calls.borrow_mut();
                if calls.is_empty() {
                    None
                } else {
                    Some(calls.remove(0))
                }
            };
            let Some(call) = next else { break };
            call.run();
            work += 1;
        }
        assert!(work <= 50, "Cooperator took too long");
    }
    assert!(!sched.double_scheduled.get());
    assert_eq!(*done.borrow(), [true]);
}

#[test]
fn test_removing_last_task_stops_scheduled_call() {
    // If the last task in a Cooperator is removed, the scheduled call for the next tick is
    // cancelled, since it is no longer necessary.
    let sched = FakeScheduler::new();
    let coop = Cooperator::new(sched.clone());
    let calls = || sched.scheduled.borrow().clone();

    // Add two task; this should schedule the tick:
    let task1 = coop.cooperate([1, 2].map(Ok::<_, Failure>));
    let task2 = coop.cooperate([1, 2].map(Ok::<_, Failure>));
    assert_eq!(calls().len(), 1);

    // Remove first task; scheduled call should still be going:
    task1.stop().unwrap();
    assert!(!calls()[0].cancelled());
    assert_eq!(calls().len(), 1);

    // Remove second task; scheduled call should be cancelled:
    task2.stop().unwrap();
    assert!(calls()[0].cancelled());

    // Add another task; scheduled call will be recreated:
    let _task3 = coop.cooperate([Step::Continue, Step::Continue]);
    assert_eq!(calls().len(), 2);
    assert!(!calls()[1].cancelled());
}

#[test]
fn test_running_when_started() {
    let c = Cooperator::new(Clock::new());
    assert!(c.running());
}

#[test]
fn test_running_when_not_started() {
    let c = Cooperator::builder(Clock::new()).started(false).build();
    assert!(!c.running());
}

#[test]
fn test_running_when_running() {
    let c = Cooperator::builder(Clock::new()).started(false).build();
    c.start();
    assert!(c.running());
    c.stop();
}

#[test]
fn test_running_when_stopped() {
    let c = Cooperator::builder(Clock::new()).started(false).build();
    c.start();
    c.stop();
    assert!(!c.running());
}
