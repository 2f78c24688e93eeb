//! Twisted's `test_inlinecb.py` `NonLocalExitTests` check the warning `returnValue()` gives when a
//! function *not* decorated with `@inlineCallbacks` calls it and so makes a decorated caller exit
//! from below. There is no `returnValue` here: a coroutine's result is its body's value, and a
//! `return` or `?` in a called function (or closure) leaves that function only, so no code below
//! an `#[inline_callbacks]` body can make it exit. Both tests are `n/a` in `tests/TWISTED.md`; the
//! machinery that *is* reserved to the decorated body, `yield_!`, does not compile outside it
//! (ui `yield_outside_attribute.rs`, `yield_in_nested_fn.rs`, `yield_in_closure.rs`).
