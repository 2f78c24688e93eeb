//! [`DeferredLock`] (Twisted's `DeferredLock`), and the token core it shares with
//! [`DeferredSemaphore`](crate::DeferredSemaphore).
//!
//! **Hand-over never recurses.** In Twisted, `release()` fires the oldest waiter's Deferred
//! inside itself, so a waiter that releases in its own callback nests one hand-over in the next,
//! and about 200 such waiters overflow the stack. Here the state changes at once (the lock passes
//! to the oldest waiter, which leaves the queue), but a `release()` made while a hand-over of the
//! same lock is already running on this thread only records the waiter to fire; the outermost
//! `release()` fires the recorded waiters one after another, in order, in a loop.
//!
//! **Waiters.** The queue is a [`WaitQueue`]: cancelling any waiter removes it in O(1). A waiter
//! is served only if it still [`listens`]: not cancelled, and its Deferred not dropped. Waiters
//! whose Deferred was dropped are skipped at hand-over, and pruned when the queue has doubled
//! (O(1) amortised per push), so they never hold a token nor pile up while it is held.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::rc::{Rc, Weak};

use crate::deferred::{Deferred, maybe_deferred, succeed};
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::trigger::Trigger;

/// A FIFO of waiters from which any one can be removed in O(1): a slab of nodes linked in
/// order, with a free list. A [`WaitKey`] names one entry; it carries the entry's unique stamp,
/// so a key whose entry has left (granted, cancelled, skipped) never matches another entry that
/// reuses its node. Cancelling n waiters thus costs O(n) in all, where a search of a plain queue
/// per cancel cost O(n²).
pub(crate) struct WaitQueue<W> {
    nodes: Vec<Node<W>>,
    /// Nodes not in use, to reuse before growing `nodes`.
    free: Vec<usize>,
    head: usize,
    tail: usize,
    len: usize,
    next_stamp: u64,
    /// The length at which [`prune_if_due`](WaitQueue::prune_if_due) next looks for dead entries.
    prune_at: usize,
}

impl<W> Drop for WaitQueue<W> {
    /// Drops the waiters front to back (a dropped trigger fails its Deferred, so the order shows):
    /// the oldest first, as they would have been served.
    fn drop(&mut self) {
        while let Some(waiter) = self.pop_front() {
            drop(waiter);
        }
    }
}

/// The least `prune_at`: short queues are never pruned on push.
const PRUNE_MIN: usize = 64;

struct Node<W> {
    prev: usize,
    next: usize,
    stamp: u64,
    item: Option<W>,
}

/// Names one entry of a [`WaitQueue`]; stale once the entry has left.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WaitKey {
    index: usize,
    stamp: u64,
}

const NIL: usize = usize::MAX;

impl<W> WaitQueue<W> {
    pub(crate) fn new() -> Self {
        WaitQueue {
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
            next_stamp: 0,
            prune_at: PRUNE_MIN,
        }
    }

    /// Before a push: once the queue has doubled since it was last pruned, removes the entries
    /// for which `dead` holds (waiters whose Deferred was dropped, which nothing else would take
    /// out until a hand-over reached them) and returns them. Each prune looks at as many entries
    /// as were pushed since the last, at least, so this costs O(1) amortised per push, and the
    /// queue never holds more than about twice its live entries.
    pub(crate) fn prune_if_due(&mut self, dead: impl FnMut(&W) -> bool) -> Vec<W> {
        if self.len < self.prune_at {
            return Vec::new();
        }
        let removed = self.remove_where(dead);
        self.prune_at = (2 * self.len).max(PRUNE_MIN);
        removed
    }

    /// How many entries are queued.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The key the next [`push_back`](WaitQueue::push_back) will return, so that a waiter's
    /// canceller can capture it before the waiter is made.
    pub(crate) fn next_key(&self) -> WaitKey {
        WaitKey {
            index: self.free.last().copied().unwrap_or(self.nodes.len()),
            stamp: self.next_stamp,
        }
    }

    pub(crate) fn push_back(&mut self, item: W) -> WaitKey {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        let node = Node {
            prev: self.tail,
            next: NIL,
            stamp,
            item: Some(item),
        };
        let index = match self.free.pop() {
            Some(i) => {
                self.nodes[i] = node;
                i
            }
            None => {
                self.nodes.push(node);
                self.nodes.len() - 1
            }
        };
        match self.tail {
            NIL => self.head = index,
            t => self.nodes[t].next = index,
        }
        self.tail = index;
        self.len += 1;
        WaitKey { index, stamp }
    }

    pub(crate) fn pop_front(&mut self) -> Option<W> {
        match self.head {
            NIL => None,
            head => Some(self.unlink(head)),
        }
    }

    /// Removes the entry `key` names, if it is still queued. O(1).
    pub(crate) fn remove(&mut self, key: WaitKey) -> Option<W> {
        let node = self.nodes.get(key.index)?;
        if node.stamp != key.stamp || node.item.is_none() {
            return None;
        }
        Some(self.unlink(key.index))
    }

