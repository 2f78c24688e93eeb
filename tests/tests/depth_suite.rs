//! The depth suite: every nesting the public API allows, built [`depth()`] levels deep on a
//! thread with a 2 MiB stack, then fired (with a value, and with a failure), cancelled from the
//! outermost level, or dropped unfired, with the final result checked exactly.
//!
//! Nestings: chains and `chain_deferred` links, `DeferredList`s, `gather_results`, `race`s and
//! tuple `Gather`s each waiting on the next, `add_timeout` levels on a `clock::Clock`,
//! coroutines of each style (`#[inline_callbacks]` with `yield_!`, `ensure_deferred(async ..)`,
//! and `futures::future::join` inside `ensure_deferred`), a mix of all of them, a pipeline of
//! coroutines resumed by same-thread foreign wakes (each awaits a `oneshot::Receiver` the
//! previous one completes), lock / semaphore / queue hand-overs, linked `succeed` structures
//! (`struct Node { next: Option<Deferred<Node>> }`), nested `FirstError`s, and a ring of
//! Deferreds waiting on one another.
//!
//! **Each scenario runs in a child process** (`support/child_process.rs`): an implementation that
//! recurses once per level overflows the 2 MiB stack and aborts; in a child that fails this one
//! test ("STACK OVERFLOW" in the message) instead of the whole binary. A child that runs longer
//! than the timeout is killed and the test fails as "HUNG". At most two children run at once
//! (a million-level scenario can take hundreds of MB).
//!
//! **Depth.** [`depth()`] is 1,000,000 in release builds, 100,000 in debug builds (still far
//! beyond what recursion survives on 2 MiB: a few thousand levels at most), and the environment
//! variable `DEFER_DEPTH` overrides both. Everything at a million:
//!
//! ```text
//! cargo test --release -p defer-tests --test depth_suite
//! ```
//!
//! `DEFER_DEPTH_TIMEOUT` (seconds, default 120) sets the per-scenario timeout.
//!
//! CI runs this suite twice: in debug at 100,000 levels with the rest of the tests (about 20 s on
//! 2 cores), and in release at 1,000,000 (`.ci/run`). Before the engine's work loop (issue 10),
//! the list, gather, race, tuple, mixed, pipeline, linked-`succeed` and `FirstError` scenarios
//! overflowed the 2 MiB stack within a second, and the ring of waiting Deferreds hung in `cancel`.

#[path = "support/child_process.rs"]
mod child_process;
#[path = "support/depth_scenarios.rs"]
mod depth_scenarios;
#[path = "support/small_stack.rs"]
mod small_stack;

use std::cell::{Cell, RefCell};
use std::future::IntoFuture;
use std::rc::Rc;
use std::time::{Duration, Instant};

use defer_core::clock::Clock;
use defer_core::errors::{
    CancelledError, FailureGroup, FirstError, MessageError, TimeoutError, TriggerDropped,
};
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{
    Deferred, DeferredList, DeferredLock, DeferredQueue, DeferredSemaphore, Failure, Gather,
    Trigger, ensure_deferred, fail, gather_results, inline_callbacks, race, succeed, unhandled,
    yield_,
};
use futures::channel::oneshot;

use depth_scenarios::{Fire, Order};

/// How deep every scenario goes: `DEFER_DEPTH` if set, else a million in release builds and a
/// hundred thousand in debug builds.
fn depth() -> usize {
    if let Ok(v) = std::env::var("DEFER_DEPTH") {
        return v.trim().parse().expect("DEFER_DEPTH must be a number");
    }
    if cfg!(debug_assertions) {
        100_000
    } else {
        1_000_000
    }
}

