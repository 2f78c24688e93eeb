// Pins: each `yield_!` a Failure passes through is recorded in its trace with
// the function's name and the location of the user's `yield_!` token (file,
// line, column from 1), also for a `yield_!` inside another macro's input.
#![deny(warnings)]
use defer_core::testing::failure_result_of;
use defer_core::{Deferred, Failure, fail, inline_callbacks, yield_};

#[inline_callbacks]
fn inner(d: Deferred<u32>) -> Deferred<u32> {
    let v = yield_!(d)?; // line 10, column 13
    Ok(v)
}

#[inline_callbacks]
fn outer(d: Deferred<u32>) -> Deferred<String> {
    Ok(format!("{}", yield_!(inner(d))?)) // line 16, column 22
}

fn main() {
    let f: Failure = failure_result_of(outer(fail(Failure::msg("boom"))));
    let frames: Vec<_> = f.frames().collect();
    let find = |name: &str| {
        frames
            .iter()
            .find(|fr| fr.function() == name)
            .unwrap_or_else(|| panic!("no frame for {name} in {frames:?}"))
            .clone()
    };
    let inner = find("inner");
    assert!(inner.file().ends_with("failure_trace.rs"), "{}", inner.file());
    assert_eq!((inner.line(), inner.column()), (10, 13));
    let outer = find("outer");
    assert_eq!((outer.line(), outer.column()), (16, 22));
}
