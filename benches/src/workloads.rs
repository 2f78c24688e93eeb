//! The workloads W1–W7 of `peer-baselines.md`, one function per workload per implementation,
//! and X1–X2 (threads: issue 12).
//!
//! The criterion benches (`benches/workloads.rs`) and the `workloads` binary both run the
//! [`Workload`]s that [`all`] lists, so they measure the same code. Every function returns a
//! checksum that [`Workload::expected`] predicts, so an implementation that skipped work would be
//! caught by the tests.
//!
//! Naming: `W1_chain` is this library; `W1_chain@rc_minimal` the cost model
//! ([`crate::rc_minimal`]); `@box_floor` a `Vec<Box<dyn FnOnce>>`; `@futures` `futures`'
//! `LocalPool` with its oneshot channels; `@tokio` tokio's current-thread runtime with its oneshot
//! channels.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::rc::Rc;

use defer_core::testing::success_result_of;
use defer_core::{
    Deferred, Failure, Trigger, ensure_deferred, gather_results, inline_callbacks, succeed, yield_,
};
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

use crate::rc_minimal::{MiniDeferred, Out};

/// Steps per chain in W1–W3 (and levels in `W3_deep_pending_1000`).
pub const N_CHAIN: u64 = 1000;
/// Levels in `W3_deep_pending_100000`.
pub const N_DEEP: u64 = 100_000;
/// Yields / awaits of a fired Deferred in W4 and W6.
pub const N_FIRED: u64 = 100_000;
/// Yields / awaits of a pending Deferred in W5 and W6b, and Deferreds gathered in W7.
pub const N_PENDING: u64 = 10_000;
/// Round trips to another thread in X1, and jobs in X2.
pub const N_THREAD: u64 = 1_000;

/// The error W2 raises: it carries the value, as `ValueError(x)` does in the Python version.
#[derive(Debug)]
pub struct Boom(pub u64);

impl fmt::Display for Boom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "boom {}", self.0)
    }
}

impl Error for Boom {}

// ---------------------------------------------------------------------------------------------
// W1 chain: N steps that each add one, on a pending Deferred, then fire. ns per step.
// ---------------------------------------------------------------------------------------------

/// `W1_chain`: `add_callback(move |x| Ok(x + step))` ×n (each closure captures a `black_box`
/// step, so each step is a heap allocation, as in the floor), `callback(0)`, read the result.
pub fn w1_chain(n: u64) -> u64 {
    let step = black_box(1u64);
    let (mut d, t) = Deferred::<u64>::new();
    for _ in 0..n {
        d = d.add_callback(move |x| Ok(x + step));
    }
    t.callback(0);
    success_result_of(d)
}

/// `W1_chain_zst`: as [`w1_chain`] with steps that capture nothing, `|x| Ok(x + 1)`.
pub fn w1_chain_zst(n: u64) -> u64 {
    let (mut d, t) = Deferred::<u64>::new();
    for _ in 0..n {
        d = d.add_callback(|x| Ok(x + 1));
    }
    t.callback(0);
    success_result_of(d)
}

/// `W1_chain@rc_minimal`.
pub fn w1_chain_rc_minimal(n: u64) -> u64 {
    let step = black_box(1u64);
    let d = MiniDeferred::<u64>::new();
    for _ in 0..n {
        d.add_callback(move |x| Out::Done(Ok(x + step)));
    }
    d.callback(0);
    d.take_result().expect("fired").expect("succeeded")
}

/// `W1_chain_zst@rc_minimal`: non-capturing steps; the cost model's boxed wrapper captures only
/// the zero-sized step, so it allocates nothing either.
pub fn w1_chain_zst_rc_minimal(n: u64) -> u64 {
    let d = MiniDeferred::<u64>::new();
    for _ in 0..n {
        d.add_callback(|x| Out::Done(Ok(x + 1)));
    }
    d.callback(0);
    d.take_result().expect("fired").expect("succeeded")
}

/// `W1_chain@box_floor`: `Vec<Box<dyn FnOnce(u64) -> u64>>` of closures capturing a
/// `black_box` step, so every box allocates.
pub fn w1_chain_box_floor(n: u64) -> u64 {
    let step = black_box(1u64);
    let mut steps: Vec<Box<dyn FnOnce(u64) -> u64>> = Vec::new();
    for _ in 0..n {
        steps.push(Box::new(move |x| x + step));
    }
    let steps = black_box(steps);
    steps.into_iter().fold(0, |x, f| f(x))
}

