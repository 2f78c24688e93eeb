//! Ports of Twisted's `test_defer.py` `TimeoutErrorTests`.
//!
//! `test_deprecatedTimeout` checks the deprecation warning of `defer.timeout`, deprecated since
//! Twisted 17.1 in favour of `Deferred.addTimeout`; only `add_timeout` exists here (its tests are
//! `deferred_add_timeout_tests.rs`), so there is nothing to port (see `tests/TWISTED.md`).
