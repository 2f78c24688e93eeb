// Pins: a bare `return;` in an `#[inline_callbacks]` body is one error at the
// `return`, saying to write `return Ok(());`.
use defer_core::{Deferred, inline_callbacks, yield_};

#[inline_callbacks]
fn wait(d: Deferred<u32>) -> Deferred<()> {
    if yield_!(d)? == 0 {
        return;
    }
    Ok(())
}

fn main() {}
