//! Reliability of the coordination primitives: waiters nobody listens to any more, cancelling
//! many waiters, reports of failures nothing could ever see, and failures reported twice.
//!
//! 1. A lock, semaphore or queue hands the lock, a token or an item only to a waiter whose
//!    Deferred someone still listens to; a dropped waiter is skipped.
//! 2. Cancelling n queued waiters costs O(n) in all (the 100,000-waiter tests below).
//! 3. Dropping a clock or a queue reports nothing for Deferreds that were already dropped, but
//!    still fails the ones someone holds with `TriggerDropped`.
//! 4. `gather_results` (and the other gathers) report each failure at most once: the first one
//!    goes to the caller (inside `FirstError`), not also to the unhandled-error hook.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use defer_core::clock::Clock;
use defer_core::errors::{CancelledError, FirstError, TriggerDropped};
use defer_core::list::gather_results_consuming_errors;
use defer_core::testing::{
    assert_no_result, failure_result_of, success_result_of, unhandled_during,
};
use defer_core::{
    Deferred, DeferredList, DeferredLock, DeferredQueue, DeferredSemaphore, Failure, Gather,
    defer_later, fail, gather_results, succeed, unhandled,
};

// Counts this thread's heap blocks: dropped waiters must not pile up in a queue.
#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{measure, on_fresh_thread};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Runs `body`, counting the failures reported as unhandled meanwhile.
fn reports_during<R>(body: impl FnOnce() -> R) -> (R, usize) {
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    let r = unhandled::with_hook(move |_| c.set(c.get() + 1), body);
    (r, count.get())
}

// ---- 1. waiters nobody listens to --------------------------------------------------------------

#[test]
fn lock_is_not_granted_to_a_waiter_whose_deferred_was_dropped() {
    let ((), reports) = reports_during(|| {
        let lock = DeferredLock::new();
        let held = success_result_of(lock.acquire());
        drop(lock.acquire()); // nobody will ever see this one
        assert_eq!(
            lock.waiting(),
            0,
            "a dropped waiter does not count as waiting"
        );
        held.release().unwrap();
        assert!(
            !lock.is_locked(),
            "the dropped waiter must not hold the lock"
        );
        // The lock still works.
        let again = success_result_of(lock.acquire());
        again.release().unwrap();
        assert!(!lock.is_locked());
    });
    assert_eq!(reports, 0);
}

#[test]
fn lock_skips_dropped_waiters_and_hands_over_to_the_next_listening_one() {
    let lock = DeferredLock::new();
    let held = success_result_of(lock.acquire());
    drop(lock.acquire());
    let live = lock.acquire();
    drop(lock.acquire());
    let last = lock.acquire();
    assert_eq!(lock.waiting(), 2);
    held.release().unwrap();
    let live = success_result_of(live);
    assert!(lock.is_locked());
    assert_no_result(&last);
    live.release().unwrap();
    success_result_of(last).release().unwrap();
    assert!(!lock.is_locked());
    assert_eq!(lock.waiting(), 0);
}

#[test]
fn lock_waiter_dropped_between_its_grant_and_its_firing_passes_the_lock_on() {
    // B's callback releases while the outer release is still handing over: C is granted the
    // lock then, and B drops C's Deferred before C is fired.
    let lock = DeferredLock::new();
    let held = success_result_of(lock.acquire());
    let c_slot: Rc<RefCell<Option<Deferred<DeferredLock>>>> = Rc::default();
    let slot = c_slot.clone();
    let b = lock.acquire().add_callback(move |l: DeferredLock| {
        l.release()?;
        drop(slot.borrow_mut().take());
        Ok(())
    });
    *c_slot.borrow_mut() = Some(lock.acquire());
    held.release().unwrap();
    success_result_of(b);
    assert!(c_slot.borrow().is_none());
    assert!(
        !lock.is_locked(),
        "C was dropped before it fired: the lock is free"
    );
}

#[test]
fn lock_run_whose_result_was_dropped_still_runs_and_releases() {
    // A waiter with a step is still listened to: `run`'s own steps must run.
    let lock = DeferredLock::new();
    let held = success_result_of(lock.acquire());
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    drop(lock.run(move || {
        r.set(true);
        Ok::<(), Failure>(())
    }));
    held.release().unwrap();
    assert!(ran.get());
    assert!(!lock.is_locked());
}

