//! The deep-chain scenarios of issue 2 ("Depth"), parameterised by size so that `depth.rs` runs
//! them with 1,000,000 and `leaks.rs` runs smaller versions under the counting allocator.
//!
//! Each scenario builds its structure, fires it, asserts the final result, and drops everything
//! before returning. None of them may leave an unhandled failure behind: every scenario runs
//! under [`no_unhandled`], which fails the test if one is reported.
//!
//! Step closures count their calls in a thread-local counter rather than capturing an `Rc`, so
//! that a step's box holds nothing but the step itself.

use std::cell::Cell;
use std::rc::Rc;

use defer_core::errors::CancelledError;
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{Deferred, Failure, Trigger, unhandled};

thread_local! {
    /// How many errback steps re-raised a failure in the current scenario.
    static RERAISED: Cell<usize> = const { Cell::new(0) };
}

/// An errback that counts its call and re-raises the failure it got (Python's bare `raise`).
fn reraise<T>(f: Failure) -> Result<T, Failure> {
    RERAISED.with(|c| c.set(c.get() + 1));
    Err(f)
}

fn reraised() -> usize {
    RERAISED.with(Cell::get)
}

/// Runs `body` with a thread-local unhandled-failure hook and asserts that nothing was reported.
pub fn no_unhandled(body: impl FnOnce()) {
    RERAISED.with(|c| c.set(0));
    let reported = Rc::new(Cell::new(0usize));
    let r = reported.clone();
    unhandled::with_hook(move |_| r.set(r.get() + 1), body);
    assert_eq!(reported.get(), 0, "an unhandled failure was reported");
}

/// What the chain is fired with.
#[derive(Clone, Copy, Debug)]
pub enum Fire {
    /// `callback(7)`.
    Value,
    /// `errback` with a failure the test keeps, to check it arrives as the same failure.
    Failure,
}

/// The order in which the triggers of a chain of Deferreds waiting on one another fire.
#[derive(Clone, Copy, Debug)]
pub enum Order {
    /// Every outer trigger first (each outer Deferred then waits on its still pending inner one),
    /// the innermost last: its result then travels outwards through every waiting level.
    OuterToInner,
    /// The innermost first, then outwards: each outer step finds its inner Deferred already
    /// fired and takes its result at once.
    InnerToOuter,
}

/// Checks `d`'s result against what firing it with `fire` and passing `levels` steps that add 1
/// on success (and re-raise on failure) must give.
fn assert_result(d: Deferred<u64>, fire: Fire, original: &Failure, levels: usize) {
    match fire {
        Fire::Value => assert_eq!(success_result_of(d), 7 + levels as u64),
        Fire::Failure => {
            let f = failure_result_of(d);
            assert!(
                f.same_as(original),
                "the failure that arrived is not the one fired: {f}"
            );
            assert_eq!(
                reraised(),
                levels,
                "every errback step must have seen the failure"
            );
        }
    }
}

fn fire_with(t: Trigger<u64>, fire: Fire, failure: &Failure) {
    let accepted = match fire {
        Fire::Value => t.callback(7),
        Fire::Failure => t.errback(failure.clone()),
    };
    assert!(accepted, "the trigger's Deferred was not cancelled");
}

/// `n` steps on one Deferred, each adding 1 to the value or re-raising the failure.
pub fn steps_on_one_deferred(n: usize, fire: Fire) {
    no_unhandled(|| {
        let failure = Failure::msg("deep failure");
        let (mut d, t) = Deferred::<u64>::new();
        for _ in 0..n {
            d = d.add_callbacks(|x| Ok(x + 1), reraise);
        }
        assert_no_result(&d);
        fire_with(t, fire, &failure);
        assert_result(d, fire, &failure, n);
    });
}

