//! Issue 11: a suspended coroutine's own chain is made only when something needs it. Until then
//! the program's `Deferred` holds the coroutine's driver itself. These tests pin that everything
//! a program can do with that handle behaves as with a chain, whichever comes first. Each action
//! is taken while the chain is not made yet, and again after something made it:
//! - adding steps, awaiting, cancelling, `Debug`, the `debug` snapshot;
//! - dropping the handle with the coroutine suspended, finished, failed, or stuck forever;
//! - the allocations each state costs.

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use std::cell::Cell;
use std::rc::Rc;

use counting_alloc::{measure, on_fresh_thread};
use defer_core::errors::CancelledError;
use defer_core::testing::{
    assert_no_result, failure_result_of, success_result_of, unhandled_during,
};
use defer_core::{Deferred, Failure, ensure_deferred, inline_callbacks, yield_};

/// Counts its drops: a coroutine body holding one is dropped exactly once.
struct DropCount(Rc<Cell<u32>>);
impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[inline_callbacks]
fn plus_one(d: Deferred<u64>) -> Deferred<u64> {
    let x = yield_!(d)?;
    Ok(x + 1)
}

#[test]
fn a_held_suspended_coroutine_gives_its_result_when_resumed() {
    let (d, t) = Deferred::new();
    let c = plus_one(d);
    assert_no_result(&c);
    assert!(t.callback(41));
    assert_eq!(success_result_of(c), 42);
}

#[test]
fn a_suspended_coroutine_costs_no_chain_of_its_own_until_a_step_is_added() {
    let (suspended, with_step) = on_fresh_thread(|| {
        // Warm up the thread's registry and work loop.
        let (d, t) = Deferred::new();
        let c = plus_one(d);
        t.callback(1);
        assert_eq!(success_result_of(c), 2);

        let (d, t) = Deferred::<u64>::new();
        let ((c, t), suspended) = measure(move || (plus_one(d), t));
        let (c, with_step) = measure(move || c.add_callback(|x| Ok(x * 2)));
        assert!(t.callback(20));
        assert_eq!(success_result_of(c), 42);
        (suspended, with_step)
    });
    // The registry reuses the warm-up coroutine's slot.
    assert_eq!(
        suspended.allocs, 2,
        "the driver and the body, and no chain of its own"
    );
    // The step captures nothing: it is held in place, so the only allocation is the chain.
    assert_eq!(
        with_step.allocs, 1,
        "the coroutine's own chain, made for the step"
    );
}

#[test]
fn steps_added_before_and_after_the_coroutine_finishes_see_its_result() {
    let (d, t) = Deferred::new();
    let c = plus_one(d).add_callback(|x| Ok(x * 10));
    assert!(t.callback(1));
    assert_eq!(success_result_of(c), 20);

    let (d, t) = Deferred::new();
    let c = plus_one(d);
    assert!(t.callback(1));
    // Finished before anything needed its chain: the chain holds the result.
    assert_eq!(success_result_of(c.add_callback(|x| Ok(x * 10))), 20);
}

#[test]
fn cancelling_the_handle_cancels_what_the_coroutine_awaits() {
    let (d, _t) = Deferred::<u64>::new();
    let c = ensure_deferred(async move {
        match d.await {
            Err(f) if f.check::<CancelledError>() => Ok("recovered"),
            Err(f) => Err(f),
            Ok(_) => Ok("fired"),
        }
    });
    c.cancel();
    assert_eq!(success_result_of(c), "recovered");
}

#[test]
fn another_coroutine_awaits_it() {
    let (d, t) = Deferred::new();
    let inner = plus_one(d);
    let outer = ensure_deferred(async move { Ok(inner.await? * 2) });
    assert_no_result(&outer);
    assert!(t.callback(4));
    assert_eq!(success_result_of(outer), 10);
}

