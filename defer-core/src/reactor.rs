//! The std run loop: [`react`] and the [`Reactor`] it runs, a real-time [`Scheduler`].
//!
//! Twisted programs run inside `task.react(main)`: the reactor runs until the Deferred `main`
//! returns fires. [`react`] is that, with `std` alone: timers on a monotonic clock
//! ([`Instant`]), closures and coroutine wakes from other threads (see [`threads`](crate::threads)),
//! and in between the thread parks until the next timer is due or something arrives: no busy
//! waiting. For I/O, use tokio (the `tokio` feature has its own `react`).
//!
//! [`Reactor`] implements [`Scheduler`], so code written against a `Scheduler` runs unchanged on
//! the manual [`Clock`](crate::clock::Clock) in tests, on this loop, and on tokio.

use std::cell::{Cell as StdCell, RefCell};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::error::Error;
use std::fmt;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crate::deferred::Deferred;
use crate::engine::user_code;
use crate::failure::Failure;
use crate::home::{self, Home};
use crate::scheduler::{DelayedCall, DelayedCallError, DelayedCallHandle, Scheduler};
use crate::threads::ThreadHandle;

/// Runs `main` with a new [`Reactor`], then runs the reactor until the Deferred `main` returns
/// fires, and returns that Deferred's result: Twisted's `task.react(main)`.
///
/// Where Twisted exits the process (status 0, or 1 after logging the failure), `react` returns
/// the result and leaves the exit to the caller. If the reactor is [stopped](Reactor::stop)
/// before the Deferred fires, `react` returns [`ReactorStopped`].
///
/// ```
/// use defer_core::{Deferred, react};
/// use std::time::Duration;
///
/// let result = react(|reactor| {
///     let (finished, trigger) = Deferred::new();
///     reactor.call_later(Duration::from_millis(5), move || { trigger.callback("done"); });
///     finished
/// });
/// assert_eq!(result.unwrap(), "done");
/// ```
///
/// A coroutine awaiting a future that another thread completes resumes here, on this thread:
///
/// ```
/// use defer_core::{ensure_deferred, react};
///
/// let n = react(|_| ensure_deferred(async {
///     let (tx, rx) = futures::channel::oneshot::channel();
///     std::thread::spawn(move || tx.send(41).unwrap());
///     Ok(rx.await.unwrap() + 1)
/// }));
/// assert_eq!(n.unwrap(), 42);
/// ```
pub fn react<T, M>(main: M) -> Result<T, Failure>
where
    T: 'static,
    M: FnOnce(&Reactor) -> Deferred<T>,
{
    let reactor = Reactor::new();
    // `main` runs once the reactor runs, as under Twisted's `callWhenRunning`; a panic in it is
    // the result's failure.
    reactor.run(|| crate::execute(|| main(&reactor)).add_callback(|d| d))
}

/// The std run loop's handle: timers, `call_from_thread` and the loop itself. Cheap to clone
/// (all clones are the same reactor); it lives on one thread.
///
/// ```
/// use defer_core::{Reactor, Scheduler, defer_later};
/// use std::time::Duration;
///
/// let reactor = Reactor::new();
/// let d = defer_later(&reactor, Duration::from_millis(2), || Ok(7));
/// assert_eq!(reactor.run_until(d).unwrap(), 7);
/// assert!(reactor.now() >= Duration::from_millis(2));
/// ```
#[derive(Clone)]
pub struct Reactor {
    inner: Rc<Inner>,
}

struct Inner {
    epoch: Instant,
    timers: RefCell<BinaryHeap<Reverse<Entry>>>,
    seq: StdCell<u64>,
    running: StdCell<bool>,
    stop_requested: StdCell<bool>,
    when_running: RefCell<Vec<Box<dyn FnOnce()>>>,
    shutdown: RefCell<Vec<Box<dyn FnOnce()>>>,
    home: Arc<Home>,
}

