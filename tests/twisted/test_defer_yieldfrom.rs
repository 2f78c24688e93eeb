//! Ports of Twisted's `test_defer_yieldfrom.py`, one file per test class.

mod yield_from_tests;
