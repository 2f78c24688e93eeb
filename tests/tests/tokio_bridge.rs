//! The `tokio` feature's bridges: `from_future`, `defer_to_thread`, `react`, and Deferreds
//! awaited by tokio tasks inside a `LocalSet`.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::thread;

use defer_core::errors::CancelledError;
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::tokio::{defer_to_thread, from_future, react};
use defer_core::{Deferred, Failure, ensure_deferred};
use tokio::sync::oneshot;
use tokio::task::{LocalSet, yield_now};

/// Sets its flag when dropped: shows that a cancelled task's future was dropped.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

/// Lets the `LocalSet` run its other tasks for a few turns.
async fn turns(n: usize) {
    for _ in 0..n {
        yield_now().await;
    }
}

#[tokio::test]
async fn from_future_fires_with_the_futures_value_on_a_later_turn() {
    LocalSet::new()
        .run_until(async {
            let (tx, rx) = oneshot::channel::<u32>();
            let d = from_future(rx).add_callback(|n| Ok(n + 1));
            assert_no_result(&d);
            tx.send(41).unwrap();
            turns(3).await;
            assert_eq!(success_result_of(d), 42);
        })
        .await;
}

#[tokio::test]
async fn from_future_does_not_start_the_future_inside_the_call() {
    LocalSet::new()
        .run_until(async {
            let started = Rc::new(Cell::new(false));
            let s = started.clone();
            let d = from_future(async move {
                s.set(true);
                Ok::<_, Failure>("ran")
            });
            assert!(!started.get(), "the future runs as a task, not inline");
            assert_eq!(d.await.unwrap(), "ran");
            assert!(started.get());
        })
        .await;
}

#[tokio::test]
async fn from_future_error_becomes_a_failure_with_a_frame_at_the_call() {
    LocalSet::new()
        .run_until(async {
            let line = line!() + 1;
            let d = from_future(async { Err::<u8, _>(io::Error::other("refused")) });
            let f = d.await.unwrap_err();
            assert!(f.check::<io::Error>());
            assert_eq!(f.message(), "refused");
            let bridge = f
                .frames()
                .find(|fr| fr.function() == "from_future")
                .expect("a frame for the from_future call");
            assert_eq!((bridge.file(), bridge.line()), (file!(), line));
        })
        .await;
}

#[tokio::test]
async fn from_future_keeps_a_failure_the_future_returns() {
    LocalSet::new()
        .run_until(async {
            let original = Failure::msg("from inside");
            let copy = original.clone();
            let f = from_future(async move { Err::<(), _>(copy) })
                .await
                .unwrap_err();
            assert!(f.same_as(&original));
        })
        .await;
}

#[tokio::test]
async fn from_future_panic_becomes_a_panicked_failure() {
    LocalSet::new()
        .run_until(async {
            let d = from_future(async {
                yield_now().await;
                if true {
                    panic!("the future blew up");
                }
                Ok::<u8, Failure>(0)
            });
            let f = d.await.unwrap_err();
            assert!(f.is_panic());
            assert_eq!(f.message(), "panicked: the future blew up");
        })
        .await;
}

#[tokio::test]
async fn cancelling_a_from_future_deferred_aborts_its_task() {
    LocalSet::new()
        .run_until(async {
            let dropped = Rc::new(Cell::new(false));
            let polled = Rc::new(Cell::new(0));
            let (guard, p) = (DropFlag(dropped.clone()), polled.clone());
            let d = from_future(async move {
                let _guard = guard;
                loop {
                    p.set(p.get() + 1);
                    yield_now().await;
                    if p.get() > 1_000_000 {
                        return Ok::<(), Failure>(());
                    }
                }
            });
            turns(3).await;
            assert!(polled.get() > 0, "the task was running");
            d.cancel();
            assert!(failure_result_of(d).check::<CancelledError>());
            turns(3).await;
            assert!(dropped.get(), "the aborted task's future was dropped");
            let after = polled.get();
            turns(3).await;
            assert_eq!(polled.get(), after, "the task no longer runs");
        })
        .await;
}

#[tokio::test]
async fn cancelling_before_the_task_starts_never_runs_the_future() {
    LocalSet::new()
        .run_until(async {
            let ran = Rc::new(Cell::new(false));
            let r = ran.clone();
            let d = from_future(async move {
                r.set(true);
                Ok::<_, Failure>(())
            });
            d.cancel();
            turns(3).await;
            assert!(!ran.get());
            assert!(failure_result_of(d).check::<CancelledError>());
        })
        .await;
}

#[tokio::test]
async fn defer_to_thread_runs_elsewhere_and_fires_on_the_deferreds_thread() {
    LocalSet::new()
        .run_until(async {
            let home = thread::current().id();
            let (release, wait) = std::sync::mpsc::channel::<()>();
            let d = defer_to_thread(move || {
                wait.recv().unwrap(); // blocks: only possible off the LocalSet's thread
                Ok::<_, io::Error>(thread::current().id())
            });
            let fired_on = Rc::new(Cell::new(None));
            let f = fired_on.clone();
            let d = d.add_callback(move |worker| {
                f.set(Some(thread::current().id()));
                Ok(worker)
            });
            turns(2).await;
            assert_no_result(&d);
            release.send(()).unwrap();
            let worker = d.await.unwrap();
            assert_ne!(worker, home, "the closure ran on a pool thread");
            assert_eq!(
                fired_on.get(),
                Some(home),
                "the chain ran on the Deferred's thread"
            );
        })
        .await;
}

