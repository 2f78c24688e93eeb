//! Ports of Twisted's `test_task.py` `ReactTests`.
//!
//! Twisted's `react` exits the process (status 0, or 1 after logging the failure); ours returns
//! the Deferred's result, so "exit code 0" is `Ok` and "exit code 1 and one logged error" is the
//! failure returned (and nothing reported as unhandled). Twisted's fake reactor advances time
//! instantly; ours is real, so delays are milliseconds and times are checked as lower bounds.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use defer_core::reactor::ReactorStopped;
use defer_core::{Deferred, Failure, fail, react, succeed};

error_kind!(ExpectedException, SystemExit);

const MS: Duration = Duration::from_millis(1);

/// Runs `f`, counting the failures reported as unhandled meanwhile.
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
    let seconds = Rc::new(RefCell::new(0.0));
    let s = seconds.clone();
    let r = react(move |reactor| {
        let (finished, trigger) = Deferred::<()>::new();
        reactor.call_later(MS, move || tp.borrow_mut().push(true));
        let r2 = reactor.clone();
        reactor.call_later(2 * MS, move || {
            *s.borrow_mut() = r2.seconds();
            trigger.callback(());
        });
        finished
    });
    assert!(r.is_ok());
    assert_eq!(*time_passed.borrow(), [true]);
    assert!(*seconds.borrow() >= 0.002);
}

#[test]
fn test_runs_until_sync_callback() {
    let seconds = Rc::new(RefCell::new(f64::MAX));
    let s = seconds.clone();
    let r = react(move |reactor| {
        let reactor = reactor.clone();
        succeed(()).add_callback(move |()| {
            *s.borrow_mut() = reactor.seconds();
            Ok(())
        })
    });
    assert!(r.is_ok());
    // It returned at once: no timer turn, no waiting.
    assert!(*seconds.borrow() < 0.5);
}

#[test]
fn test_runs_until_async_errback() {
    let (r, reported) = counting_reports(|| {
        react(|reactor| {
            let (finished, trigger) = Deferred::<()>::new();
            reactor.call_later(MS, move || {
                trigger.errback(ExpectedException::new("x"));
            });
            finished
        })
    });
    let f = r.unwrap_err();
    assert!(f.check::<ExpectedException>());
    assert_eq!(reported, 0, "given back, not logged");
}

#[test]
fn test_runs_until_sync_errback() {
    let (r, reported) =
        counting_reports(|| react(|_| fail::<()>(Failure::new(ExpectedException::new("x")))));
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
        finished
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
            finished
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
        a.borrow_mut().extend(argv);
        succeed(())
    });
    assert!(r.is_ok());
    assert_eq!(*args.borrow(), [1, 2, 3]);
}

#[test]
fn test_default_reactor() {
    // There is no global reactor to install: the reactor `main` gets is the one running.
    let r = react(|reactor| succeed(reactor.is_running() && reactor.thread_handle().is_current()));
    assert!(r.unwrap());
}

#[test]
fn test_exit_with_defined_code() {
    let r = react(|_| fail::<()>(Failure::new(SystemExit::new("23"))));
    let f = r.unwrap_err();
    assert_eq!(f.downcast_ref::<SystemExit>().unwrap().0, "23");
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
        d
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
        *k.borrow_mut() = Some(trigger); // never fired
        d
    });
    // Twisted exits with status 0 and no result; `react` says the reactor stopped first.
    assert!(r.unwrap_err().check::<ReactorStopped>());
}
