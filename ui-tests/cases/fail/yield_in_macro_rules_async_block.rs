// Pins: a `yield_!` that another macro wraps in an `async` block (which the
// attribute cannot see) still fails to compile, at the user's `yield_!`,
// instead of silently awaiting inside a future nobody drives.
use defer_core::{Deferred, ensure_deferred, inline_callbacks, yield_};

macro_rules! in_background {
    ($e:expr) => {
        ensure_deferred(async move { $e })
    };
}

#[inline_callbacks]
fn outer(d: Deferred<u32>) -> Deferred<u32> {
    let inner = in_background!(yield_!(d));
    Ok(yield_!(inner)? + 1)
}

fn main() {}
