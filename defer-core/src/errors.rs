//! The error kinds the library itself raises into Deferred chains. Each is a plain value that
//! implements [`std::error::Error`], so an errback can [`trap`](crate::Failure::trap) it.
//!
//! ```
//! use defer_core::{Deferred, errors::CancelledError, testing::failure_result_of};
//! let (d, _producer) = Deferred::<u8>::new();
//! d.cancel();
//! let f = failure_result_of(d);
//! assert!(f.check::<CancelledError>());
//! assert_eq!(f.message(), "the Deferred was cancelled");
//! ```

use std::error::Error;
use std::fmt;
use std::panic::Location;

/// The Deferred was cancelled with [`Deferred::cancel`](crate::Deferred::cancel) before it fired
/// (Twisted's `CancelledError`).
///
/// ```
/// use defer_core::{errors::CancelledError, testing::failure_result_of, Deferred};
/// let (d, _trigger) = Deferred::<u8>::new();
/// d.cancel();
/// assert!(failure_result_of(d).check::<CancelledError>());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CancelledError;

impl fmt::Display for CancelledError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the Deferred was cancelled")
    }
}
impl Error for CancelledError {}

/// The [`Trigger`](crate::Trigger) of a Deferred that something was waiting on was dropped
/// without firing: the producer forgot it, or panicked. Twisted's Deferreds would silently never
/// fire; this error makes a forgotten producer visible, and names the line that created the
/// trigger (the failure's [`location`](crate::Failure::location) is that line too).
///
/// A `Drop` cannot know its caller, so the line that dropped the trigger is not known; the
/// message says where the trigger came from and that it was dropped unfired. The classic mistake
/// is a trigger bound to `_`, which is dropped on the line that creates it:
///
/// ```
/// use defer_core::{errors::TriggerDropped, testing::failure_result_of, Deferred};
/// let (d, _) = Deferred::<u8>::new();          // `_` drops the trigger at once
/// let f = failure_result_of(d);
/// let e = f.downcast_ref::<TriggerDropped>().unwrap();
/// assert_eq!(e.created_at().line(), line!() - 3);
/// assert_eq!(f.location().line(), line!() - 4);
/// assert!(f.message().contains("dropped without firing"));
/// ```
///
/// To leave a Deferred pending on purpose, call [`Trigger::detach`](crate::Trigger::detach).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TriggerDropped {
    created: &'static Location<'static>,
}

impl TriggerDropped {
    pub(crate) fn new(created: &'static Location<'static>) -> Self {
        TriggerDropped { created }
    }

    /// Where the dropped trigger was created: the call of
    /// [`Deferred::new`](crate::Deferred::new) or
    /// [`Deferred::with_canceller`](crate::Deferred::with_canceller).
    ///
    /// ```
    /// use defer_core::{errors::TriggerDropped, testing::failure_result_of, Deferred};
    /// let (d, trigger) = Deferred::<u8>::new();
    /// drop(trigger);
    /// let f = failure_result_of(d);
    /// assert_eq!(f.downcast_ref::<TriggerDropped>().unwrap().created_at().file(), file!());
    /// ```
    pub fn created_at(&self) -> &'static Location<'static> {
        self.created
    }
}

impl fmt::Display for TriggerDropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the Trigger created at {} was dropped without firing its Deferred \
             (keep the trigger and fire it, or call `Trigger::detach` to leave the Deferred \
             pending on purpose)",
            self.created
        )
    }
}
impl Error for TriggerDropped {}

/// A step, a canceller or a coroutine panicked; the panic became this failure and the code that
/// fired the Deferred carried on.
///
/// ```
/// use defer_core::{errors::Panicked, succeed, testing::failure_result_of};
/// let d = succeed(1).add_callback(|_: i32| -> Result<i32, defer_core::Failure> { panic!("bad input") });
/// let f = failure_result_of(d);
/// assert_eq!(f.downcast_ref::<Panicked>().unwrap().message(), "bad input");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Panicked {
    message: String,
}

impl Panicked {
    pub(crate) fn new(message: String) -> Self {
        Panicked { message }
    }

    /// The panic's message (`"Box<dyn Any>"` when the payload was not a string).
    ///
    /// ```
    /// let p = std::panic::catch_unwind(|| panic!("x")).unwrap_err();
    /// let f = defer_core::Failure::from_panic(p);
    /// assert_eq!(f.downcast_ref::<defer_core::errors::Panicked>().unwrap().message(), "x");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "panicked: {}", self.message)
    }
}
impl Error for Panicked {}

/// A failure made from a message alone, by [`Failure::msg`](crate::Failure::msg).
///
/// ```
/// let f = defer_core::Failure::msg("nope");
/// assert_eq!(f.downcast_ref::<defer_core::errors::MessageError>().unwrap().to_string(), "nope");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageError {
    message: String,
}

impl MessageError {
    /// A message error.
    ///
    /// ```
    /// let e = defer_core::errors::MessageError::new("x");
    /// assert_eq!(e.to_string(), "x");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        MessageError {
            message: message.into(),
        }
    }
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
impl Error for MessageError {}

/// A step returned the very Deferred it was attached to, which could never fire (Twisted warns
/// "Callback returned the Deferred it was attached to" and hangs).
///
/// ```
/// let e = defer_core::errors::CircularChainError;
/// assert!(e.to_string().contains("attached to"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CircularChainError;

impl fmt::Display for CircularChainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a step returned the Deferred it was attached to; the chain could never continue",
        )
    }
}
impl Error for CircularChainError {}

// The error kinds of the coordination modules (time, lists, lock, semaphore, queue, task) live beside
// their code; they are named here so that every error kind is in `defer_core::errors`.
pub use crate::deferred_filesystem_lock::AlreadyTryingToLockError;
pub use crate::list::{FailureGroup, FirstError};
pub use crate::lock::NotLocked;
pub use crate::queue::{QueueOverflow, QueueUnderflow};
pub use crate::scheduler::DelayedCallError;
pub use crate::semaphore::{InvalidTokens, TooManyReleases};
pub use crate::task::{
    LoopingCallError, NoDefaultCooperator, NotPaused, SchedulerStopped, TaskDone, TaskFailed,
    TaskFinished, TaskStopped,
};
pub use crate::timeout::TimeoutError;
