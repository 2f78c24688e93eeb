//! Ports of Twisted's `test_task.py` `ReactCoroutineFunctionTests`: `react` with a coroutine
//! (`async def main`) as `main`, here `ensure_deferred(async move { ... })`.
//!
//! As in `react_tests.rs`: "exit code 0" is `Ok`, "exit code 1 and one logged error" is the
//! failure returned with nothing reported as unhandled, and time is real (milliseconds, checked
//! as lower bounds).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use defer_core::reactor::ReactorStopped;
use defer_core::{Deferred, Failure, ensure_deferred, fail, react, succeed};

error_kind!(ExpectedException, SystemExit);

const MS: Duration = Duration::from_millis(1);

fn counting_reports<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let n = Rc::new(RefCell::new(0));
    let c = n.clone();
    let r = defer_core::unhandled::with_hook(move |_| *c.borrow_mut() += 1, f);
    let count = *n.borrow();
    (r, count)
}

#[test]
fn test_runs_until_async_callback() {
    let time_passed = Rc::new(RefCell::new(Vec::new()));
    let tp = time_passed.clone();
    let r = react(move |reactor| {
        let reactor = reactor.clone();
        ensure_deferred(async move {
            let (finished, trigger) = Deferred::<()>::new();
            reactor.call_later(MS, move || tp.borrow_mut().push(true));
            reactor.call_later(2 * MS, move || {
                trigger.callback(());
            });
            finished.await?;
            Ok::<_, Failure>(reactor.seconds())
        })
    });
    assert!(r.unwrap() >= 0.002);
    assert_eq!(*time_passed.borrow(), [true]);
}

#[test]
fn test_runs_until_sync_callback() {
    let r = react(|reactor| {
        let reactor = reactor.clone();
        ensure_deferred(async move {
            succeed(()).await?;
            Ok::<_, Failure>(reactor.seconds())
        })
    });
    assert!(r.unwrap() < 0.5);
}

#[test]
fn test_runs_until_async_errback() {
    let (r, reported) = counting_reports(|| {
        react(|reactor| {
            let (finished, trigger) = Deferred::<()>::new();
            reactor.call_later(MS, move || {
                trigger.errback(ExpectedException::new("x"));
            });
            ensure_deferred(async move { finished.await })
        })
    });
    assert!(r.unwrap_err().check::<ExpectedException>());
    assert_eq!(reported, 0);
}

#[test]
fn test_runs_until_sync_errback() {
    let (r, reported) = counting_reports(|| {
        react(|_| {
            ensure_deferred(async { fail::<()>(Failure::new(ExpectedException::new("x"))).await })
        })
    });
    assert!(r.unwrap_err().check::<ExpectedException>());
    assert_eq!(reported, 0);
}

#[test]
fn test_single_stop_callback() {
    let r = react(|reactor| {
        let stopper = reactor.clone();
        reactor.call_later(MS, move || stopper.stop());
        let (finished, trigger) = Deferred::<f64>::new();
        let at = reactor.clone();
        reactor.add_shutdown_trigger(move || {
            trigger.callback(at.seconds());
        });
        ensure_deferred(async move { finished.await })
    });
    assert!(r.unwrap() >= 0.001);
}

#[test]
fn test_single_stop_errback() {
    let (r, reported) = counting_reports(|| {
        react(|reactor| {
            let stopper = reactor.clone();
            reactor.call_later(MS, move || stopper.stop());
            let (finished, trigger) = Deferred::<()>::new();
            reactor.add_shutdown_trigger(move || {
                trigger.errback(ExpectedException::new("x"));
            });
            ensure_deferred(async move { finished.await })
        })
    });
    assert!(r.unwrap_err().check::<ExpectedException>());
    assert_eq!(reported, 0);
}

#[test]
fn test_arguments() {
    let args = Rc::new(RefCell::new(Vec::new()));
    let a = args.clone();
    let argv = vec![1, 2, 3];
    let r = react(move |_reactor| {
        ensure_deferred(async move {
            a.borrow_mut().extend(argv);
            succeed(()).await
        })
    });
    assert!(r.is_ok());
    assert_eq!(*args.borrow(), [1, 2, 3]);
}

#[test]
fn test_default_reactor() {
    let r = react(|reactor| {
        let reactor = reactor.clone();
        ensure_deferred(async move {
            Ok::<_, Failure>(reactor.is_running() && reactor.thread_handle().is_current())
        })
    });
    assert!(r.unwrap());
}

#[test]
fn test_exit_with_defined_code() {
    let r =
        react(|_| ensure_deferred(async { fail::<()>(Failure::new(SystemExit::new("23"))).await }));
    assert_eq!(r.unwrap_err().downcast_ref::<SystemExit>().unwrap().0, "23");
}

#[test]
fn test_synchronous_stop() {
    let r = react(|reactor| {
        let (d, trigger) = Deferred::<()>::new();
        let stopper = reactor.clone();
        reactor.call_when_running(move || {
            stopper.stop();
            trigger.callback(());
        });
        ensure_deferred(async move { d.await })
    });
    assert!(r.is_ok());
}

#[test]
fn test_asynchronous_stop() {
    let keep = Rc::new(RefCell::new(None));
    let k = keep.clone();
    let r = react(move |reactor| {
        let stopper = reactor.clone();
        reactor.call_later(MS, move || stopper.stop());
        let (d, trigger) = Deferred::<()>::new();
        *k.borrow_mut() = Some(trigger);
        ensure_deferred(async move { d.await })
    });
    assert!(r.unwrap_err().check::<ReactorStopped>());
}