/// A heap entry: the deadline the call had when it was pushed. Moving a call pushes a new entry;
/// an entry whose deadline is no longer the call's is skipped (lazy deletion).
struct Entry {
    at: Instant,
    seq: u64,
    call: Rc<Call>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct Call {
    reactor: Weak<Inner>,
    st: RefCell<CallState>,
}

struct CallState {
    at: Instant,
    status: Status,
    f: Option<Box<dyn FnOnce()>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Called,
    Cancelled,
}

impl Default for Reactor {
    fn default() -> Self {
        Reactor::new()
    }
}

impl Reactor {
    /// A reactor for this thread, its clock starting now. Its timers run while
    /// [`run_until`](Reactor::run_until) (or [`react`]) runs.
    ///
    /// # Panics
    ///
    /// During the thread's teardown.
    ///
    /// ```
    /// let r = defer_core::Reactor::new();
    /// assert!(!r.is_running());
    /// ```
    pub fn new() -> Self {
        Reactor {
            inner: Rc::new(Inner {
                epoch: Instant::now(),
                timers: RefCell::new(BinaryHeap::new()),
                seq: StdCell::new(0),
                running: StdCell::new(false),
                stop_requested: StdCell::new(false),
                when_running: RefCell::new(Vec::new()),
                shutdown: RefCell::new(Vec::new()),
                home: home::current().expect("Reactor::new: the thread is exiting"),
            }),
        }
    }

    /// Runs `f` once, `delay` from now (not earlier), on this thread, while the reactor runs:
    /// Twisted's `callLater`. Calls due at the same time run in the order they were made. A
    /// panic in `f` is reported as an unhandled failure and the loop goes on.
    ///
    /// ```
    /// use defer_core::{Deferred, react};
    /// use std::time::{Duration, Instant};
    ///
    /// let started = Instant::now();
    /// let waited = react(|reactor| {
    ///     let (d, t) = Deferred::new();
    ///     reactor.call_later(Duration::from_millis(3), move || { t.callback(started.elapsed()); });
    ///     d
    /// });
    /// assert!(waited.unwrap() >= Duration::from_millis(3));
    /// ```
    pub fn call_later<R>(&self, delay: Duration, f: impl FnOnce() -> R + 'static) -> DelayedCall {
        let at = Instant::now() + delay;
        let call = Rc::new(Call {
            reactor: Rc::downgrade(&self.inner),
            st: RefCell::new(CallState {
                at,
                status: Status::Pending,
                // What `f` returns is dropped (`move || trigger.callback(v)` returns a `bool`).
                f: Some(Box::new(move || drop(f()))),
            }),
        });
        self.inner.push(at, call.clone());
        DelayedCall::new(Rc::new(Handle(call)))
    }

    /// Runs `f` as soon as the reactor runs (at once if it is running): Twisted's
    /// `callWhenRunning`.
    ///
    /// ```
    /// let reactor = defer_core::Reactor::new();
    /// let (d, t) = defer_core::Deferred::new();
    /// reactor.call_when_running(move || { t.callback(1); });
    /// assert_eq!(reactor.run_until(d).unwrap(), 1);
    /// ```
    pub fn call_when_running(&self, f: impl FnOnce() + 'static) {
        if self.inner.running.get() {
            call_reported(Box::new(f));
        } else {
            self.inner.when_running.borrow_mut().push(Box::new(f));
        }
    }

    /// Runs `f` when the reactor stops (Twisted's `addSystemEventTrigger("during",
    /// "shutdown", f)`), before [`run_until`](Reactor::run_until) returns.
    ///
    /// ```
    /// use defer_core::{Deferred, Reactor};
    /// let reactor = Reactor::new();
    /// let (d, t) = Deferred::new();
    /// reactor.add_shutdown_trigger(move || { t.callback("at shutdown"); });
    /// reactor.call_when_running({ let r = reactor.clone(); move || r.stop() });
    /// assert_eq!(reactor.run_until(d).unwrap(), "at shutdown");
    /// ```
    pub fn add_shutdown_trigger(&self, f: impl FnOnce() + 'static) {
        self.inner.shutdown.borrow_mut().push(Box::new(f));
    }

    /// Stops the reactor: [`run_until`](Reactor::run_until) returns after the current turn
    /// and the shutdown triggers, whether or not its Deferred has fired. Twisted's `stop`.
    ///
    /// ```
    /// use defer_core::{Deferred, react, reactor::ReactorStopped};
    /// let r = react(|reactor| {
    ///     let (d, t) = Deferred::<()>::new();
    ///     reactor.call_later(std::time::Duration::from_secs(60), move || { t.callback(()); });
    ///     reactor.stop();
    ///     d
    /// });
    /// assert!(r.unwrap_err().check::<ReactorStopped>());
    /// ```
    pub fn stop(&self) {
        self.inner.stop_requested.set(true);
        self.inner.home.wake_loop();
    }

