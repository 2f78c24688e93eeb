//! Ports of Twisted's `test_task.py` `ClockTests`.
//!
//! Twisted's `callLater(delay, f, *args, **kw)` passes arguments; a Rust closure captures them,
//! so each port's closure captures what Twisted passes (`1, b=2`) and records it.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use defer_core::errors::DelayedCallError;
use defer_core::task::Clock;
use defer_core::{DelayedCall, Scheduler};

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

type Log<T> = Rc<RefCell<Vec<T>>>;

fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

#[test]
fn test_seconds() {
    let c = Clock::new();
    assert_eq!(c.seconds(), 0.0);
}

#[test]
fn test_call_later() {
    let c = Clock::new();
    let (a, b) = (1, 2);
    let call: DelayedCall = c.call_later(secs(1.0), move || {
        let _ = (a, b);
    });
    assert_eq!(call.time(), secs(1.0));
    assert!(call.active());
}

#[test]
fn test_call_later_cancelled() {
    let c = Clock::new();
    let call = c.call_later(secs(1.0), || {});
    call.cancel().unwrap();
    assert!(!call.active());
}

#[test]
fn test_call_later_ordering() {
    let c = Clock::new();
    let call1 = c.call_later(secs(10.0), || {});
    let call2 = c.call_later(secs(1.0), || {});
    assert!(!call1.same_as(&call2));
}

#[test]
fn test_advance() {
    let events = log();
    let c = Clock::new();
    let e = events.clone();
    let call = c.call_later(secs(2.0), move || e.borrow_mut().push(()));
    c.advance(secs(1.0));
    assert!(events.borrow().is_empty());
    c.advance(secs(1.0));
    assert_eq!(*events.borrow(), [()]);
    assert!(!call.active());
}

#[test]
fn test_advance_cancel() {
    let c = Clock::new();
    let slot: Rc<RefCell<Option<DelayedCall>>> = Rc::default();
    let seen = log();
    let (s, e) = (slot.clone(), seen.clone());
    let call = c.call_later(secs(1.0), move || {
        let call = s.borrow().clone().unwrap();
        e.borrow_mut().push(call.cancel());
    });
    *slot.borrow_mut() = Some(call);
    c.advance(secs(1.0));
    assert_eq!(*seen.borrow(), [Err(DelayedCallError::AlreadyCalled)]);
}

#[test]
fn test_call_later_delayed() {
    let events = log();
    let c = Clock::new();
    let e = events.clone();
    let call = c.call_later(secs(1.0), move || e.borrow_mut().push((1, 2)));
    call.delay(secs(1.0)).unwrap();
    assert_eq!(call.time(), secs(2.0));
    c.advance(secs(1.5));
    assert!(events.borrow().is_empty());
    c.advance(secs(1.0));
    assert_eq!(*events.borrow(), [(1, 2)]);
}

#[test]
fn test_call_later_reset_later() {
    let events = log();
    let c = Clock::new();
    let e = events.clone();
    let call = c.call_later(secs(2.0), move || e.borrow_mut().push((1, 2)));
    c.advance(secs(1.0));
    call.reset(secs(3.0)).unwrap();
    assert_eq!(call.time(), secs(4.0));
    c.advance(secs(2.0));
    assert!(events.borrow().is_empty());
    c.advance(secs(1.0));
    assert_eq!(*events.borrow(), [(1, 2)]);
}

#[test]
fn test_call_later_reset_sooner() {
    let events = log();
    let c = Clock::new();
    let e = events.clone();
    let call = c.call_later(secs(4.0), move || e.borrow_mut().push((1, 2)));
    call.reset(secs(3.0)).unwrap();
    assert_eq!(call.time(), secs(3.0));
    c.advance(secs(3.0));
    assert_eq!(*events.borrow(), [(1, 2)]);
}

#[test]
fn test_get_delayed_calls() {
    let c = Clock::new();
    let call = c.call_later(secs(1.0), || {});
    let call2 = c.call_later(secs(2.0), || {});
    let calls = c.pending_calls();
    assert_eq!(calls.len(), 2);
    for expected in [&call, &call2] {
        assert!(calls.iter().any(|c| c.same_as(expected)));
    }
}

#[test]
fn test_get_delayed_calls_empty() {
    let c = Clock::new();
    assert!(c.pending_calls().is_empty());
}

#[test]
fn test_provides_i_reactor_time() {
    // `IReactorTime.providedBy(c)`: a `Clock` is a `Scheduler` (checked by the compiler), usable
    // as a `dyn Scheduler`.
    fn provided_by<S: Scheduler + ?Sized>(s: &S) -> Duration {
        s.now()
    }
    let c = Clock::new();
    let reactor_time: &dyn Scheduler = &c;
    c.advance(secs(1.5));
    assert_eq!(provided_by(reactor_time), secs(1.5));
    assert_eq!(provided_by(&c), secs(1.5));
}

/// Records `(name, clock.seconds())`, Twisted's `logtime`.
fn logtime(
    clock: &Clock,
    result: &Log<(&'static str, f64)>,
    name: &'static str,
) -> impl FnOnce() + use<> {
    let (clock, result) = (clock.clone(), result.clone());
    move || result.borrow_mut().push((name, clock.seconds()))
}

#[test]
fn test_call_later_keeps_calls_ordered() {
    let result = log();
    let expected = [("b", 2.0), ("a", 3.0)];
    let clock = Clock::new();
    let call_a = clock.call_later(secs(1.0), logtime(&clock, &result, "a"));
    call_a.reset(secs(3.0)).unwrap();
    clock.call_later(secs(2.0), logtime(&clock, &result, "b"));
    clock.pump([secs(1.0); 3]);
    assert_eq!(*result.borrow(), expected);
}

#[test]
fn test_call_later_reset_keeps_calls_ordered() {
    let result = log();
    let expected = [("b", 2.0), ("a", 3.0)];
    let clock = Clock::new();
    let call_a = clock.call_later(secs(1.0), logtime(&clock, &result, "a"));
    clock.call_later(secs(2.0), logtime(&clock, &result, "b"));
    call_a.reset(secs(3.0)).unwrap();
    clock.pump([secs(1.0); 3]);
    assert_eq!(*result.borrow(), expected);
}

#[test]
fn test_call_later_reset_inside_call_keeps_calls_ordered() {
    let result = log();
    let expected = [("c", 3.0), ("b", 4.0)];
    let clock = Clock::new();
    let call_b = clock.call_later(secs(2.0), logtime(&clock, &result, "b"));
    clock.call_later(secs(1.0), move || call_b.reset(secs(3.0)).unwrap());
    clock.call_later(secs(3.0), logtime(&clock, &result, "c"));
    clock.pump([secs(0.5); 10]);
    assert_eq!(*result.borrow(), expected);
}
