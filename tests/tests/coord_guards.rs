//! Lock and semaphore guards (`acquire_guard`): a coroutine that holds a guard cannot keep the
//! lock held, however it leaves: early `?`, cancellation while it waits on something else, a
//! panic in its body. And a guard may outlive every other handle to its lock.

use std::cell::Cell;
use std::rc::Rc;

use defer_core::errors::{CancelledError, NotLocked};
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{
    Deferred, DeferredLock, DeferredSemaphore, Failure, ensure_deferred, inline_callbacks, yield_,
};

#[derive(Debug)]
struct Boom;
impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("boom")
    }
}
impl std::error::Error for Boom {}

// ---- early exit with `?` -----------------------------------------------------------------------

#[inline_callbacks]
fn locked_then_fails(lock: DeferredLock, work: Deferred<u32>) -> Deferred<u32> {
    let _guard = yield_!(lock.acquire_guard())?;
    let v = yield_!(work)?; // leaves here with the failure
    Ok(v + 1)
}

#[test]
fn inline_callbacks_leaving_early_with_question_mark_releases_the_lock() {
    let lock = DeferredLock::new();
    let (work, worker) = Deferred::new();
    let d = locked_then_fails(lock.clone(), work);
    assert!(lock.is_locked(), "held while the body waits");
    let next = lock.acquire();
    assert_no_result(&next);
    worker.errback(Boom);
    assert!(failure_result_of(d).check::<Boom>());
    // The lock went to the next waiter, not back to nobody.
    let held = success_result_of(next);
    assert!(lock.is_locked());
    held.release().unwrap();
    assert!(!lock.is_locked());
}

#[test]
fn async_leaving_early_with_question_mark_releases_the_lock_and_the_token() {
    let lock = DeferredLock::new();
    let sem = DeferredSemaphore::new(2).unwrap();
    let (l, s) = (lock.clone(), sem.clone());
    let (work, worker) = Deferred::<u32>::new();
    let d = ensure_deferred(async move {
        let _held = l.acquire_guard().await?;
        let _token = s.acquire_guard().await?;
        let v = work.await?;
        Ok(v)
    });
    assert!(lock.is_locked());
    assert_eq!(sem.tokens(), 1);
    worker.errback(Boom);
    assert!(failure_result_of(d).check::<Boom>());
    assert!(!lock.is_locked());
    assert_eq!(sem.tokens(), 2);
}

#[test]
fn a_body_that_succeeds_releases_too() {
    let lock = DeferredLock::new();
    let (work, worker) = Deferred::new();
    let d = locked_then_fails(lock.clone(), work);
    worker.callback(41);
    assert_eq!(success_result_of(d), 42);
    assert!(!lock.is_locked());
}

// ---- cancellation while holding ----------------------------------------------------------------

#[test]
fn cancelling_the_coroutine_while_it_holds_the_guard_releases_the_lock() {
    let lock = DeferredLock::new();
    let inner_cancelled = Rc::new(Cell::new(false));
    let c = inner_cancelled.clone();
    let (work, _worker) = Deferred::<u32>::with_canceller(move |_t| c.set(true));
    let d = locked_then_fails(lock.clone(), work);
    let next = lock.acquire();
    assert!(lock.is_locked());
    d.cancel();
    assert!(inner_cancelled.get(), "the awaited Deferred was cancelled");
    assert!(failure_result_of(d).check::<CancelledError>());
    let held = success_result_of(next);
    held.release().unwrap();
    assert!(!lock.is_locked());
}

#[test]
fn cancelling_an_async_block_holding_a_semaphore_token_gives_it_back() {
    let sem = DeferredSemaphore::new(1).unwrap();
    let s = sem.clone();
    let (work, _worker) = Deferred::<()>::new();
    let d = ensure_deferred(async move {
        let _token = s.acquire_guard().await?;
        work.await
    });
    assert_eq!(sem.tokens(), 0);
    d.cancel();
    assert!(failure_result_of(d).check::<CancelledError>());
    assert_eq!(sem.tokens(), 1);
}

#[test]
fn cancelling_a_waiting_acquire_guard_takes_nothing() {
    let lock = DeferredLock::new();
    let first = success_result_of(lock.acquire_guard());
    let waiting = lock.acquire_guard();
    waiting.cancel();
    assert!(failure_result_of(waiting).check::<CancelledError>());
    assert_eq!(lock.waiting(), 0);
    drop(first);
    assert!(
        !lock.is_locked(),
        "the cancelled waiter was not given the lock"
    );
}

#[test]
fn dropping_a_waiting_acquire_guard_takes_nothing() {
    let sem = DeferredSemaphore::new(1).unwrap();
    let first = success_result_of(sem.acquire_guard());
    drop(sem.acquire_guard());
    drop(first);
    assert_eq!(
        sem.tokens(),
        1,
        "a dropped waiter is skipped, not handed the token"
    );
}

// ---- panic in the body -------------------------------------------------------------------------

#[inline_callbacks]
fn locked_then_panics(lock: DeferredLock, work: Deferred<u32>) -> Deferred<u32> {
    let _guard = yield_!(lock.acquire_guard())?;
    let v = yield_!(work)?;
    if v > 0 {
        panic!("panicked holding the lock");
    }
    Ok(v)
}

#[test]
fn a_panic_in_an_inline_callbacks_body_releases_the_lock() {
    let lock = DeferredLock::new();
    let (work, worker) = Deferred::new();
    let d = locked_then_panics(lock.clone(), work);
    let next = lock.acquire();
    worker.callback(1);
    let f = failure_result_of(d);
    assert!(f.is_panic());
    assert!(f.message().contains("panicked holding the lock"));
    success_result_of(next).release().unwrap();
    assert!(!lock.is_locked());
}

#[test]
fn a_panic_in_an_async_body_gives_the_token_back() {
    let sem = DeferredSemaphore::new(1).unwrap();
    let s = sem.clone();
    let d = ensure_deferred(async move {
        let _token = s.acquire_guard().await?;
        if s.tokens() == 0 {
            panic!("panicked holding a token");
        }
        Ok::<_, Failure>(())
    });
    assert!(failure_result_of(d).is_panic());
    assert_eq!(sem.tokens(), 1);
}

// ---- a guard that outlives its lock's handles --------------------------------------------------

#[test]
fn a_guard_dropped_after_every_lock_handle_still_hands_over_to_the_next_waiter() {
    let lock = DeferredLock::new();
    let guard = success_result_of(lock.acquire_guard());
    let next = lock.acquire_guard();
    drop(lock);
    drop(guard);
    // The waiter got the lock, and its guard is the last thing holding it.
    let guard = success_result_of(next);
    assert!(guard.lock().is_locked());
    drop(guard);
}

#[test]
fn a_guard_dropped_after_every_handle_with_nobody_waiting_is_quiet() {
    let sem = DeferredSemaphore::new(2).unwrap();
    let a = success_result_of(sem.acquire_guard());
    let b = success_result_of(sem.acquire_guard());
    drop(sem);
    drop(a);
    assert_eq!(b.semaphore().tokens(), 1);
    drop(b);
}

#[test]
fn a_guard_released_by_hand_reports_not_locked_and_drops_quietly() {
    let lock = DeferredLock::new();
    let guard = success_result_of(lock.acquire_guard());
    lock.release().unwrap(); // by hand: the guard no longer owns a hold
    assert_eq!(guard.release(), Err(NotLocked));
    let g = success_result_of(lock.acquire_guard());
    lock.release().unwrap();
    drop(g); // NotLocked, ignored: a drop cannot report it, and must not panic
    assert!(!lock.is_locked());
}
