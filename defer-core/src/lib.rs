#![doc = include_str!("guide.md")]
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod coroutine;
pub mod debug;
mod deferred;
pub mod errors;
mod failure;
// Each thread's inbox, through which other threads reach its Deferreds and coroutines.
mod home;
// The engine's mechanisms, one file each: the work loop, the one place user code is called,
// the drop queue, cancellation, the chain's state and its loop.
mod engine;
use engine::outcome;
mod recovery;
pub mod testing;
mod trigger;
pub mod unhandled;
mod yieldable;

// Cancellation, time and coordination.
pub mod clock;
mod deferred_filesystem_lock;
pub mod filesystem_lock;
pub mod list;
mod lock;
mod queue;
mod scheduler;
mod semaphore;
pub mod task;
mod timeout;
// Threads and the std run loop, with std alone.
pub mod reactor;
pub mod threads;
#[cfg(feature = "tokio")]
mod tokio_scheduler;

pub use coroutine::{DeferredFuture, ensure_deferred};
pub use deferred::{Deferred, DeferredControl, execute, fail, maybe_deferred, succeed};
pub use engine::outcome::Outcome;
pub use failure::{Failure, Frame, IntoFailure, Trapped};
pub use recovery::{Recovery, StepFailure};
pub use trigger::Trigger;
pub use unhandled::log_error;
pub use yieldable::Yieldable;

pub use deferred_filesystem_lock::DeferredFilesystemLock;
pub use list::{DeferredList, Gather, gather_results, race};
pub use lock::{DeferredLock, LockGuard};
pub use queue::DeferredQueue;
pub use reactor::{Reactor, react};
pub use scheduler::{DelayedCall, DelayedCallHandle, ScheduledFn, Scheduler};
pub use semaphore::{DeferredSemaphore, SemaphoreGuard};
pub use timeout::defer_later;
#[cfg(feature = "tokio")]
pub use tokio_scheduler::TokioScheduler;

pub use defer_macros::{inline_callbacks, yield_};

/// Helpers for the code `#[inline_callbacks]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;

    use crate::{Deferred, Failure};

    pub use crate::engine::outcome::StepResult;

    /// Drives the body of an `#[inline_callbacks]` function. Its Deferred is located where the
    /// generated call is: at the user's function.
    #[track_caller]
    pub fn inline_callbacks<T, F>(function: fn() -> &'static str, body: F) -> Deferred<T>
    where
        T: 'static,
        F: Future<Output = Result<T, Failure>> + 'static,
    {
        crate::coroutine::drive(Some(function), body)
    }

    /// The value of the never-taken `break` that guards `yield_!` against nested closures and
    /// `async` blocks.
    #[cold]
    pub fn unreachable_failure() -> Failure {
        Failure::msg("unreachable: the yield_! guard branch never runs")
    }
}

#[cfg(feature = "tokio")]
#[path = "tokio_bridge.rs"]
pub mod tokio;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
