//! `defer_core::threads` (issue 12, part 2): `defer_to_thread` on a pool, `call_from_thread`,
//! `blocking_call_from_thread`, and a pool dropped with jobs queued.

use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use defer_core::errors::Panicked;
use defer_core::threads::{
    CallError, PoolStopped, ThreadHandle, ThreadPool, blocking_call_from_thread, defer_to_thread,
    defer_to_thread_pool,
};
use defer_core::{Deferred, Failure, fail, gather_results, react, succeed};

#[derive(Debug)]
struct Boom;
impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("boom")
    }
}
impl std::error::Error for Boom {}

#[test]
fn ten_thousand_jobs_on_a_pool_of_four_with_panics_among_them() {
    const N: u64 = 10_000;
    let pool = ThreadPool::new(4);
    let home = thread::current().id();
    let (ok, panicked, errs) = react(|_| {
        let ds: Vec<Deferred<(u64, u64, u64)>> = (0..N)
            .map(|i| {
                defer_to_thread_pool(&pool, move || {
                    assert_ne!(thread::current().id(), home);
                    if i % 1000 == 999 {
                        panic!("job {i}");
                    }
                    if i % 7 == 0 {
                        return Err(Boom);
                    }
                    Ok(i)
                })
                .add_both(move |r| {
                    assert_eq!(thread::current().id(), home, "fired off the home thread");
                    Ok::<_, Failure>(match r {
                        Ok(v) => {
                            assert_eq!(v, i);
                            (1, 0, 0)
                        }
                        Err(f) if f.check::<Panicked>() => {
                            assert_eq!(
                                f.downcast_ref::<Panicked>().unwrap().message(),
                                format!("job {i}")
                            );
                            (0, 1, 0)
                        }
                        Err(f) => {
                            assert!(f.check::<Boom>());
                            (0, 0, 1)
                        }
                    })
                })
            })
            .collect();
        gather_results(ds).add_callback(|v| {
            Ok(v.into_iter()
                .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2)))
        })
    })
    .unwrap();
    let panics = (0..N).filter(|i| i % 1000 == 999).count() as u64;
    let errors = (0..N).filter(|i| i % 1000 != 999 && i % 7 == 0).count() as u64;
    assert_eq!((ok, panicked, errs), (N - panics - errors, panics, errors));
    // Threads are reused, never more than the pool's size.
    assert!(pool.threads() <= 4, "{} threads", pool.threads());
}

#[test]
fn a_pool_dropped_with_jobs_queued_gives_each_deferred_a_result() {
    let release = Arc::new(Barrier::new(2));
    let gate = release.clone();
    let results = react(move |_| {
        let pool = ThreadPool::new(1);
        let (started_tx, started) = mpsc::channel();
        let first = defer_to_thread_pool(&pool, move || {
            started_tx.send(()).unwrap();
            gate.wait(); // held until the pool has been dropped
            Ok::<_, Boom>(0u32)
        });
        started.recv().unwrap(); // the first job runs; the others stay queued
        let queued: Vec<Deferred<u32>> = (1..=100)
            .map(|i| defer_to_thread_pool(&pool, move || Ok::<_, Boom>(i)))
            .collect();
        drop(pool);
        release.wait();
        let mut all = vec![first];
        all.extend(queued);
        gather_results(
            all.into_iter()
                .map(|d| d.add_both(|r| Ok::<_, Failure>(r.map_err(|f| f.check::<PoolStopped>()))))
                .collect::<Vec<_>>(),
        )
    })
    .unwrap();
    assert_eq!(results.len(), 101);
    // The running job finished and delivered; each queued one failed with `PoolStopped`.
    assert_eq!(results[0], Ok(0));
    assert!(results[1..].iter().all(|r| *r == Err(true)), "{results:?}");
}

#[test]
fn stop_waits_for_running_jobs_and_later_jobs_fail_at_once() {
    let r = react(|_| {
        let pool = ThreadPool::new(2);
        let slow = defer_to_thread_pool(&pool, || {
            thread::sleep(Duration::from_millis(5));
            Ok::<_, Boom>("slow")
        });
        pool.stop();
        let late = defer_to_thread_pool(&pool, || Ok::<_, Boom>("late"));
        slow.add_callback(move |s| {
            late.add_both(move |r| Ok::<_, Failure>((s, r.unwrap_err().check::<PoolStopped>())))
        })
    });
    assert_eq!(r.unwrap(), ("slow", true));
}

#[test]
fn defer_to_thread_uses_reused_threads_of_the_default_pool() {
    let ids = react(|_| {
        let ds: Vec<_> = (0..50)
            .map(|_| defer_to_thread(|| Ok::<_, Boom>(thread::current().id())))
            .collect();
        gather_results(ds)
    })
    .unwrap();
    let mut distinct = ids.clone();
    distinct.sort_by_key(|id| format!("{id:?}"));
    distinct.dedup();
    assert!(distinct.len() <= defer_core::threads::thread_pool_size());
}

