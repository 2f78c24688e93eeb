//! Ports of Twisted's `test_cooperator.py`, one file per test class.

mod alias_tests;
mod cooperator_tests;
mod run_state_tests;
