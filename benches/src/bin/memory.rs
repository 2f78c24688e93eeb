//! Bytes per pending unit (issue 11): this library's pending Deferreds, suspended coroutines and
//! gathered inputs beside the same shapes built from `futures` and tokio.
//!
//! ```text
//! cargo run --release -p defer-bench --bin memory [--units N] [--group G] [--markdown]
//! ```
//!
//! Each shape is built `N` times (default 10⁶) and all `N` units are alive at once. A global
//! allocator wrapped around the system one keeps the live heap: bytes as requested (the
//! `Layout`'s size, not what malloc rounds it up to), blocks, and the live blocks by requested
//! size. A snapshot is taken after the executor and the vectors that hold the units (with their
//! capacity reserved) exist, and another when all `N` units are built and pending; the difference
//! divided by `N` is a unit's heap cost (`heap`), and the difference by size its histogram. The
//! vectors' buffers are not charged to the units, but the handles a user would keep for each
//! unit (its Deferred and trigger, a sender, a join handle, a future held in place) are: the
//! `inline` column is their `size_of`, and `bytes` = `heap` + `inline`, the figure issue 11
//! compares. After the snapshot every unit is fired and its result checked, so no unit is a
//! dead husk.
//!
//! The shapes:
//!
//! - S1: a pending Deferred with one step capturing a `u64`, and its trigger. Peers: a `futures`
//!   oneshot whose receiver a `LocalPool` task awaits (then adds the `u64`); a tokio oneshot
//!   awaited by a `spawn_local` task in a `LocalSet`; a `futures` oneshot's `rx.map(..)` polled
//!   once by hand (no executor, a no-op waker), held in a `Vec`.
//! - S2: a suspended coroutine awaiting its own pending Deferred (`#[inline_callbacks]` with
//!   `yield_!(d)`, and `ensure_deferred(async move { d.await })`), keeping the coroutine's
//!   Deferred and the awaited one's trigger. Peers: the same task as in S1 but its result kept
//!   through a handle (`futures`: `spawn_local_with_handle`'s `RemoteHandle`; tokio: the
//!   `JoinHandle`), and a boxed `async` block awaiting a oneshot, polled once by hand.
//! - S3: `gather_results` over groups of `G` (default 100) pending Deferreds, per input, keeping
//!   the triggers and each group's gathered Deferred. Peers: `join_all` of `G` oneshot receivers
//!   in a `LocalPool` task, in a tokio `spawn_local` task, and polled once by hand.
//!
//! The tasks of the executor peers are detached (S1, S3) and store their result in a
//! thread-local sum, which costs nothing per task. Blocks above 4 KiB (the executors' and
//! harness's growing queues and vectors) are shown in the histogram as one amortised entry.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::{Future, IntoFuture};
use std::mem::size_of;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::{Context, Poll, Waker};

use defer_core::testing::success_result_of;
use defer_core::{
    Deferred, DeferredFuture, Failure, Trigger, ensure_deferred, gather_results, inline_callbacks,
    yield_,
};
use futures::FutureExt;
use futures::channel::oneshot as fo;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;
use tokio::sync::oneshot as to;

// ---------------------------------------------------------------------------------------------
// The counting allocator.
// ---------------------------------------------------------------------------------------------

/// Requested sizes up to this many bytes get a histogram slot of their own; larger blocks are
/// lumped together (they are the growing buffers of queues and vectors).
const HIST_MAX: usize = 4096;

/// Counts the live heap and forwards the work to [`System`].
struct CountingAlloc;

static LIVE_BYTES: AtomicI64 = AtomicI64::new(0);
static LIVE_BLOCKS: AtomicI64 = AtomicI64::new(0);
/// Live blocks by requested size; slot `HIST_MAX + 1` counts the larger ones.
static HIST: [AtomicI64; HIST_MAX + 2] = [const { AtomicI64::new(0) }; HIST_MAX + 2];
/// Live bytes in blocks larger than `HIST_MAX`.
static LARGE_BYTES: AtomicI64 = AtomicI64::new(0);

