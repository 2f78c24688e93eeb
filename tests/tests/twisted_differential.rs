//! Issue 15: where defer and Twisted disagreed on the same program, found by differential
//! testing. One section per family, each with the smallest program and what Twisted does (or, for
//! family 1, the departure docs/DESIGN.md argues).

#[macro_use]
#[path = "support/error_kinds.rs"]
mod error_kinds;

use std::cell::Cell;
use std::rc::Rc;

use defer_core::testing::{assert_no_result, success_result_of, unhandled_during};
use defer_core::{Deferred, succeed};

error_kind!(E1);

struct CountsDrops(Rc<Cell<u32>>);
impl Drop for CountsDrops {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

// Family 1: a failure fired into a paused Deferred that nobody unpauses.

/// `d.pause(); errback(E1); drop(d)`: no code can handle E1 any more (the handle is gone and a
/// control cannot add steps), so it is reported, once, when the chain goes. Twisted reports
/// nothing (its `__del__` check only runs on an unpaused Deferred); this is a departure, argued
/// in docs/DESIGN.md and noted in tests/CASES.md.
#[test]
fn a_failure_in_a_paused_deferred_nobody_can_unpause_is_reported_once() {
    let reports = unhandled_during(|| {
        let (d, t) = Deferred::<u8>::new();
        d.pause();
        t.errback(E1::new("paused"));
        drop(d);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].check::<E1>());
}

// Family 2: reference cycles are freed, and the failure they hold is reported.

#[test]
fn a_deferred_chained_to_its_own_trigger_is_freed() {
    let drops = Rc::new(Cell::new(0));
    let guard = CountsDrops(drops.clone());
    let (d, t) = Deferred::<u8>::new();
    let d = d.add_callback(move |x| {
        let _ = &guard;
        Ok(x)
    });
    let ctl = d.control();
    let reports = unhandled_during(|| d.chain_deferred(t));
    assert!(reports.is_empty(), "{reports:?}");
    assert_eq!(drops.get(), 1, "the chain and its step were freed");
    ctl.cancel();
    assert!(!ctl.is_called(), "the control reaches nothing");
}

#[test]
fn a_chain_waiting_on_a_paused_deferred_nobody_unpauses_is_freed_and_its_failure_reported() {
    let drops = Rc::new(Cell::new(0));
    let guard = CountsDrops(drops.clone());
    let reports = unhandled_during(|| {
        let (inner, inner_t) = Deferred::<u8>::new();
        inner.pause();
        inner_t.errback(E1::new("held by the paused inner"));
        let outer = succeed(1u8)
            .add_callback(move |_| inner)
            .add_callback(move |x| {
                let _ = &guard;
                Ok(x)
            });
        assert_no_result(&outer);
        drop(outer);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].check::<E1>());
    assert_eq!(drops.get(), 1, "the outer chain's pending step was freed");

    // The same, with the outer handle dropped before the inner is returned.
    let reports = unhandled_during(|| {
        let (inner, inner_t) = Deferred::<u8>::new();
        inner.pause();
        inner_t.errback(E1::new("held by the paused inner"));
        let (outer, outer_t) = Deferred::<u8>::new();
        drop(outer.add_callback(move |_| inner));
        outer_t.callback(0);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].check::<E1>());
}

#[test]
fn a_wait_cycle_kept_by_a_handle_is_not_freed() {
    let (inner, inner_t) = Deferred::<u8>::new();
    inner.pause();
    let ctl = inner.control();
    inner_t.callback(3);
    let outer = succeed(1u8).add_callback(move |_| inner);
    assert_no_result(&outer);
    assert!(ctl.unpause());
    assert_eq!(success_result_of(outer), 3);
}

// Family 3: a `chain_deferred` source freed with its hand-over pending.

#[test]
fn a_paused_chain_deferred_source_is_kept_by_its_target_and_delivers_on_unpause() {
    let (src, src_t) = Deferred::<u8>::new();
    src.pause();
    let ctl = src.control();
    let (target, target_t) = Deferred::<u8>::new();
    src.chain_deferred(target_t);
    assert!(src_t.callback(7));
    assert_no_result(&target);
    assert!(ctl.unpause(), "the source is still there to unpause");
    assert_eq!(success_result_of(target), 7);
}

#[test]
fn a_chain_deferred_target_dropped_frees_a_source_nobody_can_unpause() {
    let reports = unhandled_during(|| {
        let (src, src_t) = Deferred::<u8>::new();
        src.pause();
        let (target, target_t) = Deferred::<u8>::new();
        src.chain_deferred(target_t);
        src_t.errback(E1::new("never delivered"));
        drop(target);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].check::<E1>());
}

// Family 4: the bare-value representation stays invisible.

#[test]
fn the_outer_deferred_has_fired_while_the_one_its_step_returned_waits() {
    let (inner, t) = Deferred::<u8>::new();
    let outer = succeed(1u8).add_callback(move |_| inner);
    assert!(outer.is_called(), "Twisted: the outer has fired, and waits");
    drop(t);
    let _ = unhandled_during(|| drop(outer));
}

#[test]
fn pausing_the_spent_inner_changes_nothing_for_the_outer() {
    let (inner, t) = Deferred::<u8>::new();
    let inner_ctl = inner.control();
    let outer = succeed(1u8).add_callback(move |_| inner);
    t.callback(4);
    inner_ctl.pause();
    assert_eq!(success_result_of(outer.add_callback(|x| Ok(x * 2))), 8);
}

#[test]
fn the_outer_and_the_inner_have_pause_counts_of_their_own() {
    let (inner, t) = Deferred::<u8>::new();
    let inner_ctl = inner.control();
    inner.pause();
    let outer = succeed(1u8).add_callback(move |_| inner);
    assert!(
        !outer.unpause(),
        "the outer was not paused: nothing to undo"
    );
    t.callback(5);
    assert_no_result(&outer);
    assert!(inner_ctl.unpause());
    assert_eq!(success_result_of(outer), 5);
}
