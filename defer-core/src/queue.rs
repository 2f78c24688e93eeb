//! [`DeferredQueue`]: Twisted's `DeferredQueue`, a queue whose `get` returns a Deferred.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::rc::{Rc, Weak};

use crate::deferred::{Deferred, succeed};
use crate::lock::{WaitQueue, listens};
use crate::trigger::Trigger;

/// A queue for Deferred code: [`put`](DeferredQueue::put) items, [`get`](DeferredQueue::get)
/// Deferreds of them. Twisted's `DeferredQueue`.
///
/// An item put while getters wait goes to the oldest getter; otherwise it is stored, up to
/// `size` items ([`QueueOverflow`] beyond). A `get` takes the oldest stored item at once;
/// otherwise it waits, up to `backlog` waiting getters ([`QueueUnderflow`] beyond). Cancelling a
/// waiting getter removes it (in constant time), so a later item is not lost to it; a getter
/// whose Deferred was dropped (nobody listens to it any more) is skipped the same way, and takes
/// no place in the backlog. Dropping the queue fails the getters someone still holds with
/// [`TriggerDropped`](crate::errors::TriggerDropped) and reports nothing for the others. As with
/// [`DeferredLock`](crate::DeferredLock), a `put` made inside a getter's callback while another
/// `put` is handing an item over only queues the hand-over, so a chain of getters that put in
/// their callbacks never recurses.
///
/// Cloning a `DeferredQueue` gives another handle to the same queue.
///
/// ```
/// use defer_core::{DeferredQueue, testing::*};
///
/// let q = DeferredQueue::new();
/// let waiting = q.get().unwrap();
/// assert_no_result(&waiting);
/// q.put("first").unwrap();                 // straight to the waiting getter
/// q.put("second").unwrap();                // stored
/// assert_eq!(success_result_of(waiting), "first");
/// assert_eq!(success_result_of(q.get().unwrap()), "second");
/// ```
pub struct DeferredQueue<T> {
    core: Rc<RefCell<Core<T>>>,
}

struct Core<T> {
    pending: VecDeque<T>,
    waiting: WaitQueue<Trigger<T>>,
    size: Option<usize>,
    backlog: Option<usize>,
    /// Getters already given an item but not fired yet (see the type's docs).
    granted: VecDeque<(Trigger<T>, T)>,
    handing_over: bool,
}

