//! [`DeferredSemaphore`]: Twisted's `DeferredSemaphore`, a lock with several tokens.

use std::error::Error;
use std::fmt;

use crate::deferred::Deferred;
use crate::failure::Failure;
use crate::lock::{self, Shared, TokenCore};
use crate::outcome::Outcome;

/// A semaphore for Deferred code: at most `limit` holders at once. Twisted's
/// `DeferredSemaphore`.
///
/// [`acquire`](DeferredSemaphore::acquire) fires at once while a token is free, else queues;
/// [`release`](DeferredSemaphore::release) hands the token straight to the oldest waiter, or
/// puts it back. Waiters are served first-come, cancelling a waiting `acquire` removes it (in
/// constant time), a waiter whose Deferred was dropped before its turn is skipped (it never holds
/// a token nobody could give back), and hand-over never recurses, as for
/// [`DeferredLock`](crate::DeferredLock).
///
/// Cloning a `DeferredSemaphore` gives another handle to the same semaphore.
///
/// ```
/// use defer_core::{DeferredSemaphore, testing::*};
///
/// let sem = DeferredSemaphore::new(2).unwrap();
/// let a = sem.acquire();
/// let _b = sem.acquire();
/// let c = sem.acquire();
/// assert_eq!(sem.tokens(), 0);
/// assert_no_result(&c);
/// success_result_of(a).release().unwrap();   // the token goes to `c`
/// let _c = success_result_of(c);
/// assert_eq!(sem.tokens(), 0);
/// ```
#[derive(Clone)]
pub struct DeferredSemaphore {
    core: Shared<DeferredSemaphore>,
}

impl DeferredSemaphore {
    /// A semaphore with `tokens` tokens, all free. Fails with [`InvalidTokens`] for zero, as
    /// Twisted raises `ValueError` for fewer than one.
    ///
    /// ```
    /// use defer_core::{DeferredSemaphore, errors::InvalidTokens};
    /// assert_eq!(DeferredSemaphore::new(13).unwrap().limit(), 13);
    /// assert!(matches!(DeferredSemaphore::new(0), Err(InvalidTokens)));
    /// ```
    pub fn new(tokens: usize) -> Result<Self, InvalidTokens> {
        if tokens == 0 {
            return Err(InvalidTokens);
        }
        Ok(DeferredSemaphore {
            core: TokenCore::shared(tokens),
        })
    }

    /// A Deferred that fires with the semaphore once a token is the caller's.
    ///
    /// ```
    /// use defer_core::{DeferredSemaphore, testing::success_result_of};
    /// let sem = DeferredSemaphore::new(1).unwrap();
    /// let held = success_result_of(sem.acquire());
    /// assert_eq!(sem.tokens(), 0);
    /// held.release().unwrap();
    /// assert_eq!(sem.tokens(), 1);
    /// ```
    pub fn acquire(&self) -> Deferred<DeferredSemaphore> {
        lock::acquire(&self.core, self.clone())
    }

    /// Gives a token back: to the oldest waiter that someone still listens to, or to the pool.
    /// Fails with [`TooManyReleases`] if every token is already free.
    ///
    /// ```
    /// use defer_core::{DeferredSemaphore, errors::TooManyReleases};
    /// let sem = DeferredSemaphore::new(2).unwrap();
    /// assert_eq!(sem.release(), Err(TooManyReleases { limit: 2 }));
    /// ```
    pub fn release(&self) -> Result<(), TooManyReleases> {
        let limit = self.limit();
        lock::release(&self.core, self).map_err(|()| TooManyReleases { limit })
    }

    /// How many tokens are free.
    ///
    /// ```
    /// let sem = defer_core::DeferredSemaphore::new(3).unwrap();
    /// let _held = sem.acquire();
    /// assert_eq!(sem.tokens(), 2);
    /// ```
    pub fn tokens(&self) -> usize {
        self.core.borrow().tokens()
    }

    /// How many tokens there are in all.
    ///
    /// ```
    /// assert_eq!(defer_core::DeferredSemaphore::new(3).unwrap().limit(), 3);
    /// ```
    pub fn limit(&self) -> usize {
        self.core.borrow().limit()
    }

    /// How many `acquire`s are waiting: not counting cancelled ones, nor ones whose Deferred
    /// was dropped (they will never get a token). It looks at each queued waiter.
    ///
    /// ```
    /// let sem = defer_core::DeferredSemaphore::new(1).unwrap();
    /// let _a = sem.acquire();
    /// let _b = sem.acquire();
    /// drop(sem.acquire());                     // nobody listens to this one
    /// assert_eq!(sem.waiting(), 1);
    /// ```
    pub fn waiting(&self) -> usize {
        self.core.borrow().waiting()
    }

    /// A Deferred that fires with a [`SemaphoreGuard`] once a token is the caller's: the token
    /// is given back when the guard is dropped, however the code holding it leaves (return, `?`,
    /// panic, cancellation). Python's `async with semaphore:`.
    ///
    /// ```
    /// use defer_core::{DeferredSemaphore, ensure_deferred, testing::*};
    ///
    /// let sem = DeferredSemaphore::new(2).unwrap();
    /// let s = sem.clone();
    /// let d = ensure_deferred(async move {
    ///     let _a = s.acquire_guard().await?;
    ///     let _b = s.acquire_guard().await?;
    ///     Ok(s.tokens())
    /// });
    /// assert_eq!(success_result_of(d), 0);      // both held inside
    /// assert_eq!(sem.tokens(), 2);              // both given back
    /// ```
    pub fn acquire_guard(&self) -> Deferred<SemaphoreGuard> {
        self.acquire().add_callback(|held: DeferredSemaphore| {
            Ok(SemaphoreGuard {
                semaphore: Some(held),
            })
        })
    }

