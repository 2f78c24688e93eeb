//! Lock, semaphore and queue (twisted-semantics.md §1.4, §2.14): cases C73–C78, first-come
//! service, cancelled waiters, and hand-overs that never recurse.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use defer_core::errors::{
    CancelledError, InvalidTokens, NotLocked, QueueOverflow, QueueUnderflow, TooManyReleases,
};
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{Deferred, DeferredLock, DeferredQueue, DeferredSemaphore, Failure};

// On a 2 MiB stack, the size DESIGN §5 promises to stay within.
#[path = "support/small_stack.rs"]
mod small_stack;
use small_stack::on_small_stack;

fn counter_step<T>(counter: &Rc<Cell<u32>>) -> impl FnOnce(T) -> Result<(), Failure> + 'static {
    let c = counter.clone();
    move |_| {
        c.set(c.get() + 1);
        Ok(())
    }
}

// ---- DeferredLock ------------------------------------------------------------------------------

#[test]
fn c73_lock_walkthrough() {
    let lock = DeferredLock::new();
    let counter = Rc::new(Cell::new(0));

    let _a = lock.acquire().add_callback(counter_step(&counter));
    assert!(lock.is_locked());
    assert_eq!(counter.get(), 1);
    let _b = lock.acquire().add_callback(counter_step(&counter));
    assert!(lock.is_locked());
    assert_eq!(counter.get(), 1);
    lock.release().unwrap();
    assert!(lock.is_locked(), "the lock passed straight to the waiter");
    assert_eq!(counter.get(), 2);
    lock.release().unwrap();
    assert!(!lock.is_locked());
    assert_eq!(counter.get(), 2);

    let seen = Rc::new(RefCell::new(Vec::new()));
    let (ctl, ctl_producer) = Deferred::<&str>::new();
    let s = seen.clone();
    let rd = lock.run(move || {
        s.borrow_mut().push("first");
        ctl
    });
    assert!(lock.is_locked());
    assert_eq!(*seen.borrow(), ["first"]);
    let s = seen.clone();
    let _rd = rd.add_callback(move |v| {
        s.borrow_mut().push(v);
        Ok(())
    });
    let _c = lock.acquire().add_callback(counter_step(&counter));
    assert_eq!(counter.get(), 2);
    ctl_producer.callback("second");
    assert_eq!(*seen.borrow(), ["first", "second"]);
    assert!(lock.is_locked());
    assert_eq!(counter.get(), 3);

    let d = lock.acquire();
    assert_eq!(lock.waiting(), 1);
    d.cancel();
    assert_eq!(lock.waiting(), 0, "a cancelled waiter leaves the queue");
    assert!(failure_result_of(d).check::<CancelledError>());
    lock.release().unwrap();
    assert!(!lock.is_locked());
}

#[test]
fn c75_lock_is_first_come_and_run_releases_on_failure() {
    let lock = DeferredLock::new();
    let order = Rc::new(RefCell::new(Vec::new()));
    let mut held = Vec::new();
    for i in 0..3 {
        let o = order.clone();
        held.push(lock.acquire().add_callback(move |_l| {
            o.borrow_mut().push(i);
            Ok(())
        }));
    }
    assert_eq!(*order.borrow(), [0]);
    lock.release().unwrap();
    assert_eq!(*order.borrow(), [0, 1]);
    lock.release().unwrap();
    assert_eq!(*order.borrow(), [0, 1, 2]);
    lock.release().unwrap();
    assert!(!lock.is_locked());
    // Twisted asserts; here the error is a value that says what happened.
    let e = lock.release().unwrap_err();
    assert_eq!(e, NotLocked);
    assert_eq!(e.to_string(), "released a DeferredLock that is not locked");

    let lock = DeferredLock::new();
    let d = lock.run(|| -> Result<i32, Failure> {
        let zero = std::hint::black_box(0);
        Ok(1 / zero)
    });
    let f = failure_result_of(d);
    assert!(f.is_panic() && f.message().contains("divide by zero"));
    assert!(!lock.is_locked());
}

#[test]
fn lock_run_passes_a_failure_through_and_releases() {
    let lock = DeferredLock::new();
    let (work, producer) = Deferred::<u8>::new();
    let d = lock.run(move || work);
    let queued = lock.acquire();
    producer.errback(Failure::msg("work failed"));
    assert_eq!(failure_result_of(d).message(), "work failed");
    let next = success_result_of(queued);
    assert!(lock.is_locked());
    next.release().unwrap();
    assert!(!lock.is_locked());
}