    /// Whether [`run_until`](Reactor::run_until) is running.
    ///
    /// ```
    /// let r = defer_core::react(|reactor| defer_core::succeed(reactor.is_running()));
    /// assert!(r.unwrap());
    /// ```
    pub fn is_running(&self) -> bool {
        self.inner.running.get()
    }

    /// Seconds since the reactor's epoch, as Twisted's `seconds()`.
    ///
    /// ```
    /// assert!(defer_core::Reactor::new().seconds() < 1.0);
    /// ```
    pub fn seconds(&self) -> f64 {
        self.inner.epoch.elapsed().as_secs_f64()
    }

    /// A `Send + Clone` handle to this reactor's thread, for other threads
    /// ([`call_from_thread`](ThreadHandle::call_from_thread)).
    ///
    /// ```
    /// let r = defer_core::Reactor::new();
    /// assert!(r.thread_handle().is_current());
    /// ```
    pub fn thread_handle(&self) -> ThreadHandle {
        ThreadHandle::current()
    }

    /// Runs the loop on this thread until `d` fires, and returns its result: timers, closures
    /// and coroutine wakes from other threads, parking the thread in between. Returns
    /// [`ReactorStopped`] if [`stop`](Reactor::stop) comes first, and
    /// [`ReactorAlreadyRunning`] if the reactor is already running (a nested call).
    ///
    /// ```
    /// use defer_core::{Reactor, threads::defer_to_thread};
    /// let reactor = Reactor::new();
    /// let d = defer_to_thread(|| Ok::<_, std::io::Error>("from a thread"));
    /// assert_eq!(reactor.run_until(d).unwrap(), "from a thread");
    /// ```
    pub fn run_until<T: 'static>(&self, d: Deferred<T>) -> Result<T, Failure> {
        self.run(move || d)
    }

    /// The loop: runs the `when_running` calls, then `start`, then turns until the Deferred
    /// `start` gave fires or the reactor is stopped.
    fn run<T: 'static>(&self, start: impl FnOnce() -> Deferred<T>) -> Result<T, Failure> {
        let inner = &self.inner;
        if inner.running.replace(true) {
            return Err(Failure::new(ReactorAlreadyRunning));
        }
        inner.stop_requested.set(false);
        let result: Rc<RefCell<Option<Result<T, Failure>>>> = Rc::default();
        let slot = result.clone();
        // The guard parks with this thread as the one a post unparks, and undoes that (and
        // `running`) however the loop ends.
        let _running = Running::new(inner);
        let starting: Vec<_> = std::mem::take(&mut *inner.when_running.borrow_mut());
        for f in starting {
            call_reported(f);
        }
        let _ = start().add_both(move |r| {
            *slot.borrow_mut() = Some(r);
            Ok::<(), Failure>(())
        });
        let done = || result.borrow().is_some() || inner.stop_requested.get();
        loop {
            if done() {
                break;
            }
            inner.home.drain();
            if done() {
                break;
            }
            let next = inner.run_due_timers();
            if done() {
                break;
            }
            if inner.home.has_mail() {
                continue;
            }
            match next {
                Some(at) => {
                    let now = Instant::now();
                    if at > now {
                        thread::park_timeout(at - now);
                    }
                }
                None => thread::park(),
            }
        }
        let triggers: Vec<_> = std::mem::take(&mut *inner.shutdown.borrow_mut());
        for f in triggers {
            call_reported(f);
        }
        let r = result.borrow_mut().take();
        r.unwrap_or_else(|| Err(Failure::new(ReactorStopped)))
    }
}

/// `running` and the parker, set for the life of a `run_until` (and the parker of a loop this
/// one runs inside, restored after it).
struct Running<'a>(&'a Inner, Option<Thread>);

impl<'a> Running<'a> {
    fn new(inner: &'a Inner) -> Self {
        let outer = inner.home.set_parker(Some(thread::current()));
        Running(inner, outer)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.home.set_parker(self.1.take());
        self.0.running.set(false);
    }
}

