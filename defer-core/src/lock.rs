//! [`DeferredLock`] (Twisted's `DeferredLock`), and the token core it shares with
//! [`DeferredSemaphore`](crate::DeferredSemaphore).
//!
//! **Hand-over never recurses.** In Twisted, `release()` fires the oldest waiter's Deferred
//! inside itself, so a waiter that releases in its own callback nests one hand-over in the next,
//! and about 200 such waiters overflow the stack. Here the state changes at once (the lock passes
//! to the oldest waiter, which leaves the queue), but a `release()` made while a hand-over of the
//! same lock is already running on this thread only records the waiter to fire; the outermost
//! `release()` fires the recorded waiters one after another, in order, in a loop.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::rc::{Rc, Weak};

use crate::deferred::{Deferred, maybe_deferred, succeed};
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::trigger::Trigger;

/// Tokens, a FIFO of waiters, and the hand-over loop. `H` is the handle a waiter is given.
pub(crate) struct TokenCore<H> {
    tokens: usize,
    limit: usize,
    waiting: VecDeque<Waiter<H>>,
    next_id: u64,
    /// Waiters that have been given a token but whose Deferred has not been fired yet.
    granted: VecDeque<Trigger<H>>,
    handing_over: bool,
}

struct Waiter<H> {
    id: u64,
    trigger: Trigger<H>,
}

pub(crate) type Shared<H> = Rc<RefCell<TokenCore<H>>>;

impl<H: Clone + 'static> TokenCore<H> {
    pub(crate) fn shared(limit: usize) -> Shared<H> {
        Rc::new(RefCell::new(TokenCore {
            tokens: limit,
            limit,
            waiting: VecDeque::new(),
            next_id: 0,
            granted: VecDeque::new(),
            handing_over: false,
        }))
    }

    pub(crate) fn tokens(&self) -> usize {
        self.tokens
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

/// Takes a token now, or queues a waiter whose canceller removes it from the queue.
pub(crate) fn acquire<H: Clone + 'static>(core: &Shared<H>, handle: H) -> Deferred<H> {
    let mut c = core.borrow_mut();
    if c.tokens > 0 {
        c.tokens -= 1;
        drop(c);
        return succeed(handle);
    }
    let id = c.next_id;
    c.next_id += 1;
    let weak: Weak<RefCell<TokenCore<H>>> = Rc::downgrade(core);
    let (d, trigger) = Deferred::with_canceller(move |_own: Trigger<H>| {
        let Some(core) = weak.upgrade() else { return };
        let removed = {
            let mut c = core.borrow_mut();
            c.waiting
                .iter()
                .position(|w| w.id == id)
                .and_then(|at| c.waiting.remove(at))
        };
        // Dropped outside the borrow; the Deferred is marked cancelled, so this fires nothing.
        drop(removed);
    });
    c.waiting.push_back(Waiter { id, trigger });
    drop(c);
    drop(handle);
    d
}

/// Gives one token back: to the oldest waiter if there is one, else to the pool. `Err` if every
/// token is already in the pool.
pub(crate) fn release<H: Clone + 'static>(core: &Shared<H>, handle: &H) -> Result<(), ()> {
    {
        let mut c = core.borrow_mut();
        give_back(&mut c)?;
        if c.handing_over {
            // An outer release() on this thread is firing waiters: it will fire this one too.
            return Ok(());
        }
        c.handing_over = true;
    }
    struct Done<'a, H>(&'a Shared<H>);
    impl<H> Drop for Done<'_, H> {
        fn drop(&mut self) {
            if let Ok(mut c) = self.0.try_borrow_mut() {
                c.handing_over = false;
            }
        }
    }
    let _done = Done(core);
    loop {
        let next = core.borrow_mut().granted.pop_front();
        let Some(trigger) = next else { break };
        if trigger.is_cancelled() {
            // Cancelled after it was granted but before it fired: pass the token on.
            drop(trigger);
            let mut c = core.borrow_mut();
            let _ = give_back(&mut c);
        } else {
            trigger.callback(handle.clone());
        }
    }
    Ok(())
}

fn give_back<H>(c: &mut TokenCore<H>) -> Result<(), ()> {
    if let Some(w) = c.waiting.pop_front() {
        c.granted.push_back(w.trigger);
        Ok(())
    } else if c.tokens < c.limit {
        c.tokens += 1;
        Ok(())
    } else {
        Err(())
    }
}

/// Acquires, runs `f` through [`maybe_deferred`], and releases when its outcome is known.
pub(crate) fn run<H, F, R>(
    acquired: Deferred<H>,
    release: impl FnOnce(H) -> Result<(), Failure> + 'static,
    f: F,
) -> Deferred<R::Value>
where
    H: 'static,
    F: FnOnce() -> R + 'static,
    R: Outcome,
{
    acquired.add_callback(move |handle: H| {
        maybe_deferred(f).add_both(
            move |result: Result<R::Value, Failure>| match release(handle) {
                Err(e) if result.is_ok() => Err(e),
                _ => result,
            },
        )
    })
}