#[tokio::test]
async fn defer_to_thread_error_becomes_a_failure() {
    LocalSet::new()
        .run_until(async {
            let line = line!() + 1;
            let d = defer_to_thread(|| Err::<(), _>(io::Error::other("disk on fire")));
            let f = d.await.unwrap_err();
            assert!(f.check::<io::Error>());
            assert_eq!(f.message(), "disk on fire");
            let frame = f
                .frames()
                .find(|fr| fr.function() == "defer_to_thread")
                .expect("a frame for the defer_to_thread call");
            assert_eq!((frame.file(), frame.line()), (file!(), line));
            assert_eq!(
                (f.location().file(), f.location().line()),
                (file!(), line),
                "the error entered the chain at the defer_to_thread call"
            );
        })
        .await;
}

#[tokio::test]
async fn defer_to_thread_panic_becomes_a_failure() {
    LocalSet::new()
        .run_until(async {
            let line = line!() + 1;
            let d = defer_to_thread(|| -> Result<u8, io::Error> { panic!("worker died") });
            let f = d.await.unwrap_err();
            assert!(f.is_panic());
            assert_eq!(f.message(), "panicked: worker died");
            assert_eq!(
                f.location().line(),
                line,
                "located at the defer_to_thread call"
            );
        })
        .await;
}

#[tokio::test]
async fn cancelling_defer_to_thread_fails_at_once_and_drops_the_late_result() {
    LocalSet::new()
        .run_until(async {
            let (release, wait) = std::sync::mpsc::channel::<()>();
            let (done_tx, done_rx) = oneshot::channel::<()>();
            let d = defer_to_thread(move || {
                wait.recv().unwrap();
                let _ = done_tx.send(());
                Ok::<_, io::Error>(1)
            });
            let seen = Rc::new(Cell::new(0));
            let s = seen.clone();
            let d = d.add_both(move |r| {
                s.set(s.get() + 1);
                r
            });
            d.cancel();
            assert!(failure_result_of(d).check::<CancelledError>());
            release.send(()).unwrap();
            done_rx.await.unwrap();
            // Give the pool thread time to return and the watcher task time to deliver.
            defer_to_thread(|| {
                thread::sleep(std::time::Duration::from_millis(50));
                Ok::<_, io::Error>(())
            })
            .await
            .unwrap();
            turns(3).await;
            assert_eq!(seen.get(), 1, "the chain ran once, for the cancellation");
        })
        .await;
}

#[test]
fn react_drives_main_to_its_result_in_a_local_set() {
    let out = react(|| {
        // spawn_local works: we are inside the LocalSet.
        let local = tokio::task::spawn_local(async { 20 });
        from_future(local)
            .add_callback(|n| defer_to_thread(move || Ok::<_, io::Error>(n + 1)))
            .add_callback(|n| Ok(n * 2))
    });
    assert_eq!(out.unwrap(), 42);
}

#[test]
fn react_returns_mains_failure() {
    let f = react(|| defer_to_thread(|| Err::<(), _>(io::Error::other("nope")))).unwrap_err();
    assert_eq!(f.message(), "nope");
}

#[tokio::test]
async fn a_tokio_task_awaiting_a_deferred_wakes_when_another_task_fires_it() {
    LocalSet::new()
        .run_until(async {
            let (d, trigger) = Deferred::<&str>::new();
            let waiter = tokio::task::spawn_local(async move { d.await });
            turns(2).await;
            assert!(!waiter.is_finished());
            tokio::task::spawn_local(async move {
                trigger.callback("fired");
            });
            assert_eq!(waiter.await.unwrap().unwrap(), "fired");
        })
        .await;
}

#[tokio::test]
async fn a_coroutine_awaits_bridged_deferreds() {
    LocalSet::new()
        .run_until(async {
            let (tx, rx) = oneshot::channel::<String>();
            let users = ensure_deferred(async move {
                let body = from_future(rx).await?;
                let n = defer_to_thread(move || Ok::<_, io::Error>(body.len())).await?;
                Ok(n)
            });
            assert_no_result(&users);
            tx.send("ada,grace".to_owned()).unwrap();
            assert_eq!(users.await.unwrap(), 9);
        })
        .await;
}

/// A coroutine under `react` that awaits a tokio timer is woken by tokio's timer driver, which
/// runs outside the `LocalSet`: it must resume inside it, where `from_future` and `spawn_local`
/// work (it was resumed by the driver itself, and `from_future` then panicked).
#[test]
fn a_coroutine_woken_by_a_tokio_timer_resumes_inside_the_local_set() {
    let r = defer_core::tokio::react(|| {
        ensure_deferred(async {
            ::tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            let inner = from_future(async { Ok::<u32, Failure>(1) }).await?;
            let spawned = ::tokio::task::spawn_local(async { 2u32 }).await.unwrap();
            Ok::<u32, Failure>(inner + spawned)
        })
    });
    assert_eq!(r.map_err(|f| f.to_string()), Ok(3));
}

/// The same when the wake comes from a tokio oneshot that a local task sends after a timer.
#[test]
fn a_coroutine_woken_by_a_local_task_resumes_inside_the_local_set() {
    let r = defer_core::tokio::react(|| {
        let (tx, rx) = ::tokio::sync::oneshot::channel::<u32>();
        ::tokio::task::spawn_local(async move {
            ::tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            let _ = tx.send(5);
        });
        ensure_deferred(async move {
            let v = rx.await.map_err(Failure::new)?;
            let doubled = from_future(async move { Ok::<u32, Failure>(v * 2) }).await?;
            Ok::<u32, Failure>(doubled)
        })
    });
    assert_eq!(r.map_err(|f| f.to_string()), Ok(10));
}