#[test]
fn semaphore_token_is_not_granted_to_a_waiter_whose_deferred_was_dropped() {
    let ((), reports) = reports_during(|| {
        let sem = DeferredSemaphore::new(2).unwrap();
        let a = success_result_of(sem.acquire());
        let b = success_result_of(sem.acquire());
        drop(sem.acquire());
        let live = sem.acquire();
        drop(sem.acquire());
        assert_eq!(sem.waiting(), 1);
        a.release().unwrap();
        let live = success_result_of(live);
        b.release().unwrap();
        assert_eq!(sem.tokens(), 1, "the dropped waiters hold no token");
        live.release().unwrap();
        assert_eq!(sem.tokens(), 2);
        assert_eq!(sem.waiting(), 0);
    });
    assert_eq!(reports, 0);
}

#[test]
fn queue_item_goes_to_a_listening_getter_not_a_dropped_one() {
    let ((), reports) = reports_during(|| {
        let q = DeferredQueue::new();
        drop(q.get().unwrap());
        assert_eq!(q.waiting(), 0);
        q.put(1).unwrap();
        assert_eq!(
            q.pending(),
            1,
            "the item was stored, not lost to the dropped getter"
        );
        assert_eq!(success_result_of(q.get().unwrap()), 1);

        drop(q.get().unwrap());
        let live = q.get().unwrap();
        drop(q.get().unwrap());
        q.put(2).unwrap();
        assert_eq!(success_result_of(live), 2);
        q.put(3).unwrap();
        assert_eq!(q.pending(), 1);
        assert_eq!(success_result_of(q.get().unwrap()), 3);
    });
    assert_eq!(reports, 0);
}

#[test]
fn queue_dropped_getters_do_not_fill_the_backlog() {
    let q = DeferredQueue::<u8>::with_limits(None, Some(1));
    drop(q.get().unwrap());
    let live = q
        .get()
        .expect("the dropped getter does not take the backlog's place");
    q.put(7).unwrap();
    assert_eq!(success_result_of(live), 7);
}

#[test]
fn queue_getter_dropped_between_its_grant_and_its_firing_passes_the_item_on() {
    let q = DeferredQueue::new();
    let c_slot: Rc<RefCell<Option<Deferred<u32>>>> = Rc::default();
    let (slot, q2) = (c_slot.clone(), q.clone());
    let b = q.get().unwrap().add_callback(move |x: u32| {
        q2.put(x + 1).map_err(|_| Failure::msg("overflow"))?;
        drop(slot.borrow_mut().take());
        Ok(x)
    });
    *c_slot.borrow_mut() = Some(q.get().unwrap());
    q.put(1).unwrap();
    assert_eq!(success_result_of(b), 1);
    assert_eq!(
        q.pending(),
        1,
        "the item given to the dropped getter was kept"
    );
    assert_eq!(success_result_of(q.get().unwrap()), 2);
}

#[test]
fn many_dropped_waiters_are_not_kept_and_never_served() {
    let lock = DeferredLock::new();
    let sem = DeferredSemaphore::new(1).unwrap();
    let q = DeferredQueue::<usize>::new();
    let held = success_result_of(lock.acquire());
    let token = success_result_of(sem.acquire());
    let ((), reports) = reports_during(|| {
        for _ in 0..MANY {
            drop(lock.acquire());
            drop(sem.acquire());
            drop(q.get().unwrap());
        }
    });
    assert_eq!(reports, 0);
    assert_eq!((lock.waiting(), sem.waiting(), q.waiting()), (0, 0, 0));
    let (last_lock, last_sem, last_get) = (lock.acquire(), sem.acquire(), q.get().unwrap());
    held.release().unwrap();
    token.release().unwrap();
    q.put(1).unwrap();
    success_result_of(last_lock).release().unwrap();
    success_result_of(last_sem).release().unwrap();
    assert_eq!(success_result_of(last_get), 1);
    assert!(!lock.is_locked());
    assert_eq!(sem.tokens(), 1);
    assert_eq!(q.pending(), 0);
}