/// A lock for Deferred code: Twisted's `DeferredLock`.
///
/// [`acquire`](DeferredLock::acquire) returns a Deferred that fires with the lock (a handle to
/// it) once it is this caller's; [`release`](DeferredLock::release) hands it straight to the
/// oldest waiter, so it stays locked, or unlocks it. Waiters are served first-come; cancelling a
/// waiting `acquire` removes it from the queue and fails it with
/// [`CancelledError`](crate::errors::CancelledError).
///
/// Hand-over never recurses. In Twisted, `release()` fires the next waiter inside itself, so
/// waiters that release in their own callbacks nest, and about 200 of them overflow the stack.
/// Here the lock passes to the oldest waiter at once, but a `release()` made while a hand-over of
/// the same lock is running only records the waiter to fire; the outermost `release()` fires the
/// recorded waiters one after another, in order. So a waiter's callbacks may run just after the
/// `release()` inside another waiter's callback returns, instead of inside it.
///
/// Cloning a `DeferredLock` gives another handle to the same lock.
///
/// ```
/// use defer_core::{DeferredLock, testing::*};
///
/// let lock = DeferredLock::new();
/// let first = lock.acquire();
/// let second = lock.acquire();
/// assert!(lock.is_locked());
/// assert_no_result(&second);
/// let held = success_result_of(first);
/// held.release().unwrap();                 // hands the lock to `second`
/// assert!(lock.is_locked());
/// success_result_of(second).release().unwrap();
/// assert!(!lock.is_locked());
/// ```
#[derive(Clone)]
pub struct DeferredLock {
    core: Shared<DeferredLock>,
}

impl DeferredLock {
    /// An unlocked lock.
    ///
    /// ```
    /// assert!(!defer_core::DeferredLock::new().is_locked());
    /// ```
    pub fn new() -> Self {
        DeferredLock {
            core: TokenCore::shared(1),
        }
    }

    /// A Deferred that fires with the lock once it is the caller's: at once if the lock is free,
    /// else when every earlier waiter has had it.
    ///
    /// ```
    /// use defer_core::{DeferredLock, testing::success_result_of};
    /// let lock = DeferredLock::new();
    /// let d = lock.acquire().add_callback(|held: DeferredLock| {
    ///     // ... the critical section ...
    ///     held.release()?;
    ///     Ok("done")
    /// });
    /// assert_eq!(success_result_of(d), "done");
    /// assert!(!lock.is_locked());
    /// ```
    pub fn acquire(&self) -> Deferred<DeferredLock> {
        acquire(&self.core, self.clone())
    }

    /// Releases the lock: it passes to the oldest waiter (and stays locked), or unlocks.
    /// Fails with [`NotLocked`] if it is not locked.
    ///
    /// ```
    /// use defer_core::{DeferredLock, errors::NotLocked};
    /// let lock = DeferredLock::new();
    /// assert_eq!(lock.release(), Err(NotLocked));
    /// ```
    pub fn release(&self) -> Result<(), NotLocked> {
        release(&self.core, self).map_err(|()| NotLocked)
    }

    /// Whether the lock is held (Twisted's `locked`).
    ///
    /// ```
    /// let lock = defer_core::DeferredLock::new();
    /// let _held = lock.acquire();
    /// assert!(lock.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.core.borrow().tokens() == 0
    }

    /// How many `acquire`s are waiting.
    ///
    /// ```
    /// let lock = defer_core::DeferredLock::new();
    /// let _a = lock.acquire();
    /// let _b = lock.acquire();
    /// assert_eq!(lock.waiting(), 1);
    /// ```
    pub fn waiting(&self) -> usize {
        self.core.borrow().waiting()
    }

    /// Acquires the lock, calls `f` (through [`maybe_deferred`], so it may return `Ok`, `Err` or a
    /// Deferred, and a panic becomes a failure), and releases the lock when `f`'s outcome is
    /// known, success or failure. The outcome passes through. Twisted's `run`.
    ///
    /// ```
    /// use defer_core::{Deferred, DeferredLock, testing::*};
    /// let lock = DeferredLock::new();
    /// let (work, done) = Deferred::new();
    /// let d = lock.run(move || work);
    /// assert!(lock.is_locked());
    /// done.callback("second");
    /// assert_eq!(success_result_of(d), "second");
    /// assert!(!lock.is_locked());
    /// ```
    pub fn run<F, R>(&self, f: F) -> Deferred<R::Value>
    where
        F: FnOnce() -> R + 'static,
        R: Outcome,
    {
        run(
            self.acquire(),
            |held: DeferredLock| held.release().map_err(Failure::from),
            f,
        )
    }
}

impl Default for DeferredLock {
    fn default() -> Self {
        DeferredLock::new()
    }
}

impl fmt::Debug for DeferredLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.core.try_borrow() {
            Ok(c) => f
                .debug_struct("DeferredLock")
                .field("locked", &(c.tokens() == 0))
                .field("waiting", &c.waiting())
                .finish(),
            Err(_) => f.write_str("DeferredLock(busy)"),
        }
    }
}

/// [`DeferredLock::release`] of a lock that is not locked (Twisted asserts "Tried to release an
/// unlocked lock").
///
/// ```
/// use defer_core::errors::NotLocked;
/// assert_eq!(NotLocked.to_string(), "released a DeferredLock that is not locked");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NotLocked;

impl fmt::Display for NotLocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("released a DeferredLock that is not locked")
    }
}
impl Error for NotLocked {}
