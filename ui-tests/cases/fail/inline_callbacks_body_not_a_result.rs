// Pins (Twisted's BasicTests.test_nonGeneratorReturn): Twisted raises TypeError
// when an @inlineCallbacks function returns a plain value instead of being a
// generator. Here any body is a coroutine; one that ends in a plain value
// instead of the coroutine's `Result` is a type error at that value.
use defer_core::{Deferred, inline_callbacks};

#[inline_callbacks]
fn no_yield() -> Deferred<u32> {
    5
}

fn main() {}
