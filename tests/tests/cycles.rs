//! Cycles: a coroutine awaiting its own Deferred, and Deferreds (or coroutines) waiting on each
//! other. Nothing can ever fire such a cycle; cancelling it must terminate, with a
//! `CircularChainError` or a `CancelledError` arriving in the chains. (An implementation may
//! also detect the cycle as it closes and fail it with `CircularChainError` at once; then no
//! cancel is needed.)
//!
//! Each scenario runs in a child process (`support/child_process.rs`) on a 2 MiB stack: a cancel
//! that chases the cycle forever hangs (and is killed after [`timeout()`]), one that recurses
//! around it overflows; either fails only its own test.

#[path = "support/child_process.rs"]
mod child_process;
#[path = "support/small_stack.rs"]
mod small_stack;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use defer_core::errors::{CancelledError, CircularChainError};
use defer_core::{
    Deferred, DeferredControl, Failure, ensure_deferred, inline_callbacks, unhandled, yield_,
};

/// How long a scenario may run: `DEFER_CYCLES_TIMEOUT` seconds, 30 by default.
fn timeout() -> Duration {
    let secs = std::env::var("DEFER_CYCLES_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

/// Runs `scenario` on a 2 MiB stack in a child process; fails if the child did not finish.
fn isolated(name: &'static str, scenario: fn()) {
    child_process::assert_child_succeeds(name, timeout(), || {
        small_stack::on_small_stack_named(name, scenario);
    });
}

type Seen = Rc<RefCell<Option<Result<u64, Failure>>>>;
type Slot = Rc<RefCell<Option<Deferred<u64>>>>;

fn is_cycle_end(f: &Failure) -> bool {
    f.check::<CircularChainError>() || f.check::<CancelledError>()
}

/// Checks what a member of the cycle saw: a `CircularChainError` or a `CancelledError`.
fn assert_cycle_ended(who: &str, seen: &Seen) {
    match seen.borrow().as_ref() {
        Some(Err(f)) => assert!(
            is_cycle_end(f),
            "{who} ended with {} ({}), not CircularChainError or CancelledError",
            f.type_name(),
            f.message()
        ),
        Some(Ok(v)) => panic!("{who} got a value out of a cycle: {v}"),
        None => panic!("{who} never got a result: the cycle was not broken"),
    }
}

/// Runs `body`; any failure reported as unhandled must be one of the cycle's (at most `max`).
fn with_cycle_reports(max: usize, body: impl FnOnce()) {
    let reports = Rc::new(RefCell::new(Vec::<String>::new()));
    let r = reports.clone();
    unhandled::with_hook(
        move |f| {
            r.borrow_mut()
                .push(format!("{}: {}", f.type_name(), f.message()))
        },
        body,
    );
    let reports = reports.borrow();
    assert!(
        reports.len() <= max,
        "too many unhandled reports: {reports:?}"
    );
    for r in reports.iter() {
        assert!(
            r.contains("CircularChainError") || r.contains("CancelledError"),
            "unexpected unhandled report: {r}"
        );
    }
}

/// Cancels through `ctl` unless every `seen` already has its result.
fn cancel_unless_done(ctl: &DeferredControl, seen: &[&Seen]) {
    if seen.iter().any(|s| s.borrow().is_none()) {
        // Printed so that a hang says where it happened: closing the cycle, or cancelling it.
        eprintln!("the cycle is closed; cancelling it");
        ctl.cancel();
        eprintln!("the cancel returned");
    } else {
        eprintln!("the cycle was detected as it closed");
    }
}

// ------------------------------------------------------------------------------------------
// A coroutine awaiting its own Deferred.

#[inline_callbacks]
fn await_self_inline(gate: Deferred<u64>, me: Slot, seen: Seen) -> Deferred<u64> {
    yield_!(gate)?;
    let own = me
        .borrow_mut()
        .take()
        .expect("the coroutine's own Deferred");
    let r = yield_!(own);
    *seen.borrow_mut() = Some(r.clone());
    r
}

fn await_self_async(gate: Deferred<u64>, me: Slot, seen: Seen) -> Deferred<u64> {
    ensure_deferred(async move {
        gate.await?;
        let own = me
            .borrow_mut()
            .take()
            .expect("the coroutine's own Deferred");
        let r = own.await;
        *seen.borrow_mut() = Some(r.clone());
        r
    })
}

/// The coroutine waits for `gate`, then awaits the Deferred it returns itself. Cancelling that
/// Deferred (through a control: the coroutine holds the handle) must end it.
fn coroutine_awaits_itself(make: fn(Deferred<u64>, Slot, Seen) -> Deferred<u64>) {
    with_cycle_reports(1, || {
        let seen: Seen = Rc::default();
        let me: Slot = Rc::default();
        let (gate, open) = Deferred::<u64>::new();
        let d = make(gate, me.clone(), seen.clone());
        let ctl = d.control();
        *me.borrow_mut() = Some(d);
        assert!(open.callback(0));
        cancel_unless_done(&ctl, &[&seen]);
        assert_cycle_ended("the coroutine", &seen);
        // Whatever was left of the cycle goes away here.
        drop(me);
    });
}

#[test]
fn inline_callbacks_coroutine_awaiting_its_own_deferred_is_cancelled() {
    isolated(
        "inline_callbacks_coroutine_awaiting_its_own_deferred_is_cancelled",
        || coroutine_awaits_itself(await_self_inline),
    );
}

#[test]
fn ensure_deferred_coroutine_awaiting_its_own_deferred_is_cancelled() {
    isolated(
        "ensure_deferred_coroutine_awaiting_its_own_deferred_is_cancelled",
        || coroutine_awaits_itself(await_self_async),
    );
}

// ------------------------------------------------------------------------------------------
// Two Deferreds waiting on each other.

/// `a`'s step returns `b`'s chain and `b`'s step returns `a`'s: once both have fired, each
/// waits on the other. Each chain ends in a step that records what it got. Cancelling `a` (or
/// `b`) must end both.
fn two_deferreds_waiting_on_each_other(cancel_a: bool) {
    with_cycle_reports(2, || {
        let (a, ta) = Deferred::<u64>::new();
        let (b, tb) = Deferred::<u64>::new();
        let (a_ctl, b_ctl) = (a.control(), b.control());
        let for_a: Slot = Rc::default();
        let for_b: Slot = Rc::default();
        let (seen_a, seen_b): (Seen, Seen) = (Rc::default(), Rc::default());
        let record = |seen: &Seen| {
            let seen = seen.clone();
            move |r: Result<u64, Failure>| {
                *seen.borrow_mut() = Some(r.clone());
                r
            }
        };
        let fa = for_a.clone();
        let a_chain = a
            .add_callback(move |_: u64| fa.borrow_mut().take().expect("b's chain"))
            .add_both(record(&seen_a));
        let fb = for_b.clone();
        let b_chain = b
            .add_callback(move |_: u64| fb.borrow_mut().take().expect("a's chain"))
            .add_both(record(&seen_b));
        *for_a.borrow_mut() = Some(b_chain);
        *for_b.borrow_mut() = Some(a_chain);
        assert!(ta.callback(1)); // a now waits on b
        assert!(tb.callback(2)); // b now waits on a: the cycle is closed
        let ctl = if cancel_a { &a_ctl } else { &b_ctl };
        cancel_unless_done(ctl, &[&seen_a, &seen_b]);
        assert_cycle_ended("a's chain", &seen_a);
        assert_cycle_ended("b's chain", &seen_b);
    });
}

#[test]
fn two_deferreds_waiting_on_each_other_cancelled_from_the_first() {
    isolated(
        "two_deferreds_waiting_on_each_other_cancelled_from_the_first",
        || two_deferreds_waiting_on_each_other(true),
    );
}

#[test]
fn two_deferreds_waiting_on_each_other_cancelled_from_the_second() {
    isolated(
        "two_deferreds_waiting_on_each_other_cancelled_from_the_second",
        || two_deferreds_waiting_on_each_other(false),
    );
}

// ------------------------------------------------------------------------------------------
// Two coroutines, each awaiting the other's Deferred.

fn await_other(gate: Deferred<u64>, other: Slot, seen: Seen) -> Deferred<u64> {
    ensure_deferred(async move {
        gate.await?;
        let theirs = other
            .borrow_mut()
            .take()
            .expect("the other coroutine's Deferred");
        let r = theirs.await;
        *seen.borrow_mut() = Some(r.clone());
        r
    })
}

/// Nothing outside reaches the pair once each awaits the other (each one's Deferred was moved
/// into the other, and a control is weak): the engine frees both at once, as Twisted's collector
/// would (`engine/reclaim.rs`); the cancel that follows finds nothing and returns.
#[test]
fn two_coroutines_awaiting_each_other_are_freed_and_cancel_returns() {
    isolated(
        "two_coroutines_awaiting_each_other_are_freed_and_cancel_returns",
        || {
            with_cycle_reports(0, || {
                let (seen_a, seen_b): (Seen, Seen) = (Rc::default(), Rc::default());
                let (for_a, for_b): (Slot, Slot) = (Rc::default(), Rc::default());
                let (gate_a, open_a) = Deferred::<u64>::new();
                let (gate_b, open_b) = Deferred::<u64>::new();
                let a = await_other(gate_a, for_a.clone(), seen_a.clone());
                let b = await_other(gate_b, for_b.clone(), seen_b.clone());
                let a_ctl = a.control();
                *for_a.borrow_mut() = Some(b);
                *for_b.borrow_mut() = Some(a);
                assert!(open_a.callback(0));
                assert!(open_b.callback(0));
                assert!(!a_ctl.is_called(), "the unreachable pair was freed");
                a_ctl.cancel();
                assert!(seen_a.borrow().is_none() && seen_b.borrow().is_none());
            });
        },
    );
}

// ------------------------------------------------------------------------------------------
// A step returning a Deferred that waits on the step's own chain (through one more link).

#[test]
fn chain_waiting_on_a_deferred_that_waits_on_it_is_cancelled() {
    isolated(
        "chain_waiting_on_a_deferred_that_waits_on_it_is_cancelled",
        || {
            with_cycle_reports(2, || {
                let (a, ta) = Deferred::<u64>::new();
                let a_ctl = a.control();
                let seen: Seen = Rc::default();
                let s = seen.clone();
                let slot: Slot = Rc::default();
                let sl = slot.clone();
                // a's step returns `middle`, whose own step returns a's chain.
                let a_chain = a
                    .add_callback(move |_: u64| sl.borrow_mut().take().expect("middle"))
                    .add_both(move |r: Result<u64, Failure>| {
                        *s.borrow_mut() = Some(r.clone());
                        r
                    });
                let (middle, tm) = Deferred::<u64>::new();
                let middle = middle.add_callback(move |_: u64| a_chain);
                assert!(tm.callback(0)); // middle waits on a's chain
                *slot.borrow_mut() = Some(middle);
                assert!(ta.callback(0)); // a's chain waits on middle: closed
                cancel_unless_done(&a_ctl, &[&seen]);
                assert_cycle_ended("a's chain", &seen);
            });
        },
    );
}