/// Calls a loop callback: a panic becomes a reported failure, and the loop goes on.
fn call_reported(f: Box<dyn FnOnce()>) {
    if let Err(payload) = user_code::call(f) {
        crate::unhandled::report(&Failure::from_panic(payload));
    }
}

impl Inner {
    fn push(&self, at: Instant, call: Rc<Call>) {
        let seq = self.seq.get();
        self.seq.set(seq + 1);
        self.timers
            .borrow_mut()
            .push(Reverse(Entry { at, seq, call }));
    }

    /// Runs every call due now; returns when the next one is due.
    fn run_due_timers(&self) -> Option<Instant> {
        let now = Instant::now();
        loop {
            let f = {
                let mut timers = self.timers.borrow_mut();
                let top = timers.peek()?;
                if top.0.at > now {
                    return Some(top.0.at);
                }
                let Reverse(entry) = timers.pop()?;
                drop(timers);
                let mut st = entry.call.st.borrow_mut();
                if st.status != Status::Pending || st.at != entry.at {
                    // Cancelled, or moved (a later entry stands for it).
                    continue;
                }
                st.status = Status::Called;
                st.f.take()
            };
            if let Some(f) = f {
                call_reported(f);
            }
        }
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

    fn move_to(self: &Rc<Self>, at: Instant) -> Result<(), DelayedCallError> {
        self.check_active()?;
        self.st.borrow_mut().at = at;
        if let Some(reactor) = self.reactor.upgrade() {
            reactor.push(at, self.clone());
            // An earlier deadline: the parked loop must wake for it.
            reactor.home.wake_loop();
        }
        Ok(())
    }
}

/// The handle behind a [`DelayedCall`] of the reactor (an `Rc<Call>`).
struct Handle(Rc<Call>);

impl DelayedCallHandle for Handle {
    fn cancel(&self) -> Result<(), DelayedCallError> {
        self.0.check_active()?;
        let f = {
            let mut st = self.0.st.borrow_mut();
            st.status = Status::Cancelled;
            st.f.take()
        };
        user_code::drop_value(f);
        Ok(())
    }

    fn reset(&self, from_now: Duration) -> Result<(), DelayedCallError> {
        self.0.move_to(Instant::now() + from_now)
    }

    fn delay(&self, by: Duration) -> Result<(), DelayedCallError> {
        let at = self.0.st.borrow().at + by;
        self.0.move_to(at)
    }

    fn active(&self) -> bool {
        self.0.st.borrow().status == Status::Pending
    }

    fn time(&self) -> Duration {
        let at = self.0.st.borrow().at;
        self.0
            .reactor
            .upgrade()
            .map_or(Duration::ZERO, |r| at.saturating_duration_since(r.epoch))
    }
}

impl Scheduler for Reactor {
    fn call_later(&self, delay: Duration, f: Box<dyn crate::ScheduledFn>) -> DelayedCall {
        Reactor::call_later(self, delay, move || f.run())
    }

    fn now(&self) -> Duration {
        self.inner.epoch.elapsed()
    }
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("running", &self.inner.running.get())
            .field(
                "timers",
                &self.inner.timers.try_borrow().map_or(0, |t| t.len()),
            )
            .finish()
    }
}

/// [`Reactor::run_until`] returned because the reactor was stopped before its Deferred fired.
///
/// ```
/// use defer_core::reactor::ReactorStopped;
/// assert_eq!(ReactorStopped.to_string(), "the reactor stopped before the Deferred fired");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactorStopped;

impl fmt::Display for ReactorStopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the reactor stopped before the Deferred fired")
    }
}

impl Error for ReactorStopped {}

/// [`Reactor::run_until`] was called while the reactor was already running (Twisted's
/// `ReactorAlreadyRunning`).
///
/// ```
/// use defer_core::reactor::ReactorAlreadyRunning;
/// let r = defer_core::react(|reactor| {
///     let nested = reactor.run_until(defer_core::succeed(1));
///     defer_core::succeed(nested.unwrap_err().check::<ReactorAlreadyRunning>())
/// });
/// assert!(r.unwrap());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactorAlreadyRunning;

impl fmt::Display for ReactorAlreadyRunning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the reactor is already running")
    }
}

impl Error for ReactorAlreadyRunning {}
