// Pins: `yield_!` outside of an `#[inline_callbacks]` function is an error
// that says where it may be used, at the invocation.
use defer_core::{Deferred, succeed, yield_};

fn plain(d: Deferred<u32>) -> Result<u32, defer_core::Failure> {
    let v = yield_!(d)?;
    Ok(v)
}

fn main() {
    let _ = plain(succeed(1));
}
