//! Ports of Twisted's `test_threads.py` `ReactorThreadsTests` (the Deferred parts:
//! `blockingCallFromThread`).

use std::sync::mpsc;
use std::time::Duration;

use defer_core::threads::{CallError, ThreadHandle, blocking_call_from_thread, call_in_thread};
use defer_core::{Deferred, Failure, Reactor, fail, react, succeed};

error_kind!(RuntimeError);

/// Twisted's `_testBlockingCallFromThread`: a pool thread calls `reactor_func` on the reactor
/// thread through `blocking_call_from_thread`; gives back (results, errors).
fn blocking_call_test<F, D>(reactor_func: F) -> (Vec<String>, Vec<CallError>)
where
    F: FnOnce(&Reactor) -> D + Send + 'static,
    D: defer_core::Outcome<Value = String>,
{
    react(move |reactor| {
        let handle = ThreadHandle::current();
        let (waiter, done) = mpsc::channel();
        call_in_thread(move || {
            let r = blocking_call_from_thread(&handle, move || {
                // On the reactor thread, with the running reactor (Twisted's global one).
                reactor_func(&CURRENT.with(|r| r.borrow().clone().unwrap()))
            });
            waiter.send(r).unwrap();
        });
        CURRENT.with(|r| *r.borrow_mut() = Some(reactor.clone()));
        defer_core::threads::defer_to_thread(move || done.recv_timeout(Duration::from_secs(120)))
            .add_callback(|r| {
                CURRENT.with(|c| c.borrow_mut().take());
                Ok(match r {
                    Ok(v) => (vec![v], vec![]),
                    Err(e) => (vec![], vec![e]),
                })
            })
    })
    .unwrap()
}

thread_local! {
    /// The running reactor, for `reactor_func` (Twisted's global `reactor`).
    static CURRENT: std::cell::RefCell<Option<Reactor>> = const { std::cell::RefCell::new(None) };
}

#[test]
fn test_blocking_call_from_thread() {
    let (results, errors) = blocking_call_test(|_| succeed("foo".to_owned()));
    assert_eq!(results, ["foo"]);
    assert!(errors.is_empty());
}

#[test]
fn test_async_blocking_call_from_thread() {
    let (results, _) = blocking_call_test(|reactor| {
        let (d, t) = Deferred::new();
        reactor.call_later(Duration::from_millis(100), move || {
            t.callback("egg".to_owned());
        });
        d
    });
    assert_eq!(results, ["egg"]);
}

#[test]
fn test_error_blocking_call_from_thread() {
    let (_, errors) =
        blocking_call_test(|_| fail::<String>(Failure::new(RuntimeError::new("bar"))));
    assert!(errors[0].kind().unwrap().ends_with("RuntimeError"));
    assert_eq!(errors[0].message(), Some("bar"));
}

#[test]
fn test_async_error_blocking_call_from_thread() {
    let (_, errors) = blocking_call_test(|reactor| {
        let (d, t) = Deferred::<String>::new();
        reactor.call_later(Duration::from_millis(100), move || {
            t.errback(RuntimeError::new("spam"));
        });
        d
    });
    assert!(errors[0].kind().unwrap().ends_with("RuntimeError"));
    assert_eq!(errors[0].message(), Some("spam"));
}
