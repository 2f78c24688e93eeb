//! Cancellation (twisted-semantics.md §2.8): cases C36–C42, the producer's view of a
//! cancellation, and cancellers that panic.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::rc::Rc;

use defer_core::errors::{CancelledError, Panicked, TriggerDropped};
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{Deferred, DeferredList, Failure, Trigger, unhandled};

#[derive(Debug)]
struct E1;
impl fmt::Display for E1 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("E1")
    }
}
impl Error for E1 {}

#[derive(Debug)]
struct E2;
impl fmt::Display for E2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("E2")
    }
}
impl Error for E2 {}

/// Collects the failures reported as unhandled while `body` runs on this thread.
fn unhandled_during(body: impl FnOnce()) -> Vec<Failure> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    unhandled::with_hook(move |f| sink.borrow_mut().push(f.clone()), body);
    Rc::try_unwrap(seen).expect("the hook is gone").into_inner()
}

#[test]
fn c36_cancel_without_canceller_errbacks_with_cancelled_error() {
    let cb = Rc::new(RefCell::new(Vec::new()));
    let eb = Rc::new(RefCell::new(Vec::new()));
    let (d, _producer) = Deferred::<&str>::new();
    let (cb2, eb2) = (cb.clone(), eb.clone());
    let d = d.add_callbacks(
        move |v| {
            cb2.borrow_mut().push(v);
            Ok(())
        },
        move |f| {
            eb2.borrow_mut().push(f);
            Ok(())
        },
    );
    d.cancel();
    assert!(cb.borrow().is_empty());
    assert_eq!(eb.borrow().len(), 1);
    assert!(eb.borrow()[0].check::<CancelledError>());
    success_result_of(d);
}

#[test]
fn c37_fire_after_cancel_without_canceller_is_ignored_and_reported_to_the_producer() {
    for late_errback in [false, true] {
        let (d, producer) = Deferred::<Option<()>>::new();
        let d = d.add_callbacks(Ok, Err);
        d.cancel();
        assert!(producer.is_cancelled());
        // Twisted swallows exactly one late fire; the trigger is consumed by that fire, so a
        // second one (Twisted's AlreadyCalledError) does not compile. The producer is told.
        let accepted = if late_errback {
            producer.errback(Failure::msg("late"))
        } else {
            producer.callback(None)
        };
        assert!(
            !accepted,
            "a fire after cancel must report that it was ignored"
        );
        assert!(failure_result_of(d).check::<CancelledError>());
    }
}

#[test]
fn c39_canceller_runs_once_with_the_deferred_and_late_fires_are_refused() {
    let calls = Rc::new(RefCell::new(Vec::new()));
    let kept: Rc<RefCell<Option<Trigger<()>>>> = Rc::new(RefCell::new(None));
    let (c, k) = (calls.clone(), kept.clone());
    let (d, producer) = Deferred::<()>::with_canceller(move |t| {
        // The canceller's argument is the Deferred itself (its producer side).
        c.borrow_mut().push(format!("{t:?}"));
        *k.borrow_mut() = Some(t);
    });
    let producer_name = format!("{producer:?}");
    let eb = Rc::new(RefCell::new(Vec::new()));
    let eb2 = eb.clone();
    let d = d.add_errback(move |f| {
        eb2.borrow_mut().push(f);
        Ok(())
    });
    d.cancel();
    d.cancel();
    assert_eq!(*calls.borrow(), [producer_name]);
    assert_eq!(eb.borrow().len(), 1);
    assert!(eb.borrow()[0].check::<CancelledError>());
    // Twisted raises AlreadyCalledError for these; here both sides are told "no".
    let from_canceller = kept.borrow_mut().take().unwrap();
    assert!(!from_canceller.callback(()));
    assert!(!producer.errback(Failure::msg("late")));
    success_result_of(d);
}

#[test]
fn c40_canceller_not_called_after_firing_and_a_firing_canceller_decides_the_result() {
    let called = Rc::new(Cell::new(0));

    let c = called.clone();
    let (d, producer) = Deferred::<&str>::with_canceller(move |t| {
        c.set(c.get() + 1);
        t.errback(E1);
    });
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let d = d.add_callbacks(
        move |v| {
            s.borrow_mut().push(v);
            Ok(v)
        },
        Err,
    );
    producer.callback("biff!");
    d.cancel();
    assert_eq!(called.get(), 0);
    assert_eq!(*seen.borrow(), ["biff!"]);
    assert_eq!(success_result_of(d), "biff!");

    let c = called.clone();
    let (d, producer) = Deferred::<&str>::with_canceller(move |t| {
        c.set(c.get() + 1);
        t.errback(E1);
    });
    producer.errback(E2);
    d.cancel();
    assert_eq!(called.get(), 0);
    assert!(failure_result_of(d).check::<E2>());

    let (d, _producer) = Deferred::<&str>::with_canceller(|t| {
        t.errback(E1);
    });
    d.cancel();
    assert!(failure_result_of(d).check::<E1>());

    let (d, _producer) = Deferred::<&str>::with_canceller(|t| {
        t.callback("hello!");
    });
    d.cancel();
    assert_eq!(success_result_of(d), "hello!");
}

