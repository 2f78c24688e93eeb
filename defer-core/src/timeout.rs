//! Deferreds and time: [`defer_later`], [`Deferred::add_timeout`] and [`TimeoutError`].

use std::cell::{Cell as StdCell, RefCell};
use std::error::Error;
use std::fmt;
use std::panic::Location;
use std::rc::Rc;
use std::time::Duration;

use crate::deferred::{Deferred, DeferredControl, fail, succeed};
use crate::engine::user_code;
use crate::errors::CancelledError;
use crate::failure::Failure;
use crate::outcome::{Outcome, StepResult};
use crate::scheduler::{DelayedCall, Scheduler};

/// A Deferred that fires with `f()`'s outcome `delay` from now: Twisted's `task.deferLater`.
///
/// `f` runs when the delayed call does, and may return `Ok`, `Err` or a Deferred to wait for; a
/// panic in it becomes the Deferred's failure (located at the `defer_later` call). Cancelling the
/// Deferred before the call has run cancels the call (`f` never runs) and fails it with
/// [`CancelledError`]; cancelling it while it waits on a Deferred that `f` returned cancels that
/// one. With nothing to compute, pass `|| Ok(())`.
///
/// If the scheduler drops the call without running it (a [`Clock`](crate::clock::Clock) that is
/// dropped, say), the Deferred fails with [`TriggerDropped`](crate::errors::TriggerDropped), but
/// only if someone still listens to it: a `defer_later` whose Deferred was dropped reports
/// nothing.
///
/// ```
/// use defer_core::{defer_later, clock::Clock, testing::*};
/// use std::time::Duration;
///
/// let clock = Clock::new();
/// let d = defer_later(&clock, Duration::from_secs(3), || Ok("flag"));
/// clock.advance(Duration::from_secs(2));
/// assert_no_result(&d);
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(success_result_of(d), "flag");
///
/// // Dropped with its clock: nobody listens, nothing is reported.
/// let clock = Clock::new();
/// let lost = unhandled_during(|| {
///     drop(defer_later(&clock, Duration::from_secs(1), || Ok(())));
///     drop(clock);
/// });
/// assert!(lost.is_empty());
/// ```
#[track_caller]
pub fn defer_later<S, F, R>(scheduler: &S, delay: Duration, f: F) -> Deferred<R::Value>
where
    S: Scheduler + ?Sized,
    F: FnOnce() -> R + 'static,
    R: Outcome,
{
    let at = Location::caller();
    // What cancelling must stop: the delayed call until it runs, then the Deferred `f` returned.
    //
    // The returned Deferred's own chain holds nothing of ours (no step): its trigger lives in the
    // delayed call, and `f`'s outcome is handed to it with `chain_deferred`. So when the
    // scheduler drops the call unrun, the trigger sees a listener only if the user still holds
    // the Deferred or added steps to it. (It used to be a `Deferred<()>` with `f` as a step: that
    // step always looked like a listener, so dropping the clock reported a `TriggerDropped`
    // nobody could see.)
    let slot: Rc<RefCell<Stop>> = Rc::new(RefCell::new(Stop::Nothing));
    let in_canceller = slot.clone();
    let (d, trigger) = Deferred::<R::Value>::with_canceller(move |_own_trigger| {
        let stop = std::mem::replace(&mut *in_canceller.borrow_mut(), Stop::Nothing);
        match stop {
            Stop::Call(call) => {
                let _ = call.cancel();
            }
            // Its result (a `CancelledError`, or what its canceller made) is handed on to this
            // Deferred, which then keeps it.
            Stop::Inner(ctl) => ctl.cancel(),
            Stop::Nothing => {}
        }
    });
    // Weak: the call must not keep the slot, and with it itself, alive.
    let in_call = Rc::downgrade(&slot);
    let call = scheduler.call_later(
        delay,
        Box::new(move || {
            let outcome: Deferred<R::Value> = match user_code::call_at(at, f) {
                Ok(r) => match r.into_step_result() {
                    StepResult::Ok(v) => succeed(v),
                    StepResult::Err(e) => fail(e),
                    StepResult::Wait(inner) => inner,
                },
                Err(failure) => fail(failure),
            };
            if let Some(slot) = in_call.upgrade() {
                *slot.borrow_mut() = if outcome.is_called() {
                    Stop::Nothing
                } else {
                    Stop::Inner(outcome.control())
                };
            }
            outcome.chain_deferred(trigger);
        }),
    );
    // The slot holds the call until it runs, the Deferred fires (the canceller, and with it the
    // slot, is dropped then) or is cancelled. A scheduler that ran the call at once has already
    // said what to stop instead.
    if call.active() {
        *slot.borrow_mut() = Stop::Call(call);
    }
    d
}

