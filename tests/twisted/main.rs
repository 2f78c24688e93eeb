//! Ports of Twisted's own Deferred tests, one module per Twisted test file and one file per test class.
//! Each test is named after Twisted's (`testCallbackWithoutArgs` → `test_callback_without_args`) and
//! asserts what Twisted's asserts; `tests/TWISTED.md` maps every Twisted test to its port.

#[path = "../tests/support/error_kinds.rs"]
#[macro_use]
mod error_kinds;

// Shared by several classes' files: loaded once here (a module loaded twice is two copies).
#[path = "../tests/support/child_process.rs"]
mod child_process;
#[path = "../tests/support/small_stack.rs"]
mod small_stack;

mod test_cooperator;
mod test_defer;
mod test_defer_await;
mod test_defer_yieldfrom;
mod test_inlinecb;
mod test_task;
mod test_threads;