#[test]
fn cancelling_a_waiter_in_the_middle_keeps_the_order_of_the_rest() {
    let lock = DeferredLock::new();
    let first = success_result_of(lock.acquire());
    let order = Rc::new(RefCell::new(Vec::new()));
    let mut waiters = Vec::new();
    for i in 0..4 {
        let (o, d) = (order.clone(), lock.acquire());
        waiters.push(d.add_callback(move |l: DeferredLock| {
            o.borrow_mut().push(i);
            l.release()?;
            Ok(())
        }));
    }
    waiters[1].cancel();
    waiters[2].cancel();
    assert_eq!(lock.waiting(), 2);
    first.release().unwrap();
    assert_eq!(*order.borrow(), [0, 3]);
    assert!(!lock.is_locked());
    let w2 = waiters.remove(2);
    let w1 = waiters.remove(1);
    assert!(failure_result_of(w1).check::<CancelledError>());
    assert!(failure_result_of(w2).check::<CancelledError>());
}

#[test]
fn a_waiter_cancelled_after_it_was_handed_the_lock_passes_it_on() {
    // A releases inside its callback (the lock is handed to B, to be fired after A's callback)
    // and then cancels B: B fails, and the lock goes on to C.
    let lock = DeferredLock::new();
    let holder = success_result_of(lock.acquire());
    let b_ctl: Rc<RefCell<Option<defer_core::DeferredControl>>> = Rc::new(RefCell::new(None));
    let bc = b_ctl.clone();
    let a = lock.acquire().add_callback(move |l: DeferredLock| {
        l.release()?;
        if let Some(ctl) = bc.borrow().as_ref() {
            ctl.cancel();
        }
        Ok("a")
    });
    let b = lock.acquire();
    *b_ctl.borrow_mut() = Some(b.control());
    let c = lock.acquire();
    holder.release().unwrap();
    assert_eq!(success_result_of(a), "a");
    assert!(failure_result_of(b).check::<CancelledError>());
    let c = success_result_of(c);
    assert!(lock.is_locked());
    c.release().unwrap();
    assert!(!lock.is_locked());
}

#[test]
fn release_inside_a_handed_over_callback_is_checked_exactly() {
    // The waiter releases twice inside its callback: the first hands over or unlocks, the second
    // must fail, even though firing waiters is deferred to the outer release.
    let lock = DeferredLock::new();
    let holder = success_result_of(lock.acquire());
    let errors = Rc::new(RefCell::new(Vec::new()));
    let e = errors.clone();
    let _w = lock.acquire().add_callback(move |l: DeferredLock| {
        e.borrow_mut().push(l.release().is_ok());
        e.borrow_mut().push(l.release().is_ok());
        Ok(())
    });
    holder.release().unwrap();
    assert_eq!(*errors.borrow(), [true, false]);
    assert!(!lock.is_locked());
}

#[test]
fn lock_hand_over_of_100_000_waiters_that_release_in_their_callback_does_not_recurse() {
    on_small_stack(|| {
        const N: usize = 100_000;
        let lock = DeferredLock::new();
        let holder = success_result_of(lock.acquire());
        let served = Rc::new(RefCell::new(Vec::with_capacity(N)));
        let mut waiters = Vec::with_capacity(N);
        for i in 0..N {
            let s = served.clone();
            waiters.push(lock.acquire().add_callback(move |l: DeferredLock| {
                s.borrow_mut().push(i);
                l.release()?;
                Ok(())
            }));
        }
        assert_eq!(lock.waiting(), N);
        holder.release().unwrap();
        let served = served.borrow();
        assert_eq!(served.len(), N);
        assert!(
            served.iter().enumerate().all(|(k, &i)| k == i),
            "first-come order"
        );
        assert!(!lock.is_locked());
        for w in waiters {
            success_result_of(w);
        }
    });
}

// ---- DeferredSemaphore -------------------------------------------------------------------------

