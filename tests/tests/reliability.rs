//! Issue 10, "Reliability by construction": one test (or a few) per defect class, through the
//! public API only. Each would fail if its class came back: the depth ones overflow a 2 MiB
//! stack (they run on one, in a thread of their own), the cycle ones hang (they run under a
//! watchdog), the panic ones see a panic escape or a result lost.
//!
//! The deep nestings of every kind, 10⁶ deep, are in `depth_suite.rs`; thread-exit and teardown
//! aborts, in child processes, in `teardown.rs`; the model-based property test in
//! `model_based.rs`.

#[macro_use]
#[path = "support/error_kinds.rs"]
mod error_kinds;
#[path = "support/small_stack.rs"]
mod small_stack;

use std::cell::{Cell, RefCell};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::mpsc;
use std::task::{Context, Poll};
use std::time::Duration;

use defer_core::errors::{CancelledError, CircularChainError, Panicked, TriggerDropped};
use defer_core::list::FirstError;
use defer_core::testing::{
    assert_no_result, failure_result_of, success_result_of, unhandled_during,
};
use defer_core::{Deferred, Failure, Gather, ensure_deferred, fail, gather_results, race, succeed};

error_kind!(E1);

/// Runs `f` on a 2 MiB stack, failing (not hanging) if it takes longer than a minute.
fn bounded(name: &str, f: impl FnOnce() + Send + 'static) {
    let (done, finished) = mpsc::channel();
    let name = name.to_owned();
    let runner = std::thread::spawn(move || {
        small_stack::on_small_stack_named(&name, f);
        let _ = done.send(());
    });
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => runner.join().expect("the scenario's thread"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The scenario panicked: re-raise its panic here.
            if let Err(p) = runner.join() {
                std::panic::resume_unwind(p)
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("the scenario hung"),
    }
}

const DEEP: usize = 100_000;

// ---------------------------------------------------------------------------------------------
// Class 2: recursion outside the chain loop.
// ---------------------------------------------------------------------------------------------

#[test]
fn gathers_nested_deep_fire_from_the_innermost_input() {
    bounded("gathers", || {
        let (innermost, t) = Deferred::<u64>::new();
        let mut d = innermost;
        for _ in 0..DEEP {
            d = gather_results([d]).add_callback(|v| Ok(v[0] + 1));
        }
        t.callback(0);
        assert_eq!(success_result_of(d), DEEP as u64);
    });
}

#[test]
fn races_and_tuple_gathers_nested_deep_cancel_from_the_outermost() {
    bounded("races", || {
        let (innermost, t) = Deferred::<u64>::new();
        let mut d = innermost;
        for i in 0..DEEP {
            d = if i % 2 == 0 {
                race([d]).add_callback(|(_, v)| Ok(v))
            } else {
                (d, succeed(1u64)).gather().add_callback(|(a, b)| Ok(a + b))
            };
        }
        d.cancel();
        assert!(t.is_cancelled());
        let f = failure_result_of(d);
        assert!(
            f.check::<CancelledError>() || f.check::<FirstError>(),
            "{f}"
        );
    });
}

/// A future completed by the previous coroutine of a pipeline, on this thread: the waker of
/// each resumes the next coroutine, which completes the next future...
struct Slot {
    value: Option<u64>,
    waker: Option<std::task::Waker>,
}
struct Receive(Rc<RefCell<Slot>>);
impl Future for Receive {
    type Output = u64;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u64> {
        let mut s = self.0.borrow_mut();
        match s.value.take() {
            Some(v) => Poll::Ready(v),
            None => {
                s.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
fn send(slot: &Rc<RefCell<Slot>>, v: u64) {
    let waker = {
        let mut s = slot.borrow_mut();
        s.value = Some(v);
        s.waker.take()
    };
    if let Some(w) = waker {
        w.wake();
    }
}

#[test]
fn coroutines_resumed_by_same_thread_foreign_wakes_in_a_pipeline() {
    bounded("pipeline", || {
        let slots: Vec<_> = (0..=DEEP)
            .map(|_| {
                Rc::new(RefCell::new(Slot {
                    value: None,
                    waker: None,
                }))
            })
            .collect();
        let mut last = None;
        for i in 0..DEEP {
            let input = slots[i].clone();
            let output = slots[i + 1].clone();
            let d = ensure_deferred(async move {
                let v = Receive(input).await;
                send(&output, v + 1);
                Ok(v)
            });
            if i == DEEP - 1 {
                last = Some(d);
            }
        }
        let tail = ensure_deferred(Receive(slots[DEEP].clone()).into_ok());
        send(&slots[0], 0);
        assert_eq!(success_result_of(last.unwrap()), DEEP as u64 - 1);
        assert_eq!(success_result_of(tail), DEEP as u64);
    });
}

trait IntoOk: Future + Sized {
    fn into_ok(self) -> impl Future<Output = Result<Self::Output, Failure>> {
        async move { Ok(self.await) }
    }
}
impl<F: Future> IntoOk for F {}

#[test]
fn cancelling_nested_joins_of_coroutines() {
    bounded("joins", || {
        let (innermost, t) = Deferred::<u64>::new();
        let mut d = innermost;
        for _ in 0..DEEP / 10 {
            let inner = d;
            d = ensure_deferred(async move {
                let (a, b) =
                    futures::future::join(inner.into_future(), succeed(1u64).into_future()).await;
                Ok(a? + b?)
            });
        }
        d.cancel();
        assert!(t.is_cancelled());
        assert!(failure_result_of(d).check::<CancelledError>());
    });
}

struct Node {
    #[allow(dead_code)] // only dropped
    next: Option<Deferred<Node>>,
}

#[test]
fn dropping_a_linked_structure_of_succeed_deferreds() {
    bounded("linked", || {
        let mut head = Node { next: None };
        for _ in 0..DEEP {
            head = Node {
                next: Some(succeed(head)),
            };
        }
        drop(head);
    });
}

#[test]
fn dropping_a_failure_nesting_first_errors() {
    bounded("first_errors", || {
        let mut f = Failure::new(E1::new("innermost"));
        for i in 0..DEEP {
            f = Failure::new(FirstError::new(i, f));
        }
        drop(f);
    });
}

// ---------------------------------------------------------------------------------------------
// Class 3: cycles terminate.
// ---------------------------------------------------------------------------------------------

#[test]
fn cancelling_two_deferreds_waiting_on_each_other_terminates() {
    bounded("two_cycle", || {
        let (a_in, a_t) = Deferred::<u8>::new();
        let (b_in, b_t) = Deferred::<u8>::new();
        let a_slot: Rc<RefCell<Option<Deferred<u8>>>> = Rc::default();
        let b_slot: Rc<RefCell<Option<Deferred<u8>>>> = Rc::default();
        let (bs, as_) = (b_slot.clone(), a_slot.clone());
        let a = a_in.add_callback(move |_| bs.borrow_mut().take().unwrap());
        let b = b_in.add_callback(move |_| as_.borrow_mut().take().unwrap());
        let a_ctl = a.control();
        *a_slot.borrow_mut() = Some(a);
        *b_slot.borrow_mut() = Some(b);
        // b's step returns a, a's step returns b: each waits on the other. Nothing else holds
        // either (a control is weak), so the cycle is garbage the moment it closes: it is broken
        // with a CircularChainError, which goes round it; then both are freed and the failure is
        // reported, once.
        let reports = unhandled_during(|| {
            b_t.callback(0);
            a_t.callback(0);
        });
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(reports[0].check::<CircularChainError>());
        assert!(!a_ctl.is_called(), "freed");
        a_ctl.cancel(); // terminates
    });
}

#[test]
fn cancelling_two_deferreds_waiting_on_each_other_held_by_a_trigger_terminates() {
    bounded("two_cycle_held", || {
        let (a_in, a_t) = Deferred::<u8>::new();
        let (b_in, b_t) = Deferred::<u8>::new();
        let a_slot: Rc<RefCell<Option<Deferred<u8>>>> = Rc::default();
        let b_slot: Rc<RefCell<Option<Deferred<u8>>>> = Rc::default();
        let (bs, as_) = (b_slot.clone(), a_slot.clone());
        let a = a_in.add_errback(move |_| bs.borrow_mut().take().unwrap());
        let b = b_in.add_callback(move |_| as_.borrow_mut().take().unwrap());
        let a_ctl = a.control();
        *a_slot.borrow_mut() = Some(a);
        *b_slot.borrow_mut() = Some(b);
        b_t.callback(0); // b waits on a
        a_ctl.cancel(); // a fails, its errback returns b: a waits on b, and b on a
        assert!(a_ctl.is_called());
        // `a`'s trigger still holds it: not garbage. Cancelling walks into the cycle and breaks it
        // with CircularChainError, which goes round it.
        a_ctl.cancel();
        let reports = unhandled_during(|| drop(a_t));
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(reports[0].check::<CircularChainError>());
    });
}

#[test]
fn cancelling_a_coroutine_awaiting_its_own_deferred_terminates() {
    bounded("own", || {
        let own: Rc<RefCell<Option<Deferred<u8>>>> = Rc::default();
        let o = own.clone();
        let (gate, open) = Deferred::<()>::new();
        let d = ensure_deferred(async move {
            gate.await?;
            let me = o.borrow_mut().take().expect("own Deferred");
            me.await
        });
        let ctl = d.control();
        *own.borrow_mut() = Some(d);
        // The await of its own Deferred fails at once with CircularChainError; the coroutine
        // ends with it, and since its Deferred is held only by itself, it is reported.
        let reports = unhandled_during(|| {
            open.callback(());
            ctl.cancel();
        });
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(reports[0].check::<CircularChainError>());
        assert!(
            own.borrow_mut().take().is_none(),
            "the coroutine took its own Deferred"
        );
    });
}

#[test]
fn a_coroutine_joining_its_own_deferred_gets_circular_chain_error() {
    bounded("own_join", || {
        let own: Rc<RefCell<Option<Deferred<u8>>>> = Rc::default();
        let o = own.clone();
        let (gate, open) = Deferred::<()>::new();
        let seen: Rc<RefCell<Option<Failure>>> = Rc::default();
        let s = seen.clone();
        let d = ensure_deferred(async move {
            gate.await?;
            let me = o.borrow_mut().take().expect("own Deferred");
            let (r, other) =
                futures::future::join(me.into_future(), succeed(5u8).into_future()).await;
            *s.borrow_mut() = r.err();
            other
        });
        *own.borrow_mut() = Some(d);
        open.callback(());
        let f = seen
            .borrow_mut()
            .take()
            .expect("the await of its own Deferred failed");
        assert!(f.check::<CircularChainError>(), "{f}");
    });
}

// ---------------------------------------------------------------------------------------------
// Class 4: panics at the edges.
// ---------------------------------------------------------------------------------------------

/// A panic payload whose own `Drop` panics.
struct Nasty;
impl Drop for Nasty {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("the payload's drop panicked");
        }
    }
}

#[test]
fn a_panic_payload_whose_drop_panics_neither_wedges_the_chain_nor_escapes_cancel() {
    let (d, t) = Deferred::<u8>::new();
    let d = d.add_callback(|_| -> Result<u8, Failure> { std::panic::panic_any(Nasty) });
    let lost = unhandled_during(|| {
        assert!(t.callback(1));
    });
    assert!(lost.is_empty());
    let f = failure_result_of(d);
    assert!(f.is_panic());

    let (d, _t) = Deferred::<u8>::with_canceller(|_| std::panic::panic_any(Nasty));
    d.cancel(); // documented never to panic
    assert!(failure_result_of(d).check::<Panicked>());
}

struct PanicOnDrop;
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("captured state's drop panicked");
        }
    }
}

