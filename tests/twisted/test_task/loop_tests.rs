//! Ports of Twisted's `test_task.py` `LoopTests`: `LoopingCall` on the manual `Clock`.
//!
//! Twisted's `TestableLoopingCall(clock, f, *a, **kw)` is `LoopingCall::new(clock, f)` with `f`
//! capturing its arguments. Times are `Duration`s: integer nanoseconds, not floats.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use defer_core::task::{Clock, LoopingCall, WeakLoopingCall};
use defer_core::testing::success_result_of;
use defer_core::{Deferred, Failure};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

type Log<T> = Rc<RefCell<Vec<T>>>;

fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

/// A slot through which a loop's function reaches its own loop (Twisted's closures over `lc`).
type Me = Rc<RefCell<WeakLoopingCall>>;

fn stop(me: &Me) {
    me.borrow().upgrade().unwrap().stop().unwrap();
}

#[test]
fn test_callback_time_skips() {
    let times = log();
    let call_duration = Rc::new(Cell::new(Duration::ZERO));
    let clock = Clock::new();
    let (t, c, d) = (times.clone(), clock.clone(), call_duration.clone());
    let call = LoopingCall::new(clock.clone(), move || {
        t.borrow_mut().push(c.seconds());
        c.advance(d.get());
        Ok(())
    });

    // Start a LoopingCall with a 0.5 second increment, and immediately call the callable.
    call_duration.set(secs(2.0));
    let _done = call.start(secs(0.5), true).unwrap();
    // Verify that the callable was called, and since it was immediate, with no skips.
    assert_eq!(*times.borrow(), [0.0]);
    // The callback should have advanced the clock by the callDuration.
    assert_eq!(clock.seconds(), 2.0);
    // An iteration should have occurred at 2, but since 2 is the present and not the future, it
    // is skipped.
    clock.advance(Duration::ZERO);
    assert_eq!(*times.borrow(), [0.0]);
    // 2.5 is in the future, and is not skipped.
    call_duration.set(secs(1.0));
    clock.advance(secs(0.5));
    assert_eq!(*times.borrow(), [0.0, 2.5]);
    assert_eq!(clock.seconds(), 3.5);
    // Another iteration should have occurred, but it is again the present and not the future,
    // so it is skipped as well.
    clock.advance(Duration::ZERO);
    assert_eq!(*times.borrow(), [0.0, 2.5]);
    // 4 is in the future, and is not skipped.
    call_duration.set(Duration::ZERO);
    clock.advance(secs(0.5));
    assert_eq!(*times.borrow(), [0.0, 2.5, 4.0]);
    assert_eq!(clock.seconds(), 4.0);
}

#[test]
fn test_reactor_time_skips() {
    let times = log();
    let clock = Clock::new();
    let (t, c) = (times.clone(), clock.clone());
    let call = LoopingCall::new(clock.clone(), move || {
        t.borrow_mut().push(c.seconds());
        Ok(())
    });
    let _done = call.start(secs(0.5), true).unwrap();
    // Initially, no time should have passed!
    assert_eq!(*times.borrow(), [0.0]);
    // Advance the clock by 2 seconds (2 seconds should have passed)
    clock.advance(secs(2.0));
    assert_eq!(*times.borrow(), [0.0, 2.0]);
    // Advance the clock by 1 second (3 total should have passed)
    clock.advance(secs(1.0));
    assert_eq!(*times.borrow(), [0.0, 2.0, 3.0]);
    // Advance the clock by 0 seconds (this should have no effect!)
    clock.advance(Duration::ZERO);
    assert_eq!(*times.borrow(), [0.0, 2.0, 3.0]);
}

/// A loop made with `with_count` that records `(clock.seconds(), count)`.
fn counting(clock: &Clock) -> (LoopingCall, Log<(Duration, u64)>) {
    let times = log();
    let (t, c) = (times.clone(), clock.clone());
    let call = LoopingCall::with_count(clock.clone(), move |num_calls| {
        t.borrow_mut().push((c.now(), num_calls));
        Ok(())
    });
    (call, times)
}

