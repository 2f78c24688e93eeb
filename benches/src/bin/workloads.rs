//! The workloads W1–W7 beside their baselines, timed, then with their allocations counted.
//!
//! ```text
//! cargo run --release -p defer-bench --bin workloads [FILTER ...] [--exact] [--wall]
//!     [--markdown] [--budget-ms MS] [--runs K]
//! ```
//!
//! Prints one `name ns_per_op` line per workload: the median of many samples, each a batch of
//! runs of about 2 ms, taken after a warm-up in five rounds over all the workloads (so a burst of
//! load elsewhere hits them alike), `MS` (default 1000) of sampling per workload. Samples are
//! timed in this thread's CPU time, so time the machine gave to other processes is not counted;
//! `--wall` times them by the wall clock instead.
//!
//! Then one `allocs_<name> N` line per workload: heap allocations per operation in one run,
//! counted by a global allocator wrapped around the system one (`alloc`, `alloc_zeroed` and
//! `realloc` each count one). Two extra lines give what making a fired Deferred
//! (`allocs_succeed`) and a pending one with its trigger (`allocs_Deferred_new`) allocates, so the
//! share of an `.await` itself can be read off. Notes go to stderr; stdout holds only those lines.
//! Every workload's checksum is checked against its expected value before it is timed.
//!
//! A FILTER selects the workloads whose name contains it (equals it, with `--exact`).
//! `--markdown` prints the same measurements as the tables of `BENCHMARKS.md` instead: each
//! workload beside its baselines with the ratios, then the time targets, met or missed. `--runs K`
//! only runs each selected workload K times, untimed, for a profiler: under
//! `valgrind --tool=callgrind`, (instructions with K = 12 − with K = 4) / (8 n) is the steady-state
//! instruction count per operation (`benches/callgrind.sh` does that).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use defer_bench::workloads::{self, Workload};

/// Counts allocator calls that obtain memory while [`COUNTING`] is set.
struct CountingAlloc;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

