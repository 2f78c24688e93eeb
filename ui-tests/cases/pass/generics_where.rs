// Pins: generic functions with bounds and where clauses, lifetime-free
// `'static` bounds, and `Deferred<impl Trait>` outputs keep their signature
// and compile.
#![deny(warnings)]
use std::fmt::Display;

use defer_core::testing::success_result_of;
use defer_core::{Deferred, inline_callbacks, succeed, yield_};

#[inline_callbacks]
fn both<A, B>(a: Deferred<A>, b: Deferred<B>) -> Deferred<(A, B)>
where
    A: Clone + 'static,
    B: Default + PartialEq + 'static,
{
    let a = yield_!(a)?;
    let b = yield_!(b)?;
    Ok((a, b))
}

#[inline_callbacks]
fn show<T: Display + 'static>(d: Deferred<T>) -> Deferred<impl Display> {
    let v = yield_!(d)?;
    Ok(format!("<{v}>"))
}

fn main() {
    assert_eq!(
        success_result_of(both(succeed(1u8), succeed("b"))),
        (1, "b")
    );
    assert_eq!(success_result_of(show(succeed(3))).to_string(), "<3>");
}
