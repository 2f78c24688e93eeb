//! Time as the Deferred machinery sees it: the [`Scheduler`] trait and the [`DelayedCall`] handle
//! it returns (Twisted's `IReactorTime.callLater` and `IDelayedCall`).
//!
//! Nothing in `defer-core` runs a timer itself. [`add_timeout`](crate::Deferred::add_timeout) and
//! [`defer_later`](crate::defer_later) take any `Scheduler`: the manual
//! [`Clock`](crate::clock::Clock) in tests, a real timer (the `tokio` feature's
//! `TokioScheduler`) in programs, or your own event loop's.
//!
//! # Why the trait is object-safe
//!
//! `call_later` takes its function as a `Box<dyn ScheduledFn>` (any boxed `FnOnce() -> R`) and
//! returns the concrete [`DelayedCall`] rather than an associated handle type. That keeps
//! `dyn Scheduler` usable: a protocol object can store an `Rc<dyn Scheduler>` and be tested with a
//! `Clock` and run with a real timer without becoming generic over the scheduler, which is how
//! Twisted code passes `reactor` or `clock` around. The price is one allocation per scheduled
//! call, which is nothing next to a timer's own bookkeeping. The functions that take a scheduler
//! accept `&S where S: Scheduler + ?Sized`, so both `&Clock` and `&dyn Scheduler` work.
//!
//! # One `call_later` for every closure
//!
//! Whatever the function returns is dropped, so a closure that fires a trigger
//! (`move || trigger.callback(v)`, which returns a `bool`) is accepted as it is, as is one that
//! returns `()`:
//!
//! * every scheduler, `dyn Scheduler` and generic `S: Scheduler` included, takes it boxed:
//!   `scheduler.call_later(delay, Box::new(move || trigger.callback(v)))`;
//! * [`Clock`](crate::clock::Clock) and `TokioScheduler` (the `tokio` feature) also have an
//!   inherent `call_later` that takes it unboxed (or boxed) and boxes it for you.
//!
//! (A trait object cannot also have a generic `call_later`: its own trait method would make every
//! call ambiguous.)

use std::error::Error;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// Something that can run a function later: Twisted's `IReactorTime`.
///
/// Times are [`Duration`]s since the scheduler's own epoch (a [`Clock`](crate::clock::Clock)
/// starts at zero), so that a manual clock and a real one have the same interface.
///
/// ```
/// use defer_core::{Scheduler, clock::Clock};
/// use std::{cell::Cell, rc::Rc, time::Duration};
///
/// fn ping_later(s: &dyn Scheduler, seen: Rc<Cell<bool>>) {
///     s.call_later(Duration::from_secs(1), Box::new(move || seen.set(true)));
/// }
///
/// fn fire_later(s: &dyn Scheduler, trigger: defer_core::Trigger<u8>) {
///     // A closure that returns something (`callback` returns a `bool`) is accepted too.
///     s.call_later(Duration::from_secs(1), Box::new(move || trigger.callback(1)));
/// }
///
/// let clock = Clock::new();
/// let seen = Rc::new(Cell::new(false));
/// ping_later(&clock, seen.clone());
/// let (d, trigger) = defer_core::Deferred::new();
/// fire_later(&clock, trigger);
/// clock.advance(Duration::from_secs(1));
/// assert!(seen.get());
/// assert_eq!(defer_core::testing::success_result_of(d), 1);
/// ```
pub trait Scheduler {
    /// Runs `f` once, `delay` from now, and returns a handle that can cancel or move the call.
    ///
    /// ```
    /// use defer_core::{Scheduler, clock::Clock};
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// let call = Scheduler::call_later(&clock, Duration::from_secs(2), Box::new(|| {}));
    /// assert_eq!(call.time(), Duration::from_secs(2));
    /// ```
    fn call_later(&self, delay: Duration, f: Box<dyn ScheduledFn>) -> DelayedCall;

    /// The current time, since the scheduler's epoch. Twisted's `seconds()`.
    ///
    /// ```
    /// use defer_core::{Scheduler, clock::Clock};
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// clock.advance(Duration::from_millis(1500));
    /// assert_eq!(Scheduler::now(&clock), Duration::from_millis(1500));
    /// ```
    fn now(&self) -> Duration;
}