    /// Acquires a token, calls `f` (through [`maybe_deferred`](crate::maybe_deferred)), and
    /// releases the token when `f`'s outcome is known, success or failure. The outcome passes
    /// through. Twisted's `run`.
    ///
    /// ```
    /// use defer_core::{DeferredSemaphore, Failure, testing::*};
    /// let sem = DeferredSemaphore::new(1).unwrap();
    /// let d = sem.run(|| Err::<(), _>(Failure::msg("failed inside")));
    /// assert_eq!(failure_result_of(d).message(), "failed inside");
    /// assert_eq!(sem.tokens(), 1);             // released all the same
    /// ```
    pub fn run<F, R>(&self, f: F) -> Deferred<R::Value>
    where
        F: FnOnce() -> R + 'static,
        R: Outcome,
    {
        lock::run(
            self.acquire(),
            |held: DeferredSemaphore| held.release().map_err(Failure::from),
            f,
        )
    }
}

impl fmt::Debug for DeferredSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.core.try_borrow() {
            Ok(c) => f
                .debug_struct("DeferredSemaphore")
                .field("tokens", &c.tokens())
                .field("limit", &c.limit())
                .field("waiting", &c.waiting())
                .finish(),
            Err(_) => f.write_str("DeferredSemaphore(busy)"),
        }
    }
}

/// A token of a [`DeferredSemaphore`] that is given back when dropped, from
/// [`DeferredSemaphore::acquire_guard`].
///
/// The guard owns its token: do not also call [`DeferredSemaphore::release`] for it. Dropping
/// the guard ignores a [`TooManyReleases`] error (a drop cannot report it);
/// [`release`](SemaphoreGuard::release) gives it back. The guard keeps the semaphore alive.
///
/// ```
/// use defer_core::{DeferredSemaphore, testing::*};
///
/// let sem = DeferredSemaphore::new(1).unwrap();
/// let guard = success_result_of(sem.acquire_guard());
/// assert_eq!(sem.tokens(), 0);
/// drop(guard);
/// assert_eq!(sem.tokens(), 1);
/// ```
#[must_use = "the token is given back as soon as the guard is dropped"]
pub struct SemaphoreGuard {
    /// `None` once released by [`SemaphoreGuard::release`].
    semaphore: Option<DeferredSemaphore>,
}

impl SemaphoreGuard {
    /// The semaphore this guard holds a token of.
    ///
    /// ```
    /// use defer_core::{DeferredSemaphore, testing::success_result_of};
    /// let sem = DeferredSemaphore::new(3).unwrap();
    /// let guard = success_result_of(sem.acquire_guard());
    /// assert_eq!(guard.semaphore().tokens(), 2);
    /// ```
    pub fn semaphore(&self) -> &DeferredSemaphore {
        self.semaphore
            .as_ref()
            .expect("a live guard holds its semaphore")
    }

    /// Gives the token back now, reporting what [`DeferredSemaphore::release`] reports.
    ///
    /// ```
    /// use defer_core::{DeferredSemaphore, testing::success_result_of};
    /// let sem = DeferredSemaphore::new(1).unwrap();
    /// let guard = success_result_of(sem.acquire_guard());
    /// guard.release().unwrap();
    /// assert_eq!(sem.tokens(), 1);
    /// ```
    pub fn release(mut self) -> Result<(), TooManyReleases> {
        match self.semaphore.take() {
            Some(semaphore) => semaphore.release(),
            None => Ok(()),
        }
    }
}

impl Drop for SemaphoreGuard {
    fn drop(&mut self) {
        if let Some(semaphore) = self.semaphore.take() {
            // TooManyReleases means the token was already given back by hand.
            let _ = semaphore.release();
        }
    }
}

impl fmt::Debug for SemaphoreGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SemaphoreGuard")
            .field(&self.semaphore)
            .finish()
    }
}

/// [`DeferredSemaphore::new`] with zero tokens (Twisted raises `ValueError`).
///
/// ```
/// use defer_core::errors::InvalidTokens;
/// assert_eq!(InvalidTokens.to_string(), "a DeferredSemaphore needs at least one token, got 0");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InvalidTokens;

impl fmt::Display for InvalidTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a DeferredSemaphore needs at least one token, got 0")
    }
}
impl Error for InvalidTokens {}

/// [`DeferredSemaphore::release`] when every token is already free (Twisted asserts "Someone
/// released me too many times: too many tokens!").
///
/// ```
/// use defer_core::errors::TooManyReleases;
/// assert_eq!(
///     TooManyReleases { limit: 13 }.to_string(),
///     "released a DeferredSemaphore whose 13 tokens are all free already"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyReleases {
    /// The semaphore's number of tokens.
    pub limit: usize,
}

impl fmt::Display for TooManyReleases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "released a DeferredSemaphore whose {} tokens are all free already",
            self.limit
        )
    }
}
impl Error for TooManyReleases {}
