//! Ports of Twisted's `test_inlinecb.py`, one file per test class.

mod basic_tests;
mod cancellation_tests;
mod forward_trace_back_tests;
mod non_local_exit_tests;
mod stacked_inline_callbacks_tests;
mod stop_iteration_return_tests;
