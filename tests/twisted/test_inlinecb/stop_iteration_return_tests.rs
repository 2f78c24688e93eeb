//! Ports of Twisted's `test_inlinecb.py` `StopIterationReturnTests`: a `return` with a value after
//! a yield is the result of the coroutine's Deferred.

use defer_core::testing::{assert_no_result, success_result_of};
use defer_core::{Deferred, inline_callbacks, yield_};

#[test]
fn test_return_with_value() {
    #[inline_callbacks]
    #[allow(clippy::needless_return)]
    fn f(d: Deferred<()>) -> Deferred<i32> {
        yield_!(d)?;
        return Ok(14);
    }
    let (d1, t1) = Deferred::new();
    let d2 = f(d1);
    assert_no_result(&d2);
    t1.callback(());
    assert_eq!(success_result_of(d2), 14);
}