/// A function a [`Scheduler`] runs later: any `FnOnce() -> R + 'static`, whose result is
/// dropped. [`Scheduler::call_later`] takes it boxed, so `Box::new(|| ...)` and
/// `Box::new(move || trigger.callback(v))` (which returns a `bool`) are both accepted, through a
/// `dyn Scheduler` too.
///
/// ```
/// use defer_core::{ScheduledFn, Deferred, testing::success_result_of};
/// let (d, trigger) = Deferred::new();
/// let f: Box<dyn ScheduledFn> = Box::new(move || trigger.callback(3));
/// f.run();
/// assert_eq!(success_result_of(d), 3);
/// ```
pub trait ScheduledFn: 'static {
    /// Runs the function, dropping what it returns.
    ///
    /// ```
    /// use defer_core::ScheduledFn;
    /// let f: Box<dyn ScheduledFn> = Box::new(|| 1 + 1);
    /// f.run();
    /// ```
    fn run(self: Box<Self>);
}

impl<F, R> ScheduledFn for F
where
    F: FnOnce() -> R + 'static,
{
    fn run(self: Box<Self>) {
        drop((*self)())
    }
}

impl<S: Scheduler + ?Sized> Scheduler for Rc<S> {
    fn call_later(&self, delay: Duration, f: Box<dyn ScheduledFn>) -> DelayedCall {
        (**self).call_later(delay, f)
    }
    fn now(&self) -> Duration {
        (**self).now()
    }
}

impl<S: Scheduler + ?Sized> Scheduler for &S {
    fn call_later(&self, delay: Duration, f: Box<dyn ScheduledFn>) -> DelayedCall {
        (**self).call_later(delay, f)
    }
    fn now(&self) -> Duration {
        (**self).now()
    }
}

/// What a [`Scheduler`] implements for each call it schedules; wrapped in a [`DelayedCall`].
///
/// Implementations follow Twisted's `DelayedCall`: once a call has run or been cancelled it is
/// inactive, and `cancel`, `reset` and `delay` then fail with the matching [`DelayedCallError`].
///
/// ```
/// use defer_core::{DelayedCall, DelayedCallHandle, errors::DelayedCallError};
/// use std::{cell::Cell, rc::Rc, time::Duration};
///
/// /// A call that never runs: a scheduler for code paths that must not time out.
/// struct Never(Cell<bool>);
/// impl DelayedCallHandle for Never {
///     fn cancel(&self) -> Result<(), DelayedCallError> {
///         if self.0.replace(true) { Err(DelayedCallError::AlreadyCancelled) } else { Ok(()) }
///     }
///     fn reset(&self, _: Duration) -> Result<(), DelayedCallError> { Ok(()) }
///     fn delay(&self, _: Duration) -> Result<(), DelayedCallError> { Ok(()) }
///     fn active(&self) -> bool { !self.0.get() }
///     fn time(&self) -> Duration { Duration::MAX }
/// }
/// let call = DelayedCall::new(Rc::new(Never(Cell::new(false))));
/// assert!(call.active());
/// call.cancel().unwrap();
/// assert_eq!(call.cancel(), Err(DelayedCallError::AlreadyCancelled));
/// ```
pub trait DelayedCallHandle {
    /// Stops the call from running. Fails if it already ran or was cancelled. As the manual
    /// [`Clock`](crate::clock::Clock)'s calls do:
    ///
    /// ```
    /// use defer_core::{clock::Clock, errors::DelayedCallError};
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// let ran = clock.call_later(Duration::from_secs(1), || {});
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(ran.cancel(), Err(DelayedCallError::AlreadyCalled));
    /// let call = clock.call_later(Duration::from_secs(1), || {});
    /// assert_eq!(call.cancel(), Ok(()));
    /// assert_eq!(call.cancel(), Err(DelayedCallError::AlreadyCancelled));
    /// ```
    fn cancel(&self) -> Result<(), DelayedCallError>;
    /// Moves the call to `from_now` after the scheduler's current time.
    ///
    /// ```
    /// use defer_core::clock::Clock;
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// clock.advance(Duration::from_secs(5));
    /// let call = clock.call_later(Duration::from_secs(1), || {});
    /// call.reset(Duration::from_secs(10)).unwrap();
    /// assert_eq!(call.time(), Duration::from_secs(15));
    /// ```
    fn reset(&self, from_now: Duration) -> Result<(), DelayedCallError>;
    /// Moves the call `by` later than it was due.
    ///
    /// ```
    /// use defer_core::clock::Clock;
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// let call = clock.call_later(Duration::from_secs(1), || {});
    /// call.delay(Duration::from_secs(2)).unwrap();
    /// assert_eq!(call.time(), Duration::from_secs(3));
    /// ```
    fn delay(&self, by: Duration) -> Result<(), DelayedCallError>;
    /// Whether the call has neither run nor been cancelled.
    ///
    /// ```
    /// use defer_core::clock::Clock;
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// let call = clock.call_later(Duration::from_secs(1), || {});
    /// assert!(call.active());
    /// clock.advance(Duration::from_secs(1));
    /// assert!(!call.active()); // it ran
    /// ```
    fn active(&self) -> bool;
    /// When the call is (or was) due, on the scheduler's timeline.
    ///
    /// ```
    /// use defer_core::clock::Clock;
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// clock.advance(Duration::from_secs(2));
    /// let call = clock.call_later(Duration::from_secs(3), || {});
    /// assert_eq!(call.time(), Duration::from_secs(5));
    /// ```
    fn time(&self) -> Duration;
}

