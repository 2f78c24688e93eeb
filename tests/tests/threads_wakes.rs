//! Wakes from any thread reach a coroutine on its home thread (issue 12, part 1): a `std::thread`
//! and a tokio multi-thread runtime complete futures (a `futures` oneshot, a tokio oneshot, a
//! tokio sleep on another runtime) that coroutines await directly, under each way of running the
//! home thread. 10^4 wakes each: nothing lost, nothing resumed twice, nothing resumed off the
//! home thread.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::thread::{self, ThreadId};
use std::time::Duration;

use defer_core::{Deferred, Failure, ensure_deferred, gather_results};

/// Coroutines at once, and awaits each: 10^4 wakes in all.
const COROUTINES: u64 = 100;
const AWAITS: u64 = 100;

/// Polls `F`, checking it is never polled off its home thread nor after it completed.
struct Checked<F> {
    inner: Pin<Box<F>>,
    home: ThreadId,
    done: bool,
}

impl<F: Future> Future for Checked<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        assert_eq!(
            thread::current().id(),
            self.home,
            "polled off the home thread"
        );
        assert!(!self.done, "polled again after it completed");
        let r = self.inner.as_mut().poll(cx);
        if r.is_ready() {
            self.done = true;
        }
        r
    }
}

fn checked<F: Future>(f: F) -> Checked<F> {
    Checked {
        inner: Box::pin(f),
        home: thread::current().id(),
        done: false,
    }
}

/// Where the wakes come from.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// A `std::thread` completing `futures` oneshots.
    StdThread,
    /// Tasks of a tokio multi-thread runtime completing tokio oneshots.
    TokioOneshot,
    /// `tokio::time::sleep`s of another (multi-thread) runtime.
    TokioSleep,
}

/// What the sources need, shared by the coroutines of one run.
struct Remote {
    to_thread: mpsc::Sender<(futures::channel::oneshot::Sender<u64>, u64)>,
    rt: tokio::runtime::Runtime,
    woken: Arc<AtomicU64>,
}

impl Remote {
    fn new() -> Arc<Remote> {
        let (tx, rx) = mpsc::channel::<(futures::channel::oneshot::Sender<u64>, u64)>();
        let woken = Arc::new(AtomicU64::new(0));
        let counted = woken.clone();
        thread::spawn(move || {
            for (reply, v) in rx {
                counted.fetch_add(1, Ordering::Relaxed);
                let _ = reply.send(v);
            }
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        Arc::new(Remote {
            to_thread: tx,
            rt,
            woken,
        })
    }

    /// A future completed elsewhere with `v`.
    fn value(&self, source: Source, v: u64) -> Pin<Box<dyn Future<Output = u64>>> {
        match source {
            Source::StdThread => {
                let (tx, rx) = futures::channel::oneshot::channel();
                self.to_thread.send((tx, v)).unwrap();
                Box::pin(async move { rx.await.expect("sent") })
            }
            Source::TokioOneshot => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let woken = self.woken.clone();
                self.rt.spawn(async move {
                    woken.fetch_add(1, Ordering::Relaxed);
                    let _ = tx.send(v);
                });
                Box::pin(async move { rx.await.expect("sent") })
            }
            Source::TokioSleep => {
                // Made in the other runtime's context, which then fires it from its own threads.
                let sleep = {
                    let _in = self.rt.enter();
                    tokio::time::sleep(Duration::from_micros(v % 300))
                };
                self.woken.fetch_add(1, Ordering::Relaxed);
                Box::pin(async move {
                    sleep.await;
                    v
                })
            }
        }
    }
}

/// `COROUTINES` coroutines, each awaiting `AWAITS` remote futures in turn; the gathered sum.
fn workload(remote: &Arc<Remote>, source: Source) -> Deferred<u64> {
    let home = thread::current().id();
    let ds: Vec<Deferred<u64>> = (0..COROUTINES)
        .map(|c| {
            let remote = remote.clone();
            ensure_deferred(async move {
                let mut sum = 0;
                for i in 0..AWAITS {
                    let v = c * AWAITS + i;
                    let got = checked(remote.value(source, v)).await;
                    assert_eq!(thread::current().id(), home, "resumed off the home thread");
                    assert_eq!(got, v, "a wake delivered another await's value");
                    sum += got;
                }
                Ok::<_, Failure>(sum)
            })
        })
        .collect();
    gather_results(ds).add_callback(|sums| Ok(sums.into_iter().sum()))
}

fn expected() -> u64 {
    let n = COROUTINES * AWAITS;
    n * (n - 1) / 2
}

/// Runs `workload` with a runner, checks the sum and that exactly 10^4 wakes were sent.
fn check(source: Source, run: impl FnOnce(Deferred<u64>) -> Result<u64, Failure>) {
    let remote = Remote::new();
    let sum = run(workload(&remote, source)).unwrap_or_else(|f| panic!("{source:?}: {f:?}"));
    assert_eq!(sum, expected(), "{source:?}: a wake was lost or doubled");
    assert_eq!(
        remote.woken.load(Ordering::Relaxed),
        COROUTINES * AWAITS,
        "{source:?}"
    );
}

fn under_react(d: Deferred<u64>) -> Result<u64, Failure> {
    defer_core::react(move |_| d)
}

fn under_local_set(d: Deferred<u64>) -> Result<u64, Failure> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, d.into_future())
}

