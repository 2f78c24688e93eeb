// Pins: `yield_!` of an `async fn`'s future (or any other value that is not a
// `Deferred`) says to turn it into one with `ensure_deferred` or
// `from_future`, and names no private item.
use defer_core::{Deferred, Failure, inline_callbacks, yield_};

async fn fetch() -> Result<u32, Failure> {
    Ok(1)
}

#[inline_callbacks]
fn total() -> Deferred<u32> {
    let v = yield_!(fetch())?;
    Ok(v)
}

fn main() {}