/// `W1_chain_zst@box_floor`: non-capturing closures, whose boxes allocate nothing.
pub fn w1_chain_zst_box_floor(n: u64) -> u64 {
    let mut steps: Vec<Box<dyn FnOnce(u64) -> u64>> = Vec::new();
    for _ in 0..n {
        steps.push(Box::new(|x| x + 1));
    }
    let steps = black_box(steps);
    steps.into_iter().fold(0, |x, f| f(x))
}

// ---------------------------------------------------------------------------------------------
// W2 errback: N (raise, recover) pairs. ns per pair.
// ---------------------------------------------------------------------------------------------

/// `W2_errback`: a callback raises `Boom(x)`, the errback after it recovers with `x + 1`.
pub fn w2_errback(n: u64) -> u64 {
    let step = black_box(1u64);
    let (mut d, t) = Deferred::<u64>::new();
    for _ in 0..n {
        d = d
            .add_callback(move |x| Err::<u64, _>(Failure::new(Boom(x * step))))
            .add_errback(move |f| Ok(f.downcast_ref::<Boom>().expect("a Boom").0 + step));
    }
    t.callback(0);
    success_result_of(d)
}

/// `W2_errback@rc_minimal`: `Result<u64, Box<dyn Error>>`, one boxed error per raise, downcast on
/// recover.
pub fn w2_errback_rc_minimal(n: u64) -> u64 {
    let step = black_box(1u64);
    let d = MiniDeferred::<u64>::new();
    for _ in 0..n {
        d.add_callback(move |x| Out::Done(Err(Box::new(Boom(x * step)))));
        d.add_errback(move |e| Out::Done(Ok(e.downcast_ref::<Boom>().expect("a Boom").0 + step)));
    }
    d.callback(0);
    d.take_result().expect("fired").expect("succeeded")
}

type BoxRes = Result<u64, Box<dyn Error>>;

/// `W2_errback@box_floor`: a `Vec` of boxed `FnOnce(Result) -> Result` steps, callback then
/// errback, one boxed error per raise.
pub fn w2_errback_box_floor(n: u64) -> u64 {
    let step = black_box(1u64);
    let mut steps: Vec<Box<dyn FnOnce(BoxRes) -> BoxRes>> = Vec::new();
    for _ in 0..n {
        steps.push(Box::new(move |r| match r {
            Ok(x) => Err(Box::new(Boom(x * step))),
            Err(e) => Err(e),
        }));
        steps.push(Box::new(move |r| match r {
            Ok(x) => Ok(x),
            Err(e) => Ok(e.downcast_ref::<Boom>().expect("a Boom").0 + step),
        }));
    }
    // Not `try_fold`: an `Err` must reach the next step, the errback that recovers from it.
    let mut r: BoxRes = Ok(0);
    for f in black_box(steps) {
        r = f(r);
    }
    r.expect("succeeded")
}

// ---------------------------------------------------------------------------------------------
// W3a nested fired: each step returns an already-fired Deferred. ns per step.
// ---------------------------------------------------------------------------------------------

/// `W3_nested_fired`: `add_callback(move |x| succeed(x + step))` ×n.
pub fn w3_nested_fired(n: u64) -> u64 {
    let step = black_box(1u64);
    let (mut d, t) = Deferred::<u64>::new();
    for _ in 0..n {
        d = d.add_callback(move |x| succeed(x + step));
    }
    t.callback(0);
    success_result_of(d)
}

/// `W3_nested_fired@rc_minimal`: each step returns a fired `MiniDeferred`, whose result is taken.
pub fn w3_nested_fired_rc_minimal(n: u64) -> u64 {
    let step = black_box(1u64);
    let d = MiniDeferred::<u64>::new();
    for _ in 0..n {
        d.add_callback(move |x| Out::Wait(MiniDeferred::succeed(x + step)));
    }
    d.callback(0);
    d.take_result().expect("fired").expect("succeeded")
}

// ---------------------------------------------------------------------------------------------
// W3b deep pending: n pending Deferreds, each one's step returns the next. ns per level.
// ---------------------------------------------------------------------------------------------