#[test]
fn dropped_waiters_do_not_pile_up_while_the_lock_is_held() {
    // On a thread of its own, so that only this scenario's blocks are counted.
    let grown = on_fresh_thread(|| {
        let lock = DeferredLock::new();
        let q = DeferredQueue::<usize>::new();
        let held = success_result_of(lock.acquire());
        let ((), grown) = measure(|| {
            for _ in 0..MANY {
                drop(lock.acquire());
                drop(q.get().unwrap());
            }
        });
        held.release().unwrap();
        assert!(!lock.is_locked());
        grown
    });
    // Each waiter is a chain and its canceller (two blocks or more): kept, they would be
    // hundreds of thousands of blocks. Pruned, a few dozen waiters at most are left.
    assert!(grown.live < 1_000, "{grown:?}");
}

// ---- 2. cancelling many waiters ------------------------------------------------------------------

const MANY: usize = 100_000;

/// Cancels the waiters last first: the order that costs a linear search the most.
fn cancel_all_last_first<T: 'static>(waiters: &[Deferred<T>]) {
    for d in waiters.iter().rev() {
        d.cancel();
    }
}

#[test]
fn cancelling_100k_lock_waiters_is_linear_and_correct() {
    let lock = DeferredLock::new();
    let held = success_result_of(lock.acquire());
    let start = Instant::now();
    let waiters: Vec<_> = (0..MANY).map(|_| lock.acquire()).collect();
    assert_eq!(lock.waiting(), MANY);
    // Every other one from the middle outwards, then the rest last first.
    for d in waiters.iter().skip(MANY / 2).step_by(2) {
        d.cancel();
    }
    cancel_all_last_first(&waiters);
    let elapsed = start.elapsed();
    assert_eq!(lock.waiting(), 0);
    for d in waiters {
        assert!(failure_result_of(d).check::<CancelledError>());
    }
    let next = lock.acquire();
    held.release().unwrap();
    success_result_of(next).release().unwrap();
    assert!(!lock.is_locked());
    eprintln!("cancelling {MANY} lock waiters: {elapsed:?}");
}

#[test]
fn cancelling_100k_semaphore_waiters_is_linear_and_correct() {
    let sem = DeferredSemaphore::new(1).unwrap();
    let held = success_result_of(sem.acquire());
    let start = Instant::now();
    let waiters: Vec<_> = (0..MANY).map(|_| sem.acquire()).collect();
    // Keep one in the middle: it must be the one served.
    let (before, rest) = waiters.split_at(MANY / 2);
    let (kept, after) = rest.split_first().unwrap();
    cancel_all_last_first(after);
    cancel_all_last_first(before);
    let elapsed = start.elapsed();
    assert_eq!(sem.waiting(), 1);
    held.release().unwrap();
    assert_eq!(sem.tokens(), 0);
    assert!(kept.is_called());
    for (i, d) in waiters.into_iter().enumerate() {
        if i == MANY / 2 {
            drop(success_result_of(d));
        } else {
            assert!(failure_result_of(d).check::<CancelledError>());
        }
    }
    assert_eq!(sem.tokens(), 0, "the kept waiter holds the token");
    sem.release().unwrap();
    assert_eq!(sem.tokens(), 1);
    eprintln!("cancelling {} semaphore waiters: {elapsed:?}", MANY - 1);
}

#[test]
fn cancelling_100k_queue_getters_is_linear_and_correct() {
    let q = DeferredQueue::<usize>::new();
    let start = Instant::now();
    let mut getters: Vec<_> = (0..MANY).map(|_| q.get().unwrap()).collect();
    let kept = getters.pop().unwrap();
    cancel_all_last_first(&getters);
    let elapsed = start.elapsed();
    assert_eq!(q.waiting(), 1);
    q.put(42).unwrap();
    q.put(43).unwrap();
    assert_eq!(q.pending(), 1);
    assert_eq!(success_result_of(kept), 42);
    for d in getters {
        assert!(failure_result_of(d).check::<CancelledError>());
    }
    assert_eq!(success_result_of(q.get().unwrap()), 43);
    eprintln!("cancelling {} queue getters: {elapsed:?}", MANY - 1);
}

