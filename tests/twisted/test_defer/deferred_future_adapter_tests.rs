//! Ports of Twisted's `test_defer.py` `DeferredFutureAdapterTests`.
//!
//! Twisted's `d.asFuture(loop)` is `d.into_future()` (what `.await` makes); cancelling the
//! asyncio future is dropping the Rust future before it completes. `Deferred.fromFuture` is the
//! `tokio` feature's `from_future`, run in a `LocalSet`; a cancelled asyncio future is an aborted
//! tokio task, whose `JoinError` says it was cancelled.

use std::cell::Cell;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use defer_core::errors::CancelledError;
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::tokio::from_future;
use defer_core::{Deferred, Failure};

error_kind!(ZeroDivisionError);

/// Polls `f` once with a no-op waker (Twisted's `callAllSoonCalls` then `done()`).
fn poll_once<F: Future + Unpin>(f: &mut F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    Pin::new(f).poll(&mut cx)
}

/// Runs `f` in a `LocalSet` on a current-thread runtime.
fn local<F: Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f)
}

/// Counts unhandled-error reports made while `f` runs.
fn reports(f: impl FnOnce()) -> usize {
    let n = Rc::new(Cell::new(0));
    let c = n.clone();
    defer_core::unhandled::with_hook(move |_| c.set(c.get() + 1), f);
    n.get()
}

#[test]
fn test_as_future() {
    let (d, trigger) = Deferred::<i32>::new();
    let mut a_future = d.into_future();
    assert!(poll_once(&mut a_future).is_pending());
    trigger.callback(13);
    match poll_once(&mut a_future) {
        Poll::Ready(r) => assert_eq!(r.unwrap(), 13),
        Poll::Pending => panic!("the future did not fire with the Deferred"),
    }
}

#[test]
fn test_as_future_cancel_future() {
    let called = Rc::new(Cell::new(false));
    let c = called.clone();
    let reported = reports(|| {
        let (d, producer) = Deferred::<()>::with_canceller(move |_| c.set(true));
        let a_future = d.into_future();
        drop(a_future); // aFuture.cancel()
        assert!(producer.is_cancelled());
    });
    assert!(called.get());
    // The Deferred's CancelledError was the future's, consumed with it (Twisted:
    // `successResultOf(d) is None`): nothing is reported.
    assert_eq!(reported, 0);
}

#[test]
fn test_as_future_success_cancel() {
    let reported = reports(|| {
        let (d, _producer) = Deferred::<i32>::with_canceller(|t| {
            t.callback(9);
        });
        let mut a_future = d.into_future();
        assert!(poll_once(&mut a_future).is_pending());
        drop(a_future); // the canceller's success is ignored
    });
    assert_eq!(reported, 0);
}

#[test]
fn test_as_future_failure() {
    let (d, trigger) = Deferred::<()>::new();
    let mut future = d.into_future();
    assert!(poll_once(&mut future).is_pending());
    trigger.errback(ZeroDivisionError::new("x"));
    match poll_once(&mut future) {
        Poll::Ready(r) => assert!(r.unwrap_err().check::<ZeroDivisionError>()),
        Poll::Pending => panic!("the future did not fail with the Deferred"),
    }
}

#[test]
fn test_from_future() {
    local(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<i32>();
        let d = from_future(rx);
        assert_no_result(&d);
        tx.send(7).unwrap();
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        assert_eq!(success_result_of(d), 7);
    });
}

#[test]
fn test_from_future_future_cancelled() {
    local(async {
        let cancelled = tokio::task::spawn_local(std::future::pending::<Result<(), Failure>>());
        cancelled.abort();
        let d = from_future(async move {
            match cancelled.await {
                Ok(r) => r,
                Err(e) => {
                    assert!(e.is_cancelled());
                    Err(Failure::new(CancelledError))
                }
            }
        });
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        failure_result_of(d).trap::<CancelledError>().unwrap();
    });
}

#[test]
fn test_from_future_deferred_cancelled() {
    local(async {
        struct Dropped(Rc<Cell<bool>>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let cancelled = Rc::new(Cell::new(false));
        let guard = Dropped(cancelled.clone());
        let d = from_future(async move {
            let _guard = guard;
            std::future::pending::<Result<(), Failure>>().await
        });
        tokio::task::yield_now().await; // the future starts
        d.cancel();
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        assert!(cancelled.get(), "the future was cancelled (dropped)");
        failure_result_of(d).trap::<CancelledError>().unwrap();
    });
}
