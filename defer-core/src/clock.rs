//! [`Clock`]: a manual, deterministic [`Scheduler`] for tests (Twisted's
//! `twisted.internet.task.Clock`).
//!
//! Time only moves when the test calls [`advance`](Clock::advance) or [`pump`](Clock::pump). The
//! new time is set *first*; then every call that is due runs, earliest first and first-come among
//! equal times, including calls scheduled while the advance runs if they are due by then.
//!
//! ```
//! use std::time::Duration;
//! use defer_core::{clock::Clock, defer_later, testing::{assert_no_result, success_result_of}};
//! let clock = Clock::new();
//! let d = defer_later(&clock, Duration::from_secs(3), || Ok("later"));
//! clock.advance(Duration::from_secs(2));
//! assert_no_result(&d);
//! clock.advance(Duration::from_secs(1));
//! assert_eq!(success_result_of(d), "later");
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::{Rc, Weak};
use std::time::Duration;

use crate::scheduler::{DelayedCall, DelayedCallError, DelayedCallHandle, ScheduledFn, Scheduler};

/// A manual clock: a [`Scheduler`] whose time only moves when told to.
///
/// Cloning a `Clock` gives another handle to the same timeline, so scheduled functions can
/// capture it. Dropping the last handle cancels the calls still pending (their functions are
/// dropped, not run).
///
/// ```
/// use defer_core::clock::Clock;
/// use std::{cell::RefCell, rc::Rc, time::Duration};
///
/// let clock = Clock::new();
/// let log = Rc::new(RefCell::new(Vec::new()));
/// for (secs, name) in [(2, "b"), (1, "a")] {
///     let log = log.clone();
///     clock.call_later(Duration::from_secs(secs), move || log.borrow_mut().push(name));
/// }
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(*log.borrow(), ["a"]);
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(*log.borrow(), ["a", "b"]);
/// assert_eq!(clock.seconds(), 2.0);
/// ```
#[derive(Clone, Default)]
pub struct Clock {
    inner: Rc<Inner>,
}

#[derive(Default)]
struct Inner {
    st: RefCell<State>,
}

#[derive(Default)]
struct State {
    now: Duration,
    /// Pending calls by (due time, order of scheduling): earliest first, first-come on ties.
    calls: BTreeMap<(Duration, u64), Rc<Entry>>,
    next_seq: u64,
}

struct Entry {
    clock: Weak<Inner>,
    st: RefCell<EntryState>,
}

struct EntryState {
    time: Duration,
    seq: u64,
    status: Status,
    f: Option<Box<dyn FnOnce()>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Called,
    Cancelled,
}

impl Clock {
    /// A clock at time zero with nothing scheduled.
    ///
    /// ```
    /// let clock = defer_core::clock::Clock::new();
    /// assert_eq!(clock.seconds(), 0.0);
    /// assert!(clock.pending_calls().is_empty());
    /// ```
    pub fn new() -> Self {
        Clock::default()
    }

    /// The current time in seconds, as Twisted's `seconds()`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = defer_core::clock::Clock::new();
    /// clock.advance(Duration::from_millis(2500));
    /// assert_eq!(clock.seconds(), 2.5);
    /// ```
    pub fn seconds(&self) -> f64 {
        self.now().as_secs_f64()
    }

    /// The current time since the clock was made.
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = defer_core::clock::Clock::new();
    /// clock.advance(Duration::from_secs(3));
    /// assert_eq!(clock.now(), Duration::from_secs(3));
    /// ```
    pub fn now(&self) -> Duration {
        self.inner.st.borrow().now
    }