/// A handle to a call scheduled by [`Scheduler::call_later`]: Twisted's `DelayedCall`.
/// Cloning it gives another handle to the same call.
///
/// ```
/// use defer_core::{clock::Clock, errors::DelayedCallError};
/// use std::time::Duration;
///
/// let clock = Clock::new();
/// let call = clock.call_later(Duration::from_secs(1), || {});
/// call.delay(Duration::from_secs(1)).unwrap();            // due at 2s
/// assert_eq!(call.time(), Duration::from_secs(2));
/// call.reset(Duration::from_secs(3)).unwrap();            // due 3s from now
/// assert_eq!(call.time(), Duration::from_secs(3));
/// call.cancel().unwrap();
/// assert!(!call.active());
/// assert_eq!(call.cancel(), Err(DelayedCallError::AlreadyCancelled));
/// ```
#[derive(Clone)]
pub struct DelayedCall {
    handle: Rc<dyn DelayedCallHandle>,
}

impl DelayedCall {
    /// Wraps a scheduler's own handle. Only [`Scheduler`] implementations need this.
    ///
    /// ```
    /// # use defer_core::{DelayedCall, DelayedCallHandle, errors::DelayedCallError};
    /// # use std::{rc::Rc, time::Duration};
    /// struct Done;
    /// impl DelayedCallHandle for Done {
    ///     fn cancel(&self) -> Result<(), DelayedCallError> { Err(DelayedCallError::AlreadyCalled) }
    ///     fn reset(&self, _: Duration) -> Result<(), DelayedCallError> { Err(DelayedCallError::AlreadyCalled) }
    ///     fn delay(&self, _: Duration) -> Result<(), DelayedCallError> { Err(DelayedCallError::AlreadyCalled) }
    ///     fn active(&self) -> bool { false }
    ///     fn time(&self) -> Duration { Duration::ZERO }
    /// }
    /// assert!(!DelayedCall::new(Rc::new(Done)).active());
    /// ```
    pub fn new(handle: Rc<dyn DelayedCallHandle>) -> Self {
        DelayedCall { handle }
    }

