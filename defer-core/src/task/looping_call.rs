//! [`LoopingCall`]: call a function every interval, on a [`Scheduler`]. Twisted's
//! `task.LoopingCall`.

use std::cell::RefCell;
use std::fmt;
use std::panic::Location;
use std::rc::{Rc, Weak};
use std::time::Duration;

use super::errors::LoopingCallError;
use crate::deferred::{Deferred, fail, succeed};
use crate::engine::user_code;
use crate::failure::Failure;
use crate::outcome::{Outcome, StepResult};
use crate::scheduler::{DelayedCall, Scheduler};
use crate::trigger::Trigger;

/// Calls a function repeatedly, every `interval` on a [`Scheduler`]: Twisted's `LoopingCall`.
///
/// The function returns what a step returns: `Ok(_)`, `Err(failure)`, or a [`Deferred`] to wait
/// for; its value is ignored. If it returns a Deferred, the next call is not scheduled until that
/// Deferred has fired. Calls are due on the grid `start + n × interval`; a call that comes late
/// (the scheduler was busy, or the function's Deferred took longer than an interval) is not
/// replayed for every interval it missed: the next call is the next grid point still in the
/// future. [`with_count`](LoopingCall::with_count) tells the function how many intervals passed.
///
/// [`start`](LoopingCall::start) returns a Deferred that fires with the loop when
/// [`stop`](LoopingCall::stop) is called (after the call in progress, if any, finished), or fails
/// with the function's failure (an `Err`, a failed Deferred, or a panic), which also stops the
/// loop.
///
/// Cloning a `LoopingCall` gives another handle to the same loop. A running loop is held by its
/// scheduled call, as Twisted's reactor holds it: it keeps running when you drop your handles, and
/// is freed when it stops. A function that needs its own loop (to stop it) should capture a
/// [`WeakLoopingCall`] ([`downgrade`](LoopingCall::downgrade)), or the loop and its function
/// keep each other alive.
///
/// ```
/// use defer_core::{task::{Clock, LoopingCall}, testing::success_result_of};
/// use std::{cell::RefCell, rc::Rc, time::Duration};
///
/// let clock = Clock::new();
/// let seen = Rc::new(RefCell::new(Vec::new()));
/// let (s, c) = (seen.clone(), clock.clone());
/// let lc = LoopingCall::new(clock.clone(), move || { s.borrow_mut().push(c.seconds()); Ok(()) });
/// let done = lc.start(Duration::from_millis(500), false).unwrap();
/// clock.advance(Duration::from_millis(500));
/// clock.advance(Duration::from_secs(2)); // late: runs once, at 2.5, not four times
/// assert_eq!(*seen.borrow(), [0.5, 2.5]);
/// lc.stop().unwrap();
/// assert!(success_result_of(done).same_as(&lc));
/// assert!(clock.pending_calls().is_empty());
/// ```
#[derive(Clone)]
pub struct LoopingCall {
    inner: Rc<Inner>,
}

/// A weak handle to a [`LoopingCall`], for the loop's own function to capture.
///
/// ```
/// use defer_core::task::{Clock, LoopingCall, WeakLoopingCall};
/// use std::{cell::{Cell, RefCell}, rc::Rc, time::Duration};
///
/// let clock = Clock::new();
/// let me: Rc<RefCell<WeakLoopingCall>> = Rc::default();
/// let (m, n) = (me.clone(), Rc::new(Cell::new(0)));
/// let lc = LoopingCall::new(clock.clone(), move || {
///     n.set(n.get() + 1);
///     if n.get() == 3 {
///         m.borrow().upgrade().unwrap().stop().unwrap();
///     }
///     Ok(())
/// });
/// *me.borrow_mut() = lc.downgrade();
/// let done = lc.start(Duration::from_secs(1), true).unwrap();
/// clock.pump([Duration::from_secs(1); 5]);
/// assert!(done.is_called() && !lc.running());
/// ```
#[derive(Clone, Default)]
pub struct WeakLoopingCall {
    inner: Weak<Inner>,
}

/// The function as the loop calls it: with the count of intervals, returning its Deferred.
type LoopFn = Box<dyn FnMut(u64) -> Deferred<()>>;

