//! [`TokioScheduler`]: a [`Scheduler`] on tokio's timer (the `tokio` cargo feature).

use std::cell::RefCell;
use std::fmt;
use std::future::poll_fn;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use ::tokio::time::Instant;

use crate::scheduler::{DelayedCall, DelayedCallError, DelayedCallHandle, ScheduledFn, Scheduler};

/// A [`Scheduler`] on tokio's timer, for Deferred code running inside a tokio current-thread
/// runtime's [`LocalSet`](tokio::task::LocalSet). Needs the `tokio` feature.
///
/// Each call is a task spawned with [`tokio::task::spawn_local`], so `call_later` must be used
/// inside a `LocalSet` (it panics elsewhere, as `spawn_local` does). The task sleeps until the
/// call is due and runs it on the runtime's thread; [`DelayedCall::reset`] and
/// [`DelayedCall::delay`] move its deadline, and [`DelayedCall::cancel`] drops the function at
/// once. If the `LocalSet` is dropped first, its pending calls are cancelled.
///
/// Its timeline starts when the scheduler is made; under tokio's paused test time it follows
/// the paused clock, which makes timeouts deterministic in tests.
///
/// ```
/// use defer_core::{TokioScheduler, defer_later};
/// use std::time::Duration;
///
/// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// let local = tokio::task::LocalSet::new();
/// let value = local.block_on(&rt, async {
///     let scheduler = TokioScheduler::new();
///     defer_later(&scheduler, Duration::from_millis(10), || Ok(7)).await
/// });
/// assert_eq!(value.unwrap(), 7);
/// ```
#[derive(Clone, Copy)]
pub struct TokioScheduler {
    epoch: Instant,
}

impl TokioScheduler {
    /// A scheduler whose timeline starts now.
    ///
    /// ```
    /// # let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    /// # rt.block_on(async {
    /// use defer_core::Scheduler;
    /// let s = defer_core::TokioScheduler::new();
    /// assert!(s.now() < std::time::Duration::from_secs(1));
    /// # });
    /// ```
    pub fn new() -> Self {
        TokioScheduler {
            epoch: Instant::now(),
        }
    }
}

impl TokioScheduler {
    /// Runs `f` once, `delay` from now, on this thread's `LocalSet`: [`Scheduler::call_later`]
    /// for any closure. Whatever `f` returns is dropped, so `move || trigger.callback(v)` (which
    /// returns a `bool`) is accepted as is, and so is a boxed closure; the same signature is on
    /// [`Clock`](crate::clock::Clock). Through the [`Scheduler`] trait, box the closure.
    ///
    /// ```
    /// use defer_core::{Deferred, TokioScheduler};
    /// use std::time::Duration;
    ///
    /// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    /// let value = tokio::task::LocalSet::new().block_on(&rt, async {
    ///     let (d, trigger) = Deferred::new();
    ///     TokioScheduler::new().call_later(Duration::from_millis(5), move || trigger.callback(7));
    ///     d.await
    /// });
    /// assert_eq!(value.unwrap(), 7);
    /// ```
    pub fn call_later<R: 'static>(
        &self,
        delay: Duration,
        f: impl FnOnce() -> R + 'static,
    ) -> DelayedCall {
        Scheduler::call_later(self, delay, Box::new(move || drop(f())))
    }
}

impl Default for TokioScheduler {
    fn default() -> Self {
        TokioScheduler::new()
    }
}

impl fmt::Debug for TokioScheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokioScheduler")
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl Scheduler for TokioScheduler {
    fn call_later(&self, delay: Duration, f: Box<dyn ScheduledFn>) -> DelayedCall {
        let f: Box<dyn FnOnce()> = Box::new(move || f.run());
        let now = Instant::now();
        let call = Rc::new(Call {
            epoch: self.epoch,
            st: RefCell::new(CallState {
                deadline: now + delay,
                status: Status::Pending,
                f: Some(f),
                waker: None,
            }),
        });
        // If the task is dropped before the call runs (its LocalSet went away, even before the
        // task was first polled), the call is cancelled: its function is dropped, breaking any
        // cycle through it. The guard is made here and moved into the task for that reason.
        let guard = CancelOnDrop(call.clone());
        ::tokio::task::spawn_local(async move {
            let guard = guard;
            let first = guard.0.st.borrow().deadline;
            let mut sleep = pin!(::tokio::time::sleep_until(first));
            let mut armed_for = first;
            let f = poll_fn(|cx| {
                let mut st = guard.0.st.borrow_mut();
                if st.status != Status::Pending {
                    return Poll::Ready(None);
                }
                if st.deadline != armed_for {
                    armed_for = st.deadline;
                    sleep.as_mut().reset(armed_for);
                }
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        st.status = Status::Called;
                        st.waker = None;
                        Poll::Ready(st.f.take())
                    }
                    Poll::Pending => {
                        st.waker = Some(cx.waker().clone());
                        Poll::Pending
                    }
                }
            })
            .await;
            if let Some(f) = f {
                f();
            }
        });
        DelayedCall::new(call)
    }

    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.epoch)
    }
}

struct Call {
    epoch: Instant,
    st: RefCell<CallState>,
}

struct CallState {
    deadline: Instant,
    status: Status,
    f: Option<Box<dyn FnOnce()>>,
    waker: Option<Waker>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Called,
    Cancelled,
}

struct CancelOnDrop(Rc<Call>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let f = match self.0.st.try_borrow_mut() {
            Ok(mut st) if st.status == Status::Pending => {
                st.status = Status::Cancelled;
                st.f.take()
            }
            _ => None,
        };
        drop(f);
    }
}

impl Call {
    fn check_active(&self) -> Result<(), DelayedCallError> {
        match self.st.borrow().status {
            Status::Pending => Ok(()),
            Status::Called => Err(DelayedCallError::AlreadyCalled),
            Status::Cancelled => Err(DelayedCallError::AlreadyCancelled),
        }
    }

    /// Sets a new deadline and wakes the task so it re-arms its timer.
    fn move_to(&self, deadline: impl FnOnce(Instant) -> Instant) -> Result<(), DelayedCallError> {
        self.check_active()?;
        let waker = {
            let mut st = self.st.borrow_mut();
            st.deadline = deadline(st.deadline);
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }
}

impl DelayedCallHandle for Call {
    fn cancel(&self) -> Result<(), DelayedCallError> {
        self.check_active()?;
        let (f, waker) = {
            let mut st = self.st.borrow_mut();
            st.status = Status::Cancelled;
            (st.f.take(), st.waker.take())
        };
        drop(f);
        // Let the task see the cancellation and finish.
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    fn reset(&self, from_now: Duration) -> Result<(), DelayedCallError> {
        self.move_to(|_| Instant::now() + from_now)
    }

    fn delay(&self, by: Duration) -> Result<(), DelayedCallError> {
        self.move_to(|was| was + by)
    }

    fn active(&self) -> bool {
        self.st.borrow().status == Status::Pending
    }

    fn time(&self) -> Duration {
        self.st
            .borrow()
            .deadline
            .saturating_duration_since(self.epoch)
    }
}
