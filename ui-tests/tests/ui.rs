//! Runs the compile-fail and compile-pass cases of `#[inline_callbacks]` and
//! `yield_!` (see `cases/`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("cases/fail/*.rs");
    t.pass("cases/pass/*.rs");
}