struct Inner {
    scheduler: Rc<dyn Scheduler>,
    /// Made with `with_count`: the function gets the number of intervals since its last call.
    counting: bool,
    /// The function's type name, for `Debug` (Twisted's repr names the function).
    name: &'static str,
    /// Taken out while it runs, so that it may use its loop.
    f: RefCell<Option<LoopFn>>,
    st: RefCell<State>,
}

#[derive(Default)]
struct State {
    running: bool,
    /// The scheduled next call, if one is scheduled (none while a call is in progress).
    call: Option<DelayedCall>,
    /// The trigger of the Deferred `start` returned, until it fires.
    done: Option<Trigger<LoopingCall>>,
    interval: Option<Duration>,
    start_time: Duration,
    run_at_start: bool,
    /// When the function was last called with a count (Twisted's `_realLastTime`).
    real_last_time: Option<Duration>,
}

impl LoopingCall {
    /// A loop that will call `f` on `scheduler`; nothing runs until [`start`](LoopingCall::start).
    /// `f` returns `Ok(_)`, `Err(failure)`, or a Deferred to wait for. A panic in `f` becomes the
    /// loop's failure.
    ///
    /// ```
    /// use defer_core::{task::{Clock, LoopingCall}, testing::failure_result_of, Failure};
    /// use std::time::Duration;
    /// let lc = LoopingCall::new(Clock::new(), || Err::<(), _>(Failure::msg("broken")));
    /// let done = lc.start(Duration::from_secs(1), true).unwrap();
    /// assert_eq!(failure_result_of(done).message(), "broken");
    /// assert!(!lc.running());
    /// ```
    #[track_caller]
    pub fn new<S, F, R>(scheduler: S, mut f: F) -> LoopingCall
    where
        S: Scheduler + 'static,
        F: FnMut() -> R + 'static,
        R: Outcome,
    {
        let at = Location::caller();
        let run: LoopFn = Box::new(move |_count| into_unit(user_code::call_at(at, &mut f)));
        LoopingCall::make(Rc::new(scheduler), false, std::any::type_name::<F>(), run)
    }

    /// A loop whose function gets the number of intervals that elapsed since it was last called
    /// (Twisted's `LoopingCall.withCount`): normally 1, more when calls were missed because the
    /// scheduler was late or the function's Deferred took longer than an interval. With an
    /// interval of zero the count is always 1. The counts add up to the intervals elapsed.
    ///
    /// ```
    /// use defer_core::task::{Clock, LoopingCall};
    /// use std::{cell::RefCell, rc::Rc, time::Duration};
    /// let clock = Clock::new();
    /// let counts = Rc::new(RefCell::new(Vec::new()));
    /// let c = counts.clone();
    /// let lc = LoopingCall::with_count(clock.clone(), move |n| { c.borrow_mut().push(n); Ok(()) });
    /// lc.start(Duration::from_secs(1), true).unwrap();
    /// clock.advance(Duration::from_secs(1));
    /// clock.advance(Duration::from_secs(3));
    /// assert_eq!(*counts.borrow(), [1, 1, 3]);
    /// ```
    #[track_caller]
    pub fn with_count<S, F, R>(scheduler: S, mut f: F) -> LoopingCall
    where
        S: Scheduler + 'static,
        F: FnMut(u64) -> R + 'static,
        R: Outcome,
    {
        let at = Location::caller();
        let run: LoopFn = Box::new(move |count| into_unit(user_code::call_at(at, || f(count))));
        LoopingCall::make(Rc::new(scheduler), true, std::any::type_name::<F>(), run)
    }

    fn make(scheduler: Rc<dyn Scheduler>, counting: bool, name: &'static str, f: LoopFn) -> Self {
        LoopingCall {
            inner: Rc::new(Inner {
                scheduler,
                counting,
                name,
                f: RefCell::new(Some(f)),
                st: RefCell::new(State::default()),
            }),
        }
    }

