//! Ports of Twisted's `test_inlinecb.py` `ForwardTraceBackTests`: a failure that crosses chained
//! inline-callbacks functions and coroutines carries where it came from.
//!
//! Twisted reads this from the Python traceback (`getTraceback()` shows `in erroring`, `in
//! calling`, ...). A [`Failure`] records it itself: where the error was raised
//! ([`Failure::location`]) and the `yield_!` / `.await` points it crossed ([`Failure::frames`],
//! outermost first), and its `Display` prints them in traceback order. A `yield_!` frame is named
//! after its `#[inline_callbacks]` function; the raise site of an `async fn` run by
//! `ensure_deferred`, and the `.await` in it that a failure crossed, are named after that `async
//! fn` (the coroutine derives the name from its future's type). Each frame is checked by name and
//! by line, which the marker comments at line ends locate.

use std::time::Duration;

use defer_core::clock::Clock;
use defer_core::testing::{failure_result_of, unhandled_during};
use defer_core::{Deferred, Failure, ensure_deferred, inline_callbacks, succeed, yield_};

error_kind!(Exception, ZeroDivisionError);

/// Runs a test body and fails if it left a failure nobody handled, as trial does.
fn trial(body: impl FnOnce()) {
    let lost = unhandled_during(body);
    assert!(lost.is_empty(), "unhandled failures: {lost:?}");
}

/// The line of this file that ends with the comment `marker`, 1-based.
fn marked_line(marker: &str) -> u32 {
    let source = include_str!("forward_trace_back_tests.rs");
    let i = source
        .lines()
        .position(|l| l.trim_end().ends_with(marker))
        .unwrap_or_else(|| panic!("no line marked {marker:?}"));
    u32::try_from(i + 1).unwrap()
}

/// The frames of `f` as `(function, line)`, outermost first, each checked to be in this file.
fn frames(f: &Failure) -> Vec<(&'static str, u32)> {
    f.frames()
        .map(|fr| {
            assert!(fr.file().ends_with("forward_trace_back_tests.rs"), "{fr}");
            (fr.function(), fr.line())
        })
        .collect()
}

/// `assertIn(what, tb)`.
#[track_caller]
fn assert_in(what: &str, tb: &str) {
    assert!(tb.contains(what), "{what:?} not in\n{tb}");
}

/// Twisted's `getValueViaDeferred`: fires on the next turn of the clock.
fn get_value_via_deferred<T: 'static>(clock: &Clock, value: T) -> Deferred<T> {
    let (d, t) = Deferred::new();
    clock.call_later(Duration::ZERO, move || {
        t.callback(value);
    });
    d
}

#[test]
fn test_forward_tracebacks() {
    trial(|| {
        #[inline_callbacks]
        fn erroring() -> Deferred<()> {
            yield_!(succeed("forcing generator"))?;
            Err(Exception::new("Error Marker"))? // raise: simple
        }
        #[inline_callbacks]
        fn calling() -> Deferred<()> {
            yield_!(erroring())?; // yield: simple calling
            Ok(())
        }

        let f = failure_result_of(calling());
        let tb = f.to_string();
        assert_in("in erroring", &tb);
        assert_in("in calling", &tb);
        assert_in("Error Marker", &tb);
        assert_eq!(
            frames(&f),
            [
                ("calling", marked_line("// yield: simple calling")),
                ("erroring", marked_line("// raise: simple")),
            ],
            "{tb}"
        );
        assert_eq!(f.location().line(), marked_line("// raise: simple"));
    });
}

#[test]
fn test_forward_tracebacks_coro() {
    trial(|| {
        async fn erroring(clock: Clock) -> Result<(), Failure> {
            get_value_via_deferred(&clock, "value").await?;
            Err(Exception::new("Error Marker"))? // raise: coro
        }
        #[inline_callbacks]
        fn calling(clock: Clock) -> Deferred<()> {
            yield_!(ensure_deferred(erroring(clock)))?; // yield: coro calling
            Ok(())
        }

        let clock = Clock::new();
        let d = calling(clock.clone());
        clock.advance(Duration::ZERO);
        let f = failure_result_of(d);
        let tb = f.to_string();
        assert_in("in erroring", &tb);
        assert_in("in calling", &tb);
        assert_in("Error Marker", &tb);
        assert_eq!(f.location().line(), marked_line("// raise: coro"));
        assert_in(
            &format!("raised at {}:{}:", file!(), marked_line("// raise: coro")),
            &tb,
        );
        assert_eq!(
            frames(&f),
            [
                ("calling", marked_line("// yield: coro calling")),
                ("erroring", marked_line("// raise: coro")),
            ],
            "{tb}"
        );
    });
}