/// How long one scenario may run before it counts as hung.
fn timeout() -> Duration {
    let secs = std::env::var("DEFER_DEPTH_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(120);
    Duration::from_secs(secs)
}

#[path = "support/place.rs"]
mod place;
use place::Place;

/// Runs `scenario(depth())` on a 2 MiB stack in a child process, and fails unless it finished.
fn isolated(name: &'static str, scenario: fn(usize)) {
    let _place = Place::take();
    let out = child_process::assert_child_succeeds(name, timeout(), || {
        let n = depth();
        let start = Instant::now();
        small_stack::on_small_stack_named(name, move || scenario(n));
        eprintln!("{name}: depth {n}, {:.2?}", start.elapsed());
    });
    if let Some(out) = out {
        eprintln!("{name}: child ran {:.2?}", out.elapsed);
    }
}

macro_rules! depth_tests {
    ($($name:ident => $scenario:expr;)*) => {
        $(
            #[test]
            fn $name() {
                isolated(stringify!($name), $scenario);
            }
        )*
    };
}

// ------------------------------------------------------------------------------------------
// Checking results.

/// Unwraps the `FirstError`s and single-failure `FailureGroup`s around `f`: the failure at the
/// bottom, and how many wrappers there were. A loop, never recursion.
fn unwrap_failure(f: &Failure) -> (Failure, usize) {
    let mut cur = f.clone();
    let mut wrappers = 0;
    loop {
        let next = if let Some(fe) = cur.downcast_ref::<FirstError>() {
            fe.sub_failure().clone()
        } else if let Some(g) = cur.downcast_ref::<FailureGroup>() {
            assert_eq!(g.failures().len(), 1, "a one-input race's group");
            g.failures()[0].clone()
        } else {
            return (cur, wrappers);
        };
        cur = next;
        wrappers += 1;
    }
}

/// Runs `body` counting the unhandled failures reported meanwhile; `ok` says whether a report is
/// of an expected kind (it must look at the failure's top level only: reports of deep wrappers
/// may come by the hundred thousand).
fn count_reports(ok: impl Fn(&Failure) -> bool + 'static, body: impl FnOnce()) -> usize {
    let count = Rc::new(Cell::new(0usize));
    let bad = Rc::new(RefCell::new(None::<String>));
    let (c, b) = (count.clone(), bad.clone());
    unhandled::with_hook(
        move |f| {
            c.set(c.get() + 1);
            if !ok(f) && b.borrow().is_none() {
                *b.borrow_mut() = Some(format!("{} ({})", f.type_name(), f.message()));
            }
        },
        body,
    );
    if let Some(bad) = bad.borrow().as_ref() {
        panic!("an unexpected unhandled failure was reported: {bad}");
    }
    count.get()
}

fn is_wrapper(f: &Failure) -> bool {
    f.downcast_ref::<FirstError>().is_some() || f.downcast_ref::<FailureGroup>().is_some()
}

// ------------------------------------------------------------------------------------------
// Levels: each waits on the Deferred of the level inside it, adds 1 to its value, and passes a
// failure outwards (some kinds wrap it, in a `FirstError` or a `FailureGroup`).

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// `outer.add_callback(move |_| inner).add_callbacks(+1, re-raise)`, the outer fired at once.
    Waiting,
    /// `DeferredList::new([inner]).consume_errors(true).build()`, then `+1` or re-raise.
    List,
    /// `gather_results([inner])`: wraps a failure in a `FirstError` and leaves it in the input's
    /// chain too (one unhandled report per level).
    Gather,
    /// `race([inner])`: wraps a failure in a one-failure `FailureGroup`.
    Race,
    /// `(inner, succeed(1)).gather_consuming_errors()`: wraps a failure in a `FirstError`.
    Tuple,
    /// `inner.add_callback(+1).add_timeout(1h, clock)`.
    Timeout,
    /// `#[inline_callbacks]` with `yield_!(inner)? + 1`.
    Inline,
    /// `ensure_deferred(async { inner.await? + 1 })`.
    Async,
    /// `ensure_deferred(async { join(inner, succeed(0)).await })`.
    Join,
}

impl Kind {
    const ALL: [Kind; 9] = [
        Kind::Waiting,
        Kind::List,
        Kind::Gather,
        Kind::Race,
        Kind::Tuple,
        Kind::Timeout,
        Kind::Inline,
        Kind::Async,
        Kind::Join,
    ];

    fn wraps(self) -> bool {
        matches!(self, Kind::Gather | Kind::Race | Kind::Tuple)
    }

    /// Whether the level leaves an input's failure in the input's own chain, to be reported.
    /// None does: `gather_results` hands its first failure to the caller only (issue 10,
    /// class 9: it was reported twice, to the caller and as unhandled).
    fn reports(self) -> bool {
        false
    }
}

fn plus_one(x: u64) -> Result<u64, Failure> {
    Ok(x + 1)
}

fn reraise(f: Failure) -> Result<u64, Failure> {
    Err(f)
}

#[inline_callbacks]
fn level_inline(inner: Deferred<u64>) -> Deferred<u64> {
    Ok(yield_!(inner)? + 1)
}

fn level(kind: Kind, inner: Deferred<u64>, clock: &Clock) -> Deferred<u64> {
    match kind {
        Kind::Waiting => {
            let (d, t) = Deferred::<u64>::new();
            let d = d
                .add_callback(move |_: u64| inner)
                .add_callbacks(plus_one, reraise);
            assert!(t.callback(0));
            d
        }
        Kind::List => DeferredList::new([inner])
            .consume_errors(true)
            .build()
            .add_callback(|mut v: Vec<Result<u64, Failure>>| {
                v.pop().expect("one input").map(|x| x + 1)
            }),
        Kind::Gather => gather_results([inner]).add_callback(|v: Vec<u64>| Ok(v[0] + 1)),
        Kind::Race => race([inner]).add_callback(|(_, x): (usize, u64)| Ok(x + 1)),
        Kind::Tuple => (inner, succeed(1_u64))
            .gather_consuming_errors()
            .add_callback(|(a, b): (u64, u64)| Ok(a + b)),
        Kind::Timeout => inner
            .add_callback(plus_one)
            .add_timeout(Duration::from_secs(3600), clock),
        Kind::Inline => level_inline(inner),
        Kind::Async => ensure_deferred(async move { Ok(inner.await? + 1) }),
        Kind::Join => ensure_deferred(async move {
            let (a, b) =
                futures::future::join(inner.into_future(), succeed(1_u64).into_future()).await;
            Ok(a? + b?)
        }),
    }
}