    /// Stops the call from running and drops its function. Fails with
    /// [`AlreadyCalled`](DelayedCallError::AlreadyCalled) if it ran, or
    /// [`AlreadyCancelled`](DelayedCallError::AlreadyCancelled) if it was cancelled before.
    ///
    /// ```
    /// use defer_core::clock::Clock;
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// let call = clock.call_later(Duration::from_secs(1), || panic!("never runs"));
    /// call.cancel().unwrap();
    /// clock.advance(Duration::from_secs(5));
    /// assert!(clock.pending_calls().is_empty());
    /// ```
    pub fn cancel(&self) -> Result<(), DelayedCallError> {
        self.handle.cancel()
    }

    /// Makes the call due `from_now` after the scheduler's current time (Twisted's
    /// `reset(secondsFromNow)`).
    ///
    /// ```
    /// use defer_core::clock::Clock;
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// clock.advance(Duration::from_secs(10));
    /// let call = clock.call_later(Duration::from_secs(1), || {});
    /// call.reset(Duration::from_secs(5)).unwrap();
    /// assert_eq!(call.time(), Duration::from_secs(15));
    /// ```
    pub fn reset(&self, from_now: Duration) -> Result<(), DelayedCallError> {
        self.handle.reset(from_now)
    }

    /// Makes the call due `by` later than it was (Twisted's `delay(secondsLater)`).
    ///
    /// ```
    /// use defer_core::clock::Clock;
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// let call = clock.call_later(Duration::from_secs(1), || {});
    /// call.delay(Duration::from_secs(1)).unwrap();
    /// assert_eq!(call.time(), Duration::from_secs(2));
    /// ```
    pub fn delay(&self, by: Duration) -> Result<(), DelayedCallError> {
        self.handle.delay(by)
    }

    /// Whether the call has neither run nor been cancelled.
    ///
    /// ```
    /// use defer_core::clock::Clock;
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// let call = clock.call_later(Duration::from_secs(1), || {});
    /// assert!(call.active());
    /// clock.advance(Duration::from_secs(1));
    /// assert!(!call.active());
    /// ```
    pub fn active(&self) -> bool {
        self.handle.active()
    }

    /// When the call is due (or was), on the scheduler's timeline. Twisted's `getTime()`.
    ///
    /// ```
    /// use defer_core::clock::Clock;
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// assert_eq!(clock.call_later(Duration::from_secs(4), || {}).time(), Duration::from_secs(4));
    /// ```
    pub fn time(&self) -> Duration {
        self.handle.time()
    }

    /// Whether `self` and `other` are handles to the same call, as Python's `is` (a
    /// [`Clock`](crate::clock::Clock)'s [`pending_calls`](crate::clock::Clock::pending_calls)
    /// are the calls `call_later` returned).
    ///
    /// ```
    /// use defer_core::clock::Clock;
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// let a = clock.call_later(Duration::from_secs(1), || {});
    /// let b = clock.call_later(Duration::from_secs(1), || {});
    /// assert!(a.same_as(&clock.pending_calls()[0]) && !a.same_as(&b));
    /// ```
    pub fn same_as(&self, other: &DelayedCall) -> bool {
        Rc::ptr_eq(&self.handle, &other.handle)
    }
}

impl fmt::Debug for DelayedCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DelayedCall")
            .field("time", &self.time())
            .field("active", &self.active())
            .finish()
    }
}

/// Why a [`DelayedCall`] could not be cancelled or moved: Twisted's `AlreadyCalled` and
/// `AlreadyCancelled`.
///
/// ```
/// use defer_core::{clock::Clock, errors::DelayedCallError};
/// use std::time::Duration;
/// let clock = Clock::new();
/// let call = clock.call_later(Duration::ZERO, || {});
/// clock.advance(Duration::ZERO);
/// let e = call.cancel().unwrap_err();
/// assert_eq!(e, DelayedCallError::AlreadyCalled);
/// assert_eq!(e.to_string(), "the delayed call has already run");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelayedCallError {
    /// The call has already run.
    AlreadyCalled,
    /// The call was already cancelled.
    AlreadyCancelled,
}

impl fmt::Display for DelayedCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DelayedCallError::AlreadyCalled => f.write_str("the delayed call has already run"),
            DelayedCallError::AlreadyCancelled => {
                f.write_str("the delayed call was already cancelled")
            }
        }
    }
}
impl Error for DelayedCallError {}