#[test]
fn test_forward_lots_of_tracebacks() {
    trial(|| {
        #[inline_callbacks]
        fn erroring() -> Deferred<()> {
            yield_!(succeed("forcing generator"))?;
            Err(Exception::new("Error Marker"))? // raise: lots
        }
        #[inline_callbacks]
        fn calling3() -> Deferred<()> {
            yield_!(erroring())?; // yield: lots calling3
            Ok(())
        }
        #[inline_callbacks]
        fn calling2() -> Deferred<()> {
            yield_!(calling3())?; // yield: lots calling2
            Ok(())
        }
        #[inline_callbacks]
        fn calling() -> Deferred<()> {
            yield_!(calling2())?; // yield: lots calling
            Ok(())
        }

        let f = failure_result_of(calling());
        let tb = f.to_string();
        assert_in("in erroring", &tb);
        assert_in("in calling", &tb);
        assert_in("in calling2", &tb);
        assert_in("in calling3", &tb);
        assert_in("Error Marker", &tb);
        assert_in("in erroring", &f.to_string());
        assert_eq!(
            frames(&f),
            [
                ("calling", marked_line("// yield: lots calling")),
                ("calling2", marked_line("// yield: lots calling2")),
                ("calling3", marked_line("// yield: lots calling3")),
                ("erroring", marked_line("// raise: lots")),
            ],
            "{tb}"
        );
    });
}

#[test]
fn test_forward_lots_of_tracebacks_coro() {
    trial(|| {
        #[inline_callbacks]
        fn erroring() -> Deferred<()> {
            yield_!(succeed("forcing generator"))?;
            Err(Exception::new("Error Marker"))? // raise: lots coro
        }
        async fn calling3() -> Result<(), Failure> {
            erroring().await?; // await: lots coro calling3
            Ok(())
        }
        #[inline_callbacks]
        fn calling2() -> Deferred<()> {
            yield_!(ensure_deferred(calling3()))?; // yield: lots coro calling2
            Ok(())
        }
        #[inline_callbacks]
        fn calling() -> Deferred<()> {
            yield_!(calling2())?; // yield: lots coro calling
            Ok(())
        }

        let f = failure_result_of(calling());
        let tb = f.to_string();
        assert_in("in erroring", &tb);
        assert_in("in calling", &tb);
        assert_in("in calling2", &tb);
        assert_in("in calling3", &tb);
        assert_in("Error Marker", &tb);
        assert_in("in erroring", &f.to_string());
        // "in calling3": the `.await` in the async function, named after it.
        let await_line = marked_line("// await: lots coro calling3");
        assert_in(&format!("  in calling3 at {}:{await_line}:", file!()), &tb);
        assert_eq!(
            frames(&f),
            [
                ("calling", marked_line("// yield: lots coro calling")),
                ("calling2", marked_line("// yield: lots coro calling2")),
                ("calling3", await_line),
                ("erroring", marked_line("// raise: lots coro")),
            ],
            "{tb}"
        );
        let order = [
            "in calling at",
            "in calling2 at",
            &format!("  in calling3 at {}:{await_line}:", file!()),
            "in erroring at",
            "Error Marker",
        ]
        .map(|s| tb.find(s).unwrap());
        assert!(order.is_sorted(), "{tb}");
    });
}

/// Twisted's `getDivisionFailure`.
fn get_division_failure(msg: &str) -> Failure {
    Failure::new(ZeroDivisionError::new(msg)) // raise: division
}

#[test]
fn test_reraise_tracebacks_from_deferred() {
    trial(|| {
        let f = get_division_failure("msg");
        let (d, t) = Deferred::<()>::new();
        // f.raiseException() caught, then d.errback(): the same failure goes in.
        t.errback(f.clone());

        // Defined, never called: it only shows that declaring an inline-callbacks function
        // around the failed Deferred adds nothing to the failure.
        #[inline_callbacks]
        #[allow(dead_code)]
        fn ic(d: Deferred<()>) -> Deferred<()> {
            yield_!(d)
        }

        let new_failure = failure_result_of(d);
        assert!(new_failure.same_as(&f));
        assert!(new_failure.check::<ZeroDivisionError>());
        // Where it was raised is kept: getDivisionFailure's line, and no frame was added.
        assert_eq!(
            new_failure.location().line(),
            marked_line("// raise: division")
        );
        assert!(
            new_failure
                .location()
                .file()
                .ends_with("forward_trace_back_tests.rs")
        );
        assert_eq!(new_failure.frames().count(), 0, "{new_failure}");
    });
}