/// The levels of a nesting: one kind, or all kinds in turn.
#[derive(Clone, Copy, Debug)]
enum Nesting {
    Only(Kind),
    Mixed,
}

impl Nesting {
    fn kind(self, i: usize) -> Kind {
        match self {
            Nesting::Only(k) => k,
            Nesting::Mixed => Kind::ALL[i % Kind::ALL.len()],
        }
    }

    fn count(self, n: usize, pred: impl Fn(Kind) -> bool) -> usize {
        (0..n).filter(|&i| pred(self.kind(i))).count()
    }
}

/// `n` levels of `nesting` around a pending innermost Deferred: the outermost Deferred and the
/// innermost trigger.
fn build(n: usize, nesting: Nesting, clock: &Clock) -> (Deferred<u64>, Trigger<u64>) {
    let (mut d, innermost) = Deferred::<u64>::new();
    for i in 0..n {
        d = level(nesting.kind(i), d, clock);
    }
    assert_no_result(&d);
    (d, innermost)
}

/// Fires the innermost with 7 (or a failure) and checks that the outermost got `7 + n` (or the
/// same failure, under exactly as many wrappers as there are wrapping levels).
fn nested_fire(n: usize, nesting: Nesting, fire: Fire) {
    let original = Failure::msg("innermost failed");
    let o = original.clone();
    let reports = count_reports(
        move |f| f.same_as(&o) || is_wrapper(f),
        || {
            let clock = Clock::new();
            let (outermost, innermost) = build(n, nesting, &clock);
            match fire {
                Fire::Value => assert!(innermost.callback(7)),
                Fire::Failure => assert!(innermost.errback(original.clone())),
            }
            match fire {
                Fire::Value => assert_eq!(success_result_of(outermost), 7 + n as u64),
                Fire::Failure => {
                    let f = failure_result_of(outermost);
                    let (root, wrappers) = unwrap_failure(&f);
                    assert!(
                        root.same_as(&original),
                        "the failure at the bottom is not the one fired: {}",
                        root.message()
                    );
                    assert_eq!(wrappers, nesting.count(n, Kind::wraps));
                }
            }
            // No timer may be left once every level has its result.
            assert!(clock.pending_calls().is_empty(), "a timeout timer is left");
        },
    );
    let expected = match fire {
        Fire::Value => 0,
        Fire::Failure => nesting.count(n, Kind::reports),
    };
    assert_eq!(reports, expected, "unhandled reports");
}

/// Cancels the outermost: the cancel must reach the innermost, and the outermost fail with a
/// `CancelledError` (under the wrapping levels' wrappers).
fn nested_cancel(n: usize, nesting: Nesting) {
    let reports = count_reports(
        |f| f.downcast_ref::<CancelledError>().is_some() || is_wrapper(f),
        || {
            let clock = Clock::new();
            let (outermost, innermost) = build(n, nesting, &clock);
            outermost.cancel();
            assert!(
                innermost.is_cancelled(),
                "cancelling the outermost did not reach the innermost"
            );
            assert!(!innermost.callback(1), "the innermost was cancelled");
            let f = failure_result_of(outermost);
            let (root, wrappers) = unwrap_failure(&f);
            assert!(
                root.downcast_ref::<CancelledError>().is_some(),
                "expected CancelledError at the bottom, got {} ({})",
                root.type_name(),
                root.message()
            );
            assert_eq!(wrappers, nesting.count(n, Kind::wraps));
            assert!(clock.pending_calls().is_empty(), "a timeout timer is left");
        },
    );
    assert_eq!(
        reports,
        nesting.count(n, Kind::reports),
        "unhandled reports"
    );
}

/// Drops the outermost unfired, then the innermost trigger: everything goes away; whatever is
/// reported is a `TriggerDropped` (possibly wrapped).
fn nested_drop(n: usize, nesting: Nesting) {
    let reports = count_reports(
        |f| f.downcast_ref::<TriggerDropped>().is_some() || is_wrapper(f),
        || {
            let clock = Clock::new();
            let (outermost, innermost) = build(n, nesting, &clock);
            drop(outermost);
            drop(innermost);
            drop(clock);
        },
    );
    assert!(
        reports <= nesting.count(n, Kind::reports) + 1,
        "{reports} unhandled reports"
    );
}

/// Times out: every `add_timeout` level's timer fires at once; the outermost fails with a
/// `TimeoutError`, and the cancel reached the innermost.
fn nested_timeout(n: usize, nesting: Nesting) {
    let timeout_or_cancel = |f: &Failure| {
        f.downcast_ref::<TimeoutError>().is_some()
            || f.downcast_ref::<CancelledError>().is_some()
            || is_wrapper(f)
    };
    let reports = count_reports(timeout_or_cancel, || {
        let clock = Clock::new();
        let (outermost, innermost) = build(n, nesting, &clock);
        clock.advance(Duration::from_secs(3601));
        assert!(
            innermost.is_cancelled(),
            "the timeout did not reach the innermost"
        );
        assert!(clock.pending_calls().is_empty(), "a timeout timer is left");
        let f = failure_result_of(outermost);
        let (root, _) = unwrap_failure(&f);
        // A timeout turns the `CancelledError` it sees into a `TimeoutError`; when a race's
        // `FailureGroup` (which has no `source`) hides it, the `CancelledError` stays.
        let timed_out = root.downcast_ref::<TimeoutError>().is_some();
        let cancelled = root.downcast_ref::<CancelledError>().is_some();
        let race_between = matches!(nesting, Nesting::Mixed);
        assert!(
            timed_out || (race_between && cancelled),
            "expected TimeoutError, got {} ({})",
            root.type_name(),
            root.message()
        );
        drop(innermost);
    });
    assert_eq!(
        reports,
        nesting.count(n, Kind::reports),
        "unhandled reports"
    );
}