#[test]
fn c76_semaphore_walkthrough() {
    const N: u32 = 13;
    let sem = DeferredSemaphore::new(N as usize).unwrap();
    let (ctl, ctl_producer) = Deferred::<()>::new();
    let out = Rc::new(RefCell::new(Vec::new()));
    let counter = Rc::new(Cell::new(0));
    let o = out.clone();
    let _rd = sem
        .run(move || ctl)
        .add_callback(move |v| {
            o.borrow_mut().push(v);
            Ok(())
        })
        .add_callback(counter_step(&counter));
    assert!(out.borrow().is_empty());
    ctl_producer.callback(());
    assert_eq!(*out.borrow(), [()]);
    assert_eq!(counter.get(), 1);

    counter.set(0);
    let mut held = Vec::new();
    for i in 1..=N {
        held.push(sem.acquire().add_callback(counter_step(&counter)));
        assert_eq!(counter.get(), i);
    }
    let flags = Rc::new(RefCell::new(Vec::new()));
    let (f1, f2) = (flags.clone(), flags.clone());
    let d = sem.acquire().add_callbacks(
        move |_s| {
            f1.borrow_mut().push(false);
            Ok(())
        },
        move |f| {
            assert!(f.check::<CancelledError>());
            f2.borrow_mut().push(true);
            Ok(())
        },
    );
    d.cancel();
    assert_eq!(*flags.borrow(), [true]);
    let _w = sem.acquire().add_callback(counter_step(&counter));
    assert_eq!(counter.get(), N);
    sem.release().unwrap();
    assert_eq!(counter.get(), N + 1);
    for _ in 0..N {
        sem.release().unwrap();
        assert_eq!(counter.get(), N + 1);
    }
    assert_eq!(sem.tokens(), N as usize);
    assert_eq!(sem.release(), Err(TooManyReleases { limit: 13 }));

    assert!(matches!(DeferredSemaphore::new(0), Err(InvalidTokens)));
    // Twisted's `DeferredSemaphore(-1)` is a type error here: the count is a `usize`.
}

#[test]
fn semaphore_waiters_are_first_come_and_cancellable() {
    let sem = DeferredSemaphore::new(2).unwrap();
    let a = success_result_of(sem.acquire());
    let _b = success_result_of(sem.acquire());
    let order = Rc::new(RefCell::new(Vec::new()));
    let mut ds = Vec::new();
    for i in 0..3 {
        let o = order.clone();
        ds.push(sem.acquire().add_callback(move |_s| {
            o.borrow_mut().push(i);
            Ok(())
        }));
    }
    ds[0].cancel();
    assert_eq!(sem.waiting(), 2);
    a.release().unwrap();
    assert_eq!(*order.borrow(), [1]);
    sem.release().unwrap();
    assert_eq!(*order.borrow(), [1, 2]);
    assert_eq!(sem.tokens(), 0);
    assert!(failure_result_of(ds.remove(0)).check::<CancelledError>());
}

#[test]
fn semaphore_hand_over_of_100_000_waiters_does_not_recurse() {
    on_small_stack(|| {
        const N: u32 = 100_000;
        let sem = DeferredSemaphore::new(3).unwrap();
        let holders: Vec<DeferredSemaphore> =
            (0..3).map(|_| success_result_of(sem.acquire())).collect();
        let served = Rc::new(Cell::new(0));
        let mut waiters = Vec::new();
        for _ in 0..N {
            let s = served.clone();
            waiters.push(sem.acquire().add_callback(move |held: DeferredSemaphore| {
                s.set(s.get() + 1);
                held.release()?;
                Ok(())
            }));
        }
        holders[0].release().unwrap();
        assert_eq!(served.get(), N);
        assert_eq!(sem.tokens(), 1);
        for w in waiters {
            success_result_of(w);
        }
    });
}

// ---- DeferredQueue -----------------------------------------------------------------------------

#[test]
fn queue_walkthrough_with_size_and_backlog() {
    // Twisted's testQueue with DeferredQueue(size=2, backlog=2).
    let q = DeferredQueue::with_limits(Some(2), Some(2));
    let g0 = q.get().unwrap();
    let g1 = q.get().unwrap();
    assert_eq!(q.get().unwrap_err(), QueueUnderflow);
    q.put(0).unwrap();
    q.put(1).unwrap();
    assert_eq!(success_result_of(g0), 0);
    assert_eq!(success_result_of(g1), 1);
    q.put(2).unwrap();
    q.put(3).unwrap();
    let overflow: QueueOverflow<i32> = q.put(4).unwrap_err();
    assert_eq!(overflow.into_inner(), 4);
    assert_eq!(q.pending(), 2);
    assert_eq!(success_result_of(q.get().unwrap()), 2);
    assert_eq!(success_result_of(q.get().unwrap()), 3);

    let never_stores = DeferredQueue::with_limits(Some(0), None);
    assert!(never_stores.put(1).is_err());
    let waiting = never_stores.get().unwrap();
    never_stores
        .put(1)
        .expect("a waiting getter takes it even with size 0");
    assert_eq!(success_result_of(waiting), 1);

    let never_waits = DeferredQueue::<u8>::with_limits(None, Some(0));
    assert_eq!(never_waits.get().unwrap_err(), QueueUnderflow);
    never_waits.put(7).unwrap();
    assert_eq!(success_result_of(never_waits.get().unwrap()), 7);
}

