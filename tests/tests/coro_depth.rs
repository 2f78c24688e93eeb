//! Issue 3, "Depth": coroutines never recurse, on a thread with a 2 MiB stack.
//!
//! - a million `yield_!` (and `.await`) of already-fired Deferreds in one loop;
//! - a hundred thousand `yield_!` of pending Deferreds, fired one after another from outside;
//! - a million nested coroutines, each waiting on the next, the innermost fired last, so that
//!   the whole cascade of resumptions happens inside that one `callback` (Twisted loses the
//!   outer result at about 200 levels): `#[inline_callbacks]` levels, `ensure_deferred` levels,
//!   and levels alternating between the two.
//!
//! The nested levels are built iteratively, as Twisted's probe does, so that only the firing
//! could recurse: `level(inner)` yields `inner` and adds one, and the test calls `d = level(d)` a
//! million times, starting from a pending Deferred. Each test prints how long it took.

use std::time::Instant;

use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{Deferred, Failure, ensure_deferred, inline_callbacks, succeed, yield_};

const MILLION: u64 = 1_000_000;
const PENDING_YIELDS: u64 = 100_000;
/// What the innermost Deferred is fired with.
const INITIAL: u64 = 7;

// On a 2 MiB stack, the size DESIGN §5 promises to stay within.
#[path = "support/small_stack.rs"]
mod small_stack;

/// Runs the scenario on a 2 MiB stack and reports how long it took.
fn on_small_stack(name: &str, f: impl FnOnce() + Send + 'static) {
    let start = Instant::now();
    small_stack::on_small_stack_named(name, f);
    eprintln!("{name}: {:.2?}", start.elapsed());
}

#[test]
fn a_million_yields_of_fired_deferreds() {
    on_small_stack("a_million_yields_of_fired_deferreds", || {
        #[inline_callbacks]
        fn count(n: u64) -> Deferred<u64> {
            let mut total = 0;
            for _ in 0..n {
                total += yield_!(succeed(1))?;
            }
            Ok(total)
        }
        assert_eq!(success_result_of(count(MILLION)), MILLION);
    });
}

#[test]
fn a_million_awaits_of_fired_deferreds() {
    on_small_stack("a_million_awaits_of_fired_deferreds", || {
        let d = ensure_deferred(async {
            let mut total = 0;
            for _ in 0..MILLION {
                total += succeed(1).await?;
            }
            Ok(total)
        });
        assert_eq!(success_result_of(d), MILLION);
    });
}

#[test]
fn a_hundred_thousand_yields_of_pending_deferreds_fired_from_outside() {
    on_small_stack("a_hundred_thousand_yields_of_pending_deferreds", || {
        #[inline_callbacks]
        fn sum(inputs: Vec<Deferred<u64>>) -> Deferred<u64> {
            let mut total = 0;
            for d in inputs {
                total += yield_!(d)?;
            }
            Ok(total)
        }
        let (inputs, triggers): (Vec<_>, Vec<_>) =
            (0..PENDING_YIELDS).map(|_| Deferred::new()).unzip();
        let d = sum(inputs);
        for (i, t) in triggers.into_iter().enumerate() {
            assert_no_result(&d);
            // Each fire resumes the coroutine, which runs to its next (pending) yield.
            assert!(t.callback(i as u64 + 1));
        }
        assert_eq!(
            success_result_of(d),
            PENDING_YIELDS * (PENDING_YIELDS + 1) / 2
        );
    });
}

#[inline_callbacks]
fn level_inline(inner: Deferred<u64>) -> Deferred<u64> {
    Ok(yield_!(inner)? + 1)
}

fn level_async(inner: Deferred<u64>) -> Deferred<u64> {
    ensure_deferred(async move { Ok(inner.await? + 1) })
}

/// Builds `levels` nested levels, level `i` made by `level(i, d)` around level `i - 1`, on a
/// pending innermost Deferred; fires it with [`INITIAL`] and checks the outermost result.
fn nested(levels: u64, level: fn(u64, Deferred<u64>) -> Deferred<u64>) {
    let start = Instant::now();
    let (mut d, innermost) = Deferred::new();
    for i in 0..levels {
        d = level(i, d);
    }
    assert_no_result(&d);
    let built = start.elapsed();
    let start = Instant::now();
    // The whole cascade of a million resumptions runs inside this call.
    assert!(innermost.callback(INITIAL));
    let fired = start.elapsed();
    assert_eq!(success_result_of(d), levels + INITIAL);
    eprintln!("  built in {built:.2?}, fired in {fired:.2?}");
}

#[test]
fn a_million_nested_inline_callbacks_levels() {
    on_small_stack("a_million_nested_inline_callbacks_levels", || {
        nested(MILLION, |_, d| level_inline(d));
    });
}

#[test]
fn a_million_nested_ensure_deferred_levels() {
    on_small_stack("a_million_nested_ensure_deferred_levels", || {
        nested(MILLION, |_, d| level_async(d));
    });
}

#[test]
fn a_million_nested_levels_alternating_inline_callbacks_and_ensure_deferred() {
    on_small_stack("a_million_nested_alternating_levels", || {
        nested(MILLION, |i, d| {
            if i % 2 == 0 {
                level_inline(d)
            } else {
                level_async(d)
            }
        });
    });
}

#[test]
fn a_failure_crossing_a_million_nested_levels() {
    // The innermost fails: the failure rises through every level, each adding its yield point
    // to the trace, and the outermost Deferred holds it (the trace is then dropped, a million
    // frames long).
    on_small_stack("a_failure_crossing_a_million_nested_levels", || {
        let (mut d, innermost) = Deferred::<u64>::new();
        for i in 0..MILLION {
            d = if i % 2 == 0 {
                level_inline(d)
            } else {
                level_async(d)
            };
        }
        let original = Failure::msg("innermost failed");
        assert!(innermost.errback(original.clone()));
        let f = failure_result_of(d);
        assert!(f.same_as(&original));
        assert_eq!(f.frames().count() as u64, MILLION);
        // The `.await` frames are named after the `async fn` their coroutine runs.
        assert_eq!(
            f.frames().next().map(|fr| fr.function()),
            Some("level_async")
        );
        assert_eq!(
            f.frames().nth(1).map(|fr| fr.function()),
            Some("level_inline")
        );
    });
}