fn no_reports(body: impl FnOnce()) {
    depth_scenarios::no_unhandled(body);
}

/// Runs `body`, allowing one unhandled report, of a `TriggerDropped`.
fn at_most_one_trigger_dropped(body: impl FnOnce()) {
    let reports = count_reports(|f| f.downcast_ref::<TriggerDropped>().is_some(), body);
    assert!(reports <= 1, "{reports} unhandled reports");
}

// ------------------------------------------------------------------------------------------
// Chains and `chain_deferred` (the scenarios of depth.rs, plus cancel and drop).

depth_tests! {
    chain_steps_value => |n| depth_scenarios::steps_on_one_deferred(n, Fire::Value);
    chain_steps_failure => |n| depth_scenarios::steps_on_one_deferred(n, Fire::Failure);
    chain_waiting_outer_to_inner_value =>
        |n| depth_scenarios::waiting_chain(n, Order::OuterToInner, Fire::Value);
    chain_waiting_outer_to_inner_failure =>
        |n| depth_scenarios::waiting_chain(n, Order::OuterToInner, Fire::Failure);
    chain_waiting_inner_to_outer_value =>
        |n| depth_scenarios::waiting_chain(n, Order::InnerToOuter, Fire::Value);
    chain_waiting_inner_to_outer_failure =>
        |n| depth_scenarios::waiting_chain(n, Order::InnerToOuter, Fire::Failure);
    chain_waiting_cancel_outermost => depth_scenarios::cancel_waiting_chain;
    chain_waiting_drop_unfired => |n| nested_drop(n, Nesting::Only(Kind::Waiting));
    chain_deferred_fired_last_value =>
        |n| depth_scenarios::chain_deferred_links(n, false, Fire::Value);
    chain_deferred_fired_last_failure =>
        |n| depth_scenarios::chain_deferred_links(n, false, Fire::Failure);
    chain_deferred_fired_first_value =>
        |n| depth_scenarios::chain_deferred_links(n, true, Fire::Value);
    chain_deferred_fired_first_failure =>
        |n| depth_scenarios::chain_deferred_links(n, true, Fire::Failure);
    chain_deferred_cancel_last_then_fire_first => chain_deferred_cancel_last;
    chain_deferred_drop_unfired => chain_deferred_drop;
    chain_steps_drop_unfired => steps_drop_unfired;
}

/// `n` `chain_deferred` links; the last Deferred is cancelled, then the first fired: the result
/// runs down every link and is dropped by the cancelled last one.
fn chain_deferred_cancel_last(n: usize) {
    no_reports(|| {
        let (first, first_trigger) = Deferred::<u64>::new();
        let mut cur = first;
        for _ in 0..n {
            let (next, t) = Deferred::<u64>::new();
            cur.add_callback(plus_one).chain_deferred(t);
            cur = next;
        }
        cur.cancel();
        assert!(failure_result_of(cur).check::<CancelledError>());
        // The links still run; the last one finds its Deferred cancelled.
        assert!(first_trigger.callback(7));
    });
}

/// `n` `chain_deferred` links dropped unfired: the first trigger goes last (its
/// `TriggerDropped` may run down the links and be reported once, at the end).
fn chain_deferred_drop(n: usize) {
    at_most_one_trigger_dropped(|| {
        let (first, first_trigger) = Deferred::<u64>::new();
        let mut cur = first;
        for _ in 0..n {
            let (next, t) = Deferred::<u64>::new();
            cur.add_callback(plus_one).chain_deferred(t);
            cur = next;
        }
        drop(cur);
        drop(first_trigger);
    });
}

/// `n` steps on one pending Deferred, dropped unfired (handle first, then the trigger, whose
/// `TriggerDropped` may run through the steps and be reported once).
fn steps_drop_unfired(n: usize) {
    at_most_one_trigger_dropped(|| {
        let (mut d, t) = Deferred::<u64>::new();
        for _ in 0..n {
            d = d.add_callbacks(plus_one, reraise);
        }
        drop(d);
        drop(t);
    });
}

// ------------------------------------------------------------------------------------------
// Lists, gathers, races, tuple gathers, timeouts, coroutines, joins, and all of them mixed.

