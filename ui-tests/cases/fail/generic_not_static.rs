// Pins: a generic type parameter or `impl Trait` argument without a
// `'static` bound is reported by the compiler with the bound to add, at the
// user's parameter (the Deferred keeps the arguments past the call).
use std::fmt::Display;

use defer_core::{Deferred, inline_callbacks, yield_};

#[inline_callbacks]
fn wrap<T: Clone>(d: Deferred<T>, label: impl Display) -> Deferred<String> {
    let _ = yield_!(d)?;
    Ok(label.to_string())
}

fn main() {}
