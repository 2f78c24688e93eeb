//! Issue 3, "No allocation": `yield_!` and `.await` of an already-fired Deferred allocate nothing
//! (DESIGN §6), and of a pending one at most two blocks, counting the producer's `callback`
//! (issue 5's bound). With a small value (here a `u64`, held in place: DESIGN §4) the pending
//! round trip allocates nothing at all, and the tests pin that.
//!
//! A counting global allocator (`support/counting_alloc.rs`, per-thread counters) measures only
//! the await itself: the fired Deferreds are made before the measured window (a `Vec` of
//! `succeed(..)`s made up front), the counters are read inside the coroutine's body right before
//! and right after the `yield_!` / `.await`, and the results are checked outside it. Each test
//! runs on a fresh thread, after a warm-up round that touches the driver's thread-local state.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use std::cell::RefCell;
use std::rc::Rc;

use counting_alloc::{Counts, counts, measure, on_fresh_thread};
use defer_core::testing::{assert_no_result, success_result_of};
use defer_core::{Deferred, ensure_deferred, inline_callbacks, succeed, yield_};

/// How many awaits each test measures.
const N: usize = 1000;

/// The allocation counts of each measured window, recorded by the coroutine. Its capacity is
/// reserved up front, so recording (outside the windows anyway) never reallocates.
type Windows = Rc<RefCell<Vec<Counts>>>;

fn windows() -> Windows {
    Rc::new(RefCell::new(Vec::with_capacity(N + 1)))
}

fn fired(n: usize) -> Vec<Deferred<u64>> {
    (0..n as u64).map(succeed).collect()
}

/// Asserts that no window allocated or reallocated, and returns the live-block change of the
/// first one (taking a fired Deferred's value frees its chain: negative).
fn assert_no_allocation(windows: &Windows) -> isize {
    let windows = windows.borrow();
    assert_eq!(windows.len(), N);
    for (i, w) in windows.iter().enumerate() {
        assert_eq!(
            (w.allocs, w.reallocs),
            (0, 0),
            "await #{i} allocated: {w:?}"
        );
    }
    windows[0].live
}

#[inline_callbacks]
fn yield_fired(ready: Vec<Deferred<u64>>, windows: Windows) -> Deferred<u64> {
    let mut total = 0;
    for d in ready {
        let before = counts();
        let v = yield_!(d);
        let after = counts();
        windows.borrow_mut().push(after.since(before));
        total += v?;
    }
    Ok(total)
}

async fn await_fired(
    ready: Vec<Deferred<u64>>,
    windows: Windows,
) -> Result<u64, defer_core::Failure> {
    let mut total = 0;
    for d in ready {
        let before = counts();
        let v = d.await;
        let after = counts();
        windows.borrow_mut().push(after.since(before));
        total += v?;
    }
    Ok(total)
}

#[test]
fn the_counting_allocator_sees_this_thread() {
    // The measurement would prove nothing if the allocator were not in effect.
    on_fresh_thread(|| {
        let (d, c) = measure(|| succeed(1u64));
        assert!(c.allocs >= 1, "{c:?}");
        assert_eq!(success_result_of(d), 1);
    });
}

#[test]
fn yield_of_an_already_fired_deferred_allocates_nothing() {
    let live = on_fresh_thread(|| {
        // Warm-up: the first coroutine on a thread initialises the driver's thread-locals.
        success_result_of(yield_fired(fired(2), windows()));
        let w = windows();
        let d = yield_fired(fired(N), w.clone());
        assert_eq!(success_result_of(d), (N as u64 - 1) * N as u64 / 2);
        assert_no_allocation(&w)
    });
    eprintln!("yield_! of a fired Deferred: 0 allocations, live blocks {live:+}");
}

#[test]
fn await_of_an_already_fired_deferred_allocates_nothing() {
    let live = on_fresh_thread(|| {
        success_result_of(ensure_deferred(await_fired(fired(2), windows())));
        let w = windows();
        let d = ensure_deferred(await_fired(fired(N), w.clone()));
        assert_eq!(success_result_of(d), (N as u64 - 1) * N as u64 / 2);
        assert_no_allocation(&w)
    });
    eprintln!(".await of a fired Deferred: 0 allocations, live blocks {live:+}");
}