depth_tests! {
    list_value => |n| nested_fire(n, Nesting::Only(Kind::List), Fire::Value);
    list_failure => |n| nested_fire(n, Nesting::Only(Kind::List), Fire::Failure);
    list_cancel_outermost => |n| nested_cancel(n, Nesting::Only(Kind::List));
    list_drop_unfired => |n| nested_drop(n, Nesting::Only(Kind::List));

    gather_value => |n| nested_fire(n, Nesting::Only(Kind::Gather), Fire::Value);
    gather_failure => |n| nested_fire(n, Nesting::Only(Kind::Gather), Fire::Failure);
    gather_cancel_outermost => |n| nested_cancel(n, Nesting::Only(Kind::Gather));
    gather_drop_unfired => |n| nested_drop(n, Nesting::Only(Kind::Gather));

    race_value => |n| nested_fire(n, Nesting::Only(Kind::Race), Fire::Value);
    race_failure => |n| nested_fire(n, Nesting::Only(Kind::Race), Fire::Failure);
    race_cancel_outermost => |n| nested_cancel(n, Nesting::Only(Kind::Race));
    race_drop_unfired => |n| nested_drop(n, Nesting::Only(Kind::Race));

    tuple_gather_value => |n| nested_fire(n, Nesting::Only(Kind::Tuple), Fire::Value);
    tuple_gather_failure => |n| nested_fire(n, Nesting::Only(Kind::Tuple), Fire::Failure);
    tuple_gather_cancel_outermost => |n| nested_cancel(n, Nesting::Only(Kind::Tuple));
    tuple_gather_drop_unfired => |n| nested_drop(n, Nesting::Only(Kind::Tuple));

    timeout_value => |n| nested_fire(n, Nesting::Only(Kind::Timeout), Fire::Value);
    timeout_failure => |n| nested_fire(n, Nesting::Only(Kind::Timeout), Fire::Failure);
    timeout_cancel_outermost => |n| nested_cancel(n, Nesting::Only(Kind::Timeout));
    timeout_drop_unfired => |n| nested_drop(n, Nesting::Only(Kind::Timeout));
    timeout_all_timers_fire => |n| nested_timeout(n, Nesting::Only(Kind::Timeout));

    coro_inline_value => |n| nested_fire(n, Nesting::Only(Kind::Inline), Fire::Value);
    coro_inline_failure => |n| nested_fire(n, Nesting::Only(Kind::Inline), Fire::Failure);
    coro_inline_cancel_outermost => |n| nested_cancel(n, Nesting::Only(Kind::Inline));
    coro_inline_drop_unfired => |n| nested_drop(n, Nesting::Only(Kind::Inline));

    coro_async_value => |n| nested_fire(n, Nesting::Only(Kind::Async), Fire::Value);
    coro_async_failure => |n| nested_fire(n, Nesting::Only(Kind::Async), Fire::Failure);
    coro_async_cancel_outermost => |n| nested_cancel(n, Nesting::Only(Kind::Async));
    coro_async_drop_unfired => |n| nested_drop(n, Nesting::Only(Kind::Async));

    coro_join_value => |n| nested_fire(n, Nesting::Only(Kind::Join), Fire::Value);
    coro_join_failure => |n| nested_fire(n, Nesting::Only(Kind::Join), Fire::Failure);
    coro_join_cancel_outermost => |n| nested_cancel(n, Nesting::Only(Kind::Join));
    coro_join_drop_unfired => |n| nested_drop(n, Nesting::Only(Kind::Join));

    mixed_value => |n| nested_fire(n, Nesting::Mixed, Fire::Value);
    mixed_failure => |n| nested_fire(n, Nesting::Mixed, Fire::Failure);
    mixed_cancel_outermost => |n| nested_cancel(n, Nesting::Mixed);
    mixed_drop_unfired => |n| nested_drop(n, Nesting::Mixed);
    mixed_timeout => |n| nested_timeout(n, Nesting::Mixed);
}

// ------------------------------------------------------------------------------------------
// A pipeline of coroutines resumed by same-thread foreign wakes: coroutine `i` awaits a
// `oneshot::Receiver` and completes the sender coroutine `i + 1` awaits.

struct Pipeline {
    first: oneshot::Sender<u64>,
    coroutines: Vec<Deferred<()>>,
    last: oneshot::Receiver<u64>,
}

fn pipeline(n: usize) -> Pipeline {
    let (first, mut rx) = oneshot::channel::<u64>();
    let mut coroutines = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, next_rx) = oneshot::channel::<u64>();
        let this_rx = std::mem::replace(&mut rx, next_rx);
        coroutines.push(ensure_deferred(async move {
            let v = this_rx.await?;
            let _ = tx.send(v + 1);
            Ok(())
        }));
    }
    Pipeline {
        first,
        coroutines,
        last: rx,
    }
}

fn pipeline_value(n: usize) {
    no_reports(|| {
        let Pipeline {
            first,
            coroutines,
            mut last,
        } = pipeline(n);
        assert!(first.send(7).is_ok());
        assert_eq!(last.try_recv(), Ok(Some(7 + n as u64)));
        for d in coroutines {
            success_result_of(d);
        }
    });
}