#[test]
fn a_cancellers_captured_state_panicking_on_drop_does_not_stop_the_chain() {
    let guard = PanicOnDrop;
    let (d, t) = Deferred::<u8>::with_canceller(move |_| {
        let _ = &guard;
    });
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let d = d.add_callback(move |x| {
        r.set(true);
        Ok(x + 1)
    });
    let reports = unhandled_during(|| assert!(t.callback(1)));
    assert!(ran.get(), "the callback ran");
    assert_eq!(success_result_of(d), 2);
    assert_eq!(
        reports.len(),
        1,
        "the drop's panic is reported: {reports:?}"
    );
    assert!(reports[0].is_panic());

    // Through a chain_deferred target too.
    let guard = PanicOnDrop;
    let (target, target_t) = Deferred::<u8>::with_canceller(move |_| {
        let _ = &guard;
    });
    let target = target.add_callback(|x| Ok(x * 3));
    let _ = unhandled_during(|| succeed(2u8).chain_deferred(target_t));
    assert_eq!(success_result_of(target), 6);
}

/// A future that completes at once and panics when dropped.
struct PanicAfterDone(bool);
impl Future for PanicAfterDone {
    type Output = Result<u8, Failure>;
    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        self.0 = true;
        Poll::Ready(Ok(9))
    }
}
impl Drop for PanicAfterDone {
    fn drop(&mut self) {
        if self.0 && !std::thread::panicking() {
            panic!("dropped after completing");
        }
    }
}