fn under_tokio_react(d: Deferred<u64>) -> Result<u64, Failure> {
    defer_core::tokio::react(move || d)
}

fn under_block_on(d: Deferred<u64>) -> Result<u64, Failure> {
    futures::executor::block_on(d.into_future())
}

fn under_local_pool(d: Deferred<u64>) -> Result<u64, Failure> {
    futures::executor::LocalPool::new().run_until(d.into_future())
}

macro_rules! matrix {
    ($($name:ident: $source:expr, $runner:ident;)*) => {
        $(
            #[test]
            fn $name() {
                check($source, $runner);
            }
        )*
    };
}

matrix! {
    std_thread_under_react: Source::StdThread, under_react;
    std_thread_under_local_set: Source::StdThread, under_local_set;
    std_thread_under_tokio_react: Source::StdThread, under_tokio_react;
    std_thread_under_block_on: Source::StdThread, under_block_on;
    std_thread_under_local_pool: Source::StdThread, under_local_pool;
    tokio_oneshot_under_react: Source::TokioOneshot, under_react;
    tokio_oneshot_under_local_set: Source::TokioOneshot, under_local_set;
    tokio_oneshot_under_tokio_react: Source::TokioOneshot, under_tokio_react;
    tokio_oneshot_under_block_on: Source::TokioOneshot, under_block_on;
    tokio_oneshot_under_local_pool: Source::TokioOneshot, under_local_pool;
    tokio_sleep_under_react: Source::TokioSleep, under_react;
    tokio_sleep_under_local_set: Source::TokioSleep, under_local_set;
    tokio_sleep_under_tokio_react: Source::TokioSleep, under_tokio_react;
    tokio_sleep_under_block_on: Source::TokioSleep, under_block_on;
    tokio_sleep_under_local_pool: Source::TokioSleep, under_local_pool;
}

/// The issue's own example: inside a `LocalSet`, a coroutine awaiting a tokio oneshot sent from
/// a `std::thread` resumes (it used to wait for ever).
#[test]
fn local_set_coroutine_awaits_a_oneshot_sent_from_a_std_thread() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let got = tokio::task::LocalSet::new().block_on(&rt, async {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let d = ensure_deferred(async move { Ok::<_, Failure>(rx.await.unwrap() * 2) });
        thread::spawn(move || tx.send(21).unwrap());
        d.await
    });
    assert_eq!(got.unwrap(), 42);
}

/// Where nothing runs the home thread, the coroutine waits, and its Deferred's `Debug` says
/// why; running the thread afterwards delivers the wake.
#[test]
fn a_wake_with_nothing_running_the_home_thread_waits_and_says_so() {
    let (tx, rx) = futures::channel::oneshot::channel::<u32>();
    let d = ensure_deferred(async move { Ok::<_, Failure>(rx.await.unwrap() + 1) });
    let before = format!("{d:?}");
    assert!(before.contains("awaits a future"), "{before}");
    thread::spawn(move || tx.send(41).unwrap()).join().unwrap();
    let shown = format!("{d:?}");
    assert!(shown.contains("woken from another thread"), "{shown}");
    assert!(shown.contains("defer_core::react"), "{shown}");
    assert_eq!(defer_core::react(move |_| d).unwrap(), 42);
}

/// A coroutine awaiting both a Deferred and a future woken from another thread (a `select`)
/// resumes for the future, whichever comes first.
#[test]
fn select_of_a_deferred_and_a_remote_future_resumes_for_the_remote_one() {
    for _ in 0..200 {
        let got = defer_core::react(|_| {
            let (pending, trigger) = Deferred::<u32>::new();
            let (tx, rx) = futures::channel::oneshot::channel::<u32>();
            thread::spawn(move || tx.send(7).unwrap());
            ensure_deferred(async move {
                let _producer = trigger; // kept: the Deferred stays pending
                let a = pending.into_future();
                futures::pin_mut!(a);
                Ok::<_, Failure>(match futures::future::select(a, rx).await {
                    futures::future::Either::Left(_) => 0,
                    futures::future::Either::Right((v, _)) => v.unwrap(),
                })
            })
        });
        assert_eq!(got.unwrap(), 7);
    }
}
