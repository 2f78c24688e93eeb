// Pins: `yield_!` of something that is not a `Deferred` is a type error at
// that expression.
use defer_core::{Deferred, inline_callbacks, yield_};

#[inline_callbacks]
fn add() -> Deferred<u32> {
    let v: u32 = yield_!(5)?;
    Ok(v)
}

fn main() {}
