//! `defer_core::task` beyond Twisted's own tests: misuse, re-entrancy, lost failures, the places
//! where it departs from Twisted on purpose (docs/DESIGN.md, "Task toolkit"), and both on tokio's
//! timer.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use defer_core::errors::Panicked;
use defer_core::task::{
    Clock, Cooperator, LoopingCall, LoopingCallError, NoDefaultCooperator, SchedulerStopped, Step,
    TaskFinished, TaskStopped, coiterate,
};
use defer_core::testing::{
    assert_no_result, failure_result_of, success_result_of, unhandled_during,
};
use defer_core::{Deferred, Failure, TokioScheduler, Trigger};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn one_unit_per_tick(clock: &Clock) -> Cooperator {
    Cooperator::builder(clock.clone())
        .termination_predicate_factory(|| || true)
        .build()
}

#[test]
fn looping_call_misuse_is_an_error_and_changes_nothing() {
    let clock = Clock::new();
    let lc = LoopingCall::new(clock.clone(), || Ok(()));
    assert_eq!(lc.stop(), Err(LoopingCallError::NotRunning));
    assert_eq!(lc.reset(), Err(LoopingCallError::NotRunning));
    let done = lc.start(secs(1), false).unwrap();
    assert_eq!(
        lc.start(secs(5), true).unwrap_err(),
        LoopingCallError::AlreadyRunning
    );
    assert_eq!(lc.interval(), Some(secs(1)));
    assert_eq!(clock.pending_calls().len(), 1);
    lc.stop().unwrap();
    assert_eq!(lc.stop(), Err(LoopingCallError::NotRunning));
    assert!(success_result_of(done).same_as(&lc));
}

#[test]
fn looping_call_restart_waits_for_the_pending_call() {
    // Twisted would overwrite its Deferred (the first never fires) and schedule twice.
    let clock = Clock::new();
    let pending: Rc<RefCell<Option<Trigger<()>>>> = Rc::default();
    let calls = Rc::new(Cell::new(0));
    let (p, c) = (pending.clone(), calls.clone());
    let lc = LoopingCall::new(clock.clone(), move || {
        c.set(c.get() + 1);
        let (d, t) = Deferred::<()>::new();
        *p.borrow_mut() = Some(t);
        d
    });
    let first = lc.start(secs(1), true).unwrap();
    lc.stop().unwrap();
    assert_eq!(
        lc.start(secs(1), true).unwrap_err(),
        LoopingCallError::Stopping
    );
    assert_no_result(&first);
    pending.borrow_mut().take().unwrap().callback(());
    assert!(success_result_of(first).same_as(&lc));
    let second = lc.start(secs(1), false).unwrap();
    clock.advance(secs(1));
    assert_eq!(calls.get(), 2);
    assert_eq!(clock.pending_calls().len(), 0); // waiting on the call's Deferred
    pending.borrow_mut().take().unwrap().callback(());
    assert_eq!(clock.pending_calls().len(), 1);
    lc.stop().unwrap();
    assert!(success_result_of(second).same_as(&lc));
    assert!(clock.pending_calls().is_empty());
}

#[test]
fn looping_call_panic_fails_the_loop() {
    let clock = Clock::new();
    let lc = LoopingCall::new(clock.clone(), || -> Result<(), Failure> {
        panic!("tick broke")
    });
    let done = lc.start(secs(1), false).unwrap();
    clock.advance(secs(1));
    let f = failure_result_of(done);
    assert_eq!(
        f.downcast_ref::<Panicked>().unwrap().message(),
        "tick broke"
    );
    assert!(!lc.running());
    assert!(clock.pending_calls().is_empty());
}

#[test]
fn looping_call_dropped_trigger_fails_the_loop() {
    let clock = Clock::new();
    let lc = LoopingCall::new(clock.clone(), || Deferred::<()>::new().0);
    let done = lc.start(secs(1), true).unwrap();
    assert!(failure_result_of(done).check::<defer_core::errors::TriggerDropped>());
}

#[test]
fn a_stopped_loop_is_freed() {
    let clock = Clock::new();
    let lc = LoopingCall::new(clock.clone(), || Ok(()));
    let weak = lc.downgrade();
    drop(lc.start(secs(1), true).unwrap());
    drop(lc);
    // Running: the scheduled call holds it, as the reactor would.
    clock.advance(secs(1));
    let lc = weak.upgrade().expect("a running loop stays alive");
    lc.stop().unwrap();
    drop(lc);
    assert!(weak.upgrade().is_none());
}

#[test]
fn cooperator_stop_stops_every_task() {
    // Twisted's `stop` skips every other task (it removes them from the list it walks).
    let clock = Clock::new();
    let coop = Cooperator::new(clock.clone());
    let done: Vec<_> = (0..4)
        .map(|_| coop.coiterate(std::iter::repeat(())))
        .collect();
    coop.stop();
    for d in done {
        assert!(failure_result_of(d).check::<SchedulerStopped>());
    }
    assert!(clock.pending_calls().is_empty());
}

#[test]
fn a_task_that_leaves_does_not_skip_the_next_one() {
    let clock = Clock::new();
    let coop = one_unit_per_tick(&clock);
    let log = Rc::new(RefCell::new(Vec::new()));
    for (name, n) in [("a", 1), ("b", 3), ("c", 3)] {
        let log = log.clone();
        coop.cooperate((0..n).map(move |i| log.borrow_mut().push(format!("{name}{i}"))));
    }
    clock.pump([secs(1); 12]);
    // "a" finishes on its second unit (b1 is not skipped after it).
    assert_eq!(*log.borrow(), ["a0", "b0", "c0", "b1", "c1", "b2", "c2"]);
}

