//! Issue 3: a `Deferred` is an ordinary future under any executor (`IntoFuture` through the
//! `Waker` contract), and the executor-free driver can await ordinary futures that are woken on
//! its own thread.

use std::cell::RefCell;
use std::rc::Rc;

use defer_core::testing::{assert_no_result, success_result_of};
use defer_core::{Deferred, Failure, ensure_deferred, inline_callbacks, yield_};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

#[derive(Debug)]
struct Boom;
impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("boom")
    }
}
impl std::error::Error for Boom {}

#[inline_callbacks]
fn plus_one(d: Deferred<u32>) -> Deferred<u32> {
    Ok(yield_!(d)? + 1)
}

#[test]
fn awaited_in_a_futures_local_pool_task() {
    let mut pool = LocalPool::new();
    let got: Rc<RefCell<Vec<Result<u32, String>>>> = Rc::default();
    let (a, ta) = Deferred::<u32>::new();
    let (b, tb) = Deferred::<u32>::new();
    let g = got.clone();
    pool.spawner()
        .spawn_local(async move {
            let first = plus_one(a).await.map_err(|f| f.message());
            g.borrow_mut().push(first);
            let second = b.await.map_err(|f| f.message());
            g.borrow_mut().push(second);
        })
        .unwrap();
    pool.run_until_stalled();
    assert!(got.borrow().is_empty(), "nothing has fired yet");
    ta.callback(41); // wakes the pool's task; it runs when the pool runs
    assert!(
        got.borrow().is_empty(),
        "the executor, not the firing call, resumes a pool task"
    );
    pool.run_until_stalled();
    assert_eq!(*got.borrow(), [Ok(42)]);
    tb.errback(Boom);
    pool.run_until_stalled();
    assert_eq!(*got.borrow(), [Ok(42), Err("boom".to_owned())]);
}

#[test]
fn awaited_in_a_tokio_current_thread_runtime_and_local_set() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Directly in block_on: the producer is another branch of the same future.
    let v = rt.block_on(async {
        let (d, t) = Deferred::<&str>::new();
        let fire = async move {
            tokio::task::yield_now().await;
            t.callback("fired later");
        };
        let (v, ()) = tokio::join!(d, fire);
        v
    });
    assert_eq!(v.unwrap(), "fired later");

    // In a LocalSet: the producer is another local task.
    let local = tokio::task::LocalSet::new();
    let v = local.block_on(&rt, async {
        let (d, t) = Deferred::<u32>::new();
        tokio::task::spawn_local(async move {
            tokio::task::yield_now().await;
            t.callback(1);
        });
        ensure_deferred(async move { Ok(plus_one(d).await? * 10) }).await
    });
    assert_eq!(v.unwrap(), 20);
}

#[test]
fn the_driver_awaits_a_foreign_future_woken_on_its_own_thread() {
    let (tx, rx) = futures::channel::oneshot::channel::<u32>();
    let d = ensure_deferred(async move {
        let v = rx.await.map_err(Failure::new)?;
        Ok(v * 2)
    });
    assert_no_result(&d);
    tx.send(21).unwrap(); // the oneshot wakes the driver's waker here, on this thread
    assert_eq!(success_result_of(d), 42);
}

#[test]
fn cancelling_a_coroutine_suspended_on_a_foreign_future_drops_it() {
    let (tx, rx) = futures::channel::oneshot::channel::<u32>();
    let d = ensure_deferred(async move { rx.await.map_err(Failure::new) });
    d.cancel();
    let f = defer_core::testing::failure_result_of(d);
    assert!(f.check::<defer_core::errors::CancelledError>(), "{f}");
    assert!(
        tx.send(1).is_err(),
        "the receiver was dropped with the coroutine"
    );
}