/// `W3_deep_pending_<n>`: `ds[i].add_callback(move |_| ds[i+1])`; fire `ds[0..n-1]` outer to
/// inner (each waits on the next), then the innermost with `n`. Covers construction, the fires
/// and the propagation back out.
pub fn w3_deep_pending(n: u64) -> u64 {
    let mut triggers = Vec::with_capacity(n as usize);
    let (innermost, t) = Deferred::<u64>::new();
    triggers.push(t);
    let mut next = innermost;
    for _ in 1..n {
        let (d, t) = Deferred::<u64>::new();
        triggers.push(t);
        let inner = next;
        next = d.add_callback(move |_| inner);
    }
    let outer = next;
    // `triggers` runs innermost first; fire from the outermost in.
    let innermost = triggers.swap_remove(0);
    for t in triggers.into_iter().rev() {
        t.callback(0);
    }
    innermost.callback(n);
    success_result_of(outer)
}

/// `W3_deep_pending_<n>@rc_minimal`: the same with Twisted's `_CONTINUE` chain stack.
pub fn w3_deep_pending_rc_minimal(n: u64) -> u64 {
    let ds: Vec<MiniDeferred<u64>> = (0..n).map(|_| MiniDeferred::new()).collect();
    for i in 0..ds.len() - 1 {
        let inner = ds[i + 1].clone();
        ds[i].add_callback(move |_| Out::Wait(inner));
    }
    for d in &ds[..ds.len() - 1] {
        d.callback(0);
    }
    ds[ds.len() - 1].callback(n);
    ds[0].take_result().expect("fired").expect("succeeded")
}

type Nested = Pin<Box<dyn Future<Output = u64>>>;

fn nest(depth: u64, rx: futures::channel::oneshot::Receiver<u64>) -> Nested {
    Box::pin(async move {
        if depth == 0 {
            rx.await.expect("sent")
        } else {
            nest(depth - 1, rx).await
        }
    })
}

/// `W3_deep_pending_1000@futures`: n nested boxed `async` fns, the innermost awaiting a pending
/// oneshot (the poll recurses through every level, so this does not scale to 100 000).
pub fn w3_deep_pending_futures(pool: &mut LocalPool, n: u64) -> u64 {
    let (tx, rx) = futures::channel::oneshot::channel();
    let out = Rc::new(Cell::new(0));
    let o = out.clone();
    let fut = nest(n - 1, rx);
    pool.spawner()
        .spawn_local(async move { o.set(fut.await) })
        .expect("spawn");
    pool.run_until_stalled();
    tx.send(n).expect("receiver alive");
    pool.run_until_stalled();
    out.get()
}

// ---------------------------------------------------------------------------------------------
// W4 / W6: awaiting already-fired Deferreds. ns per yield / await.
// ---------------------------------------------------------------------------------------------

#[inline_callbacks]
fn inline_fired_body(n: u64) -> Deferred<u64> {
    let mut s = 0u64;
    for i in 0..n {
        s += yield_!(succeed(i))?;
    }
    Ok(s)
}

/// `W4_inline_fired`: an inline-callbacks function doing `s += yield_!(succeed(i))?` n times.
pub fn w4_inline_fired(n: u64) -> u64 {
    success_result_of(inline_fired_body(n))
}

/// `W6_coroutine`: `ensure_deferred(async { s += succeed(i).await? })` n times.
pub fn w6_coroutine(n: u64) -> u64 {
    success_result_of(ensure_deferred(async move {
        let mut s = 0u64;
        for i in 0..n {
            s += succeed(i).await?;
        }
        Ok(s)
    }))
}

/// `W4_inline_fired@futures` (and `W6_coroutine@futures`): an `async` block on `LocalPool`
/// awaiting n already-completed oneshots.
pub fn fired_futures(pool: &mut LocalPool, n: u64) -> u64 {
    use futures::channel::oneshot;
    pool.run_until(async move {
        let mut s = 0u64;
        for i in 0..n {
            let (tx, rx) = oneshot::channel();
            tx.send(i).expect("receiver alive");
            s += rx.await.expect("sent");
        }
        s
    })
}

/// `W4_inline_fired@tokio` (and `W6_coroutine@tokio`): the same in tokio's current-thread
/// `block_on` with tokio's oneshot.
pub fn fired_tokio(rt: &tokio::runtime::Runtime, n: u64) -> u64 {
    use tokio::sync::oneshot;
    rt.block_on(async move {
        let mut s = 0u64;
        for i in 0..n {
            let (tx, rx) = oneshot::channel();
            tx.send(i).expect("receiver alive");
            s += rx.await.expect("sent");
        }
        s
    })
}

