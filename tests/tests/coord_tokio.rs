//! `TokioScheduler`: a `Scheduler` on tokio's timer (the `tokio` feature), tested under tokio's
//! paused time so that every duration is exact and the tests do not sleep. The tests crate's
//! dev-dependency on `defer-core` always enables the `tokio` feature, so `cargo test --workspace`
//! runs these.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use defer_core::errors::{CancelledError, DelayedCallError, TimeoutError};
use defer_core::{Deferred, Scheduler, TokioScheduler, defer_later};
use tokio::task::LocalSet;
use tokio::time::{Instant, sleep};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test(start_paused = true)]
async fn defer_later_fires_after_the_delay_on_tokios_clock() {
    LocalSet::new()
        .run_until(async {
            let scheduler = TokioScheduler::new();
            let start = Instant::now();
            let d = defer_later(&scheduler, secs(5), || Ok("later"));
            assert!(!d.is_called());
            assert_eq!(d.await.unwrap(), "later");
            assert_eq!(start.elapsed(), secs(5));
            assert_eq!(scheduler.now(), secs(5));
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn call_later_runs_in_time_order() {
    LocalSet::new()
        .run_until(async {
            let scheduler = TokioScheduler::new();
            let log = Rc::new(RefCell::new(Vec::new()));
            for (s, name) in [(3, "c"), (1, "a"), (2, "b")] {
                let l = log.clone();
                let call =
                    scheduler.call_later(secs(s), Box::new(move || l.borrow_mut().push(name)));
                assert_eq!(call.time(), secs(s));
            }
            sleep(Duration::from_millis(1500)).await;
            assert_eq!(*log.borrow(), ["a"]);
            sleep(secs(2)).await;
            assert_eq!(*log.borrow(), ["a", "b", "c"]);
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn add_timeout_times_out_a_slow_deferred() {
    LocalSet::new()
        .run_until(async {
            let scheduler = TokioScheduler::new();
            let (d, producer) = Deferred::<u32>::new();
            let start = Instant::now();
            let result = d.add_timeout(secs(10), &scheduler).await;
            let f = result.unwrap_err();
            assert_eq!(
                f.downcast_ref::<TimeoutError>().unwrap().timeout(),
                secs(10)
            );
            assert_eq!(start.elapsed(), secs(10));
            assert!(producer.is_cancelled());
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn add_timeout_lets_a_fast_deferred_through() {
    LocalSet::new()
        .run_until(async {
            let scheduler = TokioScheduler::new();
            let start = Instant::now();
            let fast = defer_later(&scheduler, secs(1), || Ok(7));
            let guarded = fast.add_timeout(secs(10), &scheduler);
            assert_eq!(guarded.await.unwrap(), 7);
            assert_eq!(start.elapsed(), secs(1), "it did not wait for the timeout");
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn reset_and_delay_move_a_pending_call() {
    LocalSet::new()
        .run_until(async {
            let scheduler = TokioScheduler::new();
            let ran_at = Rc::new(Cell::new(None));
            let r = ran_at.clone();
            let start = Instant::now();
            let call =
                scheduler.call_later(secs(10), Box::new(move || r.set(Some(start.elapsed()))));
            sleep(secs(1)).await;
            call.reset(secs(2)).unwrap(); // earlier: due at 3s
            assert_eq!(call.time(), secs(3));
            sleep(secs(1)).await;
            call.delay(secs(4)).unwrap(); // later: due at 7s
            assert_eq!(call.time(), secs(7));
            sleep(secs(10)).await;
            assert_eq!(ran_at.get(), Some(secs(7)));
            assert!(!call.active());
            assert_eq!(call.cancel(), Err(DelayedCallError::AlreadyCalled));
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_defer_later_cancels_the_timer() {
    LocalSet::new()
        .run_until(async {
            let scheduler = TokioScheduler::new();
            let ran = Rc::new(Cell::new(false));
            let r = ran.clone();
            let d = defer_later(&scheduler, secs(1), move || {
                r.set(true);
                Ok(())
            });
            d.cancel();
            let f = d.await.unwrap_err();
            assert!(f.check::<CancelledError>());
            sleep(secs(5)).await;
            assert!(!ran.get());
        })
        .await;
}

struct DropFlag(Rc<Cell<bool>>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_the_local_set_cancels_its_pending_calls() {
    for started in [false, true] {
        let scheduler = TokioScheduler::new();
        let local = LocalSet::new();
        let (call, dropped) = local
            .run_until(async {
                let dropped = Rc::new(Cell::new(false));
                let flag = DropFlag(dropped.clone());
                let call = scheduler.call_later(secs(60), Box::new(move || drop(flag)));
                if started {
                    tokio::task::yield_now().await; // let the timer task start sleeping
                }
                (call, dropped)
            })
            .await;
        assert!(call.active());
        assert!(!dropped.get());
        drop(local);
        assert!(!call.active(), "started: {started}");
        assert!(dropped.get(), "the function was dropped without running");
        assert_eq!(call.cancel(), Err(DelayedCallError::AlreadyCancelled));
    }
}

#[tokio::test(start_paused = true)]
async fn a_defer_later_whose_local_set_goes_away_fails_instead_of_leaking() {
    let scheduler = TokioScheduler::new();
    let local = LocalSet::new();
    let d = local
        .run_until(async { defer_later(&scheduler, secs(60), || Ok(1)) })
        .await;
    drop(local);
    let f = defer_core::testing::failure_result_of(d);
    assert!(f.check::<defer_core::errors::TriggerDropped>());
}

#[tokio::test(start_paused = true)]
async fn a_dyn_scheduler_can_be_swapped_for_tokios() {
    async fn fetch_with_deadline(s: &dyn Scheduler) -> Result<&'static str, defer_core::Failure> {
        let (slow, _producer) = Deferred::new();
        slow.add_timeout_with(secs(3), s, |_r, _t| Ok("fallback"))
            .await
    }
    LocalSet::new()
        .run_until(async {
            let scheduler = TokioScheduler::new();
            assert_eq!(fetch_with_deadline(&scheduler).await.unwrap(), "fallback");
        })
        .await;
}