/// The first sender is dropped: every coroutine in turn fails with `Canceled` and drops its
/// sender.
fn pipeline_failure(n: usize) {
    no_reports(|| {
        let Pipeline {
            first,
            coroutines,
            mut last,
        } = pipeline(n);
        drop(first);
        assert_eq!(last.try_recv(), Err(oneshot::Canceled));
        for d in coroutines {
            assert!(failure_result_of(d).check::<oneshot::Canceled>());
        }
    });
}

/// Cancelling the first coroutine drops its future and so its sender: the rest fail in turn.
fn pipeline_cancel_first(n: usize) {
    no_reports(|| {
        let Pipeline {
            first,
            coroutines,
            mut last,
        } = pipeline(n);
        coroutines[0].cancel();
        assert!(
            first.is_canceled(),
            "the first coroutine's receiver was dropped"
        );
        assert_eq!(last.try_recv(), Err(oneshot::Canceled));
        let mut it = coroutines.into_iter();
        assert!(failure_result_of(it.next().unwrap()).check::<CancelledError>());
        for d in it {
            assert!(failure_result_of(d).check::<oneshot::Canceled>());
        }
    });
}

/// The coroutines' Deferreds are dropped, then the first sender, then the last receiver.
fn pipeline_drop(n: usize) {
    let reports = count_reports(
        |f| f.downcast_ref::<oneshot::Canceled>().is_some(),
        || {
            let Pipeline {
                first,
                coroutines,
                last,
            } = pipeline(n);
            drop(coroutines);
            drop(first);
            drop(last);
        },
    );
    assert!(reports <= n, "{reports} reports");
}

depth_tests! {
    foreign_wake_pipeline_value => pipeline_value;
    foreign_wake_pipeline_failure => pipeline_failure;
    foreign_wake_pipeline_cancel_first => pipeline_cancel_first;
    foreign_wake_pipeline_drop_unfired => pipeline_drop;
}

// ------------------------------------------------------------------------------------------
// Lock, semaphore and queue hand-overs: each waiter's step releases (or puts) at once, which
// hands over to the next waiter inside that call.

fn lock_handover(n: usize) {
    no_reports(|| {
        let lock = DeferredLock::new();
        let held = success_result_of(lock.acquire());
        let waiters: Vec<Deferred<usize>> = (0..n)
            .map(|i| {
                lock.acquire().add_callback(move |l: DeferredLock| {
                    l.release()?;
                    Ok(i)
                })
            })
            .collect();
        assert_eq!(lock.waiting(), n);
        held.release().unwrap();
        assert!(!lock.is_locked());
        for (i, d) in waiters.into_iter().enumerate() {
            assert_eq!(success_result_of(d), i);
        }
    });
}

/// Every handle to the lock is dropped while `n` waiters wait: each fails with `TriggerDropped`.
fn lock_drop_with_waiters(n: usize) {
    no_reports(|| {
        let lock = DeferredLock::new();
        let held = success_result_of(lock.acquire());
        let waiters: Vec<Deferred<DeferredLock>> = (0..n).map(|_| lock.acquire()).collect();
        drop(lock);
        drop(held);
        for d in waiters {
            assert!(failure_result_of(d).check::<TriggerDropped>());
        }
    });
}

/// Every handle to the semaphore is dropped while `n` waiters wait: each fails with
/// `TriggerDropped`.
fn semaphore_drop_with_waiters(n: usize) {
    no_reports(|| {
        let sem = DeferredSemaphore::new(1).unwrap();
        let held = success_result_of(sem.acquire());
        let waiters: Vec<Deferred<DeferredSemaphore>> = (0..n).map(|_| sem.acquire()).collect();
        drop(sem);
        drop(held);
        for d in waiters {
            assert!(failure_result_of(d).check::<TriggerDropped>());
        }
    });
}

/// The queue is dropped while `n` `get`s wait: each fails with `TriggerDropped`.
fn queue_drop_with_waiters(n: usize) {
    no_reports(|| {
        let q = DeferredQueue::<u64>::new();
        let waiters: Vec<Deferred<u64>> = (0..n).map(|_| q.get().unwrap()).collect();
        drop(q);
        for d in waiters {
            assert!(failure_result_of(d).check::<TriggerDropped>());
        }
    });
}

fn semaphore_handover(n: usize) {
    no_reports(|| {
        let sem = DeferredSemaphore::new(1).unwrap();
        let held = success_result_of(sem.acquire());
        let waiters: Vec<Deferred<usize>> = (0..n)
            .map(|i| {
                sem.acquire().add_callback(move |s: DeferredSemaphore| {
                    s.release()?;
                    Ok(i)
                })
            })
            .collect();
        assert_eq!(sem.waiting(), n);
        held.release().unwrap();
        assert_eq!(sem.tokens(), 1);
        for (i, d) in waiters.into_iter().enumerate() {
            assert_eq!(success_result_of(d), i);
        }
    });
}