// ---------------------------------------------------------------------------------------------
// W5 / W6b: awaiting pending Deferreds that the driver fires one by one. ns per yield / await.
// ---------------------------------------------------------------------------------------------

type Slot<T> = Rc<RefCell<Option<T>>>;

#[inline_callbacks]
fn inline_pending_body(n: u64, slot: Slot<Trigger<u64>>) -> Deferred<u64> {
    let mut s = 0u64;
    for _ in 0..n {
        let (d, t) = Deferred::new();
        *slot.borrow_mut() = Some(t);
        s += yield_!(d)?;
    }
    Ok(s)
}

fn coroutine_pending_body(n: u64, slot: Slot<Trigger<u64>>) -> Deferred<u64> {
    ensure_deferred(async move {
        let mut s = 0u64;
        for _ in 0..n {
            let (d, t) = Deferred::new();
            *slot.borrow_mut() = Some(t);
            s += d.await?;
        }
        Ok(s)
    })
}

fn drive_pending(n: u64, slot: &Slot<Trigger<u64>>, d: Deferred<u64>) -> u64 {
    for i in 0..n {
        let t = slot.borrow_mut().take().expect("the coroutine waits");
        t.callback(i);
    }
    success_result_of(d)
}

/// `W5_inline_pending`: the inline-callbacks function makes a pending Deferred, puts its trigger
/// in a slot and yields it; the driver takes the trigger and fires it, which resumes the function
/// up to its next yield, inside `callback`.
pub fn w5_inline_pending(n: u64) -> u64 {
    let slot = Rc::new(RefCell::new(None));
    let d = inline_pending_body(n, slot.clone());
    drive_pending(n, &slot, d)
}

/// `W6b_coroutine_pending`: W5 with `ensure_deferred` and `.await`.
pub fn w6b_coroutine_pending(n: u64) -> u64 {
    let slot = Rc::new(RefCell::new(None));
    let d = coroutine_pending_body(n, slot.clone());
    drive_pending(n, &slot, d)
}

/// `W5_inline_pending@futures` (and `W6b_coroutine_pending@futures`): a task spawned on
/// `LocalPool` awaits n oneshots in turn; the driver outside the pool runs it until stalled, then
/// sends.
pub fn pending_futures(pool: &mut LocalPool, n: u64) -> u64 {
    use futures::channel::oneshot;
    let slot: Slot<oneshot::Sender<u64>> = Rc::new(RefCell::new(None));
    let out = Rc::new(Cell::new(0));
    let (s2, o) = (slot.clone(), out.clone());
    pool.spawner()
        .spawn_local(async move {
            let mut s = 0u64;
            for _ in 0..n {
                let (tx, rx) = oneshot::channel();
                *s2.borrow_mut() = Some(tx);
                s += rx.await.expect("sent");
            }
            o.set(s);
        })
        .expect("spawn");
    for i in 0..n {
        pool.run_until_stalled();
        let tx = slot.borrow_mut().take().expect("the task waits");
        tx.send(i).expect("receiver alive");
    }
    pool.run_until_stalled();
    out.get()
}

/// `W5_inline_pending@tokio` (and `W6b_coroutine_pending@tokio`): a `spawn_local` consumer;
/// the `LocalSet`'s `block_on` future drives: `send(i)`, then `yield_now()`.
pub fn pending_tokio(rt: &tokio::runtime::Runtime, n: u64) -> u64 {
    use tokio::sync::oneshot;
    let local = tokio::task::LocalSet::new();
    local.block_on(rt, async move {
        let slot: Slot<oneshot::Sender<u64>> = Rc::new(RefCell::new(None));
        let s2 = slot.clone();
        let consumer = tokio::task::spawn_local(async move {
            let mut s = 0u64;
            for _ in 0..n {
                let (tx, rx) = oneshot::channel();
                *s2.borrow_mut() = Some(tx);
                s += rx.await.expect("sent");
            }
            s
        });
        for i in 0..n {
            let tx = loop {
                let taken = slot.borrow_mut().take();
                match taken {
                    Some(tx) => break tx,
                    None => tokio::task::yield_now().await,
                }
            };
            tx.send(i).expect("receiver alive");
        }
        consumer.await.expect("consumer finished")
    })
}

// ---------------------------------------------------------------------------------------------
// W7 gather: n pending Deferreds gathered, fired in order. ns per Deferred.
// ---------------------------------------------------------------------------------------------