/// A pending Deferred per level, `n` in all, each one's first step returning the next, inner one
/// (`ds[i].add_callback(move |_| ds[i + 1])`) and its second step adding 1 (or re-raising).
/// Returns the outermost Deferred, the triggers of the outer levels (outermost first) and the
/// innermost one's trigger.
fn build_waiting_chain(n: usize) -> (Deferred<u64>, Vec<Trigger<u64>>, Trigger<u64>) {
    assert!(n >= 1);
    // Built from the innermost outwards: each Deferred must be complete before the step of the
    // next outer level takes it by value.
    let (innermost, innermost_trigger) = Deferred::<u64>::new();
    let mut cur = innermost;
    let mut outer_triggers = Vec::with_capacity(n - 1);
    for _ in 1..n {
        let (d, t) = Deferred::<u64>::new();
        let inner = cur;
        cur = d
            .add_callback(move |_: u64| inner)
            .add_callbacks(|x| Ok(x + 1), reraise);
        outer_triggers.push(t);
    }
    outer_triggers.reverse();
    (cur, outer_triggers, innermost_trigger)
}

/// `n` Deferreds each waiting on the next, fired in `order`; the innermost fires with `fire`.
pub fn waiting_chain(n: usize, order: Order, fire: Fire) {
    no_unhandled(|| {
        let failure = Failure::msg("deep failure");
        let (outermost, outer_triggers, innermost_trigger) = build_waiting_chain(n);
        match order {
            Order::OuterToInner => {
                for t in outer_triggers {
                    // The outer levels' own values are ignored by their first step.
                    assert!(t.callback(0));
                }
                assert_no_result(&outermost);
                fire_with(innermost_trigger, fire, &failure);
            }
            Order::InnerToOuter => {
                fire_with(innermost_trigger, fire, &failure);
                let mut outer_triggers = outer_triggers;
                // Every level but the outermost fires; the outermost still has no result.
                let outermost_trigger = outer_triggers.remove(0);
                for t in outer_triggers.into_iter().rev() {
                    assert!(t.callback(0));
                }
                assert_no_result(&outermost);
                assert!(outermost_trigger.callback(0));
            }
        }
        assert_result(outermost, fire, &failure, n - 1);
    });
}

/// `n` `chain_deferred` links, each after a step that adds 1 (or re-raises). With
/// `fire_first`, the first Deferred fires before the links are made (each link then passes the
/// result on at once); otherwise it fires last and the result runs down all `n` links.
pub fn chain_deferred_links(n: usize, fire_first: bool, fire: Fire) {
    no_unhandled(|| {
        let failure = Failure::msg("deep failure");
        let (first, first_trigger) = Deferred::<u64>::new();
        let mut first_trigger = Some(first_trigger);
        if fire_first {
            fire_with(first_trigger.take().unwrap(), fire, &failure);
        }
        let mut cur = first;
        for _ in 0..n {
            let (next, t) = Deferred::<u64>::new();
            cur.add_callbacks(|x| Ok(x + 1), reraise).chain_deferred(t);
            cur = next;
        }
        if let Some(t) = first_trigger {
            assert_no_result(&cur);
            fire_with(t, fire, &failure);
        }
        assert_result(cur, fire, &failure, n);
    });
}

/// `n` Deferreds each waiting on the next (all outer triggers fired, the innermost pending);
/// cancelling the outermost reaches the innermost, whose `CancelledError` comes back out through
/// every level.
pub fn cancel_waiting_chain(n: usize) {
    no_unhandled(|| {
        let (outermost, outer_triggers, innermost_trigger) = build_waiting_chain(n);
        for t in outer_triggers {
            assert!(t.callback(0));
        }
        assert!(!innermost_trigger.is_cancelled());
        outermost.cancel();
        assert!(
            innermost_trigger.is_cancelled(),
            "cancel did not reach the innermost Deferred"
        );
        assert!(
            !innermost_trigger.callback(1),
            "firing a cancelled Deferred is a no-op"
        );
        let f = failure_result_of(outermost);
        assert!(
            f.check::<CancelledError>(),
            "expected CancelledError, got {f}"
        );
        assert_eq!(reraised(), n - 1);
    });
}
