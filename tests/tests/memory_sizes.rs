//! Issue 11, memory: pins the heap cost of a pending unit, so that growing it is a failing test.
//!
//! Each test builds [`UNITS`] units on a fresh thread (after a warm-up round that touches the
//! engine's thread-local state), all alive at once, and reads the per-thread counting allocator
//! (`support/counting_alloc.rs`) before and after: heap allocations made, and live bytes as
//! requested from the allocator (the `Layout` sizes, independent of malloc's rounding). The vector
//! holding the units is reserved before the first reading, so only the units are counted; the
//! handles it holds (`size_of`, pinned separately below) are not heap. After the reading every
//! unit is fired and its result checked.
//!
//! The bounds are the constants just below, set to what the engine measured when they were
//! written: a unit that gets bigger fails here; one that gets smaller passes, and its bound
//! should then be lowered to the new figure. To re-measure, run
//!
//! ```text
//! cargo test -p defer-tests --test memory_sizes -- --nocapture --test-threads 1
//! ```
//!
//! and read the `measured:` lines (each gives the figure to put in its constant). The figures are
//! those of this test binary's build (debug profile, `defer-core` with the `tokio` and `tracing`
//! features); the release build's, with the peers beside them, come from
//! `cargo run --release -p defer-bench --bin memory` (BENCHMARKS.md, "Memory (issue 11)").

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use std::mem::size_of;

use counting_alloc::{Counts, counts, measure, on_fresh_thread};
use defer_core::testing::success_result_of;
use defer_core::{
    Deferred, DeferredFuture, Failure, Trigger, ensure_deferred, gather_results, inline_callbacks,
    yield_,
};

// ---------------------------------------------------------------------------------------------
// The bounds. Bytes are requested bytes of live heap per unit; allocations are `alloc` calls per
// unit while building it (blocks freed again before the reading still count as allocations).
// History: at 28fb879 a chain's cell was 184 bytes and S2 648. The chain state's creation site
// (issue 13: +8 per chain) makes a cell 192; a suspended coroutine also holds a `DeferredFuture`
// that knows whether it registered (cancel on drop, issue 12: +8) and a driver that can be woken
// from other threads (+16): S2 688. The `debug` snapshot's registry slot and the driver's
// suspension point (issue 13: about +54) and, with the `tracing` feature these tests are built
// with, the span a coroutine resumes in (about +53): S2 795. Then issue 11's shrinking:
// - the canceller shares the result slot (it is dropped when the chain fires): cell 168;
// - the hand-over and the awaiter share one field, the chain's `Tail` (a chain's result has one
//   consumer), and only the first step is inline (the second allocates a box holding it and the
//   queue behind it): cell 128; S1 136;
// - the driver's awaits in two `Cell` words, its id only in its waker, its spans boxed only
//   when there are any, its name a `fn`; an await's site one `&'static Location` (`yield_!`
//   writes a `static`): `DeferredFuture` 32; S2 523;
// - a list keeps its inputs' values apart from their failures, the weak handle that cancels an
//   input in the input's place until it reports, and an input's step is two words: S3 162.72
//   per input (16,272 per 100).
// - a chain's block counts and borrow-checks itself in 8 bytes of header, not `Rc<RefCell>`'s 24
//   (`engine/raw/shared.rs`): cell 112;
// - a `Deferred` handle is one word (`engine/raw/one_of.rs`), a step of at most one word is held
//   in its queue entry (`engine/raw/erased_step.rs`: S1 is one allocation), and the step queue is
//   three words, a lone step or the box of several: cell 104; S1 104 (120 with the handles,
//   issue 11's target); S2 467; S3 138.48 per input (13,848 per 100).
// - a coroutine's waker is lent to each poll and made only when a future keeps a clone
//   (`engine/raw/lazy_waker.rs`); a `DeferredFuture` is two words (`raw/tagged_location.rs`);
//   the awaits and the live-coroutine registry's slots are one word; the driver is one type
//   whatever the coroutine's (its body's output type erased), so a reference to it is one word;
//   a chain's tail is one word (a 2-bit tag in the pointer), an executor's waker boxed: cell 88;
// - a suspended coroutine's own chain is made only when something needs it: until then the
//   program's handle holds the driver (a third kind in its word): S2 230, 3 allocations (the
//   awaited chain, the driver, the body); S3 122.32 per input (12,232 per 100). With the
//   handles, what the `memory` benchmark reports: S1 104, S2 232, S3 130 (issue 11's targets:
//   120, 240, 160).
// ---------------------------------------------------------------------------------------------