#[inline]
fn note_alloc() {
    if COUNTING.load(Ordering::Relaxed) {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards its arguments unchanged to `System`, which upholds the
// `GlobalAlloc` contract; the only addition is a relaxed atomic load and increment, which
// neither allocate nor unwind.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: the caller's guarantees for `alloc` (non-zero size layout) are passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_alloc();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through this allocator) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_alloc();
        // SAFETY: `ptr` was allocated by `System` with `layout`; `new_size` is the caller's,
        // with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

/// Allocations made by `f`.
fn count_allocs<R>(f: impl FnOnce() -> R) -> (u64, R) {
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    let r = f();
    COUNTING.store(false, Ordering::SeqCst);
    (ALLOCS.load(Ordering::Relaxed), r)
}

/// Rounds over all workloads: each round gives every workload `budget / ROUNDS` of sampling, so
/// that a burst of load from elsewhere on the machine hits every workload alike.
const ROUNDS: u32 = 5;

/// Runs `w` for a quarter of `budget` and returns the batch size that makes one sample last about
/// 2 ms, long enough for the clock's resolution not to matter.
fn warm_up(w: &Workload, budget: Duration) -> u32 {
    let until = Instant::now() + budget / 4;
    let started = Instant::now();
    let mut runs = 0u32;
    while runs < 3 || Instant::now() < until {
        black_box(w.run());
        runs += 1;
    }
    let per_run = started.elapsed() / runs;
    (Duration::from_millis(2).as_nanos() / per_run.as_nanos().max(1)).clamp(1, 10_000) as u32
}

/// The clock a sample is timed with.
#[derive(Clone, Copy)]
enum Clock {
    /// This thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`): time the thread was descheduled in
    /// favour of other processes on a shared machine is not counted.
    ThreadCpu,
    /// Wall-clock time.
    Wall,
}

impl Clock {
    fn now(self, epoch: Instant) -> Duration {
        match self {
            Clock::ThreadCpu => cpu_time::ThreadTime::now().as_duration(),
            Clock::Wall => epoch.elapsed(),
        }
    }
}

/// Adds samples of ns per operation, one per batch of `batch` runs, for `time` of wall-clock
/// time (at least 2).
fn sample(w: &Workload, batch: u32, time: Duration, clock: Clock, into: &mut Vec<f64>) {
    let epoch = Instant::now();
    let end = epoch + time;
    let mut taken = 0;
    while taken < 2 || Instant::now() < end {
        let t = clock.now(epoch);
        for _ in 0..batch {
            black_box(w.run());
        }
        let ns = (clock.now(epoch) - t).as_nanos() as f64;
        into.push(ns / (f64::from(batch) * w.n as f64));
        taken += 1;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `--markdown`: the results and the targets as the tables of `BENCHMARKS.md`.
fn print_markdown(all: &[Workload], lines: &[(String, f64)]) {
    let get = |name: &str| lines.iter().find(|(n, _)| n == name).map(|&(_, v)| v);
    println!("| workload | ns/op | allocs/op | baseline | ns/op | allocs/op | ratio |");
    println!("|---|---:|---:|---|---:|---:|---:|");
    for w in all.iter().filter(|w| w.implementation() == "defer") {
        let (Some(ns), Some(allocs)) = (get(w.name), get(&format!("allocs_{}", w.name))) else {
            continue;
        };
        let mut first = true;
        for b in all
            .iter()
            .filter(|b| b.workload() == w.name && b.name != w.name)
        {
            let (Some(bns), Some(ballocs)) = (get(b.name), get(&format!("allocs_{}", b.name)))
            else {
                continue;
            };
            let (label, ns, allocs) = if first {
                (w.name, format!("{ns:.1}"), format!("{allocs:.2}"))
            } else {
                ("", String::new(), String::new())
            };
            first = false;
            println!(
                "| {label} | {ns} | {allocs} | @{} | {bns:.1} | {ballocs:.2} | {:.2}× |",
                b.implementation(),
                get(w.name).unwrap_or(f64::NAN) / bns
            );
        }
    }
    println!();
    println!("| target | ratio | |");
    println!("|---|---:|---|");
    for t in workloads::TARGETS {
        if let (Some(a), Some(b)) = (get(t.workload), get(t.against)) {
            let ratio = a / b;
            let verdict = if ratio <= t.max { "met" } else { "missed" };
            println!(
                "| {} ≤ {}× {} | {ratio:.2}× | {verdict} |",
                t.workload, t.max, t.against
            );
        }
    }
}

fn main() {
    let mut filters = Vec::new();
    let mut budget = Duration::from_millis(1000);
    let mut runs: Option<u32> = None;
    let mut exact = false;
    let mut clock = Clock::ThreadCpu;
    let mut markdown = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--budget-ms" {
            let ms = args
                .next()
                .and_then(|s| s.parse().ok())
                .expect("--budget-ms takes a number of milliseconds");
            budget = Duration::from_millis(ms);
        } else if a == "--wall" {
            clock = Clock::Wall;
        } else if a == "--markdown" {
            markdown = true;
        } else if a == "--exact" {
            exact = true;
        } else if a == "--runs" {
            runs = Some(
                args.next()
                    .and_then(|s| s.parse().ok())
                    .expect("--runs takes a number"),
            );
        } else {
            filters.push(a);
        }
    }
    let all: Vec<Workload> = workloads::all()
        .into_iter()
        .filter(|w| {
            filters.is_empty()
                || filters.iter().any(|f| {
                    if exact {
                        w.name == f.as_str()
                    } else {
                        w.name.contains(f.as_str())
                    }
                })
        })
        .collect();

    if let Some(k) = runs {
        for w in &all {
            for _ in 0..k {
                black_box(w.run());
            }
        }
        return;
    }
    let t0 = Instant::now();
    let mut batches = Vec::new();
    for w in &all {
        let got = w.run();
        assert_eq!(got, w.expected(w.n), "{} computed a wrong checksum", w.name);
        batches.push(warm_up(w, budget));
    }
    let mut samples = vec![Vec::new(); all.len()];
    for _ in 0..ROUNDS {
        for ((w, &batch), into) in all.iter().zip(&batches).zip(&mut samples) {
            sample(w, batch, budget / ROUNDS, clock, into);
        }
    }
    let mut lines: Vec<(String, f64)> = Vec::new();
    for (w, s) in all.iter().zip(samples) {
        lines.push((w.name.to_owned(), median(s)));
    }
    for w in &all {
        // One run first, so that lazily made thread-locals and executor buffers are not counted.
        black_box(w.run());
        let (allocs, got) = count_allocs(|| w.run());
        assert_eq!(got, w.expected(w.n), "{} computed a wrong checksum", w.name);
        lines.push((format!("allocs_{}", w.name), allocs as f64 / w.n as f64));
    }
    if filters.is_empty() {
        const K: u64 = 10_000;
        let (a, _) = count_allocs(|| {
            for i in 0..K {
                drop(black_box(defer_core::succeed(i)));
            }
        });
        lines.push(("allocs_succeed".to_owned(), a as f64 / K as f64));
        let (a, _) = count_allocs(|| {
            for _ in 0..K {
                drop(black_box(defer_core::Deferred::<u64>::new()));
            }
        });
        lines.push(("allocs_Deferred_new".to_owned(), a as f64 / K as f64));
    }
    if markdown {
        print_markdown(&all, &lines);
    } else {
        for (name, value) in &lines {
            println!("{name} {value:.2}");
        }
    }
    eprintln!(
        "{} workloads in {:.1} s",
        all.len(),
        t0.elapsed().as_secs_f64()
    );
}