#[test]
fn a_coroutine_future_panicking_on_drop_after_completing_still_fires_its_deferred() {
    let (gate, open) = Deferred::<()>::new();
    let d = ensure_deferred(async move {
        gate.await?;
        PanicAfterDone(false).await
    });
    // The awaited future is dropped inside the body, after its `.await`: a panic of the body.
    assert!(open.callback(()));
    assert!(failure_result_of(d).is_panic());

    // The coroutine's own future, dropped by the driver once it completed: the result stands,
    // and the drop's panic is reported, not raised into whoever fired the Deferred.
    let (gate, open) = Deferred::<()>::new();
    let d = gate.add_callback(|()| ensure_deferred(PanicAfterDone(false)));
    let reports = unhandled_during(|| assert!(open.callback(())));
    assert_eq!(success_result_of(d), 9);
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].is_panic());
}

#[derive(Debug)]
struct BadDisplay;
impl std::fmt::Display for BadDisplay {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("Display panicked")
    }
}
impl std::error::Error for BadDisplay {}

#[test]
fn an_unhandled_failure_whose_display_panics_is_reported_without_panicking() {
    // Through the default report (stderr), which formats the failure.
    let d = fail::<u8>(BadDisplay);
    drop(d);
    // And through a hook that formats it.
    let reports = unhandled_during(|| drop(fail::<u8>(BadDisplay)));
    assert_eq!(reports.len(), 1);
    assert!(reports[0].message().contains("panicked"));
    assert!(format!("{}", reports[0]).contains("BadDisplay"));
}

