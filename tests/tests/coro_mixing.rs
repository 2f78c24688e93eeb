//! Mixing the three styles (the seed: "You can mix and match code which uses regular Deferreds,
//! inlineCallbacks, and ensureDeferred freely"): each caller style (a plain chain, an
//! `#[inline_callbacks]` function, an `async` function under `ensure_deferred`) calls a callee of
//! each style, which waits on a source Deferred fired from outside after the call has returned,
//! once with a value and once with a failure: 3 × 3 × 2 = 18 tests.
//!
//! On success the callee adds 1 and the caller multiplies by 10: 4 gives 50. On failure the
//! source's own failure reaches the outermost Deferred (the same failure, its kind and message
//! intact), and its trace holds one frame per `yield_!` or `.await` of a Deferred that it crossed,
//! outermost first; an `async` caller awaiting an `async` callee directly adds none (a native
//! await of a future, not of a Deferred).
//!
//! The last tests mix Deferreds with other futures inside one coroutine (a future that wakes
//! itself during the poll, `select` and `join` with a foreign future or a second Deferred): the
//! coroutine resumes whichever completes first, and cancelling it cancels every Deferred it
//! waits on.

use std::error::Error;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use defer_core::errors::CancelledError;
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::unhandled;
use defer_core::{Deferred, Failure, ensure_deferred, inline_callbacks, succeed, yield_};
use futures::channel::oneshot;
use futures::future::{Either, join, select};

/// The failure the source is fired with.
#[derive(Debug)]
struct BackendError(&'static str);
impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}
impl Error for BackendError {}

#[derive(Clone, Copy, Debug)]
enum Style {
    Chain,
    Inline,
    Async,
}

#[derive(Clone, Copy, Debug)]
enum Fire {
    Success,
    Failure,
}

// ----------------------------------------------------------------------------------- callees

/// A plain chain: a step on the source.
fn callee_chain(src: Deferred<u32>) -> Deferred<u32> {
    src.add_callback(|v| Ok(v + 1))
}

#[inline_callbacks]
fn callee_inline(src: Deferred<u32>) -> Deferred<u32> {
    let v = yield_!(src)?;
    Ok(v + 1)
}

async fn callee_async(src: Deferred<u32>) -> Result<u32, Failure> {
    let v = src.await?;
    Ok(v + 1)
}

/// The callee as a Deferred, for callers that are not `async`: an `async` callee is wrapped in
/// `ensure_deferred`.
fn callee(style: Style, src: Deferred<u32>) -> Deferred<u32> {
    match style {
        Style::Chain => callee_chain(src),
        Style::Inline => callee_inline(src),
        Style::Async => ensure_deferred(callee_async(src)),
    }
}

// ----------------------------------------------------------------------------------- callers

/// A plain chain whose step returns the callee's Deferred (the chain waits for it).
fn caller_chain(callee_style: Style, src: Deferred<u32>) -> Deferred<u32> {
    succeed(())
        .add_callback(move |()| callee(callee_style, src))
        .add_callback(|v| Ok(v * 10))
}

#[inline_callbacks]
fn caller_inline(callee_style: Style, src: Deferred<u32>) -> Deferred<u32> {
    let v = yield_!(callee(callee_style, src))?;
    Ok(v * 10)
}

/// Awaits a Deferred-returning callee, or an `async` callee directly, with no wrapping.
async fn caller_async(callee_style: Style, src: Deferred<u32>) -> Result<u32, Failure> {
    let v = match callee_style {
        Style::Chain => callee_chain(src).await?,
        Style::Inline => callee_inline(src).await?,
        Style::Async => callee_async(src).await?,
    };
    Ok(v * 10)
}

fn caller(style: Style, callee_style: Style, src: Deferred<u32>) -> Deferred<u32> {
    match style {
        Style::Chain => caller_chain(callee_style, src),
        Style::Inline => caller_inline(callee_style, src),
        Style::Async => ensure_deferred(caller_async(callee_style, src)),
    }
}

