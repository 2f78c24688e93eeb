//! Ports of Twisted's `test_task.py` `ReactorLoopTests`.
//!
//! The tests that Twisted runs on the real reactor (`testFailure`, `testFailAndStop`,
//! `testEveryIteration`, `testStopAtOnceLater`) run on tokio's timer through `TokioScheduler`,
//! in a `LocalSet` under tokio's paused test time. The ones Twisted already runs on a `Clock`
//! (`testWaitDeferred`, `testFailurePropagation`, `test_deferredWithCount`) use the manual
//! `Clock` here too.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use defer_core::task::{Clock, LoopingCall, WeakLoopingCall};
use defer_core::testing::{failure_result_of, success_result_of};
use defer_core::{Deferred, Failure, TokioScheduler, Trigger};
use tokio::task::LocalSet;

error_kind!(TestException, DefaultException);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

type Me = Rc<RefCell<WeakLoopingCall>>;

fn stop(me: &Me) {
    me.borrow().upgrade().unwrap().stop().unwrap();
}

#[tokio::test(start_paused = true)]
async fn test_failure() {
    LocalSet::new()
        .run_until(async {
            let x = "bar";
            let lc = LoopingCall::new(TokioScheduler::new(), move || {
                Err::<(), Failure>(TestException::new(x).into())
            });
            let f = lc.start(secs(0.1), true).unwrap().await.unwrap_err();
            assert_eq!(f.downcast_ref::<TestException>().unwrap().0, "bar");
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn test_fail_and_stop() {
    LocalSet::new()
        .run_until(async {
            let me: Me = Rc::default();
            let m = me.clone();
            let lc = LoopingCall::new(TokioScheduler::new(), move || {
                stop(&m);
                Err::<(), Failure>(TestException::new("bar").into())
            });
            *me.borrow_mut() = lc.downgrade();
            let f = lc.start(secs(0.1), true).unwrap().await.unwrap_err();
            assert!(f.check::<TestException>());
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn test_every_iteration() {
    LocalSet::new()
        .run_until(async {
            let ran = Rc::new(RefCell::new(Vec::new()));
            let me: Me = Rc::default();
            let (r, m) = (ran.clone(), me.clone());
            let lc = LoopingCall::new(TokioScheduler::new(), move || {
                r.borrow_mut().push(());
                if r.borrow().len() > 5 {
                    stop(&m);
                }
                Ok(())
            });
            *me.borrow_mut() = lc.downgrade();
            let stopped = lc.start(Duration::ZERO, true).unwrap().await.unwrap();
            assert!(stopped.same_as(&lc));
            assert_eq!(ran.borrow().len(), 6);
        })
        .await;
}

#[tokio::test(start_paused = true)]
async fn test_stop_at_once_later() {
    // Even when `stop()` is called from a reactor callback, it still prevents any subsequent
    // calls.
    LocalSet::new()
        .run_until(async {
            let reactor = TokioScheduler::new();
            let (d, trigger) = Deferred::<&str>::new();
            let trigger: Rc<RefCell<Option<Trigger<&str>>>> = Rc::new(RefCell::new(Some(trigger)));
            let called = Rc::new(std::cell::Cell::new(false));
            let (t, c) = (trigger.clone(), called.clone());
            let lc = LoopingCall::new(reactor, move || {
                c.set(true);
                if let Some(t) = t.borrow_mut().take() {
                    t.errback(DefaultException::new(
                        "This task also should never get called.",
                    ));
                }
                Ok(())
            });
            let _done = lc.start(secs(1.0), false).unwrap();
            reactor.call_later(
                Duration::ZERO,
                Box::new(move || {
                    lc.stop().unwrap();
                    reactor.call_later(
                        Duration::ZERO,
                        Box::new(move || {
                            if let Some(t) = trigger.borrow_mut().take() {
                                t.callback("success");
                            }
                        }),
                    );
                }),
            );
            assert_eq!(d.await.unwrap(), "success");
            // And nothing comes after the interval either (trial's clean-reactor check).
            tokio::time::sleep(secs(2.0)).await;
            assert!(!called.get());
        })
        .await;
}

#[test]
fn test_wait_deferred() {
    // The callable isn't scheduled again before the returned deferred has fired.
    let timings = [secs(0.2), secs(0.8)];
    let clock = Clock::new();
    let me: Me = Rc::default();
    let (c, m) = (clock.clone(), me.clone());
    let lc = LoopingCall::new(clock.clone(), move || {
        let (d, trigger) = Deferred::<()>::new();
        let m = m.clone();
        let d = d.add_callback(move |_| {
            stop(&m);
            Ok(())
        });
        c.call_later(secs(1.0), move || {
            trigger.callback(());
        });
        d
    });
    *me.borrow_mut() = lc.downgrade();
    let done = lc.start(secs(0.2), true).unwrap();
    clock.pump(timings);
    assert!(clock.pending_calls().is_empty());
    assert!(success_result_of(done).same_as(&lc));
}

#[test]
fn test_failure_propagation() {
    // The failure of the Deferred returned by the callable is propagated to the loop's errback,
    // and nothing is left scheduled.
    let timings = [secs(0.3)];
    let clock = Clock::new();
    let c = clock.clone();
    let lc = LoopingCall::new(clock.clone(), move || {
        let (d, trigger) = Deferred::<()>::new();
        c.call_later(secs(0.3), move || {
            trigger.errback(TestException::new(""));
        });
        d
    });
    let d = lc.start(secs(1.0), true).unwrap();
    clock.pump(timings);
    assert!(clock.pending_calls().is_empty());
    assert!(failure_result_of(d).check::<TestException>());
}

#[test]
fn test_deferred_with_count() {
    // A function that returns a Deferred that does not fire before the next interval is not
    // run again, and the skipped calls are counted.
    let test_clock = Clock::new();
    let (d, trigger) = Deferred::<()>::new();
    let d = Rc::new(RefCell::new(Some(d)));
    let deferred_counts = Rc::new(RefCell::new(Vec::new()));
    let (dc, dd) = (deferred_counts.clone(), d.clone());
    let lc = LoopingCall::with_count(test_clock.clone(), move |possible_count| {
        // Keep a list of call counts
        dc.borrow_mut().push(possible_count);
        // Return a deferred, but only on the first request
        if dc.borrow().len() == 1 {
            dd.borrow_mut().take().unwrap()
        } else {
            defer_core::succeed(())
        }
    });
    let _done = lc.start(secs(0.2), false).unwrap();
    // Confirm that nothing has happened yet.
    assert!(deferred_counts.borrow().is_empty());
    // Advance the clock by 0.2 and then 0.4;
    test_clock.pump([secs(0.2), secs(0.4)]);
    // We should now have exactly one count (of 1 call)
    assert_eq!(deferred_counts.borrow().len(), 1);
    // Fire the deferred, and advance the clock by another 0.2
    trigger.callback(());
    test_clock.pump([secs(0.2)]);
    // The first count should be 1; the second 3 (calls were missed at about 0.6 and 0.8)
    assert_eq!(*deferred_counts.borrow(), [1, 3]);
}