    /// Removes the entries for which `dead` holds, in one pass, and returns them (for the caller
    /// to drop outside any borrow).
    pub(crate) fn remove_where(&mut self, mut dead: impl FnMut(&W) -> bool) -> Vec<W> {
        let mut removed = Vec::new();
        let mut at = self.head;
        while at != NIL {
            let next = self.nodes[at].next;
            if self.nodes[at].item.as_ref().is_some_and(&mut dead) {
                removed.push(self.unlink(at));
            }
            at = next;
        }
        removed
    }

    /// The queued entries, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &W> {
        let mut at = self.head;
        std::iter::from_fn(move || {
            let node = self.nodes.get(at)?;
            at = node.next;
            node.item.as_ref()
        })
    }

    fn unlink(&mut self, index: usize) -> W {
        let (prev, next, item) = {
            let node = &mut self.nodes[index];
            (node.prev, node.next, node.item.take())
        };
        match prev {
            NIL => self.head = next,
            p => self.nodes[p].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n].prev = prev,
        }
        self.len -= 1;
        if self.len * 4 < self.prune_at {
            // Shrunk well below the last prune: prune again once it has doubled from here.
            self.prune_at = (2 * self.len).max(PRUNE_MIN);
        }
        if self.len == 0 {
            // Give the memory of a burst of waiters back. Stamps keep growing, so an old key
            // still matches nothing.
            self.nodes = Vec::new();
            self.free = Vec::new();
        } else {
            self.free.push(index);
        }
        item.expect("a linked node holds its entry")
    }
}

/// Whether a queued waiter may still be served: someone listens to its Deferred, and it was not
/// cancelled. A waiter whose Deferred was dropped is skipped, so it never takes a token (or an
/// item) that nobody could give back.
pub(crate) fn listens<T: 'static>(trigger: &Trigger<T>) -> bool {
    !trigger.is_cancelled() && trigger.has_listener()
}

/// Tokens, a FIFO of waiters, and the hand-over loop. `H` is the handle a waiter is given.
pub(crate) struct TokenCore<H> {
    tokens: usize,
    limit: usize,
    waiting: WaitQueue<Trigger<H>>,
    /// Waiters that have been given a token but whose Deferred has not been fired yet.
    granted: VecDeque<Trigger<H>>,
    handing_over: bool,
}

pub(crate) type Shared<H> = Rc<RefCell<TokenCore<H>>>;

impl<H: Clone + 'static> TokenCore<H> {
    pub(crate) fn shared(limit: usize) -> Shared<H> {
        Rc::new(RefCell::new(TokenCore {
            tokens: limit,
            limit,
            waiting: WaitQueue::new(),
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

    /// The waiters that may still be served (not those whose Deferred was dropped). O(waiters).
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.iter().filter(|t| listens(*t)).count()
    }
}

/// Takes a token now, or queues a waiter whose canceller removes it from the queue (in O(1)).
pub(crate) fn acquire<H: Clone + 'static>(core: &Shared<H>, handle: H) -> Deferred<H> {
    let mut c = core.borrow_mut();
    if c.tokens > 0 {
        c.tokens -= 1;
        drop(c);
        return succeed(handle);
    }
    let pruned = c.waiting.prune_if_due(|t| !listens(t));
    let weak: Weak<RefCell<TokenCore<H>>> = Rc::downgrade(core);
    let key = c.waiting.next_key();
    let (d, trigger) = Deferred::with_canceller(move |_own: Trigger<H>| {
        let Some(core) = weak.upgrade() else { return };
        let removed = core.borrow_mut().waiting.remove(key);
        // Dropped outside the borrow; the Deferred is marked cancelled, so this fires nothing.
        drop(removed);
    });
    let pushed = c.waiting.push_back(trigger);
    debug_assert_eq!((pushed.index, pushed.stamp), (key.index, key.stamp));
    drop(c);
    drop(pruned);
    drop(handle);
    d
}

/// Gives one token back: to the oldest waiter that still listens if there is one, else to the
/// pool. `Err` if every token is already in the pool.
pub(crate) fn release<H: Clone + 'static>(core: &Shared<H>, handle: &H) -> Result<(), ()> {
    {
        let mut c = core.borrow_mut();
        let skipped = give_back(&mut c)?;
        if c.handing_over {
            // An outer release() on this thread is firing waiters: it will fire this one too.
            drop(c);
            drop(skipped);
            return Ok(());
        }
        c.handing_over = true;
        drop(c);
        drop(skipped);
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
        if listens(&trigger) {
            trigger.callback(handle.clone());
        } else {
            // Cancelled, or its Deferred dropped, after it was granted but before it fired:
            // pass the token on.
            drop(trigger);
            let skipped = {
                let mut c = core.borrow_mut();
                give_back(&mut c)
            };
            drop(skipped);
        }
    }
    Ok(())
}

