//! [`DeferredFilesystemLock`]: Twisted's `DeferredFilesystemLock`, a
//! [`FilesystemLock`] whose [`defer_until_locked`](DeferredFilesystemLock::defer_until_locked)
//! retries on a [`Scheduler`] until the lock is taken or a timeout runs out.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::{Rc, Weak};
use std::time::Duration;

use crate::deferred::{Deferred, fail};
use crate::filesystem_lock::{FilesystemLock, UnlockError};
use crate::lock::listens;
use crate::scheduler::{DelayedCall, Scheduler};
use crate::timeout::TimeoutError;
use crate::trigger::Trigger;

/// A [`FilesystemLock`] that a Deferred can wait for: Twisted's `DeferredFilesystemLock`.
///
/// [`defer_until_locked`](DeferredFilesystemLock::defer_until_locked) tries the lock at once and
/// then every [`interval`](DeferredFilesystemLock::interval) (one second unless set) on its
/// scheduler, and fires when the lock is taken; with a timeout, it fails with
/// [`TimeoutError`] once the timeout has run out and a last try failed. Cancelling it stops the
/// retries; a last try is made, and the Deferred succeeds if that takes the lock, as in Twisted.
/// One attempt at a time: a second `defer_until_locked` while one is retrying fails with
/// [`AlreadyTryingToLockError`].
///
/// Departures from Twisted: a filesystem error while retrying fails the Deferred (Twisted's would
/// be logged by the reactor and the Deferred never fire); the retries stop, without taking the
/// lock, once nobody listens to the Deferred any more (it was dropped), since nobody could unlock
/// a lock taken then; and the lock is a handle (cloning shares it), which must be kept while an
/// attempt runs: dropping the last handle stops the attempt, and its Deferred fails with
/// [`TriggerDropped`](crate::errors::TriggerDropped).
///
/// ```
/// use defer_core::{DeferredFilesystemLock, clock::Clock, testing::*};
/// use std::time::Duration;
///
/// let clock = Clock::new();
/// let name = std::env::temp_dir().join(format!("defer-doc-dfslock-{}", std::process::id()));
/// let lock = DeferredFilesystemLock::new(&name, clock.clone());
/// assert!(lock.lock().unwrap());                           // held (by this process)
/// let other = DeferredFilesystemLock::new(&name, clock.clone());
/// let d = other.defer_until_locked(Some(Duration::from_secs(10)));
/// assert_no_result(&d);                                    // retrying every second
/// let l = lock.clone();
/// clock.call_later(Duration::from_millis(2500), move || l.unlock().unwrap());
/// clock.pump([Duration::from_secs(1); 3]);
/// success_result_of(d);                                    // taken at the third second
/// assert!(other.is_locked());
/// other.unlock().unwrap();
/// ```
#[derive(Clone)]
pub struct DeferredFilesystemLock {
    inner: Rc<Inner>,
}

struct Inner {
    lock: RefCell<FilesystemLock>,
    scheduler: Rc<dyn Scheduler>,
    interval: Cell<Duration>,
    attempt: RefCell<Attempt>,
}

/// The state of a `defer_until_locked` in progress.
#[derive(Default)]
struct Attempt {
    /// The next retry (Twisted's `_tryLockCall`): `Some` while an attempt is retrying.
    try_lock_call: Option<DelayedCall>,
    /// When the attempt times out (Twisted's `_timeoutCall`).
    timeout_call: Option<DelayedCall>,
    /// Fires the attempt's Deferred.
    trigger: Option<Trigger<()>>,
}

impl DeferredFilesystemLock {
    /// A lock on the entry `name`, retrying on `scheduler` (a [`Clock`](crate::clock::Clock) in
    /// tests, a real timer in programs). Twisted defaults to the global reactor; there is none
    /// here.
    ///
    /// ```
    /// use defer_core::{DeferredFilesystemLock, clock::Clock};
    /// let lock = DeferredFilesystemLock::new("/tmp/x.lock", Clock::new());
    /// assert_eq!(lock.name(), std::path::Path::new("/tmp/x.lock"));
    /// assert!(!lock.is_locked());
    /// ```
    pub fn new(name: impl Into<PathBuf>, scheduler: impl Scheduler + 'static) -> Self {
        DeferredFilesystemLock {
            inner: Rc::new(Inner {
                lock: RefCell::new(FilesystemLock::new(name)),
                scheduler: Rc::new(scheduler),
                interval: Cell::new(Duration::from_secs(1)),
                attempt: RefCell::new(Attempt::default()),
            }),
        }
    }

    /// The path of the lock's entry.
    ///
    /// ```
    /// let lock = defer_core::DeferredFilesystemLock::new("a.lock", defer_core::clock::Clock::new());
    /// assert_eq!(lock.name().to_str(), Some("a.lock"));
    /// ```
    pub fn name(&self) -> PathBuf {
        self.inner.lock.borrow().name().to_path_buf()
    }