/// The functions of the trace frames a failure gets on its way up, outermost first (`""` is an
/// `.await`, which has no function name).
fn expected_frames(caller: Style, callee: Style) -> Vec<&'static str> {
    let mut frames = Vec::new();
    // An `.await` frame is named after the `async fn` whose coroutine it is in.
    match (caller, callee) {
        (Style::Chain, _) => {}
        (Style::Inline, _) => frames.push("caller_inline"),
        (Style::Async, Style::Async) => {} // a native await of the callee's future
        (Style::Async, _) => frames.push("caller_async"),
    }
    match (caller, callee) {
        (_, Style::Chain) => {}
        (_, Style::Inline) => frames.push("callee_inline"),
        // Awaited natively, the callee runs in the caller's coroutine: its `.await` frame (at the
        // callee's line) is named after the caller's `async fn`, the coroutine's function.
        (Style::Async, Style::Async) => frames.push("caller_async"),
        (_, Style::Async) => frames.push("callee_async"),
    }
    frames
}

fn run(caller_style: Style, callee_style: Style, fire: Fire) {
    let reported = Rc::new(std::cell::Cell::new(0));
    let r = reported.clone();
    unhandled::with_hook(
        move |_| r.set(r.get() + 1),
        || {
            let (src, t) = Deferred::new();
            let d = caller(caller_style, callee_style, src);
            // Nothing can happen before the source fires.
            assert_no_result(&d);
            match fire {
                Fire::Success => {
                    assert!(t.callback(4));
                    assert_eq!(success_result_of(d), 50);
                }
                Fire::Failure => {
                    let original = Failure::new(BackendError("db down"));
                    assert!(t.errback(original.clone()));
                    let f = failure_result_of(d);
                    assert!(f.check::<BackendError>(), "{f}");
                    assert_eq!(f.type_name(), std::any::type_name::<BackendError>());
                    assert_eq!(f.message(), "db down");
                    assert!(f.same_as(&original), "the source's own failure: {f}");
                    let frames: Vec<_> = f.frames().map(|fr| fr.function()).collect();
                    assert_eq!(frames, expected_frames(caller_style, callee_style), "{f}");
                    assert!(
                        f.frames().all(|fr| fr.file().ends_with("coro_mixing.rs")),
                        "{f}"
                    );
                }
            }
        },
    );
    assert_eq!(reported.get(), 0, "nothing is reported as unhandled");
}

macro_rules! mixing {
    ($($name:ident: $caller:ident calls $callee:ident, $fire:ident;)*) => {$(
        #[test]
        fn $name() {
            run(Style::$caller, Style::$callee, Fire::$fire);
        }
    )*};
}

mixing! {
    chain_calls_chain_success: Chain calls Chain, Success;
    chain_calls_chain_failure: Chain calls Chain, Failure;
    chain_calls_inline_success: Chain calls Inline, Success;
    chain_calls_inline_failure: Chain calls Inline, Failure;
    chain_calls_async_success: Chain calls Async, Success;
    chain_calls_async_failure: Chain calls Async, Failure;
    inline_calls_chain_success: Inline calls Chain, Success;
    inline_calls_chain_failure: Inline calls Chain, Failure;
    inline_calls_inline_success: Inline calls Inline, Success;
    inline_calls_inline_failure: Inline calls Inline, Failure;
    inline_calls_async_success: Inline calls Async, Success;
    inline_calls_async_failure: Inline calls Async, Failure;
    async_calls_chain_success: Async calls Chain, Success;
    async_calls_chain_failure: Async calls Chain, Failure;
    async_calls_inline_success: Async calls Inline, Success;
    async_calls_inline_failure: Async calls Inline, Failure;
    async_calls_async_success: Async calls Async, Success;
    async_calls_async_failure: Async calls Async, Failure;
}

// ------------------------------------------------ Deferreds and other futures in one coroutine

/// A future that wakes its task during its first poll and is ready at the second, as
/// `tokio::task::yield_now` does.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn a_future_that_wakes_the_coroutine_during_its_poll_is_polled_again() {
    // Regression: this wake used to be lost (the driver was not parked yet), and the coroutine
    // never finished.
    let d = ensure_deferred(async {
        YieldNow(false).await;
        Ok(succeed(1).await? + 1)
    });
    assert_eq!(success_result_of(d), 2);

    #[inline_callbacks]
    fn yielding(d: Deferred<u32>) -> Deferred<u32> {
        YieldNow(false).await;
        yield_!(d)
    }
    let (src, t) = Deferred::new();
    let d = yielding(src);
    assert_no_result(&d);
    t.callback(3);
    assert_eq!(success_result_of(d), 3);
}