/// `W7_gather`: `gather_results` over n pending Deferreds, fired in order.
pub fn w7_gather(n: u64) -> u64 {
    let mut ds = Vec::with_capacity(n as usize);
    let mut ts = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let (d, t) = Deferred::<u64>::new();
        ds.push(d);
        ts.push(t);
    }
    let all = gather_results(ds);
    for (i, t) in (0..n).zip(ts) {
        t.callback(i);
    }
    success_result_of(all).iter().sum()
}

/// `W7_gather@futures`: `join_all` over n oneshot receivers in a `LocalPool` task, the pool run
/// until stalled after every send.
pub fn gather_futures(pool: &mut LocalPool, n: u64) -> u64 {
    use futures::channel::oneshot;
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| oneshot::channel::<u64>()).unzip();
    let out = Rc::new(Cell::new(0));
    let o = out.clone();
    pool.spawner()
        .spawn_local(async move {
            let all = futures::future::join_all(rxs).await;
            o.set(all.into_iter().map(|r| r.expect("sent")).sum());
        })
        .expect("spawn");
    pool.run_until_stalled();
    for (i, tx) in (0..n).zip(txs) {
        tx.send(i).expect("receiver alive");
        pool.run_until_stalled();
    }
    out.get()
}

/// `W7_gather@tokio`: `join_all` over n tokio oneshot receivers in a `spawn_local` task; the
/// `LocalSet`'s `block_on` future sends one, then `yield_now()`s.
pub fn gather_tokio(rt: &tokio::runtime::Runtime, n: u64) -> u64 {
    use tokio::sync::oneshot;
    let local = tokio::task::LocalSet::new();
    local.block_on(rt, async move {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..n).map(|_| oneshot::channel::<u64>()).unzip();
        let gatherer = tokio::task::spawn_local(async move {
            let all = futures::future::join_all(rxs).await;
            all.into_iter().map(|r| r.expect("sent")).sum::<u64>()
        });
        tokio::task::yield_now().await;
        for (i, tx) in (0..n).zip(txs) {
            tx.send(i).expect("receiver alive");
            tokio::task::yield_now().await;
        }
        gatherer.await.expect("gatherer finished")
    })
}

// ---------------------------------------------------------------------------------------------
// X1 / X2: threads. A worker thread completes, the home thread resumes. ns per round trip / job.
// Timed by the wall clock (`--wall`): the time is mostly the two threads waking each other, which
// the home thread's CPU time does not see.
// ---------------------------------------------------------------------------------------------

/// `X1_thread_round_trip`: under `react`, a coroutine awaits `defer_to_thread(|| Ok(i))` n times
/// in turn: the pool thread runs the job, posts the result home, the loop unparks, fires the
/// Deferred and resumes the coroutine, which submits the next job.
pub fn x1_thread_round_trip(n: u64) -> u64 {
    defer_core::react(move |_| {
        ensure_deferred(async move {
            let mut s = 0;
            for i in 0..n {
                s += defer_core::threads::defer_to_thread(move || {
                    Ok::<_, std::convert::Infallible>(black_box(i))
                })
                .await?;
            }
            Ok::<_, Failure>(s)
        })
    })
    .expect("the round trips succeed")
}

/// `X1_thread_round_trip@tokio`: `spawn_blocking(|| i).await` n times in turn, in a
/// current-thread runtime (tokio's blocking pool, its threads reused).
pub fn thread_round_trip_tokio(rt: &tokio::runtime::Runtime, n: u64) -> u64 {
    rt.block_on(async move {
        let mut s = 0;
        for i in 0..n {
            s += tokio::task::spawn_blocking(move || black_box(i))
                .await
                .expect("the job ran");
        }
        s
    })
}

/// `X1_thread_round_trip@mpsc`: the floor: a worker thread that receives `i` on one
/// `std::sync::mpsc` channel and sends it back on another; the home thread blocks on `recv`.
pub fn thread_round_trip_mpsc(worker: &MpscWorker, n: u64) -> u64 {
    let mut s = 0;
    for i in 0..n {
        worker.to.send(i).expect("the worker runs");
        s += worker.from.recv().expect("the worker answers");
    }
    s
}

/// The worker thread of [`thread_round_trip_mpsc`], made once and reused.
pub struct MpscWorker {
    to: std::sync::mpsc::Sender<u64>,
    from: std::sync::mpsc::Receiver<u64>,
}

