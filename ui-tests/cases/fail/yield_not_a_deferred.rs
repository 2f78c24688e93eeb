// Pins: `yield_!` of something that is not a `Deferred` is one error at that
// expression, saying how to make a Deferred, and naming no private item.
use defer_core::{Deferred, inline_callbacks, yield_};

#[inline_callbacks]
fn add() -> Deferred<u32> {
    let v: u32 = yield_!(5)?;
    Ok(v)
}

fn main() {}
