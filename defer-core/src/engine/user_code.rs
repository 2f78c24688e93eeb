//! The one place the engine calls user code.
//!
//! User code is everything the library did not write: steps, cancellers, coroutine bodies, the
//! unhandled-error hook, the `Drop` of anything a user handed in (values, closures, errors,
//! wakers), and `Display`/`Debug` of user types. Every call goes through a function of this
//! module, which guarantees three things:
//!
//! - **A panic never escapes.** It is caught and becomes a [`Failure`] of kind
//!   [`Panicked`](crate::errors::Panicked) (or, for a drop or a formatter, is reported or shown
//!   as such).
//! - **A panic payload whose own `Drop` panics is contained too.** `catch_unwind` hands the
//!   payload back; dropping it is user code again. Its message is read first, then it is dropped
//!   under a second `catch_unwind`, and a payload that panics again is leaked, not dropped.
//! - **No engine borrow is held.** Callers take what they need out of a chain's state before
//!   calling in, so user code may fire, cancel, pause, add steps to or drop any chain, the running
//!   one included. (`cell.rs` documents the rule; every caller below follows it.)

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};

use crate::failure::Failure;

/// A caught panic.
pub(crate) type Payload = Box<dyn Any + Send>;

/// Calls `f`, catching its panic.
#[inline(always)]
pub(crate) fn call<R>(f: impl FnOnce() -> R) -> Result<R, Payload> {
    catch_unwind(AssertUnwindSafe(f))
}

/// Calls `f`, turning a panic into a failure located at `at` (where the user's code was added).
#[inline(always)]
pub(crate) fn call_at<R>(
    at: &'static Location<'static>,
    f: impl FnOnce() -> R,
) -> Result<R, Failure> {
    call(f).map_err(|payload| Failure::from_panic_at(payload, at))
}

/// The message of a panic payload, then the payload dropped safely: read first, because the
/// drop may panic.
pub(crate) fn payload_message(payload: Payload) -> String {
    let message = if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "Box<dyn Any>".to_owned()
    };
    drop_payload(payload);
    message
}

/// Drops a panic payload, whose `Drop` is user code: a second panic is caught and its own payload
/// leaked (dropping it could panic again, for ever).
pub(crate) fn drop_payload(payload: Payload) {
    if let Err(again) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(again);
    }
}

/// Drops something a user handed in. A panic in its `Drop` cannot go back to a step (there is
/// none), so it is reported as an unhandled failure: never lost, never escaping into whoever
/// dropped a Deferred.
#[inline]
pub(crate) fn drop_value<T>(value: T) {
    if !std::mem::needs_drop::<T>() {
        std::mem::forget(value);
        return;
    }
    if let Err(payload) = call(move || drop(value)) {
        dropped_with_panic(payload);
    }
}

#[cold]
#[inline(never)]
fn dropped_with_panic(payload: Payload) {
    let failure = Failure::from_panic_at(payload, Location::caller());
    crate::unhandled::report(&failure);
}

/// `value`'s `Display`, or a placeholder if it panicked.
pub(crate) fn display(value: &(impl fmt::Display + ?Sized)) -> String {
    format_caught(|| value.to_string(), "Display")
}

/// `value`'s `Debug`, or a placeholder if it panicked.
pub(crate) fn debug(value: &(impl fmt::Debug + ?Sized)) -> String {
    format_caught(|| format!("{value:?}"), "Debug")
}

fn format_caught(f: impl FnOnce() -> String, which: &str) -> String {
    match call(f) {
        Ok(s) => s,
        Err(payload) => {
            let message = payload_message(payload);
            format!("<its {which} panicked: {message}>")
        }
    }
}