impl<T: 'static> DeferredQueue<T> {
    /// An unbounded queue.
    ///
    /// ```
    /// let q = defer_core::DeferredQueue::<u8>::new();
    /// assert_eq!((q.size(), q.backlog()), (None, None));
    /// ```
    pub fn new() -> Self {
        DeferredQueue::with_limits(None, None)
    }

    /// A queue that stores at most `size` items and lets at most `backlog` getters wait (`None`:
    /// no limit). Twisted's `DeferredQueue(size, backlog)`.
    ///
    /// ```
    /// use defer_core::{DeferredQueue, errors::{QueueOverflow, QueueUnderflow}};
    /// let q = DeferredQueue::with_limits(Some(1), Some(0));
    /// assert!(matches!(q.get(), Err(QueueUnderflow)));
    /// q.put(1).unwrap();
    /// assert_eq!(q.put(2).unwrap_err().into_inner(), 2);
    /// ```
    pub fn with_limits(size: Option<usize>, backlog: Option<usize>) -> Self {
        DeferredQueue {
            core: Rc::new(RefCell::new(Core {
                pending: VecDeque::new(),
                waiting: WaitQueue::new(),
                size,
                backlog,
                granted: VecDeque::new(),
                handing_over: false,
            })),
        }
    }

    /// Puts an item: to the oldest waiting getter that someone still listens to, else into the
    /// store. Fails with [`QueueOverflow`], which gives the item back, when no getter waits and
    /// the store is full.
    ///
    /// ```
    /// use defer_core::DeferredQueue;
    /// let q = DeferredQueue::with_limits(Some(0), None);
    /// let overflow = q.put("x").unwrap_err();
    /// assert_eq!(overflow.into_inner(), "x");
    /// ```
    pub fn put(&self, item: T) -> Result<(), QueueOverflow<T>> {
        let skipped;
        {
            let mut c = self.core.borrow_mut();
            let (getter, dead) = c.next_getter();
            skipped = dead;
            if let Some(getter) = getter {
                c.granted.push_back((getter, item));
            } else if c.size.is_none_or(|size| c.pending.len() < size) {
                c.pending.push_back(item);
                drop(c);
                drop(skipped);
                return Ok(());
            } else {
                drop(c);
                drop(skipped);
                return Err(QueueOverflow { item });
            }
            if c.handing_over {
                drop(c);
                drop(skipped);
                return Ok(());
            }
            c.handing_over = true;
        }
        drop(skipped);
        struct Done<'a, T>(&'a RefCell<Core<T>>);
        impl<T> Drop for Done<'_, T> {
            fn drop(&mut self) {
                if let Ok(mut c) = self.0.try_borrow_mut() {
                    c.handing_over = false;
                }
            }
        }
        let _done = Done(&self.core);
        loop {
            let next = self.core.borrow_mut().granted.pop_front();
            let Some((trigger, item)) = next else { break };
            if listens(&trigger) {
                trigger.callback(item);
            } else {
                // Cancelled, or its Deferred dropped, after it was given the item but before it
                // fired: the item goes to the next getter, or back to the front of the store, as
                // it came first.
                drop(trigger);
                let skipped = {
                    let mut c = self.core.borrow_mut();
                    let (getter, skipped) = c.next_getter();
                    match getter {
                        Some(getter) => c.granted.push_back((getter, item)),
                        None => c.pending.push_front(item),
                    }
                    skipped
                };
                drop(skipped);
            }
        }
        Ok(())
    }

    /// A Deferred of the next item: the oldest stored item at once, else a waiting getter. Fails
    /// with [`QueueUnderflow`] when the store is empty and `backlog` getters already wait.
    ///
    /// ```
    /// use defer_core::{DeferredQueue, errors::QueueUnderflow};
    /// let q = DeferredQueue::<u8>::with_limits(None, Some(1));
    /// let _first = q.get().unwrap();
    /// assert_eq!(q.get().unwrap_err(), QueueUnderflow);
    /// ```
    pub fn get(&self) -> Result<Deferred<T>, QueueUnderflow> {
        let mut c = self.core.borrow_mut();
        if let Some(item) = c.pending.pop_front() {
            drop(c);
            return Ok(succeed(item));
        }
        let mut skipped = Vec::new();
        if c.backlog.is_some_and(|backlog| c.waiting.len() >= backlog) {
            // Getters nobody listens to any more take no place in the backlog.
            skipped = c.waiting.remove_where(|t| !listens(t));
            if c.backlog.is_some_and(|backlog| c.waiting.len() >= backlog) {
                drop(c);
                drop(skipped);
                return Err(QueueUnderflow);
            }
        }
        skipped.extend(c.waiting.prune_if_due(|t| !listens(t)));
        let weak: Weak<RefCell<Core<T>>> = Rc::downgrade(&self.core);
        let key = c.waiting.next_key();
        let (d, trigger) = Deferred::with_canceller(move |_own: Trigger<T>| {
            let Some(core) = weak.upgrade() else { return };
            let removed = core.borrow_mut().waiting.remove(key);
            drop(removed);
        });
        c.waiting.push_back(trigger);
        drop(c);
        drop(skipped);
        Ok(d)
    }

    /// How many items are stored (Twisted's `len(pending)`).
    ///
    /// ```
    /// let q = defer_core::DeferredQueue::new();
    /// q.put(1).unwrap();
    /// assert_eq!(q.pending(), 1);
    /// ```
    pub fn pending(&self) -> usize {
        self.core.borrow().pending.len()
    }

    /// How many getters are waiting (Twisted's `len(waiting)`): not counting cancelled ones, nor
    /// ones whose Deferred was dropped (they will never be given an item). It looks at each
    /// queued getter.
    ///
    /// ```
    /// let q = defer_core::DeferredQueue::<u8>::new();
    /// let _d = q.get().unwrap();
    /// drop(q.get().unwrap());                  // nobody listens to this one
    /// assert_eq!(q.waiting(), 1);
    /// ```
    pub fn waiting(&self) -> usize {
        self.core.borrow().waiting()
    }

    /// The most items the queue stores, or `None`.
    ///
    /// ```
    /// assert_eq!(defer_core::DeferredQueue::<u8>::with_limits(Some(2), None).size(), Some(2));
    /// ```
    pub fn size(&self) -> Option<usize> {
        self.core.borrow().size
    }

    /// The most getters that may wait, or `None`.
    ///
    /// ```
    /// assert_eq!(defer_core::DeferredQueue::<u8>::with_limits(None, Some(3)).backlog(), Some(3));
    /// ```
    pub fn backlog(&self) -> Option<usize> {
        self.core.borrow().backlog
    }
}

