//! Compile-fail and compile-pass tests of `#[inline_callbacks]` and `yield_!`.
//!
//! The cases are in `cases/fail` (each with the `.stderr` the compiler must
//! print) and `cases/pass`; `tests/ui.rs` runs them with trybuild. Regenerate
//! the expected output with `TRYBUILD=overwrite cargo test -p defer-ui-tests`,
//! then read every changed `.stderr`: each must say what is wrong and point at
//! the user's own token.