#[test]
fn its_debug_says_where_it_is_suspended_before_its_chain_is_made() {
    let (d, t) = Deferred::<u64>::new();
    let c = plus_one(d);
    let shown = format!("{c:?}");
    assert!(
        shown.contains("coroutine suspended at") && shown.contains(file!()),
        "{shown}"
    );
    t.callback(0);
    assert_eq!(success_result_of(c), 1);
}

#[test]
fn the_snapshot_lists_a_coroutine_whose_chain_is_not_made() {
    let (d, t) = Deferred::<u64>::new();
    let c = plus_one(d);
    let snapshot = defer_core::debug::snapshot();
    let shown = format!("{snapshot}");
    assert!(shown.contains("plus_one"), "{shown}");
    t.callback(0);
    assert_eq!(success_result_of(c), 1);
}

#[test]
fn a_dropped_handle_leaves_the_coroutine_running_to_its_end() {
    let ran = Rc::new(Cell::new(0u64));
    let seen = ran.clone();
    let (d, t) = Deferred::<u64>::new();
    drop(ensure_deferred(async move {
        seen.set(d.await? + 1);
        Ok(())
    }));
    assert_eq!(ran.get(), 0);
    assert!(t.callback(6));
    assert_eq!(ran.get(), 7);
}

#[test]
fn a_failure_nobody_can_handle_is_reported_once_whenever_the_handle_goes() {
    // The handle dropped while the coroutine is suspended: reported when it fails.
    let (d, t) = Deferred::<u64>::new();
    let reported = unhandled_during(move || {
        drop(ensure_deferred(async move {
            d.await?;
            Err::<(), _>(Failure::msg("lost"))
        }));
        t.callback(1);
    });
    assert_eq!(reported.len(), 1);
    assert!(reported[0].to_string().contains("lost"));

    // The coroutine failed first, with nothing but the handle holding it: reported when the
    // handle goes, not before.
    let (d, t) = Deferred::<u64>::new();
    let c = ensure_deferred(async move {
        d.await?;
        Err::<(), _>(Failure::msg("also lost"))
    });
    assert!(unhandled_during(|| assert!(t.callback(1))).is_empty());
    let reported = unhandled_during(move || drop(c));
    assert_eq!(reported.len(), 1);
    assert!(reported[0].to_string().contains("also lost"));

    // Handled: nothing reported.
    let (d, t) = Deferred::<u64>::new();
    let c = ensure_deferred(async move {
        d.await?;
        Err::<(), _>(Failure::msg("handled"))
    });
    let reported = unhandled_during(move || {
        t.callback(1);
        assert!(failure_result_of(c).to_string().contains("handled"));
    });
    assert!(reported.is_empty());
}

#[test]
fn a_coroutine_that_can_never_resume_is_freed_when_its_handle_goes() {
    let drops = Rc::new(Cell::new(0));
    let guard = DropCount(drops.clone());
    let (d, t) = Deferred::<u64>::new();
    // Only the coroutine holds the Deferred it awaits, whose trigger is detached: nothing can
    // ever fire it.
    t.detach();
    let c = ensure_deferred(async move {
        let _guard = guard;
        d.await
    });
    assert_no_result(&c);
    assert_eq!(drops.get(), 0);
    drop(c);
    assert_eq!(
        drops.get(),
        1,
        "the body, with what it holds, was dropped once"
    );
}

#[test]
fn a_coroutine_that_finishes_at_once_keeps_only_its_chain() {
    let (v, made) = on_fresh_thread(|| {
        let warm = ensure_deferred(async { Ok(1u8) });
        assert_eq!(success_result_of(warm), 1);
        let (c, made) = measure(|| ensure_deferred(async { Ok(2u8) }));
        (success_result_of(c), made)
    });
    assert_eq!(v, 2);
    // The driver, the body and the chain were made; the driver and the body are gone once it
    // finished: the handle holds the chain alone.
    assert_eq!((made.allocs, made.live), (3, 1));
}
