// Pins: an unknown attribute argument is rejected at that argument, and
// `crate` needs a path.
use defer_core::{Deferred, inline_callbacks};

#[inline_callbacks(timeout = 5)]
fn one() -> Deferred<u32> {
    Ok(1)
}

#[inline_callbacks(crate = "defer_core")]
fn two() -> Deferred<u32> {
    Ok(2)
}

fn main() {
    let _ = (one(), two());
}
