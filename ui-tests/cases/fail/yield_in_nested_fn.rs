// Pins: `yield_!` inside a `fn` nested in the body is rejected at the
// `yield_!` (the nested fn is not a coroutine unless it has the attribute).
use defer_core::{Deferred, Failure, inline_callbacks, yield_};

#[inline_callbacks]
fn outer(d: Deferred<u32>) -> Deferred<u32> {
    fn helper(d: Deferred<u32>) -> Result<u32, Failure> {
        yield_!(d)
    }
    Ok(helper(d)? + 1)
}

fn main() {}