    /// Starts calling the function every `interval`: at once if `now`, else first after one
    /// interval. An interval of zero calls it again as soon as the scheduler gets to it. Returns
    /// the Deferred that fires with this loop when it is stopped, or fails with the function's
    /// failure. (A negative interval, Twisted's `ValueError`, cannot be written: a [`Duration`]
    /// is never negative.)
    ///
    /// Fails with [`AlreadyRunning`](LoopingCallError::AlreadyRunning) if the loop is running,
    /// and with [`Stopping`](LoopingCallError::Stopping) if it was stopped while a call was in
    /// progress that has not finished yet.
    ///
    /// ```
    /// use defer_core::task::{Clock, LoopingCall, LoopingCallError};
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// let lc = LoopingCall::new(clock.clone(), || Ok(()));
    /// let _done = lc.start(Duration::from_secs(1), false).unwrap();
    /// assert_eq!(lc.start(Duration::from_secs(1), false).unwrap_err(), LoopingCallError::AlreadyRunning);
    /// assert_eq!(clock.pending_calls()[0].time(), Duration::from_secs(1));
    /// ```
    pub fn start(
        &self,
        interval: Duration,
        now: bool,
    ) -> Result<Deferred<LoopingCall>, LoopingCallError> {
        let start_time = self.inner.scheduler.now();
        let d = {
            let mut st = self.inner.st.borrow_mut();
            if st.running {
                return Err(LoopingCallError::AlreadyRunning);
            }
            if st.done.is_some() {
                return Err(LoopingCallError::Stopping);
            }
            let (d, trigger) = Deferred::new();
            st.running = true;
            st.done = Some(trigger);
            st.start_time = start_time;
            st.interval = Some(interval);
            st.run_at_start = now;
            st.real_last_time = None;
            d
        };
        if now {
            tick(&self.inner);
        } else {
            schedule_from(&self.inner, start_time);
        }
        Ok(d)
    }

    /// Stops the loop. The Deferred [`start`](LoopingCall::start) returned fires with the loop
    /// now, or, if a call is in progress or its Deferred is pending, when that finishes (a
    /// failure of it then fails the loop's Deferred). Fails with
    /// [`NotRunning`](LoopingCallError::NotRunning) if the loop is not running.
    ///
    /// ```
    /// use defer_core::{Deferred, task::{Clock, LoopingCall}, testing::assert_no_result};
    /// use std::{cell::RefCell, rc::Rc, time::Duration};
    /// let clock = Clock::new();
    /// let pending = Rc::new(RefCell::new(None));
    /// let p = pending.clone();
    /// let lc = LoopingCall::new(clock.clone(), move || {
    ///     let (d, trigger) = Deferred::<()>::new();
    ///     *p.borrow_mut() = Some(trigger);
    ///     d
    /// });
    /// let done = lc.start(Duration::from_secs(1), true).unwrap();
    /// lc.stop().unwrap();
    /// assert_no_result(&done);                         // the call's Deferred is pending
    /// pending.borrow_mut().take().unwrap().callback(());
    /// assert!(done.is_called());
    /// ```
    pub fn stop(&self) -> Result<(), LoopingCallError> {
        let (call, done) = {
            let mut st = self.inner.st.borrow_mut();
            if !st.running {
                return Err(LoopingCallError::NotRunning);
            }
            st.running = false;
            match st.call.take() {
                Some(call) => (Some(call), st.done.take()),
                // A call is in progress: it fires the Deferred when it finishes.
                None => (None, None),
            }
        };
        if let Some(call) = call {
            let _ = call.cancel();
        }
        if let Some(done) = done {
            done.callback(self.clone());
        }
        Ok(())
    }

    /// Skips the next call and restarts the interval grid from now (Twisted's `reset`). While a
    /// call is in progress it does nothing. Fails with
    /// [`NotRunning`](LoopingCallError::NotRunning) if the loop is not running.
    ///
    /// ```
    /// use defer_core::task::{Clock, LoopingCall};
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// let lc = LoopingCall::new(clock.clone(), || Ok(()));
    /// let _done = lc.start(Duration::from_secs(2), false).unwrap();
    /// clock.advance(Duration::from_secs(1));
    /// lc.reset().unwrap();
    /// assert_eq!(clock.pending_calls()[0].time(), Duration::from_secs(3));
    /// ```
    pub fn reset(&self) -> Result<(), LoopingCallError> {
        let call = {
            let mut st = self.inner.st.borrow_mut();
            if !st.running {
                return Err(LoopingCallError::NotRunning);
            }
            st.call.take()
        };
        if let Some(call) = call {
            let _ = call.cancel();
            let now = self.inner.scheduler.now();
            self.inner.st.borrow_mut().start_time = now;
            schedule_from(&self.inner, now);
        }
        Ok(())
    }