// ---- 3. dropping a clock or a queue ------------------------------------------------------------

#[test]
fn dropping_the_clock_reports_nothing_for_a_dropped_defer_later() {
    let ((), reports) = reports_during(|| {
        let clock = Clock::new();
        drop(defer_later(&clock, secs(1), || Ok(5)));
        drop(defer_later(&clock, secs(2), || {
            Err::<(), _>(Failure::msg("never runs"))
        }));
        drop(clock);
    });
    assert_eq!(reports, 0);
}

#[test]
fn dropping_the_clock_fails_a_held_defer_later_with_trigger_dropped() {
    let ((), reports) = reports_during(|| {
        let clock = Clock::new();
        let d = defer_later(&clock, secs(1), || Ok(5));
        drop(clock);
        assert!(failure_result_of(d).check::<TriggerDropped>());
    });
    assert_eq!(reports, 0);
    // Held, but dropped without ever being looked at: the `TriggerDropped` is quiet until a step
    // sees it (docs/DESIGN.md), so nothing is reported, as in Twisted.
    let ((), reports) = reports_during(|| {
        let clock = Clock::new();
        let d = defer_later(&clock, secs(1), || Ok(5));
        drop(clock);
        drop(d);
    });
    assert_eq!(reports, 0);
    // With a step on it, the step sees the failure: reported once, when the chain goes.
    let ((), reports) = reports_during(|| {
        let clock = Clock::new();
        let d = defer_later(&clock, secs(1), || Ok(5)).add_callback(Ok);
        drop(clock);
        drop(d);
    });
    assert_eq!(reports, 1);
}

#[test]
fn defer_later_cancelled_while_waiting_on_its_functions_deferred_cancels_that_one() {
    let clock = Clock::new();
    let inner_cancelled = Rc::new(Cell::new(false));
    let ic = inner_cancelled.clone();
    let (inner, _producer) = Deferred::<u8>::with_canceller(move |_t| ic.set(true));
    let d = defer_later(&clock, secs(1), move || inner);
    clock.advance(secs(1));
    assert_no_result(&d);
    d.cancel();
    assert!(inner_cancelled.get());
    assert!(failure_result_of(d).check::<CancelledError>());

    // A canceller of the inner Deferred that succeeds decides the result.
    let clock = Clock::new();
    let (inner, _producer) = Deferred::<u8>::with_canceller(|t| {
        t.callback(9);
    });
    let d = defer_later(&clock, secs(1), move || inner);
    clock.advance(secs(1));
    d.cancel();
    assert_eq!(success_result_of(d), 9);
}

#[test]
fn defer_later_panic_points_at_the_defer_later_call() {
    let clock = Clock::new();
    let here = line!() + 1;
    let d = defer_later(&clock, secs(1), || -> Result<u8, Failure> {
        panic!("boom")
    });
    clock.advance(secs(1));
    let f = failure_result_of(d);
    assert!(f.is_panic());
    assert_eq!((f.location().file(), f.location().line()), (file!(), here));
}

#[test]
fn dropping_a_queue_reports_nothing_for_dropped_getters() {
    let ((), reports) = reports_during(|| {
        let q = DeferredQueue::<u8>::new();
        drop(q.get().unwrap());
        drop(q.get().unwrap());
        drop(q);
    });
    assert_eq!(reports, 0);
}

#[test]
fn dropping_a_queue_fails_a_held_getter_with_trigger_dropped() {
    let ((), reports) = reports_during(|| {
        let q = DeferredQueue::<u8>::new();
        let held = q.get().unwrap();
        drop(q.get().unwrap());
        drop(q);
        assert!(failure_result_of(held).check::<TriggerDropped>());
    });
    assert_eq!(reports, 0);
}

#[test]
fn dropping_a_lock_fails_a_held_waiter_and_ignores_dropped_ones() {
    let ((), reports) = reports_during(|| {
        let lock = DeferredLock::new();
        let _held = lock.acquire();
        drop(lock.acquire());
        let waiting = lock.acquire();
        drop(lock);
        drop(_held);
        assert!(failure_result_of(waiting).check::<TriggerDropped>());
    });
    assert_eq!(reports, 0);
}