#[test]
fn c78_cancelled_getter_loses_nothing_and_a_fired_getter_ignores_cancel() {
    let q = DeferredQueue::new();
    let d = q.get().unwrap();
    d.cancel();
    assert!(failure_result_of(d).check::<CancelledError>());
    assert_eq!(q.waiting(), 0);
    q.put("x").unwrap();
    assert_eq!(q.pending(), 1, "stored, not given to the cancelled getter");
    assert_eq!(success_result_of(q.get().unwrap()), "x");

    let q = DeferredQueue::new();
    let eb = Rc::new(Cell::new(0));
    let e = eb.clone();
    let d = q.get().unwrap().add_errback(move |f| {
        e.set(e.get() + 1);
        Err(f)
    });
    q.put(()).unwrap();
    d.cancel();
    assert_eq!(eb.get(), 0);
    success_result_of(d);
}

#[test]
fn queue_getters_are_served_first_come() {
    let q = DeferredQueue::new();
    let gets: Vec<Deferred<u32>> = (0..3).map(|_| q.get().unwrap()).collect();
    for i in 10..13 {
        q.put(i).unwrap();
    }
    let got: Vec<u32> = gets.into_iter().map(success_result_of).collect();
    assert_eq!(got, [10, 11, 12]);
}

#[test]
fn queue_getter_cancelled_after_it_was_handed_an_item_passes_it_on() {
    let q = DeferredQueue::new();
    let second_ctl: Rc<RefCell<Option<defer_core::DeferredControl>>> = Rc::new(RefCell::new(None));
    let (sc, q1) = (second_ctl.clone(), q.clone());
    let first = q.get().unwrap().add_callback(move |x: u32| {
        // While this getter's item is being handed over, put another (queued for the second
        // getter) and then cancel the second getter.
        q1.put(x + 1).unwrap();
        if let Some(ctl) = sc.borrow().as_ref() {
            ctl.cancel();
        }
        Ok(x)
    });
    let second = q.get().unwrap();
    *second_ctl.borrow_mut() = Some(second.control());
    let third = q.get().unwrap();
    q.put(1).unwrap();
    assert_eq!(success_result_of(first), 1);
    assert!(failure_result_of(second).check::<CancelledError>());
    assert_eq!(
        success_result_of(third),
        2,
        "the item went on to the next getter"
    );
    assert_eq!(q.pending(), 0);
}

#[test]
fn queue_hand_over_through_100_000_getters_does_not_recurse() {
    on_small_stack(|| {
        const N: u32 = 100_000;
        let q = DeferredQueue::new();
        let mut getters = Vec::new();
        for _ in 0..N {
            let q2 = q.clone();
            getters.push(q.get().unwrap().add_callback(move |x: u32| {
                // Each getter passes the next number on to the next getter.
                let _ = q2.put(x + 1);
                Ok(x)
            }));
        }
        q.put(0).unwrap();
        assert_eq!(q.pending(), 1);
        assert_eq!(success_result_of(q.get().unwrap()), N);
        for (i, g) in getters.into_iter().enumerate() {
            assert_eq!(success_result_of(g), i as u32);
        }
    });
}

#[test]
fn acquire_waiters_cancel_without_affecting_the_holder() {
    let lock = DeferredLock::new();
    let holder = lock.acquire();
    holder.cancel(); // already fired: nothing happens
    let held = success_result_of(holder);
    let waiter = lock.acquire();
    assert_no_result(&waiter);
    waiter.cancel();
    assert!(lock.is_locked());
    held.release().unwrap();
    assert!(!lock.is_locked());
    assert!(failure_result_of(waiter).check::<CancelledError>());
}