    /// Whether the loop is running: from [`start`](LoopingCall::start) until
    /// [`stop`](LoopingCall::stop) or a failure of the function. It is `false` by the time the
    /// loop's Deferred fires.
    ///
    /// ```
    /// use defer_core::task::{Clock, LoopingCall};
    /// let lc = LoopingCall::new(Clock::new(), || Ok(()));
    /// assert!(!lc.running());
    /// let _done = lc.start(std::time::Duration::from_secs(1), false).unwrap();
    /// assert!(lc.running());
    /// ```
    pub fn running(&self) -> bool {
        self.inner.st.borrow().running
    }

    /// The interval given to the last [`start`](LoopingCall::start) (or
    /// [`set_interval`](LoopingCall::set_interval)); `None` before the first start.
    ///
    /// ```
    /// use defer_core::task::{Clock, LoopingCall};
    /// use std::time::Duration;
    /// let lc = LoopingCall::new(Clock::new(), || Ok(()));
    /// assert_eq!(lc.interval(), None);
    /// let _done = lc.start(Duration::from_secs(2), false).unwrap();
    /// assert_eq!(lc.interval(), Some(Duration::from_secs(2)));
    /// ```
    pub fn interval(&self) -> Option<Duration> {
        self.inner.st.borrow().interval
    }

    /// Changes the interval of a loop (Twisted code assigns `lc.interval`). It applies from the
    /// next call that is scheduled; the call already scheduled keeps its time.
    ///
    /// ```
    /// use defer_core::task::{Clock, LoopingCall};
    /// use std::{cell::Cell, rc::Rc, time::Duration};
    /// let clock = Clock::new();
    /// let n = Rc::new(Cell::new(0));
    /// let c = n.clone();
    /// let lc = LoopingCall::new(clock.clone(), move || { c.set(c.get() + 1); Ok(()) });
    /// let _done = lc.start(Duration::from_secs(1), true).unwrap();
    /// lc.set_interval(Duration::from_secs(5));
    /// clock.advance(Duration::from_secs(1));  // the call scheduled for 1s
    /// clock.advance(Duration::from_secs(4));  // the next is at 5s
    /// assert_eq!(n.get(), 3);
    /// ```
    pub fn set_interval(&self, interval: Duration) {
        self.inner.st.borrow_mut().interval = Some(interval);
    }

    /// A weak handle to this loop, which does not keep it alive.
    ///
    /// ```
    /// use defer_core::task::{Clock, LoopingCall};
    /// let lc = LoopingCall::new(Clock::new(), || Ok(()));
    /// let weak = lc.downgrade();
    /// assert!(weak.upgrade().unwrap().same_as(&lc));
    /// drop(lc);
    /// assert!(weak.upgrade().is_none());
    /// ```
    pub fn downgrade(&self) -> WeakLoopingCall {
        WeakLoopingCall {
            inner: Rc::downgrade(&self.inner),
        }
    }

    /// Whether `self` and `other` are handles to the same loop, as Python's `is`.
    ///
    /// ```
    /// use defer_core::task::{Clock, LoopingCall};
    /// let a = LoopingCall::new(Clock::new(), || Ok(()));
    /// let b = LoopingCall::new(Clock::new(), || Ok(()));
    /// assert!(a.same_as(&a.clone()) && !a.same_as(&b));
    /// ```
    pub fn same_as(&self, other: &LoopingCall) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl WeakLoopingCall {
    /// The loop, if it still exists. A default `WeakLoopingCall` upgrades to nothing.
    ///
    /// ```
    /// assert!(defer_core::task::WeakLoopingCall::default().upgrade().is_none());
    /// ```
    pub fn upgrade(&self) -> Option<LoopingCall> {
        self.inner.upgrade().map(|inner| LoopingCall { inner })
    }
}

impl fmt::Debug for LoopingCall {
    /// Twisted's repr, `LoopingCall<interval>(function, ...)`: the interval, whether it runs,
    /// and the function's type name (a named function's path; a closure's is its enclosing
    /// function's path and `{{closure}}`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("LoopingCall");
        if let Ok(st) = self.inner.st.try_borrow() {
            s.field("interval", &st.interval)
                .field("running", &st.running);
        }
        s.field("function", &self.inner.name).finish()
    }
}

impl fmt::Debug for WeakLoopingCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakLoopingCall")
            .field("alive", &(self.inner.strong_count() > 0))
            .finish()
    }
}

