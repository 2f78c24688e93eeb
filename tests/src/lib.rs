//! The integration and conformance tests of defer live in `tests/` beside this file, one binary per
//! area (`core_*`, `coro_*`, `coord_*`, `depth`, `leaks`, `property_chain`, ...); helpers they share are
//! in `tests/support/`. `CASES.md` maps Twisted's behaviour cases to them. This crate has no library code.