    /// Schedules `f` to run `delay` from now. Twisted's `callLater`. Whatever `f` returns is
    /// dropped, so `move || trigger.callback(v)` (which returns a `bool`) is accepted as is; so
    /// is a boxed closure. The same signature is on
    /// `TokioScheduler` (the `tokio` feature); through the [`Scheduler`]
    /// trait (a `dyn Scheduler`), box the closure.
    ///
    /// ```
    /// use defer_core::clock::Clock;
    /// use std::{cell::Cell, rc::Rc, time::Duration};
    /// let clock = Clock::new();
    /// let ran = Rc::new(Cell::new(false));
    /// let r = ran.clone();
    /// let call = clock.call_later(Duration::from_secs(5), move || r.set(true));
    /// assert!(call.active());
    /// clock.advance(Duration::from_secs(5));
    /// assert!(ran.get() && !call.active());
    ///
    /// let (d, trigger) = defer_core::Deferred::new();
    /// clock.call_later(Duration::from_secs(1), move || trigger.callback("done"));
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(defer_core::testing::success_result_of(d), "done");
    /// ```
    pub fn call_later<R: 'static>(
        &self,
        delay: Duration,
        f: impl FnOnce() -> R + 'static,
    ) -> DelayedCall {
        let f = move || drop(f());
        let mut st = self.inner.st.borrow_mut();
        let time = st.now.saturating_add(delay);
        let seq = st.next_seq;
        st.next_seq += 1;
        let entry = Rc::new(Entry {
            clock: Rc::downgrade(&self.inner),
            st: RefCell::new(EntryState {
                time,
                seq,
                status: Status::Pending,
                f: Some(Box::new(f)),
            }),
        });
        st.calls.insert((time, seq), entry.clone());
        DelayedCall::new(entry)
    }

    /// Moves time forward by `by`, then runs every call that is due, earliest first and
    /// first-come among equal times. The new time is set before anything runs, so a call sees
    /// the final time; a call scheduled during the advance runs in it too if it is due.
    ///
    /// A panic in a scheduled function propagates out of `advance`; the clock stays usable and
    /// the calls not yet run stay pending.
    ///
    /// ```
    /// use defer_core::clock::Clock;
    /// use std::{cell::RefCell, rc::Rc, time::Duration};
    ///
    /// let clock = Clock::new();
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let (c, s) = (clock.clone(), seen.clone());
    /// clock.call_later(Duration::from_millis(1500), move || {
    ///     s.borrow_mut().push(c.seconds());                    // sees the final time, 2.0
    ///     let s = s.clone();
    ///     c.call_later(Duration::ZERO, move || s.borrow_mut().push(-1.0)); // due now: runs too
    /// });
    /// clock.advance(Duration::from_secs(2));
    /// assert_eq!(*seen.borrow(), [2.0, -1.0]);
    /// ```
    pub fn advance(&self, by: Duration) {
        {
            let mut st = self.inner.st.borrow_mut();
            st.now = st.now.saturating_add(by);
        }
        loop {
            let entry = {
                let mut st = self.inner.st.borrow_mut();
                let now = st.now;
                match st.calls.first_entry() {
                    Some(first) if first.key().0 <= now => first.remove(),
                    _ => break,
                }
            };
            let f = {
                let mut es = entry.st.borrow_mut();
                es.status = Status::Called;
                es.f.take()
            };
            drop(entry);
            if let Some(f) = f {
                f();
            }
        }
    }

    /// Advances by each step in turn: Twisted's `pump`.
    ///
    /// ```
    /// use defer_core::clock::Clock;
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// clock.pump([Duration::from_secs(1); 3]);
    /// assert_eq!(clock.seconds(), 3.0);
    /// ```
    pub fn pump(&self, steps: impl IntoIterator<Item = Duration>) {
        for step in steps {
            self.advance(step);
        }
    }

    /// The calls still pending, earliest first. Twisted's `getDelayedCalls()`.
    ///
    /// ```
    /// use defer_core::clock::Clock;
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// clock.call_later(Duration::from_secs(2), || {});
    /// clock.call_later(Duration::from_secs(1), || {});
    /// let times: Vec<_> = clock.pending_calls().iter().map(|c| c.time().as_secs()).collect();
    /// assert_eq!(times, [1, 2]);
    /// ```
    pub fn pending_calls(&self) -> Vec<DelayedCall> {
        let st = self.inner.st.borrow();
        st.calls
            .values()
            .map(|e| DelayedCall::new(e.clone() as Rc<dyn DelayedCallHandle>))
            .collect()
    }
}

impl Scheduler for Clock {
    fn call_later(&self, delay: Duration, f: Box<dyn ScheduledFn>) -> DelayedCall {
        Clock::call_later(self, delay, move || f.run())
    }
    fn now(&self) -> Duration {
        Clock::now(self)
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.st.try_borrow() {
            Ok(st) => f
                .debug_struct("Clock")
                .field("now", &st.now)
                .field("pending", &st.calls.len())
                .finish(),
            Err(_) => f.write_str("Clock(busy)"),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The clock is gone: its pending calls can never run. Cancel them and drop their
        // functions (outside any borrow: a dropped function may fire a Deferred), which also
        // breaks reference cycles through them (a `defer_later` waiting on this clock).
        let calls = std::mem::take(&mut self.st.get_mut().calls);
        let mut fs = Vec::with_capacity(calls.len());
        for entry in calls.into_values() {
            let mut es = entry.st.borrow_mut();
            es.status = Status::Cancelled;
            fs.push(es.f.take());
        }
        drop(fs);
    }
}

impl Entry {
    fn check_active(&self) -> Result<(), DelayedCallError> {
        match self.st.borrow().status {
            Status::Pending => Ok(()),
            Status::Called => Err(DelayedCallError::AlreadyCalled),
            Status::Cancelled => Err(DelayedCallError::AlreadyCancelled),
        }
    }

    /// Moves a pending entry to `time` in its clock's queue.
    fn move_to(&self, time: impl FnOnce(Duration, Duration) -> Duration) {
        let Some(clock) = self.clock.upgrade() else {
            return;
        };
        let mut cst = clock.st.borrow_mut();
        let mut es = self.st.borrow_mut();
        let Some(me) = cst.calls.remove(&(es.time, es.seq)) else {
            return;
        };
        es.time = time(cst.now, es.time);
        // The order among equal times stays the order of scheduling, as a stable sort keeps it.
        cst.calls.insert((es.time, es.seq), me);
    }
}

impl DelayedCallHandle for Entry {
    fn cancel(&self) -> Result<(), DelayedCallError> {
        self.check_active()?;
        let f = {
            let mut es = self.st.borrow_mut();
            es.status = Status::Cancelled;
            es.f.take()
        };
        let removed = {
            let key = {
                let es = self.st.borrow();
                (es.time, es.seq)
            };
            self.clock
                .upgrade()
                .and_then(|c| c.st.borrow_mut().calls.remove(&key))
        };
        drop(removed);
        drop(f);
        Ok(())
    }

    fn reset(&self, from_now: Duration) -> Result<(), DelayedCallError> {
        self.check_active()?;
        self.move_to(|now, _| now.saturating_add(from_now));
        Ok(())
    }

    fn delay(&self, by: Duration) -> Result<(), DelayedCallError> {
        self.check_active()?;
        self.move_to(|_, was| was.saturating_add(by));
        Ok(())
    }

    fn active(&self) -> bool {
        self.st.borrow().status == Status::Pending
    }

    fn time(&self) -> Duration {
        self.st.borrow().time
    }
}