fn note(size: usize, blocks: i64) {
    let bytes = size as i64 * blocks;
    LIVE_BYTES.fetch_add(bytes, Ordering::Relaxed);
    LIVE_BLOCKS.fetch_add(blocks, Ordering::Relaxed);
    if size <= HIST_MAX {
        HIST[size].fetch_add(blocks, Ordering::Relaxed);
    } else {
        HIST[HIST_MAX + 1].fetch_add(blocks, Ordering::Relaxed);
        LARGE_BYTES.fetch_add(bytes, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract, and returns its result unchanged; the bookkeeping is relaxed atomic
// arithmetic on statics, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `alloc` (a non-zero size) are passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size(), 1);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size(), 1);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this allocator) with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        note(layout.size(), -1);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` was allocated by `System` with `layout`; `new_size` comes with the
        // caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(layout.size(), -1);
            note(new_size, 1);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// The allocator's counters at one moment. Its buffer is allocated once, up front, so taking a
/// snapshot allocates nothing.
struct Snapshot {
    bytes: i64,
    blocks: i64,
    large_bytes: i64,
    hist: Vec<i64>,
}

impl Snapshot {
    fn new() -> Snapshot {
        Snapshot {
            bytes: 0,
            blocks: 0,
            large_bytes: 0,
            hist: vec![0; HIST_MAX + 2],
        }
    }

    fn take(&mut self) {
        self.bytes = LIVE_BYTES.load(Ordering::SeqCst);
        self.blocks = LIVE_BLOCKS.load(Ordering::SeqCst);
        self.large_bytes = LARGE_BYTES.load(Ordering::SeqCst);
        for (slot, h) in self.hist.iter_mut().zip(HIST.iter()) {
            *slot = h.load(Ordering::SeqCst);
        }
    }
}

/// The two snapshots around the building of the units. A case calls [`Probe::start`] once its
/// executor and its vectors (capacity reserved) exist, and [`Probe::stop`] once all units are
/// built and pending.
struct Probe {
    before: Snapshot,
    after: Snapshot,
}

impl Probe {
    fn new() -> Probe {
        Probe {
            before: Snapshot::new(),
            after: Snapshot::new(),
        }
    }

    fn start(&mut self) {
        self.before.take();
    }

    fn stop(&mut self) {
        self.after.take();
    }
}

// ---------------------------------------------------------------------------------------------
// The cases.
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// Where the detached peer tasks put their results, so that the check can see them.
    static SUM: Cell<u64> = const { Cell::new(0) };
}

fn add_to_sum(x: u64) {
    SUM.with(|s| s.set(s.get().wrapping_add(x)));
}

fn take_sum() -> u64 {
    SUM.with(|s| s.replace(0))
}

/// The value every unit's trigger is fired with: the checks expect `Σ (FIRE + k)`.
const FIRE: u64 = 1000;

/// The sum the units `k = 0..n` give when each is fired with [`FIRE`] and adds its `k`.
fn expected(n: usize) -> u64 {
    let n = n as u64;
    n * FIRE + n * (n - 1) / 2
}

/// What a case reports: bytes held inline per unit, and whether the fired units gave the
/// expected sum.
struct Built {
    inline: f64,
    checked: bool,
}

/// One implementation of one shape.
struct Case {
    shape: &'static str,
    implementation: &'static str,
    /// Builds `n` units (`group` inputs per gather in S3) between the probe's two snapshots,
    /// then fires them and checks the results.
    run: fn(n: usize, group: usize, probe: &mut Probe) -> Built,
}

/// Polls `f` once with a no-op waker.
fn poll_once<F: Future + ?Sized>(f: Pin<&mut F>) -> Poll<F::Output> {
    f.poll(&mut Context::from_waker(Waker::noop()))
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

/// Runs `local`'s tasks until every task spawned so far has been polled: a last task is
/// spawned and awaited, and the `LocalSet` runs its tasks in the order they were spawned.
fn poll_all_spawned(rt: &tokio::runtime::Runtime, local: &tokio::task::LocalSet) {
    let last = local.spawn_local(async {});
    local.block_on(rt, last).expect("the last task ran");
}

/// Runs `local` until the thread-local sum reaches `want` (or clearly never will).
fn run_until_sum(rt: &tokio::runtime::Runtime, local: &tokio::task::LocalSet, want: u64) -> bool {
    local.block_on(rt, async {
        for _ in 0..10_000_000u64 {
            if SUM.with(Cell::get) == want {
                return true;
            }
            tokio::task::yield_now().await;
        }
        false
    })
}

// S1 ------------------------------------------------------------------------------------------

fn s1_defer(n: usize, _: usize, probe: &mut Probe) -> Built {
    let mut units: Vec<(Deferred<u64>, Trigger<u64>)> = Vec::with_capacity(n);
    probe.start();
    for k in 0..n as u64 {
        let (d, t) = Deferred::new();
        let d = d.add_callback(move |x: u64| Ok::<u64, Failure>(x + k));
        units.push((d, t));
    }
    probe.stop();
    let mut sum = 0u64;
    for (d, t) in units {
        t.callback(FIRE);
        sum += success_result_of(d);
    }
    Built {
        inline: size_of::<(Deferred<u64>, Trigger<u64>)>() as f64,
        checked: sum == expected(n),
    }
}

fn s1_futures(n: usize, _: usize, probe: &mut Probe) -> Built {
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let mut txs: Vec<fo::Sender<u64>> = Vec::with_capacity(n);
    probe.start();
    for k in 0..n as u64 {
        let (tx, rx) = fo::channel::<u64>();
        spawner
            .spawn_local(async move { add_to_sum(rx.await.expect("sent") + k) })
            .expect("spawn");
        txs.push(tx);
    }
    pool.run_until_stalled();
    probe.stop();
    for tx in txs {
        tx.send(FIRE).expect("the task waits");
    }
    pool.run_until_stalled();
    Built {
        inline: size_of::<fo::Sender<u64>>() as f64,
        checked: take_sum() == expected(n),
    }
}

fn s1_tokio(n: usize, _: usize, probe: &mut Probe) -> Built {
    let rt = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    let mut txs: Vec<to::Sender<u64>> = Vec::with_capacity(n);
    probe.start();
    for k in 0..n as u64 {
        let (tx, rx) = to::channel::<u64>();
        drop(local.spawn_local(async move { add_to_sum(rx.await.expect("sent") + k) }));
        txs.push(tx);
    }
    poll_all_spawned(&rt, &local);
    probe.stop();
    for tx in txs {
        tx.send(FIRE).expect("the task waits");
    }
    let checked = run_until_sum(&rt, &local, expected(n));
    take_sum();
    Built {
        inline: size_of::<to::Sender<u64>>() as f64,
        checked,
    }
}

fn s1_by_hand(n: usize, _: usize, probe: &mut Probe) -> Built {
    fn unit(k: u64) -> (fo::Sender<u64>, impl Future<Output = u64> + Unpin) {
        let (tx, rx) = fo::channel::<u64>();
        (tx, rx.map(move |r| r.expect("sent") + k))
    }
    let mut units = Vec::with_capacity(n);
    probe.start();
    for k in 0..n as u64 {
        units.push(unit(k));
        let (_, f) = units.last_mut().expect("just pushed");
        assert!(poll_once(Pin::new(f)).is_pending());
    }
    probe.stop();
    let inline = size_of_val(&units[0]) as f64;
    let mut sum = 0;
    for (tx, mut f) in units {
        tx.send(FIRE).expect("the future waits");
        match poll_once(Pin::new(&mut f)) {
            Poll::Ready(x) => sum += x,
            Poll::Pending => {
                return Built {
                    inline,
                    checked: false,
                };
            }
        }
    }
    Built {
        inline,
        checked: sum == expected(n),
    }
}

// S2 ------------------------------------------------------------------------------------------

#[inline_callbacks]
fn s2_inline_body(d: Deferred<u64>, k: u64) -> Deferred<u64> {
    let x = yield_!(d)?;
    Ok(x + k)
}

fn s2_defer_with(
    n: usize,
    probe: &mut Probe,
    coroutine: impl Fn(Deferred<u64>, u64) -> Deferred<u64>,
) -> Built {
    let mut units: Vec<(Deferred<u64>, Trigger<u64>)> = Vec::with_capacity(n);
    probe.start();
    for k in 0..n as u64 {
        let (d, t) = Deferred::new();
        units.push((coroutine(d, k), t));
    }
    probe.stop();
    let mut sum = 0u64;
    for (d, t) in units {
        t.callback(FIRE);
        sum += success_result_of(d);
    }
    Built {
        inline: size_of::<(Deferred<u64>, Trigger<u64>)>() as f64,
        checked: sum == expected(n),
    }
}

fn s2_inline_callbacks(n: usize, _: usize, probe: &mut Probe) -> Built {
    s2_defer_with(n, probe, s2_inline_body)
}

fn s2_ensure_deferred(n: usize, _: usize, probe: &mut Probe) -> Built {
    s2_defer_with(n, probe, |d, k| {
        ensure_deferred(async move { Ok(d.await? + k) })
    })
}

fn s2_futures(n: usize, _: usize, probe: &mut Probe) -> Built {
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let mut units = Vec::with_capacity(n);
    probe.start();
    for k in 0..n as u64 {
        let (tx, rx) = fo::channel::<u64>();
        let handle = spawner
            .spawn_local_with_handle(async move { rx.await.expect("sent") + k })
            .expect("spawn");
        units.push((tx, handle));
    }
    pool.run_until_stalled();
    probe.stop();
    let inline = size_of_val(&units[0]) as f64;
    let mut handles = Vec::with_capacity(n);
    for (tx, handle) in units {
        tx.send(FIRE).expect("the task waits");
        handles.push(handle);
    }
    pool.run_until_stalled();
    let mut sum = 0;
    for h in handles {
        match h.now_or_never() {
            Some(x) => sum += x,
            None => {
                return Built {
                    inline,
                    checked: false,
                };
            }
        }
    }
    Built {
        inline,
        checked: sum == expected(n),
    }
}

fn s2_tokio(n: usize, _: usize, probe: &mut Probe) -> Built {
    let rt = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    let mut units = Vec::with_capacity(n);
    probe.start();
    for k in 0..n as u64 {
        let (tx, rx) = to::channel::<u64>();
        let handle = local.spawn_local(async move { rx.await.expect("sent") + k });
        units.push((tx, handle));
    }
    poll_all_spawned(&rt, &local);
    probe.stop();
    let inline = size_of_val(&units[0]) as f64;
    let sum = local.block_on(&rt, async move {
        let mut handles = Vec::with_capacity(n);
        for (tx, handle) in units {
            tx.send(FIRE).expect("the task waits");
            handles.push(handle);
        }
        let mut sum = 0;
        for h in handles {
            sum += h.await.expect("the task finished");
        }
        sum
    });
    Built {
        inline,
        checked: sum == expected(n),
    }
}

fn s2_by_hand(n: usize, _: usize, probe: &mut Probe) -> Built {
    // An `async` block is not `Unpin`: held in a collection, it is boxed.
    fn unit(k: u64) -> (fo::Sender<u64>, Pin<Box<impl Future<Output = u64>>>) {
        let (tx, rx) = fo::channel::<u64>();
        (tx, Box::pin(async move { rx.await.expect("sent") + k }))
    }
    let mut units = Vec::with_capacity(n);
    probe.start();
    for k in 0..n as u64 {
        units.push(unit(k));
        let (_, f) = units.last_mut().expect("just pushed");
        assert!(poll_once(f.as_mut()).is_pending());
    }
    probe.stop();
    let inline = size_of_val(&units[0]) as f64;
    let mut sum = 0;
    for (tx, mut f) in units {
        tx.send(FIRE).expect("the future waits");
        match poll_once(f.as_mut()) {
            Poll::Ready(x) => sum += x,
            Poll::Pending => {
                return Built {
                    inline,
                    checked: false,
                };
            }
        }
    }
    Built {
        inline,
        checked: sum == expected(n),
    }
}

// S3 ------------------------------------------------------------------------------------------

/// The number of groups `n` inputs make, `group` to a group (the last one may be smaller).
fn groups(n: usize, group: usize) -> usize {
    n.div_ceil(group)
}

/// The inputs `lo..hi` of a group, as `k` values.
fn group_range(g: usize, n: usize, group: usize) -> std::ops::Range<u64> {
    let lo = g * group;
    (lo as u64)..(n.min(lo + group) as u64)
}

fn s3_defer(n: usize, group: usize, probe: &mut Probe) -> Built {
    let mut triggers: Vec<(Trigger<u64>, u64)> = Vec::with_capacity(n);
    let mut gathers: Vec<Deferred<Vec<u64>>> = Vec::with_capacity(groups(n, group));
    probe.start();
    for g in 0..groups(n, group) {
        let mut inputs = Vec::with_capacity(group);
        for k in group_range(g, n, group) {
            let (d, t) = Deferred::new();
            inputs.push(d);
            triggers.push((t, k));
        }
        gathers.push(gather_results(inputs));
    }
    probe.stop();
    for (t, k) in triggers {
        t.callback(FIRE + k);
    }
    let sum: u64 = gathers
        .into_iter()
        .map(|d| success_result_of(d).iter().sum::<u64>())
        .sum();
    Built {
        inline: size_of::<Trigger<u64>>() as f64
            + size_of::<Deferred<Vec<u64>>>() as f64 / group as f64,
        checked: sum == expected(n),
    }
}

fn s3_futures(n: usize, group: usize, probe: &mut Probe) -> Built {
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let mut txs: Vec<(fo::Sender<u64>, u64)> = Vec::with_capacity(n);
    probe.start();
    for g in 0..groups(n, group) {
        let mut rxs = Vec::with_capacity(group);
        for k in group_range(g, n, group) {
            let (tx, rx) = fo::channel::<u64>();
            rxs.push(rx);
            txs.push((tx, k));
        }
        spawner
            .spawn_local(async move {
                let all = futures::future::join_all(rxs).await;
                add_to_sum(all.into_iter().map(|r| r.expect("sent")).sum());
            })
            .expect("spawn");
    }
    pool.run_until_stalled();
    probe.stop();
    for (tx, k) in txs {
        tx.send(FIRE + k).expect("the task waits");
    }
    pool.run_until_stalled();
    Built {
        inline: size_of::<fo::Sender<u64>>() as f64,
        checked: take_sum() == expected(n),
    }
}

fn s3_tokio(n: usize, group: usize, probe: &mut Probe) -> Built {
    let rt = current_thread_runtime();
    let local = tokio::task::LocalSet::new();
    let mut txs: Vec<(to::Sender<u64>, u64)> = Vec::with_capacity(n);
    probe.start();
    for g in 0..groups(n, group) {
        let mut rxs = Vec::with_capacity(group);
        for k in group_range(g, n, group) {
            let (tx, rx) = to::channel::<u64>();
            rxs.push(rx);
            txs.push((tx, k));
        }
        drop(local.spawn_local(async move {
            let all = futures::future::join_all(rxs).await;
            add_to_sum(all.into_iter().map(|r| r.expect("sent")).sum());
        }));
    }
    poll_all_spawned(&rt, &local);
    probe.stop();
    for (tx, k) in txs {
        tx.send(FIRE + k).expect("the task waits");
    }
    let checked = run_until_sum(&rt, &local, expected(n));
    take_sum();
    Built {
        inline: size_of::<to::Sender<u64>>() as f64,
        checked,
    }
}

fn s3_by_hand(n: usize, group: usize, probe: &mut Probe) -> Built {
    fn gather(
        ks: std::ops::Range<u64>,
        txs: &mut Vec<(fo::Sender<u64>, u64)>,
    ) -> futures::future::JoinAll<fo::Receiver<u64>> {
        let mut rxs = Vec::with_capacity(ks.end.saturating_sub(ks.start) as usize);
        for k in ks {
            let (tx, rx) = fo::channel::<u64>();
            rxs.push(rx);
            txs.push((tx, k));
        }
        futures::future::join_all(rxs)
    }
    let mut txs: Vec<(fo::Sender<u64>, u64)> = Vec::with_capacity(n);
    let mut gathers = Vec::with_capacity(groups(n, group));
    probe.start();
    for g in 0..groups(n, group) {
        gathers.push(gather(group_range(g, n, group), &mut txs));
        let f = gathers.last_mut().expect("just pushed");
        assert!(poll_once(Pin::new(f)).is_pending());
    }
    probe.stop();
    let inline =
        size_of::<fo::Sender<u64>>() as f64 + size_of_val(&gathers[0]) as f64 / group as f64;
    for (tx, k) in txs {
        tx.send(FIRE + k).expect("the gather waits");
    }
    let mut sum = 0;
    for mut f in gathers {
        match poll_once(Pin::new(&mut f)) {
            Poll::Ready(v) => sum += v.into_iter().map(|r| r.expect("sent")).sum::<u64>(),
            Poll::Pending => {
                return Built {
                    inline,
                    checked: false,
                };
            }
        }
    }
    Built {
        inline,
        checked: sum == expected(n),
    }
}

const CASES: &[Case] = &[
    Case {
        shape: "S1",
        implementation: "defer",
        run: s1_defer,
    },
    Case {
        shape: "S1",
        implementation: "futures LocalPool task (detached)",
        run: s1_futures,
    },
    Case {
        shape: "S1",
        implementation: "tokio spawn_local task (detached)",
        run: s1_tokio,
    },
    Case {
        shape: "S1",
        implementation: "futures rx.map polled by hand",
        run: s1_by_hand,
    },
    Case {
        shape: "S2",
        implementation: "defer #[inline_callbacks]",
        run: s2_inline_callbacks,
    },
    Case {
        shape: "S2",
        implementation: "defer ensure_deferred",
        run: s2_ensure_deferred,
    },
    Case {
        shape: "S2",
        implementation: "futures LocalPool task (detached)",
        run: s1_futures,
    },
    Case {
        shape: "S2",
        implementation: "futures LocalPool task + RemoteHandle",
        run: s2_futures,
    },
    Case {
        shape: "S2",
        implementation: "tokio spawn_local task + JoinHandle",
        run: s2_tokio,
    },
    Case {
        shape: "S2",
        implementation: "futures Box::pin(async) polled by hand",
        run: s2_by_hand,
    },
    Case {
        shape: "S3",
        implementation: "defer gather_results",
        run: s3_defer,
    },
    Case {
        shape: "S3",
        implementation: "futures join_all in a LocalPool task",
        run: s3_futures,
    },
    Case {
        shape: "S3",
        implementation: "tokio join_all in a spawn_local task",
        run: s3_tokio,
    },
    Case {
        shape: "S3",
        implementation: "futures join_all polled by hand",
        run: s3_by_hand,
    },
];

// ---------------------------------------------------------------------------------------------
// Measuring and printing.
// ---------------------------------------------------------------------------------------------

/// One case's result, per unit.
struct Row {
    shape: &'static str,
    implementation: &'static str,
    bytes: f64,
    blocks: f64,
    inline: f64,
    /// (requested size, live blocks of that size per unit), ascending by size.
    hist: Vec<(usize, f64)>,
    /// Bytes per unit in blocks larger than [`HIST_MAX`].
    large: f64,
    checked: bool,
}

/// A histogram entry is shown when it holds at least this many bytes per unit (or this many
/// hundredths of a block).
const SHOWN: f64 = 0.5;

fn measure(case: &Case, n: usize, group: usize) -> Row {
    // Each case on a thread of its own: what the library keeps per thread and grows with the
    // units (the coroutine registry's slots, say) is charged to the case that grows it, not left
    // grown for the next one.
    std::thread::scope(|s| {
        s.spawn(|| measure_here(case, n, group))
            .join()
            .expect("a measurement panicked")
    })
}

fn measure_here(case: &Case, n: usize, group: usize) -> Row {
    // A warm-up run first, so lazily initialised thread-local state is not charged to the units.
    let mut probe = Probe::new();
    (case.run)(n.clamp(1, 1000), group, &mut probe);
    let mut probe = Probe::new();
    let built = (case.run)(n, group, &mut probe);
    let (b, a) = (&probe.before, &probe.after);
    let per = |x: i64| x as f64 / n as f64;
    let hist = (1..=HIST_MAX)
        .filter_map(|size| {
            let count = per(a.hist[size] - b.hist[size]);
            (count.abs() * size as f64 >= SHOWN || count.abs() >= SHOWN / 50.0)
                .then_some((size, count))
        })
        .collect();
    Row {
        shape: case.shape,
        implementation: case.implementation,
        bytes: per(a.bytes - b.bytes),
        blocks: per(a.blocks - b.blocks),
        inline: built.inline,
        hist,
        large: per(a.large_bytes - b.large_bytes),
        checked: built.checked,
    }
}

fn histogram(row: &Row) -> String {
    let mut parts: Vec<String> = row
        .hist
        .iter()
        .map(|&(size, count)| {
            if (count - count.round()).abs() < 0.005 {
                format!("{size}×{}", count.round())
            } else {
                format!("{size}×{count:.2}")
            }
        })
        .collect();
    if row.large.abs() >= SHOWN {
        parts.push(format!(">4K: {:.1} B", row.large));
    }
    let shown: f64 = row.hist.iter().map(|&(s, c)| s as f64 * c).sum::<f64>() + row.large;
    let rest = row.bytes - shown;
    if rest.abs() >= SHOWN {
        parts.push(format!("other: {rest:.1} B"));
    }
    parts.join(", ")
}

fn print_text(rows: &[Row], n: usize, group: usize) {
    println!(
        "bytes per pending unit, {n} units each, live heap (requested sizes); S3 per input, {group} inputs per gather"
    );
    println!();
    println!(
        "{:<3} {:<40} {:>7} {:>7} {:>7} {:>7}  heap histogram (requested size × blocks per unit)",
        "", "implementation", "bytes", "heap", "blocks", "inline"
    );
    for r in rows {
        println!(
            "{:<3} {:<40} {:>7.0} {:>7.1} {:>7.2} {:>7.1}  {}{}",
            r.shape,
            r.implementation,
            r.bytes + r.inline,
            r.bytes,
            r.blocks,
            r.inline,
            histogram(r),
            if r.checked { "" } else { "  CHECK FAILED" }
        );
    }
}

fn print_markdown(rows: &[Row]) {
    println!(
        "| shape | implementation | bytes/unit | heap bytes | heap blocks | handles held | heap blocks by requested size (size×count per unit) |"
    );
    println!("|---|---|---:|---:|---:|---:|---|");
    for r in rows {
        println!(
            "| {} | {} | **{:.0}** | {:.1} | {:.2} | {:.1} | {}{} |",
            r.shape,
            r.implementation,
            r.bytes + r.inline,
            r.bytes,
            r.blocks,
            r.inline,
            histogram(r),
            if r.checked { "" } else { " (check failed)" }
        );
    }
}

fn print_sizes(markdown: bool) {
    let sizes: &[(&str, usize)] = &[
        ("defer_core::Deferred<u64>", size_of::<Deferred<u64>>()),
        ("defer_core::Trigger<u64>", size_of::<Trigger<u64>>()),
        (
            "defer_core::DeferredFuture<u64>",
            size_of::<DeferredFuture<u64>>(),
        ),
        (
            "<Deferred<u64> as IntoFuture>::IntoFuture",
            size_of::<<Deferred<u64> as IntoFuture>::IntoFuture>(),
        ),
        (
            "futures::channel::oneshot::Sender<u64>",
            size_of::<fo::Sender<u64>>(),
        ),
        (
            "futures::channel::oneshot::Receiver<u64>",
            size_of::<fo::Receiver<u64>>(),
        ),
        (
            "futures::future::RemoteHandle<u64>",
            size_of::<futures::future::RemoteHandle<u64>>(),
        ),
        (
            "tokio::sync::oneshot::Sender<u64>",
            size_of::<to::Sender<u64>>(),
        ),
        (
            "tokio::sync::oneshot::Receiver<u64>",
            size_of::<to::Receiver<u64>>(),
        ),
        (
            "tokio::task::JoinHandle<u64>",
            size_of::<tokio::task::JoinHandle<u64>>(),
        ),
    ];
    println!();
    if markdown {
        println!("| type | `size_of` |");
        println!("|---|---:|");
        for (name, size) in sizes {
            println!("| `{name}` | {size} |");
        }
    } else {
        for (name, size) in sizes {
            println!("size_of {name:<55} {size:>4}");
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: memory [--units N] [--group G] [--markdown] [FILTER ...]");
    std::process::exit(2)
}

fn main() {
    let mut n = 1_000_000usize;
    let mut group = 100usize;
    let mut markdown = false;
    let mut filters = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--units" => {
                n = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--group" => {
                group = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| usage())
            }
            "--markdown" => markdown = true,
            "-h" | "--help" => usage(),
            f if f.starts_with('-') => usage(),
            f => filters.push(f.to_owned()),
        }
    }
    if n == 0 || group == 0 {
        usage();
    }
    let mut rows = Vec::new();
    for case in CASES {
        let name = format!("{} {}", case.shape, case.implementation);
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        eprintln!("measuring {name}");
        rows.push(measure(case, n, group));
    }
    if markdown {
        print_markdown(&rows);
    } else {
        print_text(&rows, n, group);
    }
    print_sizes(markdown);
    if rows.iter().any(|r| !r.checked) {
        eprintln!("some units did not give the expected results");
        std::process::exit(1);
    }
}