impl MpscWorker {
    /// Starts the worker; it exits when this is dropped.
    pub fn new() -> Self {
        let (to, rx) = std::sync::mpsc::channel::<u64>();
        let (tx, from) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for i in rx {
                if tx.send(black_box(i)).is_err() {
                    return;
                }
            }
        });
        MpscWorker { to, from }
    }
}

impl Default for MpscWorker {
    fn default() -> Self {
        MpscWorker::new()
    }
}

/// `X2_defer_to_thread`: under `react`, n empty jobs submitted at once with `defer_to_thread`,
/// gathered.
pub fn x2_defer_to_thread(n: u64) -> u64 {
    defer_core::react(move |_| {
        let ds: Vec<Deferred<u64>> = (0..n)
            .map(|i| {
                defer_core::threads::defer_to_thread(move || {
                    Ok::<_, std::convert::Infallible>(black_box(i))
                })
            })
            .collect();
        gather_results(ds).add_callback(|v| Ok(v.into_iter().sum()))
    })
    .expect("the jobs succeed")
}

/// `X2_defer_to_thread@tokio`: n `spawn_blocking` of an empty job at once, then awaited in turn.
pub fn defer_to_thread_tokio(rt: &tokio::runtime::Runtime, n: u64) -> u64 {
    rt.block_on(async move {
        let handles: Vec<_> = (0..n)
            .map(|i| tokio::task::spawn_blocking(move || black_box(i)))
            .collect();
        let mut s = 0;
        for h in handles {
            s += h.await.expect("the job ran");
        }
        s
    })
}

// ---------------------------------------------------------------------------------------------
// The targets.
// ---------------------------------------------------------------------------------------------

/// A time target: `workload`'s ns/op at most `max` times `against`'s, both measured in one run.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The measurement held to the target.
    pub workload: &'static str,
    /// What it is compared with.
    pub against: &'static str,
    /// The largest ratio that meets the target.
    pub max: f64,
}

const fn target(workload: &'static str, against: &'static str, max: f64) -> Target {
    Target {
        workload,
        against,
        max,
    }
}

/// The time targets (`BENCHMARKS.md`): W1–W3 within 1.3× of the cost model, `W1_chain_zst`
/// within 2× of the floor (a stretch), W4/W6 no slower than `futures`, W5/W6b/W7 at most 0.8× of
/// it, and the deep chain's cost per level linear in its depth.
///
/// ```
/// let t = defer_bench::workloads::TARGETS.iter().find(|t| t.workload == "W7_gather").unwrap();
/// assert_eq!((t.against, t.max), ("W7_gather@futures", 0.8));
/// ```
pub const TARGETS: &[Target] = &[
    target("W1_chain", "W1_chain@rc_minimal", 1.3),
    target("W2_errback", "W2_errback@rc_minimal", 1.3),
    target("W3_nested_fired", "W3_nested_fired@rc_minimal", 1.3),
    target(
        "W3_deep_pending_1000",
        "W3_deep_pending_1000@rc_minimal",
        1.3,
    ),
    target(
        "W3_deep_pending_100000",
        "W3_deep_pending_100000@rc_minimal",
        1.3,
    ),
    target("W1_chain_zst", "W1_chain_zst@box_floor", 2.0),
    target("W4_inline_fired", "W4_inline_fired@futures", 1.0),
    target("W6_coroutine", "W6_coroutine@futures", 1.0),
    target("W5_inline_pending", "W5_inline_pending@futures", 0.8),
    target(
        "W6b_coroutine_pending",
        "W6b_coroutine_pending@futures",
        0.8,
    ),
    target("W7_gather", "W7_gather@futures", 0.8),
    target("W3_deep_pending_100000", "W3_deep_pending_1000", 1.3),
    // Measured with `--wall` (see X1).
    target("X1_thread_round_trip", "X1_thread_round_trip@tokio", 1.2),
];

// ---------------------------------------------------------------------------------------------
// The registry.
// ---------------------------------------------------------------------------------------------

/// The executors the `@futures` and `@tokio` baselines run on, made once and reused.
///
/// ```
/// let ex = defer_bench::workloads::Executors::new();
/// # drop(ex);
/// ```
pub struct Executors {
    pool: RefCell<LocalPool>,
    rt: tokio::runtime::Runtime,
    mpsc: MpscWorker,
}

impl Executors {
    /// A `LocalPool` and a tokio current-thread runtime (no I/O or time driver).
    pub fn new() -> Rc<Self> {
        Rc::new(Executors {
            pool: RefCell::new(LocalPool::new()),
            rt: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a current-thread runtime"),
            mpsc: MpscWorker::new(),
        })
    }
}