/// A coroutine racing a pending Deferred against a foreign future; it says which one won.
fn race(d: Deferred<u32>, rx: oneshot::Receiver<u32>) -> Deferred<String> {
    ensure_deferred(async move {
        Ok(match select(d.into_future(), rx).await {
            Either::Left((r, _)) => format!("deferred {}", r?),
            Either::Right((r, _)) => format!("foreign {}", r.map_err(Failure::new)?),
        })
    })
}

#[test]
fn select_of_a_deferred_and_a_foreign_future_resumes_on_the_foreign_one() {
    // Regression: with a Deferred also pending, the foreign future's wake used to be lost, and
    // the coroutine waited for the Deferred.
    let (d, t) = Deferred::new();
    let (tx, rx) = oneshot::channel();
    let r = race(d, rx);
    assert_no_result(&r);
    let ctl = r.control();
    tx.send(7).unwrap();
    assert_eq!(success_result_of(r), "foreign 7");
    // The loser's await was dropped unfinished, which cancels its Deferred (issue 12): its
    // producer can tell, and its late result is a no-op.
    assert!(t.is_cancelled());
    assert!(!t.callback(1));
    // Nothing keeps the finished coroutine alive.
    assert!(!ctl.is_called(), "the coroutine's chain is gone");
}

#[test]
fn select_of_a_deferred_and_a_foreign_future_resumes_on_the_deferred() {
    let (d, t) = Deferred::new();
    let (tx, rx) = oneshot::channel::<u32>();
    let r = race(d, rx);
    let ctl = r.control();
    t.callback(3);
    assert_eq!(success_result_of(r), "deferred 3");
    // The coroutine was parked for the foreign future as well; it left when it finished.
    assert!(!ctl.is_called(), "the coroutine's chain is gone");
    assert!(
        tx.is_canceled(),
        "the foreign future was dropped with the finished body"
    );
}

#[test]
fn join_of_a_deferred_and_a_foreign_future_waits_for_both_in_either_order() {
    for deferred_first in [true, false] {
        let (d, t) = Deferred::new();
        let (tx, rx) = oneshot::channel();
        let r = ensure_deferred(async move {
            let (a, b) = join(d.into_future(), rx).await;
            Ok(a? + b.map_err(Failure::new)?)
        });
        if deferred_first {
            t.callback(1);
            assert_no_result(&r);
            tx.send(20).unwrap();
        } else {
            tx.send(20).unwrap();
            assert_no_result(&r);
            t.callback(1);
        }
        assert_eq!(success_result_of(r), 21, "deferred first: {deferred_first}");
    }
}

#[test]
fn cancelling_a_coroutine_that_joins_two_deferreds_cancels_both() {
    // Regression: only the Deferred polled last was cancelled; the other one's producer was
    // never told, and the coroutine stayed suspended on it.
    for style in [Style::Inline, Style::Async] {
        let (a, at) = Deferred::<u32>::new();
        let (b, bt) = Deferred::<u32>::new();
        let body = async move {
            let (ra, rb) = join(a.into_future(), b.into_future()).await;
            let cancelled = |r: Result<u32, Failure>| r.is_err_and(|f| f.check::<CancelledError>());
            Ok((cancelled(ra), cancelled(rb)))
        };
        type Body = Pin<Box<dyn Future<Output = Result<(bool, bool), Failure>>>>;
        #[inline_callbacks]
        fn joined(body: Body) -> Deferred<(bool, bool)> {
            body.await
        }
        let d = match style {
            Style::Inline => joined(Box::pin(body)),
            _ => ensure_deferred(body),
        };
        assert_no_result(&d);
        d.cancel();
        assert!(at.is_cancelled() && bt.is_cancelled(), "{style:?}");
        assert_eq!(success_result_of(d), (true, true), "{style:?}");
    }
}
