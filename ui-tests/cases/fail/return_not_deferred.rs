// Pins: a return type that is not `Deferred<T>` is rejected at the return
// type (with a hint for `Result`), a missing one at the function's name.
use defer_core::{Deferred, Failure, inline_callbacks, yield_};

#[inline_callbacks]
fn as_result(d: Deferred<u32>) -> Result<u32, Failure> {
    Ok(yield_!(d)? + 1)
}

#[inline_callbacks]
fn nothing(d: Deferred<u32>) {
    yield_!(d).ok();
}

#[inline_callbacks]
fn two_args(d: Deferred<u32>) -> Vec<u32> {
    Ok(vec![yield_!(d)?])
}

fn main() {}
