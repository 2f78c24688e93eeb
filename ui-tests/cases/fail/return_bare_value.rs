// Pins: `return v;` in an `#[inline_callbacks]` body, the natural translation
// of Twisted's `returnValue(v)`, is one error at the `return`, whose help says
// to write `return Ok(v)`; so is `return 0;`.
use defer_core::{Deferred, inline_callbacks, yield_};

#[inline_callbacks]
fn double(d: Deferred<u32>) -> Deferred<u32> {
    let v = yield_!(d)?;
    if v > 10 {
        return v;
    }
    Ok(v * 2)
}

#[inline_callbacks]
fn zero(d: Deferred<u32>) -> Deferred<u32> {
    if yield_!(d)? == 0 {
        return 0;
    }
    Ok(1)
}

fn main() {}