#[test]
fn test_reactor_time_count_skips() {
    let clock = Clock::new();
    let (call, times) = counting(&clock);
    let interval = secs(0.5);
    let realistic_delay = secs(0.01);
    let _done = call.start(interval, true).unwrap();
    // Initially, no seconds should have passed, and one calls should have been made.
    assert_eq!(*times.borrow(), [(Duration::ZERO, 1)]);
    // After the interval (plus a small delay), we should still have only made one call.
    clock.advance(interval + realistic_delay);
    assert_eq!(
        *times.borrow(),
        [(Duration::ZERO, 1), (interval + realistic_delay, 1)]
    );
    // After advancing the clock by three intervals (plus a small delay), we should have skipped
    // two calls; the final number of calls is 3.
    clock.advance(interval * 3 + realistic_delay);
    let expected = [
        (Duration::ZERO, 1),
        (interval + realistic_delay, 1),
        (interval * 4 + realistic_delay * 2, 3),
    ];
    assert_eq!(*times.borrow(), expected);
    // Advancing the clock by 0 seconds should not cause any changes!
    clock.advance(Duration::ZERO);
    assert_eq!(*times.borrow(), expected);
}

#[test]
fn test_count_lengthy_interval_counts() {
    let clock = Clock::new();
    let (call, times) = counting(&clock);
    let interval = secs(0.5);
    let realistic_delay = secs(0.01);
    let _done = call.start(interval, true).unwrap();
    assert_eq!(times.borrow_mut().pop(), Some((Duration::ZERO, 1)));
    // About one interval... So far, so good
    clock.advance(interval + realistic_delay);
    assert_eq!(
        times.borrow_mut().pop(),
        Some((interval + realistic_delay, 1))
    );
    // Oh no, something delayed us for a while.
    clock.advance(interval.mul_f64(1.75));
    assert_eq!(
        times.borrow_mut().pop(),
        Some((interval.mul_f64(2.75) + realistic_delay, 1))
    );
    // Back on track!  We got invoked when we expected this time.
    clock.advance(interval.mul_f64(0.25));
    assert_eq!(
        times.borrow_mut().pop(),
        Some((interval * 3 + realistic_delay, 1))
    );
}

#[test]
fn test_with_count_floating_point_boundary() {
    // Twisted's case: an interval of 1/10 second, which floats cannot hold exactly, so ten of
    // them fall short of one second. In integer nanoseconds the same happens with 1/3 second:
    // three intervals of 333_333_333 ns fall 1 ns short of the timespan.
    let clock = Clock::new();
    let accumulator = log();
    let a = accumulator.clone();
    let call = LoopingCall::with_count(clock.clone(), move |n| {
        a.borrow_mut().push(n);
        Ok(())
    });
    let count = 3u32;
    let timespan = Duration::from_secs(1);
    let interval = timespan / count;
    let _done = call.start(interval, false).unwrap();
    for _ in 0..count {
        clock.advance(interval);
    }
    let epsilon = timespan - interval * count;
    clock.advance(epsilon);
    let seconds_value = clock.now();
    // The interesting condition is triggered: the intervals do not add up to the timespan.
    assert!(
        epsilon > Duration::ZERO,
        "{epsilon:?} should be greater than zero"
    );
    assert!(
        seconds_value >= timespan,
        "{seconds_value:?} should be greater than or equal to {timespan:?}"
    );
    assert_eq!(accumulator.borrow().iter().sum::<u64>(), u64::from(count));
    assert!(!accumulator.borrow().contains(&0));
}

#[test]
fn test_with_count_interval_zero() {
    let clock = Clock::new();
    let accumulator = log();
    let me: Me = Rc::default();
    let (a, m) = (accumulator.clone(), me.clone());
    let lp = LoopingCall::with_count(clock.clone(), move |cnt| {
        a.borrow_mut().push(cnt);
        if a.borrow().len() > 4 {
            stop(&m);
        }
        Ok(())
    });
    *me.borrow_mut() = lp.downgrade();
    let deferred = lp.start(Duration::ZERO, false).unwrap();
    clock.pump([Duration::ZERO; 5]);
    assert!(success_result_of(deferred).same_as(&lp));
    assert_eq!(*accumulator.borrow(), [1; 5]);
}

