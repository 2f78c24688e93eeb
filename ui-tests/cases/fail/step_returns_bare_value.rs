// Pins: a step that returns a bare value instead of `Ok(value)` is one error
// at the step, saying to wrap the value in `Ok(..)`.
use defer_core::succeed;

fn main() {
    let _d = succeed(1).add_callback(|x| x + 1);
}
