// Pins: an errback that returns a bare value instead of `Ok(value)` is one
// error at the step, saying to wrap the value in `Ok(..)`.
use defer_core::{Failure, fail};

fn main() {
    let _d = fail::<u32>(Failure::msg("boom")).add_errback(|_f| 0);
}
