// Pins: `impl Trait` arguments (with the `'static` bound the returned
// Deferred needs), closures taking references (`impl Fn(&str)`, `fn(&u8)`,
// whose lifetimes are their own, not borrows), `&'static` references and
// patterns in arguments are accepted.
#![deny(warnings)]
use defer_core::testing::success_result_of;
use defer_core::{Deferred, inline_callbacks, succeed, yield_};

#[inline_callbacks]
fn apply(
    f: impl Fn(&str) -> usize + 'static,
    g: fn(&u8) -> u8,
    name: &'static str,
    (a, b): (u8, u8),
    mut items: impl Iterator<Item = u8> + 'static,
) -> Deferred<usize> {
    let s = yield_!(succeed(String::from(name)))?;
    let first = items.next().unwrap_or(0);
    Ok(f(&s) + usize::from(g(&a)) + usize::from(b) + usize::from(first))
}

fn main() {
    let d = apply(
        |s| s.len(),
        |x| x + 1,
        "four",
        (1, 2),
        vec![10u8].into_iter(),
    );
    assert_eq!(success_result_of(d), 4 + 2 + 2 + 10);
}
