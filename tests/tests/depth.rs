//! Issue 2, "Depth": chains a million long must run in a loop, never by recursion.
//!
//! Every scenario runs on a spawned thread with a 2 MiB stack (a recursive implementation would
//! overflow it long before a million levels) and checks the final result, for a chain fired with
//! a value and for one fired with a failure. The scenarios themselves live in
//! `support/depth_scenarios.rs`, shared with `leaks.rs`, which runs them smaller and checks that
//! they free everything.

#[path = "support/depth_scenarios.rs"]
mod depth_scenarios;

use depth_scenarios::{Fire, Order};

/// A million, as issue 2 asks.
const N: usize = 1_000_000;

#[path = "support/place.rs"]
mod place;
use place::Place;

#[path = "support/small_stack.rs"]
mod small_stack;

/// Runs `f` on a new thread with a 2 MiB stack, re-raising its panic, once a place is free.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    let _place = Place::take();
    small_stack::on_small_stack_named("depth-2MiB", f);
}

#[test]
fn million_steps_on_one_deferred_value() {
    on_small_stack(|| depth_scenarios::steps_on_one_deferred(N, Fire::Value));
}

#[test]
fn million_steps_on_one_deferred_failure() {
    on_small_stack(|| depth_scenarios::steps_on_one_deferred(N, Fire::Failure));
}

#[test]
fn million_waiting_deferreds_outer_to_inner_value() {
    on_small_stack(|| depth_scenarios::waiting_chain(N, Order::OuterToInner, Fire::Value));
}

#[test]
fn million_waiting_deferreds_outer_to_inner_failure() {
    on_small_stack(|| depth_scenarios::waiting_chain(N, Order::OuterToInner, Fire::Failure));
}

#[test]
fn million_waiting_deferreds_inner_to_outer_value() {
    on_small_stack(|| depth_scenarios::waiting_chain(N, Order::InnerToOuter, Fire::Value));
}

#[test]
fn million_waiting_deferreds_inner_to_outer_failure() {
    on_small_stack(|| depth_scenarios::waiting_chain(N, Order::InnerToOuter, Fire::Failure));
}

#[test]
fn million_chain_deferred_links_fired_last_value() {
    on_small_stack(|| depth_scenarios::chain_deferred_links(N, false, Fire::Value));
}

#[test]
fn million_chain_deferred_links_fired_last_failure() {
    on_small_stack(|| depth_scenarios::chain_deferred_links(N, false, Fire::Failure));
}

#[test]
fn million_chain_deferred_links_fired_first_value() {
    on_small_stack(|| depth_scenarios::chain_deferred_links(N, true, Fire::Value));
}

#[test]
fn million_chain_deferred_links_fired_first_failure() {
    on_small_stack(|| depth_scenarios::chain_deferred_links(N, true, Fire::Failure));
}

#[test]
fn cancel_outermost_of_million_waiting_deferreds_reaches_innermost() {
    on_small_stack(|| depth_scenarios::cancel_waiting_chain(N));
}

/// Dropping a million unfired levels, each step's closure owning the next level's Deferred, must
/// not recurse once per level: nested chain drops are queued and dropped in a loop by the
/// outermost one.
#[test]
fn dropping_million_levels_owned_by_step_closures_does_not_overflow() {
    on_small_stack(|| {
        let (d0, t0) = defer_core::Deferred::<u64>::new();
        t0.callback(1);
        let mut cur = d0;
        for _ in 0..N {
            let (d, t) = defer_core::Deferred::<u64>::new();
            d.pause(); // fired but paused: its step stays queued, owning `inner`
            t.callback(0);
            let inner = cur;
            cur = d.add_callback(move |_| inner);
        }
        assert!(cur.is_paused());
        drop(cur);
    });
}