#[test]
fn c42_panicking_canceller_fails_the_deferred_and_a_list_cancels_the_rest() {
    // Twisted: cancel() raises and the Deferred stays unfired. Here cancel() returns, and the
    // panic becomes the Deferred's failure (DESIGN §2: nothing is left unfired).
    let (d, producer) = Deferred::<u8>::with_canceller(|_t| panic!("canceller boom"));
    d.cancel();
    assert!(producer.is_cancelled());
    let f = failure_result_of(d);
    assert!(f.is_panic());
    assert_eq!(
        f.downcast_ref::<Panicked>().unwrap().message(),
        "canceller boom"
    );

    // In a list, the other inputs are still cancelled, and exactly one panic is reported (the
    // panicking input keeps its failure: no consume_errors), as Twisted logs exactly one.
    let reported = unhandled_during(|| {
        let (d1, t1) = Deferred::<u8>::with_canceller(|_t| panic!("canceller boom"));
        let (d2, t2) = Deferred::<u8>::new();
        let list = DeferredList::new([d1, d2]).build();
        list.cancel();
        assert!(t2.is_cancelled());
        let results = success_result_of(list);
        assert!(results[0].as_ref().unwrap_err().is_panic());
        assert!(results[1].as_ref().unwrap_err().check::<CancelledError>());
        drop((t1, t2));
    });
    assert_eq!(reported.iter().filter(|f| f.is_panic()).count(), 1);
    assert_eq!(
        reported
            .iter()
            .filter(|f| f.check::<CancelledError>())
            .count(),
        1
    );
}

// ---- the producer's view of a cancellation (DESIGN §2) ------------------------------------------

#[test]
fn producer_sees_the_cancellation_and_stops_its_work() {
    /// A producer doing work in steps, checking whether anyone still wants the result.
    struct Job {
        trigger: Option<Trigger<u32>>,
        done_steps: u32,
    }
    let job = Rc::new(RefCell::new(Job {
        trigger: None,
        done_steps: 0,
    }));
    let (d, trigger) = Deferred::new();
    job.borrow_mut().trigger = Some(trigger);
    let work = |job: &Rc<RefCell<Job>>| {
        let mut j = job.borrow_mut();
        if j.trigger.as_ref().is_some_and(Trigger::is_cancelled) {
            j.trigger = None; // nobody wants it: stop, and drop the trigger quietly
            return false;
        }
        j.done_steps += 1;
        true
    };
    assert!(work(&job));
    assert!(work(&job));
    d.cancel();
    assert!(!work(&job), "the producer must see the cancellation");
    assert_eq!(job.borrow().done_steps, 2);
    assert!(job.borrow().trigger.is_none());
    assert!(failure_result_of(d).check::<CancelledError>());
}

#[test]
fn producer_learns_of_cancellation_through_its_canceller_at_once() {
    let closed = Rc::new(Cell::new(false));
    let c = closed.clone();
    let (d, producer) = Deferred::<Vec<u8>>::with_canceller(move |_t| c.set(true));
    assert!(!producer.is_cancelled());
    assert!(!closed.get());
    d.control().cancel();
    assert!(closed.get(), "the canceller runs inside cancel()");
    assert!(producer.is_cancelled());
    assert!(!producer.callback(vec![1]));
    assert!(failure_result_of(d).check::<CancelledError>());
}

#[test]
fn producer_of_a_canceller_that_succeeded_still_sees_cancelled() {
    let (d, producer) = Deferred::with_canceller(|t| {
        t.callback("partial result");
    });
    d.cancel();
    assert!(producer.is_cancelled());
    assert!(!producer.callback("full result"));
    assert_eq!(success_result_of(d), "partial result");
}

#[test]
fn dropping_the_trigger_of_a_cancelled_deferred_raises_nothing_more() {
    let reported = unhandled_during(|| {
        let (d, producer) = Deferred::<u8>::new();
        d.cancel();
        drop(producer);
        let f = failure_result_of(d);
        assert!(f.check::<CancelledError>());
        assert!(!f.check::<TriggerDropped>());
    });
    assert!(reported.is_empty());
}

#[test]
fn cancelling_a_deferred_waiting_on_another_cancels_the_inner_producer() {
    let outer_cancelled = Rc::new(Cell::new(false));
    let oc = outer_cancelled.clone();
    let (outer, outer_producer) = Deferred::<()>::with_canceller(move |_t| oc.set(true));
    let (inner, inner_producer) = Deferred::<u8>::new();
    let d = outer.add_callback(move |()| inner);
    outer_producer.callback(());
    assert_no_result(&d);
    d.cancel();
    assert!(
        !outer_cancelled.get(),
        "the outer canceller is not called once it fired"
    );
    assert!(inner_producer.is_cancelled());
    assert!(failure_result_of(d).check::<CancelledError>());
}

