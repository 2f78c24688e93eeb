// Pins: a body with no `yield_!` compiles (no unused-label warning either),
// runs at once and fires the Deferred with its result.
#![deny(warnings)]
use defer_core::testing::success_result_of;
use defer_core::{Deferred, inline_callbacks};

#[inline_callbacks]
fn answer(x: u32) -> Deferred<u32> {
    Ok(x * 2)
}

fn main() {
    assert_eq!(success_result_of(answer(21)), 42);
}