    /// [`FilesystemLock::lock`]: takes the lock now or says it is held, without waiting.
    ///
    /// ```
    /// use defer_core::{DeferredFilesystemLock, clock::Clock};
    /// let name = std::env::temp_dir().join(format!("defer-doc-dfslock-lock-{}", std::process::id()));
    /// let lock = DeferredFilesystemLock::new(&name, Clock::new());
    /// assert!(lock.lock().unwrap());
    /// assert!(!lock.lock().unwrap());                      // held, if by this very process
    /// lock.unlock().unwrap();
    /// ```
    pub fn lock(&self) -> io::Result<bool> {
        self.inner.lock.borrow_mut().lock()
    }

    /// [`FilesystemLock::unlock`]: removes the lock's entry if this process owns it.
    ///
    /// ```
    /// use defer_core::{DeferredFilesystemLock, clock::Clock};
    /// let name = std::env::temp_dir().join(format!("defer-doc-dfslock-unlock-{}", std::process::id()));
    /// let lock = DeferredFilesystemLock::new(&name, Clock::new());
    /// assert!(lock.unlock().is_err());                     // not locked
    /// ```
    pub fn unlock(&self) -> Result<(), UnlockError> {
        self.inner.lock.borrow_mut().unlock()
    }

    /// Whether this lock holds its entry (Twisted's `locked`).
    ///
    /// ```
    /// let lock = defer_core::DeferredFilesystemLock::new("b.lock", defer_core::clock::Clock::new());
    /// assert!(!lock.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.inner.lock.borrow().is_locked()
    }

    /// [`FilesystemLock::clean`]: `Some(false)` if taking the lock broke a stale one.
    ///
    /// ```
    /// let lock = defer_core::DeferredFilesystemLock::new("c.lock", defer_core::clock::Clock::new());
    /// assert_eq!(lock.clean(), None);
    /// ```
    pub fn clean(&self) -> Option<bool> {
        self.inner.lock.borrow().clean()
    }

    /// How long `defer_until_locked` waits between tries (Twisted's `_interval`, one second).
    ///
    /// ```
    /// let lock = defer_core::DeferredFilesystemLock::new("d.lock", defer_core::clock::Clock::new());
    /// assert_eq!(lock.interval(), std::time::Duration::from_secs(1));
    /// ```
    pub fn interval(&self) -> Duration {
        self.inner.interval.get()
    }

    /// Sets the time between tries, for the next ones.
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = defer_core::DeferredFilesystemLock::new("e.lock", defer_core::clock::Clock::new());
    /// lock.set_interval(Duration::from_millis(50));
    /// assert_eq!(lock.interval(), Duration::from_millis(50));
    /// ```
    pub fn set_interval(&self, interval: Duration) {
        self.inner.interval.set(interval);
    }

    /// The next retry of the attempt in progress, if one is retrying (Twisted's
    /// `_tryLockCall`).
    ///
    /// ```
    /// let lock = defer_core::DeferredFilesystemLock::new("f.lock", defer_core::clock::Clock::new());
    /// assert!(lock.try_lock_call().is_none());
    /// ```
    pub fn try_lock_call(&self) -> Option<DelayedCall> {
        self.inner.attempt.borrow().try_lock_call.clone()
    }

    /// The timeout of the attempt in progress, if it has one (Twisted's `_timeoutCall`).
    ///
    /// ```
    /// let lock = defer_core::DeferredFilesystemLock::new("g.lock", defer_core::clock::Clock::new());
    /// assert!(lock.timeout_call().is_none());
    /// ```
    pub fn timeout_call(&self) -> Option<DelayedCall> {
        self.inner.attempt.borrow().timeout_call.clone()
    }

    /// A Deferred that fires once the lock is taken: tried now, then every
    /// [`interval`](DeferredFilesystemLock::interval). With `timeout`, it fails with
    /// [`TimeoutError`] if the lock is still held `timeout` after the first failed try (a last
    /// try is made then). Fails at once with [`AlreadyTryingToLockError`] while another attempt
    /// is retrying, and with the `io::Error` if the filesystem fails. Cancelling it stops the
    /// retries and makes a last try: it fails with
    /// [`CancelledError`](crate::errors::CancelledError) unless that try takes the lock.
    ///
    /// ```
    /// use defer_core::{DeferredFilesystemLock, clock::Clock, errors::TimeoutError, testing::*};
    /// use std::time::Duration;
    ///
    /// let clock = Clock::new();
    /// let name = std::env::temp_dir().join(format!("defer-doc-dfslock-until-{}", std::process::id()));
    /// let lock = DeferredFilesystemLock::new(&name, clock.clone());
    /// success_result_of(lock.defer_until_locked(None));   // free: taken at once
    /// let d = lock.defer_until_locked(Some(Duration::from_secs(3)));
    /// clock.pump([Duration::from_secs(1); 3]);
    /// assert!(failure_result_of(d).check::<TimeoutError>()); // held (by itself) all along
    /// lock.unlock().unwrap();
    /// ```
    pub fn defer_until_locked(&self, timeout: Option<Duration>) -> Deferred<()> {
        if self.inner.attempt.borrow().try_lock_call.is_some() {
            return fail(AlreadyTryingToLockError);
        }
        let weak = Rc::downgrade(&self.inner);
        let (d, trigger) = Deferred::with_canceller(move |own: Trigger<()>| {
            let Some(inner) = weak.upgrade() else { return };
            // The stored trigger is dropped after the result is decided; the Deferred is marked
            // cancelled already, so dropping it fires nothing.
            let stored = inner.stop_attempt();
            let locked = inner.lock.borrow_mut().lock();
            match locked {
                Ok(true) => {
                    own.callback(());
                }
                // Dropping `own` unfired fails the Deferred with CancelledError.
                Ok(false) => drop(own),
                Err(e) => {
                    own.errback(e);
                }
            }
            drop(stored);
        });
        let stale = self.inner.attempt.borrow_mut().trigger.replace(trigger);
        drop(stale);
        try_lock(&self.inner, timeout);
        d
    }
}