impl<T: 'static> Core<T> {
    /// Takes the oldest getter that still listens out of the queue, with the getters skipped on
    /// the way (to drop outside the borrow).
    fn next_getter(&mut self) -> (Option<Trigger<T>>, Vec<Trigger<T>>) {
        let mut skipped = Vec::new();
        while let Some(getter) = self.waiting.pop_front() {
            if listens(&getter) {
                return (Some(getter), skipped);
            }
            skipped.push(getter);
        }
        (None, skipped)
    }

    fn waiting(&self) -> usize {
        self.waiting.iter().filter(|t| listens(*t)).count()
    }
}

impl<T> Clone for DeferredQueue<T> {
    fn clone(&self) -> Self {
        DeferredQueue {
            core: self.core.clone(),
        }
    }
}

impl<T: 'static> Default for DeferredQueue<T> {
    fn default() -> Self {
        DeferredQueue::new()
    }
}

impl<T: 'static> fmt::Debug for DeferredQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.core.try_borrow() {
            Ok(c) => f
                .debug_struct("DeferredQueue")
                .field("pending", &c.pending.len())
                .field("waiting", &c.waiting())
                .field("size", &c.size)
                .field("backlog", &c.backlog)
                .finish(),
            Err(_) => f.write_str("DeferredQueue(busy)"),
        }
    }
}

/// [`DeferredQueue::put`] with no getter waiting and the store full. It gives the item back.
///
/// ```
/// use defer_core::DeferredQueue;
/// let q = DeferredQueue::with_limits(Some(0), None);
/// let e = q.put(5).unwrap_err();
/// assert_eq!(e.to_string(), "the DeferredQueue is full: the item was not put");
/// assert_eq!(*e.item(), 5);
/// ```
pub struct QueueOverflow<T> {
    item: T,
}

impl<T> QueueOverflow<T> {
    /// The item that was not put.
    ///
    /// ```
    /// let q = defer_core::DeferredQueue::with_limits(Some(0), None);
    /// assert_eq!(*q.put('x').unwrap_err().item(), 'x');
    /// ```
    pub fn item(&self) -> &T {
        &self.item
    }

    /// The item that was not put, by value.
    ///
    /// ```
    /// let q = defer_core::DeferredQueue::with_limits(Some(0), None);
    /// assert_eq!(q.put('x').unwrap_err().into_inner(), 'x');
    /// ```
    pub fn into_inner(self) -> T {
        self.item
    }
}

impl<T> fmt::Debug for QueueOverflow<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QueueOverflow { .. }")
    }
}

impl<T> fmt::Display for QueueOverflow<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the DeferredQueue is full: the item was not put")
    }
}
impl<T> Error for QueueOverflow<T> {}

/// [`DeferredQueue::get`] with the store empty and the backlog of waiting getters full.
///
/// ```
/// use defer_core::errors::QueueUnderflow;
/// assert_eq!(
///     QueueUnderflow.to_string(),
///     "the DeferredQueue is empty and its backlog of waiting getters is full"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueUnderflow;

impl fmt::Display for QueueUnderflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the DeferredQueue is empty and its backlog of waiting getters is full")
    }
}
impl Error for QueueUnderflow {}