#[test]
fn an_unhandled_failure_whose_display_panics_dropped_during_unwinding_does_not_abort() {
    let r = std::panic::catch_unwind(|| {
        let _d = fail::<u8>(BadDisplay);
        panic!("unwinding");
    });
    assert!(r.is_err());
}

struct BadDebug(u8);
impl std::fmt::Debug for BadDebug {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("Debug panicked")
    }
}

#[test]
fn a_panicking_debug_of_a_succeed_value_loses_nothing() {
    let d = succeed(BadDebug(7));
    let shown = format!("{d:?}");
    assert!(shown.contains("panicked"), "{shown}");
    let d = d.add_callback(|b| Ok(b.0 + 1));
    assert_eq!(success_result_of(d), 8);
}

// ---------------------------------------------------------------------------------------------
// Class 5: no user code under a borrow.
// ---------------------------------------------------------------------------------------------

struct LooksAtItself(Rc<RefCell<Option<Deferred<LooksAtItself>>>>);
impl std::fmt::Debug for LooksAtItself {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = match self.0.try_borrow() {
            Ok(d) => d.as_ref().map(|d| (d.is_called(), d.is_paused())),
            Err(_) => None,
        };
        write!(f, "LooksAtItself({shown:?})")
    }
}

#[test]
fn debug_of_a_value_that_looks_at_its_own_deferred() {
    let shared: Rc<RefCell<Option<Deferred<LooksAtItself>>>> = Rc::default();
    let (d, t) = Deferred::new();
    t.callback(LooksAtItself(shared.clone()));
    d.pause();
    *shared.borrow_mut() = Some(d);
    let shown = format!("{:?}", shared.borrow().as_ref().unwrap());
    assert!(
        shown.contains("LooksAtItself(Some((true, true)))"),
        "{shown}"
    );
    let d = shared.borrow_mut().take().unwrap();
    assert!(d.unpause());
    assert!(success_result_of(d).0.borrow().is_none());
}

