// Pins: `#[inline_callbacks(crate = path)]` makes the generated code use that
// path instead of `::defer_core`, as for a renamed dependency or a re-export.
#![deny(warnings)]
pub extern crate defer_core as my_defer;

mod reexport {
    pub use my_defer as runtime;
}

use my_defer::testing::success_result_of;
use my_defer::{Deferred, inline_callbacks, succeed, yield_};

#[inline_callbacks(crate = my_defer)]
fn renamed(d: Deferred<u32>) -> Deferred<u32> {
    Ok(yield_!(d)? + 1)
}

#[inline_callbacks(crate = crate::reexport::runtime)]
fn reexported(d: Deferred<u32>) -> Deferred<u32> {
    Ok(yield_!(d)? + 2)
}

fn main() {
    assert_eq!(success_result_of(renamed(succeed(1))), 2);
    assert_eq!(success_result_of(reexported(succeed(1))), 3);
}