/// A pending Deferred with no step (its trigger kept): the chain's own cell.
const PENDING_BYTES_MAX: usize = 88;
/// Allocations for a pending Deferred with no step.
const PENDING_ALLOCS_MAX: usize = 1;

/// S1: a pending Deferred with one step capturing a `u64` (its trigger kept).
const S1_BYTES_MAX: usize = 88;
/// Allocations for S1.
const S1_ALLOCS_MAX: usize = 1;

/// S2: a suspended `ensure_deferred` coroutine awaiting its own pending Deferred (the coroutine's
/// Deferred and the awaited one's trigger kept): the awaited chain, the driver, the body (the
/// coroutine's own chain is not made while nothing needs it, and its waker not while no future
/// keeps one), and its slot in the thread's registry of live coroutines.
const S2_ENSURE_DEFERRED_BYTES_MAX: usize = 230;
/// Allocations for a suspended `ensure_deferred` coroutine.
const S2_ENSURE_DEFERRED_ALLOCS_MAX: usize = 3;

/// S2 with `#[inline_callbacks]` and `yield_!(d)`.
const S2_INLINE_CALLBACKS_BYTES_MAX: usize = 230;
/// Allocations for a suspended `#[inline_callbacks]` coroutine.
const S2_INLINE_CALLBACKS_ALLOCS_MAX: usize = 3;

/// S3: inputs per `gather_results` (the per-gather costs are shared by this many inputs).
const GATHER_GROUP: usize = 100;
/// S3: bytes per [`GATHER_GROUP`] pending inputs of one `gather_results` (their triggers and the
/// gathered Deferred kept), i.e. 100 × the bytes per input.
const S3_BYTES_PER_100_INPUTS_MAX: usize = 12_232;
/// S3: allocations per [`GATHER_GROUP`] inputs, the gather's own included (and the caller's
/// `Vec` of inputs handed to `gather_results`, 1 of them).
const S3_ALLOCS_PER_100_INPUTS_MAX: usize = 206;

/// `size_of::<Deferred<u64>>()`, the handle a user keeps.
const DEFERRED_HANDLE_MAX: usize = 8;
/// `size_of::<Trigger<u64>>()`.
const TRIGGER_HANDLE_MAX: usize = 8;
/// `size_of::<DeferredFuture<u64>>()`: what `d.await` keeps in a coroutine's body: its chain,
/// or the value of a fired Deferred, in one word, and the await's location with two flags in
/// the other.
const DEFERRED_FUTURE_MAX: usize = 16;

/// Units built per measurement.
const UNITS: usize = 10_000;

/// The value every unit is fired with; each unit adds its index `k`.
const FIRE: u64 = 1000;

fn expected_sum(n: usize) -> u64 {
    let n = n as u64;
    n * FIRE + n * (n - 1) / 2
}

/// What building `UNITS` units cost, in total.
#[derive(Debug, Clone, Copy)]
struct Measured {
    counts: Counts,
    units: usize,
}

impl Measured {
    /// Live requested bytes per unit, rounded up.
    fn bytes_per_unit(self) -> usize {
        usize::try_from(self.counts.live_bytes)
            .expect("building units does not shrink the heap")
            .div_ceil(self.units)
    }

    /// Allocations per unit, rounded up.
    fn allocs_per_unit(self) -> usize {
        usize::try_from(self.counts.allocs)
            .expect("fits")
            .div_ceil(self.units)
    }