#[test]
fn is_called_and_control_from_inside_unpause_and_cancel() {
    let shared: Rc<RefCell<Option<Deferred<u8>>>> = Rc::default();
    let (d, t) = Deferred::<u8>::new();
    let s = shared.clone();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sn = seen.clone();
    let (d, _canceller_t) = {
        let s2 = shared.clone();
        let sn2 = seen.clone();
        let (c, ct) = Deferred::<u8>::with_canceller(move |_| {
            let h = s2.borrow();
            let h = h.as_ref().unwrap();
            sn2.borrow_mut().push(("in cancel", h.is_called()));
            let _ = h.control();
        });
        let _ = d;
        drop(t);
        (c, ct)
    };
    *shared.borrow_mut() = Some(d);
    shared.borrow().as_ref().unwrap().cancel();
    assert_eq!(*seen.borrow(), [("in cancel", false)]);

    let (d, t) = Deferred::<u8>::new();
    d.pause();
    let d = d.add_callback(move |x| {
        let h = s.borrow();
        let h = h.as_ref().unwrap();
        sn.borrow_mut().push(("in step", h.is_called()));
        let _ = h.control();
        Ok(x)
    });
    *shared.borrow_mut() = Some(d);
    t.callback(1);
    assert!(shared.borrow().as_ref().unwrap().unpause());
    assert_eq!(seen.borrow()[1], ("in step", true));
}

// ---------------------------------------------------------------------------------------------
// Class 7: cancellation reaches what the coroutine awaits now.
// ---------------------------------------------------------------------------------------------

#[test]
fn cancel_after_a_select_reaches_what_the_coroutine_awaits_now() {
    let (loser, loser_t) = Deferred::<u8>::new();
    let (winner, winner_t) = Deferred::<u8>::new();
    let (now, now_t) = Deferred::<u8>::new();
    let d = ensure_deferred(async move {
        let first = match futures::future::select(loser.into_future(), winner.into_future()).await {
            futures::future::Either::Left((r, _)) => r?,
            futures::future::Either::Right((r, _)) => r?,
        };
        let then = now.await;
        Ok((first, then.is_err()))
    });
    winner_t.callback(1);
    d.cancel();
    // The select dropped the loser's await unfinished, which cancels it (issue 12); `cancel`
    // then reaches what the coroutine awaits now.
    assert!(
        loser_t.is_cancelled(),
        "the abandoned loser was cancelled by the drop"
    );
    assert!(now_t.is_cancelled(), "what the coroutine awaits now is");
    assert_eq!(success_result_of(d), (1, true));
}

#[test]
fn cancel_from_inside_the_body_takes_effect_at_the_next_suspension() {
    let me: Rc<RefCell<Option<defer_core::DeferredControl>>> = Rc::default();
    let m = me.clone();
    let (gate, open) = Deferred::<()>::new();
    let (next, next_t) = Deferred::<u8>::new();
    let d = ensure_deferred(async move {
        gate.await?;
        m.borrow().as_ref().unwrap().cancel();
        next.await
    });
    *me.borrow_mut() = Some(d.control());
    open.callback(());
    assert!(next_t.is_cancelled());
    assert!(failure_result_of(d).check::<CancelledError>());
}