#[test]
fn test_with_count_interval_zero_delay() {
    let clock = Clock::new();
    let (deferred, trigger) = Deferred::<()>::new();
    let deferred = Rc::new(RefCell::new(Some(deferred)));
    let accumulator = log();
    let me: Me = Rc::default();
    let (a, m, d) = (accumulator.clone(), me.clone(), deferred.clone());
    let lp = LoopingCall::with_count(clock.clone(), move |cnt| {
        a.borrow_mut().push(cnt);
        if a.borrow().len() == 2 {
            return d.borrow_mut().take().unwrap();
        }
        if a.borrow().len() > 4 {
            stop(&m);
        }
        defer_core::succeed(())
    });
    *me.borrow_mut() = lp.downgrade();
    let _done = lp.start(Duration::ZERO, false).unwrap();

    clock.pump([Duration::ZERO; 2]);
    // Loop will block at the third call.
    assert_eq!(*accumulator.borrow(), [1; 2]);
    // Even if more time pass, the loops is not advanced.
    clock.pump([secs(1.0); 2]);
    assert_eq!(*accumulator.borrow(), [1; 2]);
    // Once the waiting call got a result the loop continues without observing any delay in
    // countCallable.
    trigger.callback(());
    clock.pump([Duration::ZERO; 4]);
    assert_eq!(*accumulator.borrow(), [1; 5]);
}

#[test]
fn test_with_count_interval_zero_delay_then_non_zero_interval() {
    let clock = Clock::new();
    let (deferred, trigger) = Deferred::<()>::new();
    let deferred = Rc::new(RefCell::new(Some(deferred)));
    let accumulator = log();

    let steps_before_delay = 2;
    let extra_time_after_delay = 5;
    let mutated_loop_interval = 2;
    let duration_of_delay = 9;
    let skipped_time = extra_time_after_delay + duration_of_delay;
    let mut expected_skip_count = skipped_time / mutated_loop_interval;
    // Twisted's fudge for its #5962 (the Clock shows an unrealistic time for the second call):
    // the same Clock semantics here, so the same fudge.
    expected_skip_count += 1;

    let (a, d) = (accumulator.clone(), deferred.clone());
    let lp = LoopingCall::with_count(clock.clone(), move |cnt| {
        a.borrow_mut().push(cnt);
        if a.borrow().len() == steps_before_delay {
            return d.borrow_mut().take().unwrap();
        }
        defer_core::succeed(())
    });
    let _done = lp.start(Duration::ZERO, false).unwrap();

    clock.pump(vec![
        secs(1.0);
        steps_before_delay + extra_time_after_delay as usize
    ]);
    assert_eq!(*accumulator.borrow(), vec![1; steps_before_delay]);

    // When a new interval is set, once the waiting call got a result the loop continues with
    // the new interval.
    lp.set_interval(Duration::from_secs(mutated_loop_interval));
    trigger.callback(());

    clock.advance(Duration::from_secs(duration_of_delay));
    // It will count skipped steps since the last loop call.
    assert_eq!(*accumulator.borrow(), [1, 1, expected_skip_count]);

    clock.advance(Duration::from_secs(mutated_loop_interval));
    assert_eq!(*accumulator.borrow(), [1, 1, expected_skip_count, 1]);

    clock.advance(Duration::from_secs(2 * mutated_loop_interval));
    assert_eq!(*accumulator.borrow(), [1, 1, expected_skip_count, 1, 2]);
}

