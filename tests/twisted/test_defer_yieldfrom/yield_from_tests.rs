//! Ports of Twisted's `test_defer_yieldfrom.py` `YieldFromTests`: generator-based coroutines that
//! `yield from` Deferreds and other such generators. The generator-style coroutine here is an
//! `#[inline_callbacks]` function: `yield from d` is `yield_!(d)`, and `yield from run2()` of
//! another generator is `yield_!(run2())`. Such a function returns its own Deferred when called,
//! so there is no separate "wrap the generator" step (Twisted's `ensureDeferred(gen)` /
//! `Deferred.fromCoroutine(gen)`); `ensure_deferred` of that Deferred does not compile (ui
//! `c96_ensure_deferred_not_a_future.rs`).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use defer_core::clock::Clock;
use defer_core::testing::{
    assert_no_result, failure_result_of, success_result_of, unhandled_during,
};
use defer_core::{Deferred, fail, inline_callbacks, succeed, yield_};

error_kind!(ValueError);

/// Runs a test body and fails if it left a failure nobody handled, as trial does.
fn trial(body: impl FnOnce()) {
    let lost = unhandled_during(body);
    assert!(lost.is_empty(), "unhandled failures: {lost:?}");
}

#[test]
fn test_ensure_deferred() {
    trial(|| {
        #[inline_callbacks]
        fn run(started: Rc<Cell<bool>>) -> Deferred<&'static str> {
            started.set(true);
            let d = succeed("foo");
            let res = yield_!(d)?;
            Ok(res)
        }

        // The generator-style function, not yet called, has run nothing...
        let started = Rc::new(Cell::new(false));
        let r = run;
        assert!(!started.get());

        // ... and calling it gives the Deferred, running the body at once.
        let d: Deferred<&str> = r(started.clone());
        assert!(started.get());

        // The Deferred has the result we want.
        assert_eq!(success_result_of(d), "foo");
    });
}

#[test]
fn test_deferred_from_coroutine() {
    trial(|| {
        #[inline_callbacks]
        fn run() -> Deferred<&'static str> {
            let d = succeed("bar");
            yield_!(d)?;
            let res = yield_!(run2())?;
            Ok(res)
        }
        #[inline_callbacks]
        fn run2() -> Deferred<&'static str> {
            let d = succeed("foo");
            let res = yield_!(d)?;
            Ok(res)
        }

        let d: Deferred<&str> = run();
        assert_eq!(success_result_of(d), "foo");
    });
}

#[test]
fn test_basic() {
    trial(|| {
        #[inline_callbacks]
        fn run() -> Deferred<&'static str> {
            let d = succeed("foo");
            let res = yield_!(d)?;
            Ok(res)
        }
        assert_eq!(success_result_of(run()), "foo");
    });
}

#[test]
fn test_exception() {
    trial(|| {
        #[inline_callbacks]
        fn run() -> Deferred<()> {
            let d = succeed("foo");
            yield_!(d)?;
            Err(ValueError::new("Oh no!"))?
        }
        let res = failure_result_of(run());
        let e = res.downcast_ref::<ValueError>().expect("a ValueError");
        assert_eq!(e, &ValueError::new("Oh no!"));
    });
}

#[test]
fn test_two_deep() {
    trial(|| {
        type Sections = Rc<RefCell<Vec<i32>>>;
        #[inline_callbacks]
        fn runone(reactor: Clock, sections: Sections) -> Deferred<&'static str> {
            sections.borrow_mut().push(2);
            let (d, t) = Deferred::<()>::new();
            reactor.call_later(Duration::from_secs(1), move || {
                t.callback(());
            });
            yield_!(d)?;
            sections.borrow_mut().push(3);
            Ok("Yay!")
        }
        #[inline_callbacks]
        fn run(reactor: Clock, sections: Sections) -> Deferred<&'static str> {
            sections.borrow_mut().push(1);
            let result = yield_!(runone(reactor.clone(), sections.clone()))?;
            sections.borrow_mut().push(4);
            let (d, t) = Deferred::<()>::new();
            reactor.call_later(Duration::from_secs(1), move || {
                t.callback(());
            });
            yield_!(d)?;
            sections.borrow_mut().push(5);
            Ok(result)
        }

        let reactor = Clock::new();
        let sections = Sections::default();
        let d = run(reactor.clone(), sections.clone());

        reactor.advance(Duration::from_millis(900));
        assert_eq!(*sections.borrow(), [1, 2]);

        reactor.advance(Duration::from_millis(100));
        assert_eq!(*sections.borrow(), [1, 2, 3, 4]);

        reactor.advance(Duration::from_millis(900));
        assert_eq!(*sections.borrow(), [1, 2, 3, 4]);

        reactor.advance(Duration::from_millis(100));
        assert_eq!(*sections.borrow(), [1, 2, 3, 4, 5]);

        assert_eq!(success_result_of(d), "Yay!");
    });
}

#[test]
fn test_reraise() {
    trial(|| {
        #[inline_callbacks]
        fn test() -> Deferred<i32> {
            match yield_!(fail::<()>(ValueError::new("Boom"))) {
                Ok(()) => Ok(0),
                Err(f) => {
                    let e = f.trap::<ValueError>()?;
                    assert_eq!(e.0, "Boom");
                    Ok(1)
                }
            }
        }
        assert_eq!(success_result_of(test()), 1);
    });
}

#[test]
fn test_chained() {
    trial(|| {
        #[inline_callbacks]
        fn test(reactor: Clock) -> Deferred<&'static str> {
            let (d, t) = Deferred::<()>::new();
            let (d2, t2) = Deferred::new();
            let d = d.add_callback(move |_ignored| d2);

            t.callback(());
            reactor.call_later(Duration::ZERO, move || {
                t2.callback("bye");
            });
            let res = yield_!(d)?;
            Ok(res)
        }

        let reactor = Clock::new();
        let d = test(reactor.clone());
        assert_no_result(&d);
        reactor.advance(Duration::from_millis(100));
        assert_eq!(success_result_of(d), "bye");
    });
}