// ---------------------------------------------------------------------------------------------
// Class 8: leaks.
// ---------------------------------------------------------------------------------------------

struct CountsDrops(Rc<Cell<u32>>);
impl Drop for CountsDrops {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn a_dropped_coroutine_parked_on_a_never_waking_future_is_freed() {
    let drops = Rc::new(Cell::new(0));
    let guard = CountsDrops(drops.clone());
    let d = ensure_deferred(async move {
        let _guard = guard;
        std::future::pending::<()>().await;
        Ok(())
    });
    assert_no_result(&d);
    assert_eq!(drops.get(), 0);
    drop(d);
    assert_eq!(drops.get(), 1, "the coroutine was freed with its Deferred");
}

#[test]
fn a_panicking_nested_drop_leaves_no_sibling_behind() {
    let drops = Rc::new(Cell::new(0));
    let reports = unhandled_during(|| {
        let outer = succeed(0u8);
        outer.pause();
        let a = CountsDrops(drops.clone());
        let b = PanicOnDrop;
        let c = CountsDrops(drops.clone());
        // Paused with a step pending: only the outer chain's step holds it.
        let inner1 = succeed(0u8);
        inner1.pause();
        let inner1 = inner1.add_callback(move |x| {
            let _ = &a;
            Ok(x)
        });
        // Paused with a step pending: only the outer chain's step holds it.
        let inner2 = succeed(0u8);
        inner2.pause();
        let inner2 = inner2.add_callback(move |x| {
            let _ = &b;
            Ok(x)
        });
        // Paused with a step pending: only the outer chain's step holds it.
        let inner3 = succeed(0u8);
        inner3.pause();
        let inner3 = inner3.add_callback(move |x| {
            let _ = &c;
            Ok(x)
        });
        let outer = outer.add_callback(move |x| {
            let _ = (&inner1, &inner2, &inner3);
            Ok(x)
        });
        drop(outer);
    });
    assert_eq!(
        drops.get(),
        2,
        "both siblings of the panicking drop were dropped"
    );
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].is_panic());
}

// ---------------------------------------------------------------------------------------------
// Class 9: a failure is reported once, only when no code can still handle it.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_failure_handled_by_returning_a_never_fired_deferred_reports_nothing_in_either_order() {
    for bad_first in [true, false] {
        let reports = unhandled_during(|| {
            let (good, t) = Deferred::<u8>::new();
            let bad = fail::<u8>(E1::new("handled")).add_errback(move |_| good);
            if bad_first {
                drop(bad);
                drop(t);
            } else {
                drop(t);
                drop(bad);
            }
        });
        assert!(
            reports.is_empty(),
            "bad dropped first: {bad_first}: {reports:?}"
        );
    }
}

#[test]
fn a_trigger_dropped_under_steps_is_still_reported_once() {
    let reports = unhandled_during(|| {
        let (d, t) = Deferred::<u8>::new();
        let _d = d.add_callback(Ok);
        drop(t);
    });
    assert_eq!(reports.len(), 1);
    assert!(reports[0].check::<TriggerDropped>());
}

// ---------------------------------------------------------------------------------------------
// Family 4 of the differential issue: a bare value's step returning a pending Deferred.
// ---------------------------------------------------------------------------------------------

#[test]
fn the_deferred_a_step_returned_stays_a_deferred_of_its_own() {
    let (inner, t) = Deferred::<u8>::new();
    let inner_ctl = inner.control();
    let outer = succeed(1u8).add_callback(move |_| inner);
    assert!(outer.is_called(), "the outer Deferred has fired and waits");
    outer.pause();
    inner_ctl.unpause(); // no pause of the inner's to undo
    assert!(outer.is_paused());
    assert!(outer.unpause());
    t.callback(4);
    inner_ctl.pause(); // the inner is spent: nothing changes for the outer
    assert_eq!(success_result_of(outer.add_callback(|x| Ok(x * 2))), 8);
}
