//! The error kinds of the task toolkit: Twisted's `SchedulerError` family, and misuse of a
//! [`LoopingCall`](super::LoopingCall).
//!
//! Twisted's `SchedulerStopped`, `TaskDone`, `TaskStopped`, `TaskFailed` and `NotPaused` are unit
//! structs here, so a [`Failure`](crate::Failure) can be trapped by them. The abstract bases
//! (`SchedulerError`, `TaskFinished`) are not failure kinds: [`TaskFinished`] is the enum that
//! [`CooperativeTask::pause`](super::CooperativeTask::pause) and
//! [`stop`](super::CooperativeTask::stop) return, and its [`source`](Error::source) is the
//! matching unit struct, so a failure made from it traps as that kind too.

use std::error::Error;
use std::fmt;

macro_rules! unit_error {
    ($(#[$doc:meta])* $name:ident, $message:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        pub struct $name;

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str($message)
            }
        }
        impl Error for $name {}
    };
}

unit_error!(
    /// The task could not run because its [`Cooperator`](super::Cooperator) was stopped, before
    /// or while it ran: Twisted's `SchedulerStopped`.
    ///
    /// ```
    /// use defer_core::{task::{Clock, Cooperator, SchedulerStopped}, testing::failure_result_of};
    /// let coop = Cooperator::new(Clock::new());
    /// coop.stop();
    /// let d = coop.coiterate(std::iter::empty::<Result<(), defer_core::Failure>>());
    /// assert!(failure_result_of(d).check::<SchedulerStopped>());
    /// ```
    SchedulerStopped,
    "the cooperator was stopped"
);

unit_error!(
    /// The task had already finished its iterator: Twisted's `TaskDone`.
    ///
    /// ```
    /// assert_eq!(defer_core::task::TaskDone.to_string(), "the task has already completed");
    /// ```
    TaskDone,
    "the task has already completed"
);

unit_error!(
    /// The task was stopped with [`CooperativeTask::stop`](super::CooperativeTask::stop):
    /// Twisted's `TaskStopped`. Its [`when_done`](super::CooperativeTask::when_done) Deferreds
    /// fail with it.
    ///
    /// ```
    /// use defer_core::{task::{Clock, Cooperator, TaskStopped}, testing::failure_result_of};
    /// let coop = Cooperator::new(Clock::new());
    /// let task = coop.cooperate((0..3).map(Ok));
    /// let done = task.when_done();
    /// task.stop().unwrap();
    /// assert!(failure_result_of(done).check::<TaskStopped>());
    /// ```
    TaskStopped,
    "the task was stopped"
);

unit_error!(
    /// The task's iterator failed (a step was an `Err`, a Deferred it yielded failed, or `next`
    /// panicked): Twisted's `TaskFailed`. Its `when_done` Deferreds fail with that failure
    /// itself; this kind is what [`TaskFinished::Failed`] stands for.
    ///
    /// ```
    /// assert_eq!(defer_core::task::TaskFailed.to_string(), "the task failed");
    /// ```
    TaskFailed,
    "the task failed"
);

unit_error!(
    /// [`CooperativeTask::resume`](super::CooperativeTask::resume) without a matching
    /// [`pause`](super::CooperativeTask::pause): Twisted's `NotPaused`.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator, NotPaused};
    /// let task = Cooperator::new(Clock::new()).cooperate((0..3).map(Ok));
    /// assert_eq!(task.resume(), Err(NotPaused));
    /// ```
    NotPaused,
    "resumed a task that was not paused"
);

/// [`cooperate`](super::cooperate) or [`coiterate`](super::coiterate) was called on a thread
/// with no default [`Cooperator`](super::Cooperator) (see
/// [`set_default_cooperator`](super::set_default_cooperator)). Twisted's module-level functions
/// use the reactor's; there is no global reactor here. Its source is [`SchedulerStopped`], so
/// it traps as that too.
///
/// ```
/// use defer_core::{task::{coiterate, NoDefaultCooperator, SchedulerStopped}, testing::failure_result_of};
/// let f = failure_result_of(coiterate(std::iter::empty::<Result<(), defer_core::Failure>>()));
/// assert!(f.check::<NoDefaultCooperator>() && f.check::<SchedulerStopped>());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NoDefaultCooperator;

impl fmt::Display for NoDefaultCooperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("no default cooperator on this thread: call task::set_default_cooperator first")
    }
}
impl Error for NoDefaultCooperator {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&SchedulerStopped)
    }
}

/// Why a [`CooperativeTask`](super::CooperativeTask) cannot be paused or stopped: it has already
/// finished, in one of these ways. Twisted raises the task's completion state (`TaskDone`,
/// `TaskStopped`, `TaskFailed` or `SchedulerStopped`); each variant's
/// [`source`](Error::source) is that unit error, so a failure made from it traps as it.
///
/// ```
/// use defer_core::{Failure, task::{Clock, Cooperator, TaskFinished, TaskStopped}};
/// let task = Cooperator::new(Clock::new()).cooperate((0..3).map(Ok));
/// task.stop().unwrap();
/// let e = task.pause().unwrap_err();
/// assert_eq!(e, TaskFinished::Stopped);
/// assert!(Failure::new(e).check::<TaskStopped>());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskFinished {
    /// The iterator was exhausted ([`TaskDone`]).
    Done,
    /// [`CooperativeTask::stop`](super::CooperativeTask::stop) was called ([`TaskStopped`]).
    Stopped,
    /// The iterator failed ([`TaskFailed`]).
    Failed,
    /// The cooperator was stopped ([`SchedulerStopped`]).
    SchedulerStopped,
}

impl fmt::Display for TaskFinished {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskFinished::Done => fmt::Display::fmt(&TaskDone, f),
            TaskFinished::Stopped => fmt::Display::fmt(&TaskStopped, f),
            TaskFinished::Failed => fmt::Display::fmt(&TaskFailed, f),
            TaskFinished::SchedulerStopped => fmt::Display::fmt(&SchedulerStopped, f),
        }
    }
}

impl Error for TaskFinished {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(match self {
            TaskFinished::Done => &TaskDone,
            TaskFinished::Stopped => &TaskStopped,
            TaskFinished::Failed => &TaskFailed,
            TaskFinished::SchedulerStopped => &SchedulerStopped,
        })
    }
}

/// Misuse of a [`LoopingCall`](super::LoopingCall). Twisted asserts (`AssertionError`); here it
/// is a plain error and the loop is left as it was.
///
/// ```
/// use defer_core::task::{Clock, LoopingCall, LoopingCallError};
/// let lc = LoopingCall::new(Clock::new(), || Ok(()));
/// assert_eq!(lc.stop(), Err(LoopingCallError::NotRunning));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoopingCallError {
    /// [`start`](super::LoopingCall::start) on a loop that is running.
    AlreadyRunning,
    /// [`start`](super::LoopingCall::start) after [`stop`](super::LoopingCall::stop), while
    /// the call in progress (or the Deferred it returned) has not finished yet: the loop's
    /// previous Deferred has not fired.
    Stopping,
    /// [`stop`](super::LoopingCall::stop) or [`reset`](super::LoopingCall::reset) on a loop that
    /// is not running.
    NotRunning,
}

impl fmt::Display for LoopingCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LoopingCallError::AlreadyRunning => "tried to start an already running LoopingCall",
            LoopingCallError::Stopping => {
                "tried to start a LoopingCall whose last call has not finished since it was stopped"
            }
            LoopingCallError::NotRunning => "the LoopingCall is not running",
        })
    }
}
impl Error for LoopingCallError {}