/// The counts of one pending await: from right before the `yield_!` / `.await` to the moment the
/// coroutine is suspended (`suspend`, measured outside, as the call returns), and from there,
/// through the producer's `callback`, to right after it (`round_trip` is both together).
#[derive(Clone, Copy, Debug)]
struct Pending {
    suspend: Counts,
    round_trip: Counts,
}

/// A coroutine of the pending scenario: `start(inputs, windows, befores)`.
type Start = fn(Vec<Deferred<u64>>, Windows, Rc<RefCell<Vec<Counts>>>) -> Deferred<u64>;

/// Drives `N` pending awaits of `body`, each fired from outside with `callback`, and returns the
/// counts of each. `start(inputs, before)` starts the coroutine; it records, in `before`, the
/// counters right before each await and, in `windows`, the counts of each whole await.
fn drive_pending(start: Start, n: usize) -> (Deferred<u64>, Vec<Pending>) {
    let (inputs, triggers): (Vec<_>, Vec<_>) = (0..n).map(|_| Deferred::new()).unzip();
    let w = windows();
    let befores = Rc::new(RefCell::new(Vec::with_capacity(n + 1)));
    let mut suspends = Vec::with_capacity(n);
    let d = start(inputs, w.clone(), befores.clone());
    for (i, t) in triggers.into_iter().enumerate() {
        // The coroutine is suspended on input i: it recorded its counters just before the await.
        let now = counts();
        suspends.push(now.since(befores.borrow()[i]));
        assert!(t.callback(i as u64));
    }
    let pending = suspends
        .into_iter()
        .zip(w.borrow().iter())
        .map(|(suspend, &round_trip)| Pending {
            suspend,
            round_trip,
        })
        .collect();
    (d, pending)
}

#[inline_callbacks]
fn yield_pending(
    inputs: Vec<Deferred<u64>>,
    windows: Windows,
    befores: Rc<RefCell<Vec<Counts>>>,
) -> Deferred<u64> {
    let mut total = 0;
    for d in inputs {
        let before = counts();
        befores.borrow_mut().push(before);
        let v = yield_!(d);
        let after = counts();
        windows.borrow_mut().push(after.since(before));
        total += v?;
    }
    Ok(total)
}

fn await_pending(
    inputs: Vec<Deferred<u64>>,
    windows: Windows,
    befores: Rc<RefCell<Vec<Counts>>>,
) -> Deferred<u64> {
    ensure_deferred(async move {
        let mut total = 0;
        for d in inputs {
            let before = counts();
            befores.borrow_mut().push(before);
            let v = d.await;
            let after = counts();
            windows.borrow_mut().push(after.since(before));
            total += v?;
        }
        Ok(total)
    })
}

fn check_pending(what: &'static str, start: Start) {
    let (suspend, round_trip) = on_fresh_thread(move || {
        let (warm, _) = drive_pending(start, 2);
        success_result_of(warm);
        let (d, pending) = drive_pending(start, N);
        assert_eq!(pending.len(), N);
        assert_eq!(success_result_of(d), (N as u64 - 1) * N as u64 / 2);
        let max = |f: fn(&Pending) -> u64| pending.iter().map(f).max().unwrap();
        let suspend = max(|p| p.suspend.allocs + p.suspend.reallocs);
        let round_trip = max(|p| p.round_trip.allocs + p.round_trip.reallocs);
        for (i, p) in pending.iter().enumerate() {
            // The bound is two blocks; a `u64` fired by `callback` is held in place, so: none.
            assert_eq!(
                p.round_trip.allocs + p.round_trip.reallocs,
                0,
                "{what} #{i}: {p:?}"
            );
        }
        (suspend, round_trip)
    });
    eprintln!(
        "{what} of a pending Deferred: at most {suspend} allocation(s) to suspend, \
         {round_trip} for the whole await including the producer's callback"
    );
}

#[test]
fn yield_of_a_pending_deferred_of_a_small_value_allocates_nothing() {
    check_pending("yield_!", yield_pending);
}

#[test]
fn await_of_a_pending_deferred_of_a_small_value_allocates_nothing() {
    check_pending(".await", await_pending);
}

#[test]
fn the_measured_pending_await_really_waits() {
    // The pending scenario suspends at each await: nothing resolves until its input fires.
    on_fresh_thread(|| {
        let (input, t) = Deferred::new();
        let d = yield_pending(vec![input], windows(), Rc::new(RefCell::new(Vec::new())));
        assert_no_result(&d);
        t.callback(3);
        assert_eq!(success_result_of(d), 3);
    });
}
