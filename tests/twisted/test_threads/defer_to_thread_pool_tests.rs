//! Ports of Twisted's `test_threads.py` `DeferToThreadPoolTests`: `deferToThreadPool` on a
//! pool of 8 threads, stopped after each test.

use defer_core::react;
use defer_core::threads::{ThreadPool, defer_to_thread_pool};

error_kind!(NewError);

#[test]
fn test_deferred_result() {
    let tp = ThreadPool::new(8);
    let f = |x: i32, y: i32| x + y;
    let r = react(|_| defer_to_thread_pool(&tp, move || Ok::<_, NewError>(f(3, 4))));
    assert_eq!(r.unwrap(), 7);
    tp.stop();
}

#[test]
fn test_deferred_failure() {
    let tp = ThreadPool::new(8);
    let r = react(|_| defer_to_thread_pool(&tp, || Err::<(), _>(NewError::new(""))));
    assert!(r.unwrap_err().check::<NewError>());
    tp.stop();
}
