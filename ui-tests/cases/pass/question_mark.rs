// Pins: `?` works on `yield_!`'s `Result` and on any `std::error::Error`
// (converted into a `Failure`), and the failure ends the body.
#![deny(warnings)]
use defer_core::testing::{failure_result_of, success_result_of};
use defer_core::{Deferred, Failure, fail, inline_callbacks, succeed, yield_};

#[inline_callbacks]
fn parse_and_add(text: String, d: Deferred<u32>) -> Deferred<u32> {
    let n: u32 = text.parse()?;
    let m = yield_!(d)?;
    Ok(n + m)
}

fn main() {
    assert_eq!(
        success_result_of(parse_and_add("40".into(), succeed(2))),
        42
    );
    let f = failure_result_of(parse_and_add("forty".into(), succeed(2)));
    assert!(f.check::<std::num::ParseIntError>());
    let f = failure_result_of(parse_and_add("40".into(), fail(Failure::msg("boom"))));
    assert_eq!(f.message(), "boom");
}
