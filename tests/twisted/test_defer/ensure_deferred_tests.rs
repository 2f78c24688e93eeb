//! Ports of Twisted's `test_defer.py` `EnsureDeferredTests`.
//!
//! `ensureDeferred(d)` returns `d` itself. Here `ensure_deferred` takes a future, and a Deferred
//! is not one (it is `IntoFuture`): `ensure_deferred(d)` does not compile, and
//! `ensure_deferred(d.into_future())` gives a Deferred that behaves as `d` (same result, and
//! cancelling it cancels `d`). Passing something that is neither (Twisted's
//! `NotACoroutineError`) does not compile: ui `c96_ensure_deferred_not_a_future.rs`.

use std::future::IntoFuture;

use defer_core::errors::CancelledError;
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{Deferred, ensure_deferred, inline_callbacks, succeed, yield_};

#[test]
fn test_passes_through_deferreds() {
    let (d1, t1) = Deferred::<&str>::new();
    let d2 = ensure_deferred(d1.into_future());
    assert_no_result(&d2);
    t1.callback("result");
    assert_eq!(success_result_of(d2), "result");

    // Cancelling the pass-through cancels the Deferred it came from.
    let (d1, t1) = Deferred::<&str>::new();
    let d2 = ensure_deferred(d1.into_future());
    d2.cancel();
    assert!(t1.is_cancelled());
    assert!(failure_result_of(d2).check::<CancelledError>());
}

#[test]
fn test_ensure_deferred_coroutine() {
    async fn run() -> Result<&'static str, defer_core::Failure> {
        let d = succeed("foo");
        let res = d.await?;
        Ok(res)
    }
    // It's a future...
    let r = run();
    // Now it's a Deferred, of the coroutine's success type.
    let d: Deferred<&str> = ensure_deferred(r);
    // The Deferred has the result we want.
    assert_eq!(success_result_of(d), "foo");
}

#[test]
fn test_ensure_deferred_generator() {
    // The generator-based (`yield from`) coroutine is an `#[inline_callbacks]` function, whose
    // call already is the Deferred: there is nothing left for ensure_deferred to wrap, and
    // wrapping it anyway (through `into_future`) passes it through.
    #[inline_callbacks]
    fn run() -> Deferred<&'static str> {
        let d = succeed("foo");
        let res = yield_!(d)?;
        Ok(res)
    }
    let d: Deferred<&str> = run();
    assert_eq!(success_result_of(d), "foo");
    let d: Deferred<&str> = ensure_deferred(run().into_future());
    assert_eq!(success_result_of(d), "foo");
}