#[test]
fn a_failed_task_nobody_asked_about_is_reported_once() {
    let clock = Clock::new();
    let coop = Cooperator::new(clock.clone());
    let reported = unhandled_during(|| {
        let task = coop.cooperate([Step::Fail(Failure::msg("lost?"))]);
        clock.advance(secs(1));
        assert_eq!(task.finished(), Some(TaskFinished::Failed));
        drop(task);
    });
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].message(), "lost?");

    // Asked: the Deferred carries it, the task reports nothing.
    let reported = unhandled_during(|| {
        let task = coop.cooperate([Step::Fail(Failure::msg("handled"))]);
        let d = task.when_done();
        clock.advance(secs(1));
        drop(task);
        assert_eq!(failure_result_of(d).message(), "handled");
    });
    assert!(reported.is_empty(), "{reported:?}");
}

#[test]
fn stopped_tasks_are_not_reported() {
    let coop = Cooperator::new(Clock::new());
    let reported = unhandled_during(|| {
        let task = coop.cooperate(std::iter::repeat(()));
        task.stop().unwrap();
        drop(task);
        drop(coop.cooperate(std::iter::repeat(())));
        coop.stop();
    });
    assert!(reported.is_empty(), "{reported:?}");
}

#[test]
fn a_next_that_stops_its_own_task_reports_what_it_yields() {
    let clock = Clock::new();
    let coop = Cooperator::new(clock.clone());
    let me: Rc<RefCell<Option<defer_core::task::CooperativeTask>>> = Rc::default();
    let m = me.clone();
    let task = coop.cooperate(std::iter::from_fn(move || {
        m.borrow().as_ref().unwrap().stop().unwrap();
        Some(Step::Fail(Failure::msg("after my own stop")))
    }));
    *me.borrow_mut() = Some(task.clone());
    let done = task.when_done();
    let reported = unhandled_during(|| clock.advance(secs(1)));
    assert!(failure_result_of(done).check::<TaskStopped>());
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].message(), "after my own stop");
    me.borrow_mut().take();
}

#[test]
fn a_yielded_deferred_failing_after_stop_is_reported() {
    let clock = Clock::new();
    let coop = Cooperator::new(clock.clone());
    let (d, trigger) = Deferred::<()>::new();
    let task = coop.cooperate([d]);
    clock.advance(secs(1));
    assert!(task.is_paused());
    task.stop().unwrap();
    let reported = unhandled_during(|| {
        trigger.errback(Failure::msg("too late"));
    });
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].message(), "too late");
}

#[test]
fn cooperate_without_a_default_cooperator_fails_clearly() {
    let f = failure_result_of(coiterate([(); 3]));
    assert!(f.check::<NoDefaultCooperator>());
    assert!(f.check::<SchedulerStopped>());
    assert!(f.message().contains("set_default_cooperator"));
}

#[test]
fn a_nested_tick_skips_the_task_that_is_running() {
    // The iterator advances the clock, which runs the cooperator's next tick inside its `next()`.
    let clock = Clock::new();
    let coop = one_unit_per_tick(&clock);
    let steps = Rc::new(Cell::new(0));
    let (c, s) = (clock.clone(), steps.clone());
    let d = coop.coiterate(std::iter::from_fn(move || {
        s.set(s.get() + 1);
        if s.get() > 5 {
            return None;
        }
        c.advance(secs(1));
        Some(())
    }));
    for _ in 0..20 {
        clock.advance(secs(1));
    }
    success_result_of(d);
    assert_eq!(steps.get(), 6);
}

#[test]
fn a_panicking_termination_predicate_is_reported_and_ends_the_tick() {
    let clock = Clock::new();
    let coop = Cooperator::builder(clock.clone())
        .termination_predicate_factory(|| || -> bool { panic!("predicate broke") })
        .build();
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    let d = coop.coiterate((0..3).map(move |_| c.set(c.get() + 1)));
    let reported = unhandled_during(|| clock.advance(secs(1)));
    assert_eq!(count.get(), 1);
    assert_eq!(reported.len(), 1);
    assert!(reported[0].is_panic());
    let _ = unhandled_during(|| clock.pump([secs(1); 3]));
    success_result_of(d);
}

#[tokio::test(start_paused = true)]
async fn both_run_on_tokios_timer() {
    tokio::task::LocalSet::new()
        .run_until(async {
            let scheduler = TokioScheduler::new();
            let coop = Cooperator::builder(scheduler)
                .termination_predicate_factory(|| || true)
                .build();
            let ticks = Rc::new(Cell::new(0));
            let t = ticks.clone();
            let lc = LoopingCall::new(scheduler, move || {
                t.set(t.get() + 1);
                Ok(())
            });
            let looping = lc.start(Duration::from_millis(1), true).unwrap();
            let sum = Rc::new(Cell::new(0u64));
            let s = sum.clone();
            coop.coiterate((1..=10_000u64).map(move |i| s.set(s.get() + i)))
                .await
                .unwrap();
            assert_eq!(sum.get(), 50_005_000);
            lc.stop().unwrap();
            assert!(looping.await.unwrap().same_as(&lc));
            // One unit per tick, 10 ns apart: the loop got its turns meanwhile.
            assert!(ticks.get() > 1, "{}", ticks.get());
        })
        .await;
}
