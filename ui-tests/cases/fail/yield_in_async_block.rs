// Pins: `yield_!` inside an `async` block in the body is rejected at the
// `yield_!`, with the advice to use `.await` there.
use defer_core::{Deferred, ensure_deferred, inline_callbacks, yield_};

#[inline_callbacks]
fn outer(d: Deferred<u32>) -> Deferred<u32> {
    let inner = ensure_deferred(async move { yield_!(d) });
    Ok(yield_!(inner)? + 1)
}

fn main() {}
