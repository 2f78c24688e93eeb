//! Ports of Twisted's `test_defer_await.py` `AwaitTests`: Deferreds awaited in `async` code run by
//! [`ensure_deferred`] (Twisted's `Deferred.fromCoroutine` and `ensureDeferred`, one function
//! here). Twisted's `Clock` is the manual [`Clock`].

use std::cell::{Cell, RefCell};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use defer_core::clock::Clock;
use defer_core::testing::{
    assert_no_result, failure_result_of, success_result_of, unhandled_during,
};
use defer_core::{
    Deferred, DeferredFuture, Failure, ensure_deferred, fail, maybe_deferred, succeed,
};

error_kind!(SampleException, ValueError);

/// Runs a test body and fails if it left a failure nobody handled, as trial does.
fn trial(body: impl FnOnce()) {
    let lost = unhandled_during(body);
    assert!(lost.is_empty(), "unhandled failures: {lost:?}");
}

/// The line of this file that ends with the comment `marker`, 1-based.
fn marked_line(marker: &str) -> u32 {
    let source = include_str!("await_tests.rs");
    let i = source
        .lines()
        .position(|l| l.trim_end().ends_with(marker))
        .unwrap_or_else(|| panic!("no line marked {marker:?}"));
    u32::try_from(i + 1).unwrap()
}

#[test]
fn test_await_returns_iterable() {
    // `Deferred.__await__` returns an iterator; Rust's `await` protocol is `IntoFuture`, which
    // turns a Deferred into a `DeferredFuture`: a future, polled like any other.
    fn is_a_future<F: Future>(f: F) -> F {
        f
    }
    let (d, t) = Deferred::<()>::new();
    let awaited_deferred: DeferredFuture<()> = is_a_future(d.into_future());
    // A future's `into_future` is itself (Python's `iter(it) is it`).
    let mut awaited_deferred = awaited_deferred.into_future();
    let mut cx = Context::from_waker(Waker::noop());
    assert!(Pin::new(&mut awaited_deferred).poll(&mut cx).is_pending());
    t.callback(());
    assert!(matches!(
        Pin::new(&mut awaited_deferred).poll(&mut cx),
        Poll::Ready(Ok(()))
    ));
}

#[test]
fn test_deferred_from_coroutine() {
    trial(|| {
        async fn run(started: Rc<Cell<bool>>) -> Result<&'static str, Failure> {
            started.set(true);
            let d = succeed("bar");
            d.await?;
            let res = run2().await?;
            Ok(res)
        }
        async fn run2() -> Result<&'static str, Failure> {
            let d = succeed("foo");
            let res = d.await?;
            Ok(res)
        }

        // It's a coroutine: a future, and nothing of it has run yet...
        let started = Rc::new(Cell::new(false));
        let r = run(started.clone());
        fn is_a_future<F: Future>(f: F) -> F {
            f
        }
        let r = is_a_future(r);
        assert!(!started.get());

        // Now it's a Deferred.
        let d: Deferred<&str> = ensure_deferred(r);
        assert!(started.get());

        // The Deferred has the result we want.
        assert_eq!(success_result_of(d), "foo");
    });
}

#[test]
fn test_basic() {
    trial(|| {
        async fn run() -> Result<&'static str, Failure> {
            let d = succeed("foo");
            let res = d.await?;
            Ok(res)
        }
        let d = ensure_deferred(run());
        assert_eq!(success_result_of(d), "foo");
    });
}

#[test]
fn test_basic_ensure_deferred() {
    trial(|| {
        async fn run() -> Result<&'static str, Failure> {
            let d = succeed("foo");
            let res = d.await?;
            Ok(res)
        }
        let d = ensure_deferred(run());
        assert_eq!(success_result_of(d), "foo");
    });
}

#[test]
fn test_exception() {
    trial(|| {
        async fn run() -> Result<(), Failure> {
            let d = succeed("foo");
            d.await?;
            Err(ValueError::new("Oh no!"))?
        }
        let res = failure_result_of(ensure_deferred(run()));
        let e = res.downcast_ref::<ValueError>().expect("a ValueError");
        assert_eq!(e, &ValueError::new("Oh no!"));
    });
}

