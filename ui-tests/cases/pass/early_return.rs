// Pins: `return Ok(..)` and `return Err(..)` leave the body early, before or
// after a `yield_!`, as in any function returning a `Result`.
#![deny(warnings)]
use defer_core::testing::{failure_result_of, success_result_of};
use defer_core::{Deferred, Failure, inline_callbacks, succeed, yield_};

#[inline_callbacks]
fn pick(early: bool, fail: bool, d: Deferred<u32>) -> Deferred<u32> {
    if early {
        return Ok(1);
    }
    let v = yield_!(d)?;
    if fail {
        return Err(Failure::msg("asked to fail"));
    }
    Ok(v + 1)
}

fn main() {
    assert_eq!(success_result_of(pick(true, false, succeed(5))), 1);
    assert_eq!(success_result_of(pick(false, false, succeed(5))), 6);
    assert_eq!(
        failure_result_of(pick(false, true, succeed(5))).message(),
        "asked to fail"
    );
}
