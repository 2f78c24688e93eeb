// Pins: `yield_!` inside a closure in the body is rejected at the `yield_!`,
// also when the closure is inside another macro's input.
use defer_core::{Deferred, inline_callbacks, yield_};

#[inline_callbacks]
fn each(ds: Vec<Deferred<u32>>) -> Deferred<u32> {
    let values: Vec<u32> = ds.into_iter().map(|d| yield_!(d).unwrap()).collect();
    let more = vec![|| yield_!(defer_core::succeed(1u32))];
    Ok(values.len() as u32 + more.len() as u32)
}

fn main() {}