/// One measurement: a name, its operation count, and the code that performs those operations.
///
/// ```
/// let all = defer_bench::workloads::all();
/// let w = all.iter().find(|w| w.name == "W5_inline_pending@futures").unwrap();
/// assert_eq!((w.workload(), w.implementation()), ("W5_inline_pending", "futures"));
/// assert_eq!(w.run_with(4), w.expected(4)); // 0 + 1 + 2 + 3
/// ```
pub struct Workload {
    /// `W1_chain`, `W1_chain@rc_minimal`, ...
    pub name: &'static str,
    /// Operations per run: ns/op is a run's time divided by this.
    pub n: u64,
    expect: fn(u64) -> u64,
    run: Box<dyn Fn(u64) -> u64>,
}

impl Workload {
    /// Performs the workload's `n` operations once; returns its checksum.
    pub fn run(&self) -> u64 {
        (self.run)(self.n)
    }

    /// Performs the workload with another operation count (for tests).
    pub fn run_with(&self, n: u64) -> u64 {
        (self.run)(n)
    }

    /// The checksum a correct run with `n` operations returns.
    pub fn expected(&self, n: u64) -> u64 {
        (self.expect)(n)
    }

    /// The workload without its `@baseline` suffix: `W1_chain@box_floor` → `W1_chain`.
    pub fn workload(&self) -> &'static str {
        self.name.split('@').next().unwrap_or(self.name)
    }

    /// The implementation: `defer`, `rc_minimal`, `box_floor`, `futures` or `tokio`.
    pub fn implementation(&self) -> &'static str {
        self.name.split_once('@').map_or("defer", |(_, b)| b)
    }
}

fn count(n: u64) -> u64 {
    n
}

fn sum_below(n: u64) -> u64 {
    n * n.saturating_sub(1) / 2
}

