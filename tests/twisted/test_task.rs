//! Ports of Twisted's `test_task.py`, one file per test class.

mod clock_tests;
mod defer_later_tests;
mod loop_tests;
mod react_coroutine_function_tests;
mod react_tests;
mod reactor_loop_tests;
