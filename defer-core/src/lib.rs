//! # defer: Twisted's `Deferred` for Rust
//!
//! A [`Deferred<T>`] is a placeholder for a result that is not here yet. Steps added to it form one
//! chain that encodes *an order of execution separately from the order of lines*: each step gets
//! the previous step's success or [`Failure`] and returns a success, a failure, or another
//! Deferred to wait for. Nothing here knows about event loops, threads or scheduling.
//!
//! ```
//! use defer_core::{Deferred, Failure, testing::success_result_of};
//!
//! let (d, trigger) = Deferred::<i32>::new();
//! let d = d
//!     .add_callback(|x| if x > 0 { Ok(x) } else { Err(Failure::msg("not positive")) })
//!     .add_errback(|_f| Ok(0))            // except: recover
//!     .add_callback(|x| Ok(x * 10));      // then proceed anyway
//! trigger.callback(-3);
//! assert_eq!(success_result_of(d), 0);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod chain;
mod coroutine;
mod deferred;
pub mod errors;
mod failure;
mod outcome;
mod step;
pub mod testing;
mod trigger;
pub mod unhandled;

pub use coroutine::{DeferredFuture, ensure_deferred};
pub use deferred::{Deferred, DeferredControl, execute, fail, maybe_deferred, succeed};
pub use failure::{Failure, Frame, IntoFailure, Trapped};
pub use outcome::Outcome;
pub use trigger::Trigger;

// TEMP pub use defer_macros::{inline_callbacks, yield_};

/// Helpers for the code `#[inline_callbacks]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;

    use crate::{Deferred, DeferredFuture, Failure};

    pub use crate::outcome::StepResult;

    /// Drives the body of an `#[inline_callbacks]` function.
    pub fn inline_callbacks<T, F>(function: &'static str, body: F) -> Deferred<T>
    where
        T: 'static,
        F: Future<Output = Result<T, Failure>> + 'static,
    {
        crate::coroutine::drive(function, body)
    }

    /// What `yield_!(d)` becomes: an await of `d` that records the yield point in failures.
    pub fn yield_point<T: 'static>(
        d: Deferred<T>,
        function: &'static str,
        file: &'static str,
        line: u32,
        column: u32,
    ) -> DeferredFuture<T> {
        crate::coroutine::yield_point(d, function, file, line, column)
    }

    /// The value of the never-taken `break` that guards `yield_!` against nested closures and
    /// `async` blocks.
    #[cold]
    pub fn unreachable_failure() -> Failure {
        Failure::msg("unreachable: the yield_! guard branch never runs")
    }
}
