//! Ports of Twisted's `test_defer.py`, one file per test class.

mod already_called_tests;
mod coroutine_context_vars_tests;
mod deferred_add_timeout_tests;
mod deferred_canceller_tests;
mod deferred_filesystem_lock_tests;
mod deferred_future_adapter_tests;
mod deferred_list_empty_tests;
mod deferred_tests;
mod ensure_deferred_tests;
mod first_error_tests;
mod inline_callback_tests;
mod log_tests;
mod other_primitives_tests;
mod race_tests;
mod timeout_error_tests;
mod util_tests;
