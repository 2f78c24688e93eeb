//! Ports of Twisted's `test_threads.py` `DeferredResultTests` (`deferToThread`,
//! `callMultipleInThread`). Twisted's `setUp` suggests a pool of 8 threads.

use std::sync::{Arc, Mutex};

use defer_core::threads::{
    ThreadHandle, call_in_thread, defer_to_thread, suggest_thread_pool_size,
};
use defer_core::{Deferred, react};

error_kind!(NewError, ZeroDivisionError);

fn set_up() {
    suggest_thread_pool_size(8);
}

#[test]
fn test_call_multiple() {
    set_up();
    const N: usize = 10;
    let l = Arc::new(Mutex::new(Vec::new()));
    let seen = react(move |_| {
        let (d, trigger) = Deferred::new();
        let remote = ThreadHandle::current().remote(trigger);
        let home = ThreadHandle::current();
        // `callMultipleInThread`: the calls run in order, in one pool thread.
        call_in_thread(move || {
            for i in 0..N {
                l.lock().unwrap().push(i);
            }
            let l = l.clone();
            home.call_from_thread(move || {
                let v = l.lock().unwrap().clone();
                remote.callback(v);
            });
        });
        d
    })
    .unwrap();
    assert_eq!(seen, (0..N).collect::<Vec<_>>());
}

#[test]
fn test_deferred_result() {
    set_up();
    let f = |x: i32, y: i32| x + y;
    let r = react(move |_| defer_to_thread(move || Ok::<_, NewError>(f(3, 4))));
    assert_eq!(r.unwrap(), 7);
}

#[test]
fn test_deferred_failure() {
    set_up();
    let r = react(|_| defer_to_thread(|| Err::<(), _>(NewError::new(""))));
    assert!(r.unwrap_err().check::<NewError>());
}

#[test]
fn test_deferred_failure_after_success() {
    set_up();
    let r = react(|_| {
        defer_to_thread(|| Ok::<_, NewError>(())).add_callback(|()| {
            defer_to_thread(|| -> Result<i32, ZeroDivisionError> {
                Err(ZeroDivisionError::new("division by zero"))
            })
        })
    });
    assert!(r.unwrap_err().check::<ZeroDivisionError>());
}
