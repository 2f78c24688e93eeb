//! Dropping an unfinished await cancels (issue 12, part 4): a `DeferredFuture`, or the future of
//! a coroutine's Deferred, dropped before it completes cancels its Deferred, unless that already
//! has a result.

use std::cell::Cell;
use std::future::IntoFuture;
use std::rc::Rc;
use std::time::Duration;

use defer_core::errors::CancelledError;
use defer_core::{Deferred, Failure, Trigger, ensure_deferred};

/// A pending Deferred whose canceller counts its runs; the producer's trigger is kept.
fn counted() -> (Deferred<u32>, Rc<Cell<u32>>, Trigger<u32>) {
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let (d, t) = Deferred::with_canceller(move |_| r.set(r.get() + 1));
    (d, runs, t)
}

fn local<F: std::future::Future>(f: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f)
}

#[test]
fn the_loser_of_a_tokio_select_is_cancelled_once() {
    let (d, runs, producer) = counted();
    let won = local(async move {
        tokio::select! {
            _ = d.into_future() => "deferred",
            _ = tokio::time::sleep(Duration::from_millis(10)) => "sleep",
        }
    });
    assert_eq!(won, "sleep");
    assert_eq!(runs.get(), 1, "the canceller ran exactly once");
    assert!(producer.is_cancelled());
    assert!(!producer.callback(1), "a late result is a no-op");
}

#[test]
fn tokio_timeout_cancels_the_deferred_it_gives_up_on() {
    let (d, runs, producer) = counted();
    let r = local(async move { tokio::time::timeout(Duration::from_secs(1), d).await });
    assert!(r.is_err(), "timed out");
    assert_eq!(runs.get(), 1);
    assert!(producer.is_cancelled());
}

#[test]
fn a_deferred_that_already_has_a_result_is_not_cancelled() {
    let (d, runs, producer) = counted();
    let fut = d.into_future();
    assert!(producer.callback(5));
    drop(fut);
    assert_eq!(runs.get(), 0);
    // Polled once while pending, then fired, then dropped: still not cancelled.
    let (d, runs, producer) = counted();
    local(async move {
        let mut fut = Box::pin(d.into_future());
        let polled = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(fut.as_mut(), cx))
        })
        .await;
        assert!(polled.is_pending());
        assert!(producer.callback(6));
        drop(fut);
    });
    assert_eq!(runs.get(), 0);
}

#[test]
fn dropping_the_await_of_a_coroutine_cancels_it_at_its_suspension_point() {
    let (inner, runs, producer) = counted();
    let saw = Rc::new(Cell::new(false));
    let s = saw.clone();
    let coroutine = ensure_deferred(async move {
        let r = inner.await;
        s.set(r.as_ref().is_err_and(|f| f.check::<CancelledError>()));
        r
    });
    let won = local(async move {
        tokio::select! {
            _ = coroutine => "coroutine",
            _ = tokio::time::sleep(Duration::from_millis(1)) => "sleep",
        }
    });
    assert_eq!(won, "sleep");
    assert_eq!(
        runs.get(),
        1,
        "what the coroutine awaited was cancelled once"
    );
    assert!(producer.is_cancelled());
    assert!(saw.get(), "the coroutine saw CancelledError at its await");
}

#[test]
fn the_loser_of_a_futures_select_in_a_coroutine_is_cancelled() {
    let (a, runs_a, ta) = counted();
    let (b, runs_b, tb) = counted();
    let d = ensure_deferred(async move {
        Ok::<_, Failure>(
            match futures::future::select(a.into_future(), b.into_future()).await {
                futures::future::Either::Left((r, _)) => r?,
                futures::future::Either::Right((r, _)) => r?,
            },
        )
    });
    assert!(tb.callback(2));
    assert_eq!(defer_core::testing::success_result_of(d), 2);
    assert_eq!((runs_a.get(), runs_b.get()), (1, 0));
    assert!(ta.is_cancelled());
}

#[test]
fn dropping_an_unpolled_future_cancels_quietly() {
    let reported = Rc::new(Cell::new(0));
    let r = reported.clone();
    defer_core::unhandled::with_hook(
        move |_| r.set(r.get() + 1),
        || {
            let (d, runs, producer) = counted();
            drop(d.into_future());
            assert_eq!(runs.get(), 1);
            assert!(producer.is_cancelled());
        },
    );
    // The CancelledError was the future's, consumed with it: nothing is reported.
    assert_eq!(reported.get(), 0);
}