#[test]
fn test_basic_function() {
    // Only need to go to 2.5 to get 3 calls, since the first call happens before any time has
    // elapsed.
    let timings = [secs(0.05), secs(0.1), secs(0.1)];
    let clock = Clock::new();
    let l = log();
    let ll = l.clone();
    let (a, b, c, d) = ("a", "b", None::<&str>, Some("d"));
    let lc = LoopingCall::new(clock.clone(), move || {
        ll.borrow_mut().push((a, b, c, d));
        Ok(())
    });
    let the_result = log();
    let tr = the_result.clone();
    let done = lc.start(secs(0.1), true).unwrap().add_callback(move |lc| {
        tr.borrow_mut().push(lc);
        Ok(())
    });
    clock.pump(timings);
    assert_eq!(
        l.borrow().len(),
        3,
        "got {} iterations, not 3",
        l.borrow().len()
    );
    for &(a, b, c, d) in l.borrow().iter() {
        assert_eq!(a, "a");
        assert_eq!(b, "b");
        assert_eq!(c, None);
        assert_eq!(d, Some("d"));
    }
    lc.stop().unwrap();
    assert!(the_result.borrow()[0].same_as(&lc));
    // Make sure it isn't planning to do anything further.
    assert!(clock.pending_calls().is_empty());
    success_result_of(done);
}

#[test]
fn test_delayed_start() {
    let timings = [secs(0.05), secs(0.1), secs(0.1)];
    let clock = Clock::new();
    let l = log();
    let ll = l.clone();
    let lc = LoopingCall::new(clock.clone(), move || {
        ll.borrow_mut().push(None::<()>);
        Ok(())
    });
    let the_result = log();
    let tr = the_result.clone();
    let done = lc.start(secs(0.1), false).unwrap().add_callback(move |lc| {
        tr.borrow_mut().push(lc);
        Ok(())
    });
    clock.pump(timings);
    assert_eq!(
        l.borrow().len(),
        2,
        "got {} iterations, not 2",
        l.borrow().len()
    );
    lc.stop().unwrap();
    assert!(the_result.borrow()[0].same_as(&lc));
    assert!(clock.pending_calls().is_empty());
    success_result_of(done);
}

/// Makes sure that `LoopingCall::stop` prevents any subsequent calls.
fn stopping_test(delay: Duration) {
    let ran = log();
    let r = ran.clone();
    let clock = Clock::new();
    let lc = LoopingCall::new(clock.clone(), move || {
        r.borrow_mut().push(());
        Ok(())
    });
    let done = lc.start(delay, false).unwrap();
    lc.stop().unwrap();
    assert!(ran.borrow().is_empty());
    assert!(clock.pending_calls().is_empty());
    assert!(success_result_of(done).same_as(&lc));
}

#[test]
fn test_stop_at_once() {
    stopping_test(Duration::ZERO);
}

#[test]
fn test_stopping_before_delayed_start() {
    stopping_test(secs(10.0));
}

#[test]
fn test_reset() {
    let ran = log();
    let r = ran.clone();
    let c = Clock::new();
    let lc = LoopingCall::new(c.clone(), move || {
        r.borrow_mut().push(());
        Ok::<_, Failure>(())
    });
    let _done = lc.start(secs(2.0), false).unwrap();
    c.advance(secs(1.0));
    lc.reset().unwrap();
    c.advance(secs(1.0));
    assert!(ran.borrow().is_empty());
    c.advance(secs(1.0));
    assert_eq!(*ran.borrow(), [()]);
}

/// Twisted's `installReactor`, a named function for the repr tests.
fn install_reactor() -> Result<(), Failure> {
    Ok(())
}

#[test]
fn test_repr_function() {
    // Twisted: "LoopingCall<None>(installReactor, *(1,), **{'key': 2})". A Rust function has no
    // bound arguments to show; the repr names the interval and the function.
    let repr = format!("{:?}", LoopingCall::new(Clock::new(), install_reactor));
    assert!(repr.starts_with("LoopingCall { interval: None,"), "{repr}");
    assert!(repr.contains("loop_tests::install_reactor"), "{repr}");
}

struct TestableLoopingCall;

impl TestableLoopingCall {
    fn init() -> Result<(), Failure> {
        Ok(())
    }
}

#[test]
fn test_repr_method() {
    // Twisted: "LoopingCall<None>(TestableLoopingCall.__init__, *(), **{})".
    let repr = format!(
        "{:?}",
        LoopingCall::new(Clock::new(), TestableLoopingCall::init)
    );
    assert!(repr.starts_with("LoopingCall { interval: None,"), "{repr}");
    assert!(repr.contains("TestableLoopingCall::init"), "{repr}");
}