#[test]
fn cancel_from_inside_the_canceller_runs_it_only_once() {
    let calls = Rc::new(Cell::new(0));
    let ctl_slot: Rc<RefCell<Option<defer_core::DeferredControl>>> = Rc::new(RefCell::new(None));
    let (c, slot) = (calls.clone(), ctl_slot.clone());
    let (d, _producer) = Deferred::<u8>::with_canceller(move |_t| {
        c.set(c.get() + 1);
        let ctl = slot.borrow().clone();
        if let Some(ctl) = ctl {
            ctl.cancel();
        }
    });
    *ctl_slot.borrow_mut() = Some(d.control());
    d.cancel();
    d.cancel();
    assert_eq!(calls.get(), 1);
    assert!(failure_result_of(d).check::<CancelledError>());
}

// ---- cancellers that panic ------------------------------------------------------------------------

#[test]
fn panicking_canceller_does_not_escape_cancel_and_steps_see_the_panic() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let (d, _producer) = Deferred::<u8>::with_canceller(|_t| panic!("cleanup failed"));
    let d = d.add_errback(move |f| {
        s.borrow_mut().push(f.message());
        Ok(0)
    });
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| d.cancel()));
    assert!(unwound.is_ok(), "cancel() must not unwind");
    assert_eq!(*seen.borrow(), ["panicked: cleanup failed"]);
    assert_eq!(success_result_of(d), 0);
}

#[test]
fn panicking_canceller_that_fired_first_keeps_its_result() {
    let (d, producer) = Deferred::<&str>::with_canceller(|t| {
        t.callback("fired before the panic");
        panic!("then panicked");
    });
    d.cancel();
    assert!(producer.is_cancelled());
    assert_eq!(success_result_of(d), "fired before the panic");
}

#[test]
fn panicking_canceller_runs_once_and_leaves_the_deferred_fired() {
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let (d, _producer) = Deferred::<u8>::with_canceller(move |_t| {
        c.set(c.get() + 1);
        panic!("boom {}", c.get());
    });
    d.cancel();
    assert!(d.is_called());
    d.cancel();
    assert_eq!(calls.get(), 1);
    assert_eq!(failure_result_of(d).message(), "panicked: boom 1");
}

// ---------------------------------------------------------------------------------------------
// A chain's canceller shares its result slot until the chain fires (issue 11). The one state
// that holds both a canceller and another chain is a `chain_deferred` target with a canceller,
// waiting for its source: these pin that it behaves as any other target.
// ---------------------------------------------------------------------------------------------

/// A target with a canceller, chained from a pending source, then cancelled: its canceller runs
/// (with its own trigger), the target fails with `CancelledError`, and the source's later result
/// is dropped like any late fire, reported nowhere.
#[test]
fn a_chain_deferred_target_with_a_canceller_runs_it_when_cancelled_before_the_source_fires() {
    let ran = Rc::new(Cell::new(0));
    let seen = ran.clone();
    let (target, target_trigger) = Deferred::<u32>::with_canceller(move |_own| {
        seen.set(seen.get() + 1);
    });
    let (source, source_trigger) = Deferred::<u32>::new();
    source.chain_deferred(target_trigger);
    assert!(format!("{target:?}").contains("chained from"), "{target:?}");
    let lost = unhandled_during(|| {
        target.cancel();
        assert_eq!(ran.get(), 1);
        assert!(failure_result_of(target).check::<CancelledError>());
        // The source still fires; its value has nowhere to go.
        assert!(source_trigger.callback(7));
    });
    assert!(lost.is_empty(), "{lost:?}");
    assert_eq!(ran.get(), 1, "a canceller runs once");
}

/// The same target, its source firing first: the target gets the value, and its canceller is
/// dropped unrun (Twisted clears it when the Deferred fires); a cancel after that does nothing.
#[test]
fn a_chain_deferred_target_with_a_canceller_gets_the_value_and_drops_the_canceller() {
    struct DropFlag(Rc<Cell<bool>>);
    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let ran = Rc::new(Cell::new(false));
    let (flag, seen) = (DropFlag(dropped.clone()), ran.clone());
    let (target, target_trigger) = Deferred::<u32>::with_canceller(move |_own| {
        let _keep = &flag;
        seen.set(true);
    });
    let (source, source_trigger) = Deferred::<u32>::new();
    source.chain_deferred(target_trigger);
    assert!(
        !dropped.get(),
        "the canceller lives while the target is pending"
    );
    assert!(source_trigger.callback(7));
    assert!(
        dropped.get(),
        "the canceller is dropped when the target fires"
    );
    target.cancel();
    assert!(!ran.get());
    assert_eq!(success_result_of(target), 7);
}