/// Eight threads call into the home thread at once, each with a value, an already failed
/// Deferred, a pending one fired later by a timer, and a pending one failed later.
#[test]
fn blocking_call_from_thread_from_eight_threads() {
    let handle = ThreadHandle::current();
    let out = react(move |reactor| {
        let reactor_handle = reactor.thread_handle();
        let (done_tx, done_rx) = mpsc::channel();
        for t in 0..8u32 {
            let h = handle.clone();
            let done = done_tx.clone();
            thread::spawn(move || {
                let mut seen = Vec::new();
                for i in 0..10u32 {
                    let v = t * 100 + i;
                    seen.push(blocking_call_from_thread(&h, move || Ok(v)));
                    seen.push(blocking_call_from_thread(&h, move || {
                        fail::<u32>(Failure::new(Boom))
                    }));
                    seen.push(blocking_call_from_thread(&h, move || {
                        let (d, trigger) = Deferred::new();
                        // Fired by a later turn of the home thread.
                        ThreadHandle::current().call_from_thread({
                            let remote = ThreadHandle::current().remote(trigger);
                            move || {
                                remote.callback(v + 1);
                            }
                        });
                        d
                    }));
                    seen.push(blocking_call_from_thread(&h, move || {
                        let (d, trigger) = Deferred::<u32>::new();
                        let remote = ThreadHandle::current().remote(trigger);
                        thread::spawn(move || remote.errback(Boom));
                        d
                    }));
                }
                done.send((t, seen)).unwrap();
            });
        }
        drop(done_tx);
        assert!(reactor_handle.is_current());
        defer_to_thread(move || Ok::<_, Boom>(done_rx.iter().collect::<Vec<_>>()))
    })
    .unwrap();
    assert_eq!(out.len(), 8);
    for (t, seen) in out {
        assert_eq!(seen.len(), 40);
        for (k, r) in seen.iter().enumerate() {
            let v = t * 100 + (k / 4) as u32;
            match k % 4 {
                0 => assert_eq!(*r, Ok(v)),
                2 => assert_eq!(*r, Ok(v + 1)),
                _ => {
                    let e = r.clone().unwrap_err();
                    assert!(e.kind().unwrap().ends_with("Boom"), "{e}");
                    assert_eq!(e.message(), Some("boom"));
                }
            }
        }
    }
}

#[test]
fn blocking_call_from_thread_on_the_home_thread_is_an_error_not_a_deadlock() {
    let here = ThreadHandle::current();
    assert_eq!(
        blocking_call_from_thread(&here, || succeed(1)),
        Err(CallError::OnHomeThread)
    );
}

#[test]
fn blocking_call_from_thread_reports_a_panic_as_failed() {
    let handle = ThreadHandle::current();
    let r = react(move |_| {
        defer_to_thread(move || {
            Ok::<_, Boom>(blocking_call_from_thread(
                &handle,
                || -> Result<u32, Failure> { panic!("at home") },
            ))
        })
    })
    .unwrap();
    match r {
        Err(CallError::Failed {
            message, panicked, ..
        }) => {
            assert!(panicked);
            assert_eq!(message, "panicked: at home");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn blocking_call_from_thread_to_an_exited_thread_is_home_gone() {
    let handle = thread::spawn(ThreadHandle::current).join().unwrap();
    assert_eq!(
        blocking_call_from_thread(&handle, || Ok(1)),
        Err(CallError::HomeGone)
    );
    assert!(!handle.call_from_thread(|| {}));
}

#[test]
fn calls_from_threads_run_in_order_on_the_home_thread() {
    let home = thread::current().id();
    let seen = react(move |reactor| {
        let handle = reactor.thread_handle();
        let (d, trigger) = Deferred::new();
        let remote = handle.remote(trigger);
        thread::spawn(move || {
            let log = Arc::new(std::sync::Mutex::new(Vec::new()));
            for i in 0..1000 {
                let log = log.clone();
                handle.call_from_thread(move || {
                    assert_eq!(thread::current().id(), home);
                    log.lock().unwrap().push(i);
                });
            }
            let log2 = log.clone();
            handle.call_from_thread(move || {
                let v = log2.lock().unwrap().clone();
                remote.callback(v);
            });
        });
        d
    })
    .unwrap();
    assert_eq!(seen, (0..1000).collect::<Vec<_>>());
}

#[test]
fn a_panicking_call_from_thread_is_reported_and_the_loop_goes_on() {
    let reported = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let log = reported.clone();
    let r = defer_core::unhandled::with_hook(
        move |f| log.borrow_mut().push(f.message()),
        || {
            react(|reactor| {
                let handle = reactor.thread_handle();
                let (d, t) = Deferred::new();
                let remote = handle.remote(t);
                thread::spawn(move || {
                    handle.call_from_thread(|| panic!("in a call"));
                    remote.callback(5);
                });
                d
            })
        },
    );
    assert_eq!(r.unwrap(), 5);
    assert_eq!(*reported.borrow(), ["panicked: in a call"]);
}

#[test]
fn a_remote_trigger_dropped_unfired_drops_its_trigger_at_home() {
    let r = react(|_| {
        let (d, t) = Deferred::<u32>::new();
        let remote = ThreadHandle::current().remote(t);
        thread::spawn(move || drop(remote));
        d
    });
    assert!(r.unwrap_err().check::<defer_core::errors::TriggerDropped>());
}