#[test]
fn test_synchronous_deferred_failure_traceback() {
    trial(|| {
        fn raises() -> Result<(), Failure> {
            Err(SampleException::new("sample"))? // raise: synchronous
        }
        let it = maybe_deferred(raises);
        async fn doomed(it: Deferred<()>) -> Result<(), Failure> {
            it.await // await: synchronous doomed
        }

        let failure = failure_result_of(ensure_deferred(doomed(it)));
        assert!(failure.check::<SampleException>());
        let tb = failure.to_string();
        // ", in doomed": the await in doomed, named after the `async fn`.
        let await_line = marked_line("// await: synchronous doomed");
        assert!(
            tb.contains(", in doomed") || tb.contains("in doomed at"),
            "{tb}"
        );
        let frames: Vec<_> = failure
            .frames()
            .map(|f| (f.function(), f.file(), f.line()))
            .collect();
        assert_eq!(frames, [("doomed", file!(), await_line)], "{tb}");
        assert!(
            tb.contains(&format!("  in doomed at {}:{await_line}:", file!())),
            "{tb}"
        );
        // ", in raises": where the error was raised (a plain function: by its line, unnamed).
        let raise_line = marked_line("// raise: synchronous");
        assert_eq!(failure.location().line(), raise_line);
        assert!(
            tb.contains(&format!("raised at {}:{raise_line}:", file!())),
            "{tb}"
        );
    });
}

#[test]
fn test_async_deferred_failure_traceback() {
    trial(|| {
        fn returns_failure() -> Failure {
            Failure::new(SampleException::new("sample")) // raise: asynchronous
        }
        async fn doomed(it: Deferred<()>) -> Result<(), Failure> {
            it.await // await: asynchronous doomed
        }

        let (it, it_trigger) = Deferred::new();
        let started = ensure_deferred(doomed(it));
        assert_no_result(&started);
        it_trigger.errback(returns_failure());
        let failure = failure_result_of(started);
        assert!(failure.check::<SampleException>());
        let tb = failure.to_string();
        let await_line = marked_line("// await: asynchronous doomed");
        let frames: Vec<_> = failure
            .frames()
            .map(|f| (f.function(), f.file(), f.line()))
            .collect();
        assert_eq!(frames, [("doomed", file!(), await_line)], "{tb}");
        assert!(
            tb.contains(&format!("  in doomed at {}:{await_line}:", file!())),
            "{tb}"
        );
        let raise_line = marked_line("// raise: asynchronous");
        assert_eq!(failure.location().line(), raise_line);
        assert!(
            tb.contains(&format!("raised at {}:{raise_line}:", file!())),
            "{tb}"
        );
    });
}

#[test]
fn test_two_deep() {
    trial(|| {
        type Sections = Rc<RefCell<Vec<i32>>>;
        async fn runone(reactor: Clock, sections: Sections) -> Result<&'static str, Failure> {
            sections.borrow_mut().push(2);
            let (d, t) = Deferred::<i32>::new();
            reactor.call_later(Duration::from_secs(1), move || {
                t.callback(2);
            });
            d.await?;
            sections.borrow_mut().push(3);
            Ok("Yay!")
        }
        async fn run(reactor: Clock, sections: Sections) -> Result<&'static str, Failure> {
            sections.borrow_mut().push(1);
            let result = runone(reactor.clone(), sections.clone()).await?;
            sections.borrow_mut().push(4);
            let (d, t) = Deferred::<i32>::new();
            reactor.call_later(Duration::from_secs(1), move || {
                t.callback(1);
            });
            d.await?;
            sections.borrow_mut().push(5);
            Ok(result)
        }

        let reactor = Clock::new();
        let sections = Sections::default();
        let d = ensure_deferred(run(reactor.clone(), sections.clone()));

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
        async fn test() -> Result<i32, Failure> {
            match fail::<()>(ValueError::new("Boom")).await {
                Ok(()) => Ok(0),
                Err(f) => {
                    let e = f.trap::<ValueError>()?;
                    assert_eq!(e.0, "Boom");
                    Ok(1)
                }
            }
        }
        assert_eq!(success_result_of(ensure_deferred(test())), 1);
    });
}

#[test]
fn test_chained() {
    trial(|| {
        async fn test(reactor: Clock) -> Result<&'static str, Failure> {
            let (d, t) = Deferred::<()>::new();
            let (d2, t2) = Deferred::new();
            let d = d.add_callback(move |_ignored| d2);

            t.callback(());
            reactor.call_later(Duration::ZERO, move || {
                t2.callback("bye");
            });
            d.await
        }

        let reactor = Clock::new();
        let d = ensure_deferred(test(reactor.clone()));
        assert_no_result(&d);
        reactor.advance(Duration::from_millis(100));
        assert_eq!(success_result_of(d), "bye");
    });
}