    /// Asserts the bounds, after printing the figures for whoever re-measures.
    fn assert_within(self, what: &str, bytes_max: usize, allocs_max: usize) {
        println!(
            "measured: {what}: {} bytes/unit, {} allocations/unit ({:?} over {} units)",
            self.bytes_per_unit(),
            self.allocs_per_unit(),
            self.counts,
            self.units
        );
        assert!(
            self.bytes_per_unit() <= bytes_max,
            "{what}: {} bytes per unit, bound {bytes_max} ({:?} over {} units)",
            self.bytes_per_unit(),
            self.counts,
            self.units
        );
        assert!(
            self.allocs_per_unit() <= allocs_max,
            "{what}: {} allocations per unit, bound {allocs_max} ({:?} over {} units)",
            self.allocs_per_unit(),
            self.counts,
            self.units
        );
        // Amortised growth only (the `debug` registry's table of live coroutines doubles): at
        // most one reallocation per doubling of the units, never one per unit.
        let doublings = usize::BITS - self.units.leading_zeros();
        assert!(
            self.counts.reallocs <= u64::from(doublings),
            "{what}: {} reallocations for {} units: more than amortised growth",
            self.counts.reallocs,
            self.units
        );
    }
}

/// On a fresh thread: a warm-up round of a few units, then `UNITS` units made by `make(k)` for
/// `k` in `0..UNITS`, measured while all are alive; then `finish` fires them and returns the sum
/// of their results, which must be `Σ (FIRE + k)`.
fn measure_units<U: 'static>(make: fn(u64) -> U, finish: fn(Vec<U>) -> u64) -> Measured {
    on_fresh_thread(move || {
        let warm: Vec<U> = (0..10).map(make).collect();
        assert_eq!(finish(warm), expected_sum(10), "warm-up round");

        let mut units: Vec<U> = Vec::with_capacity(UNITS);
        let before = counts();
        for k in 0..UNITS as u64 {
            units.push(make(k));
        }
        let measured = Measured {
            counts: counts().since(before),
            units: UNITS,
        };
        assert_eq!(finish(units), expected_sum(UNITS), "the units' results");
        measured
    })
}

/// Fires each `(Deferred, Trigger)` unit with [`FIRE`] and sums the results.
fn fire_all(units: Vec<(Deferred<u64>, Trigger<u64>)>) -> u64 {
    units
        .into_iter()
        .map(|(d, t)| {
            assert!(t.callback(FIRE));
            success_result_of(d)
        })
        .sum()
}

#[test]
fn a_pending_deferred_is_one_chain_cell() {
    fn make(k: u64) -> (Deferred<u64>, Trigger<u64>, u64) {
        let (d, t) = Deferred::new();
        (d, t, k)
    }
    fn finish(units: Vec<(Deferred<u64>, Trigger<u64>, u64)>) -> u64 {
        units
            .into_iter()
            .map(|(d, t, k)| {
                assert!(t.callback(FIRE + k));
                success_result_of(d)
            })
            .sum()
    }
    measure_units(make, finish).assert_within(
        "a pending Deferred",
        PENDING_BYTES_MAX,
        PENDING_ALLOCS_MAX,
    );
}

#[test]
fn s1_a_pending_deferred_with_one_capturing_step() {
    fn make(k: u64) -> (Deferred<u64>, Trigger<u64>) {
        let (d, t) = Deferred::new();
        (d.add_callback(move |x: u64| Ok::<u64, Failure>(x + k)), t)
    }
    measure_units(make, fire_all).assert_within("S1", S1_BYTES_MAX, S1_ALLOCS_MAX);
}

#[test]
fn s2_a_suspended_ensure_deferred_coroutine() {
    fn make(k: u64) -> (Deferred<u64>, Trigger<u64>) {
        let (d, t) = Deferred::<u64>::new();
        (ensure_deferred(async move { Ok(d.await? + k) }), t)
    }
    measure_units(make, fire_all).assert_within(
        "S2 ensure_deferred",
        S2_ENSURE_DEFERRED_BYTES_MAX,
        S2_ENSURE_DEFERRED_ALLOCS_MAX,
    );
}

