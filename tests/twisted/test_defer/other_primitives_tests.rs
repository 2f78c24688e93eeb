//! Ports of Twisted's `test_defer.py` `OtherPrimitivesTests`.
//!
//! Twisted drops the Deferreds of `lock.acquire().addCallback(self._incr)` and relies on the
//! lock's queue to keep them alive. Here a waiter whose Deferred was dropped is skipped (nobody
//! could release what it would be given: `DeferredLock`'s docs), so the ports keep them.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use defer_core::errors::{CancelledError, InvalidTokens, QueueOverflow, QueueUnderflow};
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{Deferred, DeferredLock, DeferredQueue, DeferredSemaphore, Failure};

/// Twisted's `self.counter` and `_incr`.
#[derive(Clone, Default)]
struct Counter(Rc<Cell<usize>>);

impl Counter {
    fn incr<T>(&self) -> impl FnOnce(T) -> Result<(), Failure> + 'static {
        let c = self.0.clone();
        move |_| {
            c.set(c.get() + 1);
            Ok(())
        }
    }
    fn get(&self) -> usize {
        self.0.get()
    }
    fn set(&self, v: usize) {
        self.0.set(v)
    }
}

/// Twisted's `assertImmediateFailure`: the Deferred has already failed with `E`.
fn assert_immediate_failure<T: 'static, E: std::error::Error + 'static>(d: Deferred<T>) {
    assert!(d.is_called());
    assert!(failure_result_of(d).check::<E>());
}

#[test]
fn test_lock() {
    let counter = Counter::default();
    let mut held = Vec::new();
    let lock = DeferredLock::new();
    held.push(lock.acquire().add_callback(counter.incr()));
    assert!(lock.is_locked());
    assert_eq!(counter.get(), 1);

    held.push(lock.acquire().add_callback(counter.incr()));
    assert!(lock.is_locked());
    assert_eq!(counter.get(), 1);

    lock.release().unwrap();
    assert!(lock.is_locked());
    assert_eq!(counter.get(), 2);

    lock.release().unwrap();
    assert!(!lock.is_locked());
    assert_eq!(counter.get(), 2);

    // `lock.run()` without a function (Twisted's TypeError) does not compile: `run` takes one.

    let result: Rc<RefCell<Option<Result<&str, Failure>>>> = Rc::default();
    let (control_deferred, control) = Deferred::<&str>::new();
    let r = result.clone();
    // helper(resultValue=firstUnique, returnValue=controlDeferred)
    let result_deferred = lock.run(move || {
        *r.borrow_mut() = Some(Ok("firstUnique"));
        control_deferred
    });
    assert!(lock.is_locked());
    assert!(matches!(*result.borrow(), Some(Ok("firstUnique"))));

    let r = result.clone();
    held.push(result_deferred.add_callback(move |v| {
        *r.borrow_mut() = Some(Ok(v));
        Ok(())
    }));

    held.push(lock.acquire().add_callback(counter.incr()));
    assert!(lock.is_locked());
    assert_eq!(counter.get(), 2);

    control.callback("secondUnique");
    assert!(matches!(*result.borrow(), Some(Ok("secondUnique"))));
    assert!(lock.is_locked());
    assert_eq!(counter.get(), 3);

    let r = result.clone();
    let d = lock.acquire().add_both(move |res| {
        *r.borrow_mut() = Some(res.map(|_| "acquired"));
        Ok(())
    });
    d.cancel();
    match &*result.borrow() {
        Some(Err(f)) => assert!(f.check::<CancelledError>()),
        other => panic!("expected a CancelledError failure, got {other:?}"),
    }

    lock.release().unwrap();
    assert!(!lock.is_locked());

    // assert_type(lock.run(returnsInt), Deferred[int]), and the same for a coroutine.
    let returns_int: Deferred<i32> = lock.run(|| defer_core::succeed(2));
    let returns_coro_int: Deferred<i32> = lock.run(|| defer_core::ensure_deferred(async { Ok(1) }));
    assert_eq!(success_result_of(returns_int), 2);
    assert_eq!(success_result_of(returns_coro_int), 1);
}

#[test]
fn test_cancel_lock_after_acquired() {
    let lock = DeferredLock::new();
    let d = lock.acquire();
    let d =
        d.add_errback(|_f| -> Result<DeferredLock, Failure> { panic!("Unexpected errback call!") });
    d.cancel();
    assert!(success_result_of(d).is_locked());
}

#[test]
fn test_cancel_lock_before_acquired() {
    let lock = DeferredLock::new();
    let _first = lock.acquire();
    let d = lock.acquire();
    d.cancel();
    assert_immediate_failure::<_, CancelledError>(d);
}

