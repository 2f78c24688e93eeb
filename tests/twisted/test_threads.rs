//! Ports of Twisted's `test_threads.py`, one file per test class.

mod defer_to_thread_pool_tests;
mod deferred_result_tests;
mod reactor_threads_tests;
