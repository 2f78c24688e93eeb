// Pins: an `async fn` is rejected at its `async` keyword.
use defer_core::{Deferred, inline_callbacks, yield_};

#[inline_callbacks]
async fn fetch(d: Deferred<u32>) -> Deferred<u32> {
    Ok(yield_!(d)? + 1)
}

fn main() {}