// ---- 4. gather_results reports each failure at most once ------------------------------------------

#[test]
fn gather_results_first_failure_goes_to_the_caller_only() {
    let (f, reports) = reports_during(|| {
        failure_result_of(gather_results([succeed(1), fail(Failure::msg("bad"))]))
    });
    assert_eq!(
        reports, 0,
        "the caller has the failure: it is not also unhandled"
    );
    let first = f.downcast_ref::<FirstError>().unwrap();
    assert_eq!(
        (first.index(), first.sub_failure().message()),
        (1, "bad".to_owned())
    );

    // A caller that ignores it: reported exactly once, by the gather's own chain.
    let reported = unhandled_during(|| drop(gather_results([fail::<u8>(Failure::msg("x"))])));
    assert_eq!(reported.len(), 1);
    assert!(reported[0].check::<FirstError>());
}

#[test]
fn gather_results_pending_inputs_first_failure_is_reported_once() {
    let (d1, t1) = Deferred::<u8>::new();
    let (d2, t2) = Deferred::new();
    let reported = unhandled_during(|| {
        let g = gather_results([d1, d2]);
        t2.errback(Failure::msg("first"));
        assert!(failure_result_of(g).check::<FirstError>());
        t1.callback(1);
    });
    assert!(reported.is_empty(), "{reported:?}");
}

#[test]
fn gather_results_later_failures_are_reported_once_unless_consumed() {
    let reported = unhandled_during(|| {
        let (d1, t1) = Deferred::<u8>::new();
        let (d2, t2) = Deferred::new();
        let g = gather_results([d1, d2]);
        t1.errback(Failure::msg("first"));
        t2.errback(Failure::msg("second: nobody sees it"));
        assert!(failure_result_of(g).check::<FirstError>());
    });
    let messages: Vec<String> = reported.iter().map(Failure::message).collect();
    assert_eq!(messages, ["second: nobody sees it"]);

    let reported = unhandled_during(|| {
        let (d1, t1) = Deferred::<u8>::new();
        let (d2, t2) = Deferred::new();
        let g = gather_results_consuming_errors([d1, d2]);
        t1.errback(Failure::msg("first"));
        t2.errback(Failure::msg("second"));
        let f = failure_result_of(g);
        assert_eq!(f.downcast_ref::<FirstError>().unwrap().index(), 0);
    });
    assert!(reported.is_empty(), "{reported:?}");
}

#[test]
fn gather_results_consuming_errors_gathers_like_gather_results() {
    let (d1, t1) = Deferred::new();
    let g = gather_results_consuming_errors([succeed("a"), d1]);
    assert_no_result(&g);
    t1.callback("b");
    assert_eq!(success_result_of(g), ["a", "b"]);
    let here = line!() + 1;
    let g = gather_results_consuming_errors([fail::<u8>(Failure::msg("x"))]);
    let f = failure_result_of(g);
    assert_eq!((f.location().file(), f.location().line()), (file!(), here));
}

#[test]
fn fire_on_one_errback_list_and_tuple_gather_report_their_first_failure_once() {
    let reported = unhandled_during(|| {
        let d = DeferredList::new([succeed(1), fail(Failure::msg("first"))])
            .fire_on_one_errback(true)
            .build();
        assert!(failure_result_of(d).check::<FirstError>());
        let d = (succeed(1), fail::<u8>(Failure::msg("first"))).gather();
        assert!(failure_result_of(d).check::<FirstError>());
    });
    assert!(reported.is_empty(), "{reported:?}");

    // A later failure of a tuple gather's input is still reported, once.
    let reported = unhandled_during(|| {
        let (a, ta) = Deferred::<u8>::new();
        let (b, tb) = Deferred::<String>::new();
        let d = (a, b).gather();
        ta.errback(Failure::msg("first"));
        tb.errback(Failure::msg("second"));
        assert!(failure_result_of(d).check::<FirstError>());
    });
    let messages: Vec<String> = reported.iter().map(Failure::message).collect();
    assert_eq!(messages, ["second"]);
}