#[inline_callbacks]
fn await_and_add(d: Deferred<u64>, k: u64) -> Deferred<u64> {
    let x = yield_!(d)?;
    Ok(x + k)
}

#[test]
fn s2_a_suspended_inline_callbacks_coroutine() {
    fn make(k: u64) -> (Deferred<u64>, Trigger<u64>) {
        let (d, t) = Deferred::<u64>::new();
        (await_and_add(d, k), t)
    }
    measure_units(make, fire_all).assert_within(
        "S2 #[inline_callbacks]",
        S2_INLINE_CALLBACKS_BYTES_MAX,
        S2_INLINE_CALLBACKS_ALLOCS_MAX,
    );
}

#[test]
fn s3_an_input_of_gather_results() {
    let groups = UNITS / GATHER_GROUP;
    let measured = on_fresh_thread(move || {
        // One gather over `GATHER_GROUP` pending inputs; the triggers go to `triggers`.
        fn gather(g: usize, triggers: &mut Vec<(Trigger<u64>, u64)>) -> Deferred<Vec<u64>> {
            let mut inputs = Vec::with_capacity(GATHER_GROUP);
            for i in 0..GATHER_GROUP {
                let (d, t) = Deferred::new();
                inputs.push(d);
                triggers.push((t, (g * GATHER_GROUP + i) as u64));
            }
            gather_results(inputs)
        }
        fn finish(triggers: Vec<(Trigger<u64>, u64)>, gathers: Vec<Deferred<Vec<u64>>>) -> u64 {
            for (t, k) in triggers {
                assert!(t.callback(FIRE + k));
            }
            gathers
                .into_iter()
                .map(|d| success_result_of(d).into_iter().sum::<u64>())
                .sum()
        }

        let mut triggers = Vec::with_capacity(GATHER_GROUP);
        let warm = vec![gather(0, &mut triggers)];
        assert_eq!(finish(triggers, warm), expected_sum(GATHER_GROUP));

        let mut triggers = Vec::with_capacity(UNITS);
        let mut gathers = Vec::with_capacity(groups);
        let before = counts();
        for g in 0..groups {
            gathers.push(gather(g, &mut triggers));
        }
        let measured = Measured {
            counts: counts().since(before),
            units: groups,
        };
        assert_eq!(finish(triggers, gathers), expected_sum(UNITS));
        measured
    });
    // A "unit" here is a gather of `GATHER_GROUP` inputs.
    measured.assert_within(
        "S3 gather_results, per 100 inputs",
        S3_BYTES_PER_100_INPUTS_MAX * GATHER_GROUP / 100,
        S3_ALLOCS_PER_100_INPUTS_MAX * GATHER_GROUP / 100,
    );
}

#[test]
fn the_handles_stay_small() {
    let sizes = [
        (
            "Deferred<u64>",
            size_of::<Deferred<u64>>(),
            DEFERRED_HANDLE_MAX,
        ),
        (
            "Trigger<u64>",
            size_of::<Trigger<u64>>(),
            TRIGGER_HANDLE_MAX,
        ),
        (
            "DeferredFuture<u64>",
            size_of::<DeferredFuture<u64>>(),
            DEFERRED_FUTURE_MAX,
        ),
    ];
    for (name, size, max) in sizes {
        println!("measured: size_of::<{name}>() = {size}");
        assert!(size <= max, "size_of::<{name}>() = {size}, bound {max}");
    }
}

#[test]
fn the_counter_sees_requested_bytes() {
    // The byte counter itself: a 1000-byte block counts 1000 bytes, whatever malloc rounds it to,
    // and freeing it takes them off again.
    on_fresh_thread(|| {
        let before = counts();
        let (block, held) = measure(|| std::hint::black_box(vec![0u8; 1000]));
        drop(block);
        let after = counts().since(before);
        assert_eq!((held.live, held.live_bytes), (1, 1000));
        assert_eq!((after.live, after.live_bytes), (0, 0));
    });
}