/// What cancelling a [`defer_later`] stops.
enum Stop {
    Nothing,
    /// The delayed call, not run yet.
    Call(DelayedCall),
    /// The Deferred `f` returned, still pending.
    Inner(DeferredControl),
}

impl<T: 'static> Deferred<T> {
    /// Cancels this Deferred if it has not reached this point of its chain `timeout` from now,
    /// and then turns its [`CancelledError`] into a [`TimeoutError`]: Twisted's `addTimeout`.
    ///
    /// It covers only the steps added *before* it: when the chain reaches this point the timer is
    /// cancelled, so a Deferred that a later step returns is never timed out. A canceller's own
    /// result (a success, or another failure) is kept; a manual [`cancel`](Deferred::cancel)
    /// before the timeout keeps its `CancelledError`.
    ///
    /// ```
    /// use defer_core::{Deferred, clock::Clock, errors::TimeoutError, testing::*};
    /// use std::time::Duration;
    ///
    /// let clock = Clock::new();
    /// let (d, _producer) = Deferred::<u32>::new();
    /// let d = d.add_timeout(Duration::from_secs(10), &clock);
    /// clock.advance(Duration::from_millis(9_990));
    /// assert_no_result(&d);
    /// clock.advance(Duration::from_secs(1));
    /// let f = failure_result_of(d);
    /// assert_eq!(f.downcast_ref::<TimeoutError>().unwrap().timeout(), Duration::from_secs(10));
    /// ```
    #[track_caller]
    pub fn add_timeout<S: Scheduler + ?Sized>(
        self,
        timeout: Duration,
        scheduler: &S,
    ) -> Deferred<T> {
        let at = Location::caller();
        self.add_timeout_with(timeout, scheduler, move |result, timeout| match result {
            Err(f) if f.check::<CancelledError>() => {
                Err(Failure::new_at(TimeoutError { timeout }, at))
            }
            other => other,
        })
    }

    /// [`add_timeout`](Deferred::add_timeout) with Twisted's `onTimeoutCancel`: when the timeout
    /// fired, `on_timeout_cancel(result, timeout)` replaces the result the chain has at this
    /// point, whatever it is (a `CancelledError`, or what a canceller or an errback made of it).
    /// When the timeout did not fire, it is not called.
    ///
    /// ```
    /// use defer_core::{Deferred, clock::Clock, testing::success_result_of};
    /// use std::time::Duration;
    ///
    /// let clock = Clock::new();
    /// let (d, _producer) = Deferred::<&str>::new();
    /// let d = d.add_timeout_with(Duration::from_secs(10), &clock, |_result, _timeout| Ok("OVERRIDDEN"));
    /// clock.advance(Duration::from_secs(15));
    /// assert_eq!(success_result_of(d), "OVERRIDDEN");
    /// ```
    #[track_caller]
    pub fn add_timeout_with<S, F>(
        self,
        timeout: Duration,
        scheduler: &S,
        on_timeout_cancel: F,
    ) -> Deferred<T>
    where
        S: Scheduler + ?Sized,
        F: FnOnce(Result<T, Failure>, Duration) -> Result<T, Failure> + 'static,
    {
        let timed_out = Rc::new(StdCell::new(false));
        let flag = timed_out.clone();
        // Weak: a pending timer does not keep the chain alive.
        let ctl = self.control();
        let call = scheduler.call_later(
            timeout,
            Box::new(move || {
                flag.set(true);
                ctl.cancel();
            }),
        );
        self.add_both(move |result: Result<T, Failure>| {
            if call.active() {
                let _ = call.cancel();
            }
            if timed_out.get() {
                on_timeout_cancel(result, timeout)
            } else {
                result
            }
        })
    }
}

/// A Deferred did not reach its [`add_timeout`](Deferred::add_timeout) point in time and was
/// cancelled: Twisted's `defer.TimeoutError(timeout, "Deferred")`.
///
/// ```
/// use defer_core::errors::TimeoutError;
/// use std::time::Duration;
/// let e = TimeoutError::new(Duration::from_secs(10));
/// assert_eq!(e.to_string(), "the Deferred timed out after 10s");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeoutError {
    timeout: Duration,
}

impl TimeoutError {
    /// A timeout error for `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let e = defer_core::errors::TimeoutError::new(Duration::from_millis(1500));
    /// assert_eq!(e.timeout(), Duration::from_millis(1500));
    /// ```
    pub fn new(timeout: Duration) -> Self {
        TimeoutError { timeout }
    }

    /// The timeout that ran out.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(defer_core::errors::TimeoutError::new(Duration::ZERO).timeout(), Duration::ZERO);
    /// ```
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

impl fmt::Display for TimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the Deferred timed out after {:?}", self.timeout)
    }
}
impl Error for TimeoutError {}
