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

// Family 2, through a combinator: the input's step holds the combinator's state, which holds
// the combined Deferred's trigger. The reclaiming walk sees through that state
// (`defer-core/src/engine/join.rs`), so a cycle through it is freed like any other.

/// A guard that counts its drop, captured by a step on the cycle.
fn guarded_step(d: Deferred<u8>, drops: &Rc<Cell<u32>>) -> Deferred<u8> {
    let guard = CountsDrops(drops.clone());
    d.add_callback(move |x| {
        let _ = &guard;
        Ok(x)
    })
}

/// The combinators, each over one pending input (and, for the tuple gather, one that has fired).
type Combinator = (&'static str, fn(Deferred<u8>) -> Deferred<u8>);

fn combinators() -> [Combinator; 6] {
    use defer_core::{DeferredList, Gather, gather_results, race};
    [
        ("DeferredList", |a| {
            DeferredList::new([a]).build().add_callback(|_| Ok(0))
        }),
        ("DeferredList::gather", |a| {
            DeferredList::new([a]).gather().add_callback(|_| Ok(0))
        }),
        ("gather_results", |a| {
            gather_results([a]).add_callback(|_| Ok(0))
        }),
        ("fire_on_one_callback", |a| {
            DeferredList::new([a])
                .fire_on_one_errback(true)
                .fire_on_one_callback()
                .build()
                .add_callback(|_| Ok(0))
        }),
        ("race", |a| race([a]).add_callback(|_| Ok(0))),
        ("Gather", |a| {
            (a, succeed(1u8)).gather().add_callback(|_| Ok(0))
        }),
    ]
}

/// Each combinator, chained into the trigger of its own pending input: nothing can fire the pair
/// any more. Both are freed, nothing is reported, and the input's control reaches nothing.
#[test]
fn a_combinator_chained_into_its_own_input_is_freed() {
    for (name, build) in combinators() {
        let drops = Rc::new(Cell::new(0));
        let reports = unhandled_during(|| {
            let (input, input_t) = Deferred::<u8>::new();
            let input = guarded_step(input, &drops);
            let ctl = input.control();
            let out = guarded_step(build(input), &drops);
            out.chain_deferred(input_t);
            assert_eq!(
                drops.get(),
                2,
                "{name}: both chains and their steps were freed"
            );
            ctl.cancel();
            assert!(!ctl.is_called(), "{name}: the control reaches nothing");
        });
        assert!(reports.is_empty(), "{name}: {reports:?}");
    }
}

/// An input's errback returns the combinator's own Deferred: the input waits on the
/// combinator, which waits on the input. Once the input's trigger has fired, nothing can end the
/// wait: both are freed, and the failure the errback consumed is not reported.
#[test]
fn an_inputs_errback_returning_the_combinators_own_deferred_is_freed() {
    for (name, build) in combinators() {
        let drops = Rc::new(Cell::new(0));
        let reports = unhandled_during(|| {
            let slot: Rc<std::cell::RefCell<Option<Deferred<u8>>>> = Rc::default();
            let (input, input_t) = Deferred::<u8>::new();
            let from_slot = slot.clone();
            let input = guarded_step(
                input.add_errback(move |_| from_slot.borrow_mut().take().unwrap_or(succeed(9))),
                &drops,
            );
            let out = guarded_step(build(input), &drops);
            *slot.borrow_mut() = Some(out);
            assert_eq!(drops.get(), 0, "{name}: the list is held by the slot");
            input_t.errback(E1::new("consumed by the errback"));
            assert!(
                slot.borrow().is_none(),
                "{name}: the errback took the list's Deferred"
            );
            assert_eq!(
                drops.get(),
                2,
                "{name}: both chains and their steps were freed"
            );
        });
        assert!(reports.is_empty(), "{name}: {reports:?}");
    }
}

/// The same cycle as above, while something outside still reaches it (a second input's
/// trigger): it is kept, and it fires when that input does.
#[test]
fn a_combinator_cycle_reached_from_outside_is_kept_and_fires() {
    let drops = Rc::new(Cell::new(0));
    let seen = Rc::new(Cell::new(None));
    let (a, a_t) = Deferred::<u8>::new();
    let (b, b_t) = Deferred::<u8>::new();
    let seen_in_a = seen.clone();
    let a = guarded_step(a, &drops).add_callback(move |x| {
        seen_in_a.set(Some(x));
        Ok(x)
    });
    let first = defer_core::DeferredList::new([guarded_step(b, &drops), a])
        .fire_on_one_callback()
        .build()
        .add_callback(|r| match r {
            defer_core::list::FirstResult::Success { value, .. } => Ok(value),
            defer_core::list::FirstResult::AllFailed(_) => Ok(0),
        });
    first.chain_deferred(a_t);
    assert_eq!(
        drops.get(),
        0,
        "b's trigger reaches the list, which reaches a"
    );
    assert!(b_t.callback(5));
    assert_eq!(
        seen.get(),
        Some(5),
        "b fired the list, which fired a through the hand-over"
    );
    assert_eq!(drops.get(), 2, "then everything went");
}

/// A combinator whose only pending input is garbage (a coroutine stuck forever on a Deferred
/// nothing can fire) while its own Deferred is held: the input is freed, and the combinator's
/// dropped trigger fails its Deferred with `TriggerDropped`, as when the input goes alone.
#[test]
fn a_combinator_over_a_stuck_coroutine_fails_with_trigger_dropped() {
    use defer_core::errors::TriggerDropped;
    let never = defer_core::DeferredList::<u8>::new([])
        .fire_on_one_callback()
        .build();
    let stuck = defer_core::ensure_deferred(async move {
        let _ = never.await;
        Ok::<u8, defer_core::Failure>(0)
    });
    let list = defer_core::DeferredList::new([stuck]).build();
    let f = defer_core::testing::failure_result_of(list);
    assert!(f.check::<TriggerDropped>(), "{f:?}");
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

/// Two combinators in a ring: the first's Deferred is an input of the second, whose Deferred is
/// chained into the first's input. The first's other input fires (its step lets go of the first
/// combinator's state): nothing outside reaches the ring any more, and it is freed.
#[test]
fn a_ring_of_two_combinators_is_freed_once_nothing_outside_reaches_it() {
    let drops = Rc::new(Cell::new(0));
    let reports = unhandled_during(|| {
        let (a, a_t) = Deferred::<u8>::new();
        let (b, b_t) = Deferred::<u8>::new();
        let a = guarded_step(a, &drops);
        let first = defer_core::DeferredList::new([a, b])
            .build()
            .add_callback(|_| Ok(0u8));
        let second = defer_core::gather_results([first]).add_callback(|_| Ok(0u8));
        guarded_step(second, &drops).chain_deferred(a_t);
        assert_eq!(drops.get(), 0, "b's trigger still reaches the ring");
        assert!(b_t.callback(1));
        assert_eq!(
            drops.get(),
            2,
            "the ring was freed when b's step let go of the list"
        );
    });
    assert!(reports.is_empty(), "{reports:?}");
}
