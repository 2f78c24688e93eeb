// C97: two inline-callbacks waits on one Deferred (Twisted's second consumer gets None): yielding
// a Deferred moves it, so yielding it again is a compile error.
use defer_core::{inline_callbacks, yield_, Deferred};

#[inline_callbacks]
fn twice(d: Deferred<u32>) -> Deferred<u32> {
    let a = yield_!(d)?;
    let b = yield_!(d)?;
    Ok(a + b)
}

fn main() {
    let _ = twice(defer_core::succeed(1));
}