/// Every workload, each followed by its baselines, in the order the binary prints them.
///
/// ```
/// let names: Vec<_> = defer_bench::workloads::all().iter().map(|w| w.name).collect();
/// assert_eq!(&names[..3], ["W1_chain", "W1_chain@rc_minimal", "W1_chain@box_floor"]);
/// ```
pub fn all() -> Vec<Workload> {
    let ex = Executors::new();
    let mut v = Vec::new();
    let mut add = |name, n, expect: fn(u64) -> u64, run: Box<dyn Fn(u64) -> u64>| {
        v.push(Workload {
            name,
            n,
            expect,
            run,
        })
    };
    let on_pool = |f: fn(&mut LocalPool, u64) -> u64| -> Box<dyn Fn(u64) -> u64> {
        let ex = ex.clone();
        Box::new(move |n| f(&mut ex.pool.borrow_mut(), n))
    };
    let on_tokio = |f: fn(&tokio::runtime::Runtime, u64) -> u64| -> Box<dyn Fn(u64) -> u64> {
        let ex = ex.clone();
        Box::new(move |n| f(&ex.rt, n))
    };

    add("W1_chain", N_CHAIN, count, Box::new(w1_chain));
    add(
        "W1_chain@rc_minimal",
        N_CHAIN,
        count,
        Box::new(w1_chain_rc_minimal),
    );
    add(
        "W1_chain@box_floor",
        N_CHAIN,
        count,
        Box::new(w1_chain_box_floor),
    );
    add("W1_chain_zst", N_CHAIN, count, Box::new(w1_chain_zst));
    add(
        "W1_chain_zst@rc_minimal",
        N_CHAIN,
        count,
        Box::new(w1_chain_zst_rc_minimal),
    );
    add(
        "W1_chain_zst@box_floor",
        N_CHAIN,
        count,
        Box::new(w1_chain_zst_box_floor),
    );
    add("W2_errback", N_CHAIN, count, Box::new(w2_errback));
    add(
        "W2_errback@rc_minimal",
        N_CHAIN,
        count,
        Box::new(w2_errback_rc_minimal),
    );
    add(
        "W2_errback@box_floor",
        N_CHAIN,
        count,
        Box::new(w2_errback_box_floor),
    );
    add("W3_nested_fired", N_CHAIN, count, Box::new(w3_nested_fired));
    add(
        "W3_nested_fired@rc_minimal",
        N_CHAIN,
        count,
        Box::new(w3_nested_fired_rc_minimal),
    );
    add(
        "W3_deep_pending_1000",
        N_CHAIN,
        count,
        Box::new(w3_deep_pending),
    );
    add(
        "W3_deep_pending_1000@rc_minimal",
        N_CHAIN,
        count,
        Box::new(w3_deep_pending_rc_minimal),
    );
    add(
        "W3_deep_pending_1000@futures",
        N_CHAIN,
        count,
        on_pool(w3_deep_pending_futures),
    );
    add(
        "W3_deep_pending_100000",
        N_DEEP,
        count,
        Box::new(w3_deep_pending),
    );
    add(
        "W3_deep_pending_100000@rc_minimal",
        N_DEEP,
        count,
        Box::new(w3_deep_pending_rc_minimal),
    );
    add(
        "W4_inline_fired",
        N_FIRED,
        sum_below,
        Box::new(w4_inline_fired),
    );
    add(
        "W4_inline_fired@futures",
        N_FIRED,
        sum_below,
        on_pool(fired_futures),
    );
    add(
        "W4_inline_fired@tokio",
        N_FIRED,
        sum_below,
        on_tokio(fired_tokio),
    );
    add(
        "W5_inline_pending",
        N_PENDING,
        sum_below,
        Box::new(w5_inline_pending),
    );
    add(
        "W5_inline_pending@futures",
        N_PENDING,
        sum_below,
        on_pool(pending_futures),
    );
    add(
        "W5_inline_pending@tokio",
        N_PENDING,
        sum_below,
        on_tokio(pending_tokio),
    );
    add("W6_coroutine", N_FIRED, sum_below, Box::new(w6_coroutine));
    add(
        "W6_coroutine@futures",
        N_FIRED,
        sum_below,
        on_pool(fired_futures),
    );
    add(
        "W6_coroutine@tokio",
        N_FIRED,
        sum_below,
        on_tokio(fired_tokio),
    );
    add(
        "W6b_coroutine_pending",
        N_PENDING,
        sum_below,
        Box::new(w6b_coroutine_pending),
    );
    add(
        "W6b_coroutine_pending@futures",
        N_PENDING,
        sum_below,
        on_pool(pending_futures),
    );
    add(
        "W6b_coroutine_pending@tokio",
        N_PENDING,
        sum_below,
        on_tokio(pending_tokio),
    );
    add("W7_gather", N_PENDING, sum_below, Box::new(w7_gather));
    add(
        "W7_gather@futures",
        N_PENDING,
        sum_below,
        on_pool(gather_futures),
    );
    add(
        "W7_gather@tokio",
        N_PENDING,
        sum_below,
        on_tokio(gather_tokio),
    );
    add(
        "X1_thread_round_trip",
        N_THREAD,
        sum_below,
        Box::new(x1_thread_round_trip),
    );
    add(
        "X1_thread_round_trip@tokio",
        N_THREAD,
        sum_below,
        on_tokio(thread_round_trip_tokio),
    );
    let mpsc_ex = ex.clone();
    add(
        "X1_thread_round_trip@mpsc",
        N_THREAD,
        sum_below,
        Box::new(move |n| thread_round_trip_mpsc(&mpsc_ex.mpsc, n)),
    );
    add(
        "X2_defer_to_thread",
        N_THREAD,
        sum_below,
        Box::new(x2_defer_to_thread),
    );
    add(
        "X2_defer_to_thread@tokio",
        N_THREAD,
        sum_below,
        on_tokio(defer_to_thread_tokio),
    );
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_computes_its_checksum() {
        for w in all() {
            for n in [1, 2, 37] {
                assert_eq!(w.run_with(n), w.expected(n), "{} with n = {n}", w.name);
            }
        }
    }

    #[test]
    fn deep_pending_100000_runs_without_recursion() {
        assert_eq!(w3_deep_pending(N_DEEP), N_DEEP);
        assert_eq!(w3_deep_pending_rc_minimal(N_DEEP), N_DEEP);
    }

    #[test]
    fn names_split_into_workload_and_implementation() {
        let all = all();
        let w = all
            .iter()
            .find(|w| w.name == "W7_gather@tokio")
            .expect("listed");
        assert_eq!((w.workload(), w.implementation()), ("W7_gather", "tokio"));
        let w = all.iter().find(|w| w.name == "W1_chain").expect("listed");
        assert_eq!((w.workload(), w.implementation()), ("W1_chain", "defer"));
    }
}