/// `n` semaphore `run`s, each waiting on a Deferred fired by the previous one's work: the
/// hand-over runs through every release.
fn semaphore_run_chain(n: usize) {
    no_reports(|| {
        let sem = DeferredSemaphore::new(1).unwrap();
        let (gate, gate_trigger) = Deferred::<u64>::new();
        let mut results = Vec::with_capacity(n);
        results.push(sem.run(move || gate));
        for _ in 1..n {
            results.push(sem.run(|| Ok(1_u64)));
        }
        assert_eq!(sem.waiting(), n - 1);
        assert!(gate_trigger.callback(7));
        assert_eq!(sem.tokens(), 1);
        let total: u64 = results.into_iter().map(success_result_of).sum();
        assert_eq!(total, 7 + (n as u64 - 1));
    });
}

/// `n` pending `get`s, each putting its value + 1 back: one `put` runs through all of them.
fn queue_handover(n: usize, cancel_last: bool) {
    no_reports(|| {
        let q = DeferredQueue::<u64>::new();
        let mut waiters: Vec<Deferred<u64>> = (0..n)
            .map(|_| {
                let q2 = q.clone();
                q.get().unwrap().add_callback(move |v: u64| {
                    q2.put(v + 1).map_err(|e| Failure::msg(e))?;
                    Ok(v)
                })
            })
            .collect();
        assert_eq!(q.waiting(), n);
        let last = if cancel_last { waiters.pop() } else { None };
        if let Some(last) = &last {
            last.cancel();
        }
        q.put(7).unwrap();
        for (i, d) in waiters.into_iter().enumerate() {
            assert_eq!(success_result_of(d), 7 + i as u64);
        }
        let left = if let Some(last) = last {
            assert!(failure_result_of(last).check::<CancelledError>());
            7 + n as u64 - 1
        } else {
            7 + n as u64
        };
        assert_eq!(success_result_of(q.get().unwrap()), left);
    });
}

/// `n` coroutines, each awaiting the lock, then releasing it: one release resumes them all in
/// turn.
fn lock_handover_coroutines(n: usize) {
    no_reports(|| {
        let lock = DeferredLock::new();
        let held = success_result_of(lock.acquire());
        let coroutines: Vec<Deferred<usize>> = (0..n)
            .map(|i| {
                let acquired = lock.acquire();
                ensure_deferred(async move {
                    let l = acquired.await?;
                    l.release()?;
                    Ok(i)
                })
            })
            .collect();
        assert_eq!(lock.waiting(), n);
        held.release().unwrap();
        assert!(!lock.is_locked());
        for (i, d) in coroutines.into_iter().enumerate() {
            assert_eq!(success_result_of(d), i);
        }
    });
}

/// `n` coroutines, each awaiting a `get`, then putting its value + 1 back.
fn queue_handover_coroutines(n: usize) {
    no_reports(|| {
        let q = DeferredQueue::<u64>::new();
        let coroutines: Vec<Deferred<u64>> = (0..n)
            .map(|_| {
                let got = q.get().unwrap();
                let q2 = q.clone();
                ensure_deferred(async move {
                    let v = got.await?;
                    q2.put(v + 1).map_err(|e| Failure::msg(e))?;
                    Ok(v)
                })
            })
            .collect();
        q.put(7).unwrap();
        for (i, d) in coroutines.into_iter().enumerate() {
            assert_eq!(success_result_of(d), 7 + i as u64);
        }
        assert_eq!(success_result_of(q.get().unwrap()), 7 + n as u64);
    });
}

depth_tests! {
    lock_handover_value => lock_handover;
    lock_handover_coroutines_value => lock_handover_coroutines;
    queue_handover_coroutines_value => queue_handover_coroutines;
    lock_drop_with_waiters_unfired => lock_drop_with_waiters;
    semaphore_handover_value => semaphore_handover;
    semaphore_drop_with_waiters_unfired => semaphore_drop_with_waiters;
    queue_drop_with_waiters_unfired => queue_drop_with_waiters;
    semaphore_run_chain_value => semaphore_run_chain;
    queue_handover_value => |n| queue_handover(n, false);
    queue_handover_cancel_last => |n| queue_handover(n, true);
}

// ------------------------------------------------------------------------------------------
// Linked structures of fired Deferreds, and nested `FirstError`s.

struct Node {
    next: Option<Deferred<Node>>,
}

/// `n` nodes, each in a Deferred made by `wrap`.
fn linked(n: usize, wrap: fn(Node) -> Deferred<Node>) -> Deferred<Node> {
    let mut d = wrap(Node { next: None });
    for _ in 0..n {
        d = wrap(Node { next: Some(d) });
    }
    d
}

fn in_succeed(node: Node) -> Deferred<Node> {
    succeed(node)
}

fn in_chain(node: Node) -> Deferred<Node> {
    succeed(node).add_callback(Ok)
}

fn in_fired_trigger(node: Node) -> Deferred<Node> {
    let (d, t) = Deferred::new();
    assert!(t.callback(node));
    d
}

fn linked_dropped(n: usize, wrap: fn(Node) -> Deferred<Node>) {
    no_reports(|| {
        let d = linked(n, wrap);
        drop(d);
    });
}

/// Walks the structure (taking each node out of its Deferred), counting the links.
fn linked_walked(n: usize, wrap: fn(Node) -> Deferred<Node>) {
    no_reports(|| {
        let mut node = success_result_of(linked(n, wrap));
        let mut links = 0;
        while let Some(next) = node.next.take() {
            node = success_result_of(next);
            links += 1;
        }
        assert_eq!(links, n);
    });
}