/// Passes a token to the oldest waiter that still listens (into `granted`), or to the pool.
/// Returns the waiters it skipped, to drop outside the borrow.
fn give_back<H: 'static>(c: &mut TokenCore<H>) -> Result<Vec<Trigger<H>>, ()> {
    let mut skipped = Vec::new();
    while let Some(trigger) = c.waiting.pop_front() {
        if listens(&trigger) {
            c.granted.push_back(trigger);
            return Ok(skipped);
        }
        skipped.push(trigger);
    }
    if c.tokens < c.limit {
        c.tokens += 1;
        Ok(skipped)
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
/// waiting `acquire` removes it from the queue (in constant time, so cancelling many waiters
/// costs linear time in all) and fails it with [`CancelledError`](crate::errors::CancelledError).
///
/// The lock only goes to a waiter that someone still listens to: one whose Deferred was dropped
/// before its turn (no handle, no step, no awaiter left) is skipped, since nobody could ever
/// release the lock it would be given, and nothing is reported for it.
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
///
/// // A waiter nobody listens to is skipped.
/// let held = success_result_of(lock.acquire());
/// drop(lock.acquire());
/// held.release().unwrap();
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

    /// Releases the lock: it passes to the oldest waiter that someone still listens to (and
    /// stays locked), or unlocks. Fails with [`NotLocked`] if it is not locked.
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

    /// How many `acquire`s are waiting: not counting cancelled ones, nor ones whose Deferred
    /// was dropped (they will never get the lock). It looks at each queued waiter.
    ///
    /// ```
    /// let lock = defer_core::DeferredLock::new();
    /// let _a = lock.acquire();
    /// let _b = lock.acquire();
    /// drop(lock.acquire());                    // nobody listens to this one
    /// assert_eq!(lock.waiting(), 1);
    /// ```
    pub fn waiting(&self) -> usize {
        self.core.borrow().waiting()
    }

    /// A Deferred that fires with a [`LockGuard`] once the lock is the caller's: the lock is
    /// released when the guard is dropped. So a coroutine that holds the guard in a local
    /// releases the lock however it leaves: by returning, by `?`, by panicking, or by being
    /// cancelled (the cancelled await fails, and the body's `?` drops the guard). The scoped
    /// form of `acquire`, as Python's `async with lock:`.
    ///
    /// ```
    /// use defer_core::{DeferredLock, Failure, ensure_deferred, testing::*};
    ///
    /// let lock = DeferredLock::new();
    /// let l = lock.clone();
    /// let d = ensure_deferred(async move {
    ///     let _guard = l.acquire_guard().await?;
    ///     Err::<(), _>(Failure::msg("left early"))?;   // `?` drops the guard
    ///     Ok(())
    /// });
    /// assert_eq!(failure_result_of(d).message(), "left early");
    /// assert!(!lock.is_locked());
    /// ```
    pub fn acquire_guard(&self) -> Deferred<LockGuard> {
        self.acquire()
            .add_callback(|held: DeferredLock| Ok(LockGuard { lock: Some(held) }))
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

/// A held [`DeferredLock`] that is released when dropped, from
/// [`DeferredLock::acquire_guard`].
///
/// The guard owns its hold on the lock: do not also call [`DeferredLock::release`] for it, or
/// the guard's drop would release the lock once more, taking it from its next holder. Dropping
/// the guard ignores a [`NotLocked`] error (a drop cannot report it);
/// [`release`](LockGuard::release) gives it back. The guard keeps the lock alive, so it may
/// outlive every other handle to the lock, and its drop still hands the lock to the next waiter.
///
/// ```
/// use defer_core::{DeferredLock, testing::*};
///
/// let lock = DeferredLock::new();
/// let guard = success_result_of(lock.acquire_guard());
/// let next = lock.acquire_guard();
/// assert_no_result(&next);
/// drop(guard);                                  // hands the lock to `next`
/// let guard = success_result_of(next);
/// assert!(lock.is_locked());
/// guard.release().unwrap();
/// assert!(!lock.is_locked());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard {
    /// `None` once released by [`LockGuard::release`].
    lock: Option<DeferredLock>,
}

impl LockGuard {
    /// The lock this guard holds.
    ///
    /// ```
    /// use defer_core::{DeferredLock, testing::success_result_of};
    /// let lock = DeferredLock::new();
    /// let guard = success_result_of(lock.acquire_guard());
    /// assert!(guard.lock().is_locked());
    /// ```
    pub fn lock(&self) -> &DeferredLock {
        self.lock.as_ref().expect("a live guard holds its lock")
    }

    /// Releases the lock now, reporting what [`DeferredLock::release`] reports.
    ///
    /// ```
    /// use defer_core::{DeferredLock, testing::success_result_of};
    /// let lock = DeferredLock::new();
    /// let guard = success_result_of(lock.acquire_guard());
    /// lock.release().unwrap();                  // released behind the guard's back
    /// assert!(guard.release().is_err());        // NotLocked: told, not hidden
    /// ```
    pub fn release(mut self) -> Result<(), NotLocked> {
        match self.lock.take() {
            Some(lock) => lock.release(),
            None => Ok(()),
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            // NotLocked means the hold was already released by hand; nothing to undo.
            let _ = lock.release();
        }
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LockGuard").field(&self.lock).finish()
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