/// The function's outcome as a `Deferred<()>` (its value is ignored), its panic as a failure.
fn into_unit<R: Outcome>(r: Result<R, Failure>) -> Deferred<()> {
    match r {
        Ok(r) => match r.into_step_result() {
            StepResult::Ok(_) => succeed(()),
            StepResult::Err(f) => fail(f),
            StepResult::Wait(d) => d.add_callback(|_| Ok(())),
        },
        Err(panic) => fail(panic),
    }
}

/// One call of the function (Twisted's `LoopingCall.__call__`), then what follows its result.
fn tick(inner: &Rc<Inner>) {
    inner.st.borrow_mut().call = None;
    let count = if inner.counting {
        match count(inner) {
            Some(n) => n,
            // No whole interval has passed since the last call: skip this one.
            None => return after(inner, Ok(())),
        }
    } else {
        1
    };
    let f = inner.f.borrow_mut().take();
    let d = match f {
        Some(mut f) => {
            let d = f(count);
            *inner.f.borrow_mut() = Some(f);
            d
        }
        // Only a call nested in the function's own call could find it missing; there is
        // nothing to run.
        None => succeed(()),
    };
    let me = inner.clone();
    drop(d.add_both(move |r| {
        after(&me, r);
        Ok(())
    }));
}

/// What follows a call's result: schedule the next one, or fire the loop's Deferred.
fn after(inner: &Rc<Inner>, result: Result<(), Failure>) {
    let done = {
        let mut st = inner.st.borrow_mut();
        match &result {
            Ok(()) if st.running => None,
            Ok(()) => st.done.take(),
            Err(_) => {
                st.running = false;
                st.done.take()
            }
        }
    };
    match (result, done) {
        (Ok(()), None) => schedule_from(inner, inner.scheduler.now()),
        (Ok(()), Some(done)) => {
            done.callback(LoopingCall {
                inner: inner.clone(),
            });
        }
        (Err(f), Some(done)) => {
            done.errback(f);
        }
        // Nobody can receive it (cannot happen: a failing call always has the Deferred).
        (Err(f), None) => crate::unhandled::report(&f),
    }
}

/// The number of whole intervals since the function was last called, or `None` if none has
/// passed (Twisted's `withCount` counter). Times are signed nanoseconds: with `now`, the virtual
/// last call is one interval before the start.
fn count(inner: &Rc<Inner>) -> Option<u64> {
    let now = inner.scheduler.now();
    let mut st = inner.st.borrow_mut();
    let interval = st.interval.unwrap_or_default();
    if interval.is_zero() {
        st.real_last_time = Some(now);
        return Some(1);
    }
    let nanos = |d: Duration| d.as_nanos() as i128;
    let start = nanos(st.start_time);
    let step = nanos(interval);
    let last = match st.real_last_time {
        Some(t) => nanos(t),
        None if st.run_at_start => start - step,
        None => start,
    };
    // Truncating toward zero, as Python's `int()`.
    let interval_of = |t: i128| (t - start) / step;
    let count = interval_of(nanos(now)) - interval_of(last);
    if count > 0 {
        st.real_last_time = Some(now);
        Some(u64::try_from(count).unwrap_or(u64::MAX))
    } else {
        None
    }
}

/// Schedules the next call at the next point of the grid `start + n × interval` after `when`
/// (at once for an interval of zero). Integer time has no rounding, so unlike Twisted's float
/// arithmetic the delay is never "effectively zero".
fn schedule_from(inner: &Rc<Inner>, when: Duration) {
    let delay = {
        let st = inner.st.borrow();
        let interval = st.interval.unwrap_or_default();
        if interval.is_zero() {
            Duration::ZERO
        } else {
            let running_for = when.saturating_sub(st.start_time).as_nanos();
            let rest = interval.as_nanos() - running_for % interval.as_nanos();
            from_nanos(rest)
        }
    };
    let me = inner.clone();
    let call = inner
        .scheduler
        .call_later(delay, Box::new(move || tick(&me)));
    // A scheduler that ran the call at once has already moved on.
    if call.active() {
        inner.st.borrow_mut().call = Some(call);
    }
}

fn from_nanos(n: u128) -> Duration {
    const PER_SEC: u128 = 1_000_000_000;
    let secs = u64::try_from(n / PER_SEC).unwrap_or(u64::MAX);
    Duration::new(secs, (n % PER_SEC) as u32)
}