fn nested_first_errors(n: usize) -> (Failure, Failure) {
    let original = Failure::msg("at the bottom");
    let mut f = original.clone();
    for i in 0..n {
        f = Failure::new(FirstError::new(i, f));
    }
    (f, original)
}

/// `n` nested `FirstError`s: the kinds are found through them, the bottom is the original, and
/// the whole thing is dropped (the original first, so that the outer drop frees everything).
fn first_errors_checked_and_dropped(n: usize) {
    let (f, original) = nested_first_errors(n);
    assert_eq!(
        f.downcast_ref::<FirstError>().map(FirstError::index),
        Some(n - 1)
    );
    assert!(f.check::<FirstError>());
    assert!(
        f.check::<MessageError>(),
        "check looks through every source"
    );
    let (root, wrappers) = unwrap_failure(&f);
    assert!(root.same_as(&original));
    assert_eq!(wrappers, n);
    drop((root, original));
    let copy = f.clone();
    drop(f);
    drop(copy);
}

/// `n` nested `FirstError`s as a Deferred's failure, never handled: reported once, then freed.
fn first_errors_unhandled(n: usize) {
    let reports = count_reports(
        |f| f.downcast_ref::<FirstError>().is_some(),
        || {
            let (f, original) = nested_first_errors(n);
            drop(original);
            let d = fail::<u64>(f).add_callback(plus_one);
            drop(d);
        },
    );
    assert_eq!(reports, 1);
}

/// `n` nested `FirstError`s passed up through `n` gather levels' errbacks and trapped at the top.
fn first_errors_through_a_chain(n: usize) {
    no_reports(|| {
        let (f, original) = nested_first_errors(n);
        let d = fail::<u64>(f).add_errback(move |f: Failure| {
            let (root, wrappers) = unwrap_failure(&f);
            assert_eq!(wrappers, n);
            Err(root)
        });
        assert!(failure_result_of(d).same_as(&original));
    });
}

depth_tests! {
    linked_succeed_dropped => |n| linked_dropped(n, in_succeed);
    linked_succeed_walked => |n| linked_walked(n, in_succeed);
    linked_chain_dropped => |n| linked_dropped(n, in_chain);
    linked_fired_trigger_dropped => |n| linked_dropped(n, in_fired_trigger);
    nested_first_errors_dropped => first_errors_checked_and_dropped;
    nested_first_errors_unhandled => first_errors_unhandled;
    nested_first_errors_through_a_chain => first_errors_through_a_chain;
}

// ------------------------------------------------------------------------------------------
// A ring: `n` Deferreds, each waiting on the next, the last waiting on the first. Nothing can
// ever fire it; cancelling one must terminate, with a `CircularChainError` or a
// `CancelledError` in the chain.

fn ring(n: usize) {
    let seen = Rc::new(RefCell::new(None::<Result<u64, Failure>>));
    let s = seen.clone();
    let reports = count_reports(
        |f| {
            f.downcast_ref::<CancelledError>().is_some()
                || f.check::<defer_core::errors::CircularChainError>()
        },
        || {
            // The first Deferred's chain, ending in a step that records what it got; it is
            // handed to the last level, closing the ring.
            let (first, first_trigger) = Deferred::<u64>::new();
            let first_ctl = first.control();
            let slot: Rc<RefCell<Option<Deferred<u64>>>> = Rc::new(RefCell::new(None));
            let slot2 = slot.clone();
            let head = first
                .add_callback(move |_: u64| slot2.borrow_mut().take().expect("the ring's end"))
                .add_both(move |r: Result<u64, Failure>| {
                    *s.borrow_mut() = Some(r.clone());
                    r
                });
            // Levels 1..n: each waits on the one before (outer fired at once).
            let mut cur = head;
            let mut triggers = Vec::with_capacity(n);
            for _ in 1..n {
                let (d, t) = Deferred::<u64>::new();
                let inner = cur;
                cur = d.add_callback(move |_: u64| inner);
                triggers.push(t);
            }
            // The first one waits on the outermost: a ring.
            *slot.borrow_mut() = Some(cur);
            for t in triggers {
                assert!(t.callback(0));
            }
            assert!(first_trigger.callback(0));
            if seen.borrow().is_none() {
                // Printed so that a hang says where it happened.
                eprintln!("the ring is closed; cancelling it");
                first_ctl.cancel();
                eprintln!("the cancel returned");
            }
        },
    );
    let seen = seen.borrow_mut().take();
    match seen {
        Some(Err(f)) => assert!(
            f.check::<CancelledError>() || f.check::<defer_core::errors::CircularChainError>(),
            "the ring ended with {} ({})",
            f.type_name(),
            f.message()
        ),
        Some(Ok(v)) => panic!("the ring produced a value: {v}"),
        None => panic!("the cancelled ring never finished"),
    }
    assert!(reports <= 1, "{reports} reports");
}

depth_tests! {
    ring_of_waiting_deferreds_cancelled => ring;
}
