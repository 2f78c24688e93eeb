//! Ports of Twisted's `test_defer_await.py`, one file per test class.

mod await_tests;