#[test]
fn test_semaphore() {
    const N: usize = 13;
    let counter = Counter::default();
    let mut held = Vec::new();
    let sem = DeferredSemaphore::new(N).unwrap();

    let (control_deferred, control) = Deferred::<()>::new();
    let helper_arg = Rc::new(Cell::new(None));
    let h = helper_arg.clone();
    let results = Rc::new(RefCell::new(Vec::new()));
    let unique_object = "uniqueObject";
    let result_deferred = sem.run(move || {
        h.set(Some(unique_object));
        control_deferred
    });
    let rs = results.clone();
    held.push(
        result_deferred
            .add_callback(move |v| {
                rs.borrow_mut().push(v);
                Ok(())
            })
            .add_callback(counter.incr()),
    );
    assert!(results.borrow().is_empty());
    assert_eq!(helper_arg.get(), Some(unique_object));
    control.callback(());
    assert_eq!(results.borrow_mut().pop(), Some(()));
    assert_eq!(counter.get(), 1);

    counter.set(0);
    for i in 1..=N {
        held.push(sem.acquire().add_callback(counter.incr()));
        assert_eq!(counter.get(), i);
    }

    let success = Rc::new(RefCell::new(Vec::new()));
    let (s1, s2) = (success.clone(), success.clone());
    let d = sem.acquire().add_callbacks(
        move |_| {
            s1.borrow_mut().push(false);
            Ok(())
        },
        move |_| {
            s2.borrow_mut().push(true);
            Ok(())
        },
    );
    d.cancel();
    assert_eq!(*success.borrow(), [true]);

    held.push(sem.acquire().add_callback(counter.incr()));
    assert_eq!(counter.get(), N);

    sem.release().unwrap();
    assert_eq!(counter.get(), N + 1);

    for _ in 1..=N {
        sem.release().unwrap();
        assert_eq!(counter.get(), N + 1);
    }
}

#[test]
fn test_semaphore_invalid_tokens() {
    assert!(matches!(DeferredSemaphore::new(0), Err(InvalidTokens)));
    // DeferredSemaphore(-1): the count is a usize, so a negative one does not type-check.
}

#[test]
fn test_cancel_semaphore_after_acquired() {
    let sem = DeferredSemaphore::new(1).unwrap();
    let d = sem.acquire();
    let d = d.add_errback(|_f| -> Result<DeferredSemaphore, Failure> {
        panic!("Unexpected errback call!")
    });
    d.cancel();
    assert_eq!(success_result_of(d).tokens(), 0);
}

#[test]
fn test_cancel_semaphore_before_acquired() {
    let sem = DeferredSemaphore::new(1).unwrap();
    let _first = sem.acquire();
    let d = sem.acquire();
    d.cancel();
    assert_immediate_failure::<_, CancelledError>(d);
}

#[test]
fn test_queue() {
    const N: usize = 2;
    const M: usize = 2;
    let queue = DeferredQueue::<usize>::with_limits(Some(N), Some(M));
    let gotten = Rc::new(RefCell::new(Vec::new()));
    let append = |g: &Rc<RefCell<Vec<usize>>>| {
        let g = g.clone();
        move |v| {
            g.borrow_mut().push(v);
            Ok(())
        }
    };
    let mut held = Vec::new();

    for _ in 0..M {
        held.push(queue.get().unwrap().add_callback(append(&gotten)));
    }
    assert!(matches!(queue.get(), Err(QueueUnderflow)));

    for i in 0..M {
        queue.put(i).unwrap();
        assert_eq!(*gotten.borrow(), (0..=i).collect::<Vec<_>>());
    }
    for i in 0..N {
        queue.put(N + i).unwrap();
        assert_eq!(*gotten.borrow(), (0..M).collect::<Vec<_>>());
    }
    assert!(matches!(queue.put(99), Err(QueueOverflow { .. })));

    gotten.borrow_mut().clear();
    for i in 0..N {
        held.push(queue.get().unwrap().add_callback(append(&gotten)));
        assert_eq!(*gotten.borrow(), (N..N + i + 1).collect::<Vec<_>>());
    }

    let queue = DeferredQueue::<usize>::new();
    gotten.borrow_mut().clear();
    for _ in 0..N {
        held.push(queue.get().unwrap().add_callback(append(&gotten)));
    }
    for i in 0..N {
        queue.put(i).unwrap();
    }
    assert_eq!(*gotten.borrow(), (0..N).collect::<Vec<_>>());

    let queue = DeferredQueue::<()>::with_limits(Some(0), None);
    assert!(matches!(queue.put(()), Err(QueueOverflow { .. })));

    let queue = DeferredQueue::<()>::with_limits(None, Some(0));
    assert!(matches!(queue.get(), Err(QueueUnderflow)));
}

#[test]
fn test_cancel_queue_after_synchronous_get() {
    let queue = DeferredQueue::<()>::new();
    let d = queue.get().unwrap();
    let d = d.add_errback(|_f| -> Result<(), Failure> { panic!("Unexpected errback call!") });
    queue.put(()).unwrap();
    d.cancel();
    success_result_of(d);
}

#[test]
fn test_cancel_queue_after_get() {
    let queue = DeferredQueue::<()>::new();
    let d = queue.get().unwrap();
    d.cancel();
    assert!(d.is_called());
    let q = queue.clone();
    // The failure is checked and then recovered from, so `cb` runs (Twisted's
    // assertImmediateFailure consumes the failure the same way).
    let d = d
        .add_errback(|f| {
            assert!(f.check::<CancelledError>());
            Ok(())
        })
        .add_callback(move |()| {
            // If the Deferred were still linked to the queue, the put would fire it again.
            q.put(()).unwrap();
            q.get().unwrap().add_callback(|v: ()| {
                assert_eq!(v, ());
                Ok(())
            })
        });
    let done = Rc::new(RefCell::new(Vec::new()));
    let dn = done.clone();
    let d = d.add_callback(move |v| {
        dn.borrow_mut().push(v);
        Ok(())
    });
    assert_eq!(done.borrow().len(), 1);
    assert_no_result_is_not(&d);
}

/// The chain has finished (the opposite of `assert_no_result`).
fn assert_no_result_is_not<T: 'static>(d: &Deferred<T>) {
    assert!(d.is_called());
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| assert_no_result(d)));
    assert!(panicked.is_err());
}