impl Inner {
    /// Ends the attempt in progress: cancels its retry and timeout, and returns its trigger.
    fn stop_attempt(&self) -> Option<Trigger<()>> {
        let (retry, timeout, trigger) = {
            let mut a = self.attempt.borrow_mut();
            (
                a.try_lock_call.take(),
                a.timeout_call.take(),
                a.trigger.take(),
            )
        };
        for call in [retry, timeout].into_iter().flatten() {
            if call.active() {
                let _ = call.cancel();
            }
        }
        trigger
    }
}

impl Drop for Inner {
    /// The last handle is gone: the attempt's retries stop (their calls hold only a weak
    /// reference), and its trigger is dropped, failing the Deferred with `TriggerDropped`.
    fn drop(&mut self) {
        drop(self.stop_attempt());
    }
}

/// One try of the attempt in progress (Twisted's `_tryLock`).
fn try_lock(inner: &Rc<Inner>, timeout: Option<Duration>) {
    let listening = inner.attempt.borrow().trigger.as_ref().is_some_and(listens);
    if !listening {
        // The Deferred was dropped: nobody could unlock a lock taken now.
        drop(inner.stop_attempt());
        return;
    }
    let locked = inner.lock.borrow_mut().lock();
    match locked {
        Ok(true) => {
            if let Some(t) = inner.stop_attempt() {
                t.callback(());
            }
        }
        Err(e) => {
            if let Some(t) = inner.stop_attempt() {
                t.errback(e);
            }
        }
        Ok(false) => {
            // Scheduled outside the borrow: a scheduler may run a call before returning.
            let needs_timeout = inner.attempt.borrow().timeout_call.is_none();
            if let Some(timeout) = timeout.filter(|_| needs_timeout) {
                let weak = Rc::downgrade(inner);
                let call = inner.scheduler.call_later(
                    timeout,
                    Box::new(move || {
                        if let Some(inner) = weak.upgrade() {
                            time_out(&inner, timeout);
                        }
                    }),
                );
                inner.attempt.borrow_mut().timeout_call = Some(call);
            }
            let weak: Weak<Inner> = Rc::downgrade(inner);
            let call = inner.scheduler.call_later(
                inner.interval.get(),
                Box::new(move || {
                    if let Some(inner) = weak.upgrade() {
                        try_lock(&inner, timeout);
                    }
                }),
            );
            inner.attempt.borrow_mut().try_lock_call = Some(call);
        }
    }
}

/// The attempt's timeout ran out (Twisted's `_cancelLock` with a `TimeoutError`).
fn time_out(inner: &Rc<Inner>, timeout: Duration) {
    let Some(trigger) = inner.stop_attempt() else {
        return;
    };
    let locked = inner.lock.borrow_mut().lock();
    match locked {
        Ok(true) => trigger.callback(()),
        Ok(false) => trigger.errback(TimeoutError::new(timeout)),
        Err(e) => trigger.errback(e),
    };
}

impl fmt::Debug for DeferredFilesystemLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name: Option<PathBuf> = self
            .inner
            .lock
            .try_borrow()
            .ok()
            .map(|l| Path::to_path_buf(l.name()));
        f.debug_struct("DeferredFilesystemLock")
            .field("name", &name)
            .field(
                "locked",
                &self.inner.lock.try_borrow().map(|l| l.is_locked()).ok(),
            )
            .field("interval", &self.inner.interval.get())
            .finish()
    }
}

/// [`DeferredFilesystemLock::defer_until_locked`] called while an earlier call is still
/// retrying (Twisted's `AlreadyTryingToLockError`).
///
/// ```
/// use defer_core::errors::AlreadyTryingToLockError;
/// assert_eq!(
///     AlreadyTryingToLockError.to_string(),
///     "defer_until_locked isn't safe for concurrent use"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AlreadyTryingToLockError;

impl fmt::Display for AlreadyTryingToLockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("defer_until_locked isn't safe for concurrent use")
    }
}
impl Error for AlreadyTryingToLockError {}
