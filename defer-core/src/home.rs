//! Each thread's *inbox*: how other threads reach the `!Send` Deferreds and coroutines of a
//! thread (its *home*).
//!
//! A Deferred, a coroutine and a trigger live on one thread. Another thread cannot touch them;
//! it posts [`Mail`] to their home's inbox instead (a coroutine's wake, or a closure to run
//! there), and the home thread delivers it the next time it *attends* to its inbox:
//!
//! - the std run loop ([`react`](crate::react)) drains the inbox on every turn and parks the
//!   thread while there is nothing to do; a post unparks it;
//! - under an executor (a tokio `LocalSet` or `react`, `futures`' `block_on` or `LocalPool`),
//!   every Deferred's future polled by the executor drains the inbox and leaves its waker with
//!   it; a post wakes the most recently left one, whose task then drains it;
//! - nothing else: a thread that neither runs the loop nor polls a Deferred's future under an
//!   executor never sees its mail (a coroutine woken from another thread then waits, and says
//!   so in its Deferred's `Debug`).
//!
//! A post notifies only when the inbox goes from empty to not empty: a busy home thread is
//! woken once per batch, however many wakes arrive meanwhile.

use std::any::Any;
use std::cell::{OnceCell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::thread::{self, Thread, ThreadId};

use crate::engine::user_code;
use crate::failure::Failure;

/// Something another thread asks of a home thread.
pub(crate) enum Mail {
    /// Resume the coroutine with this id (a driver's waker was woken off its thread).
    Wake(u64),
    /// Run this closure on the home thread.
    Call(Box<dyn FnOnce() + Send>),
}

/// One thread's inbox.
pub(crate) struct Home {
    thread: ThreadId,
    /// Whether `mail` is non-empty: read without the lock on the home thread's fast paths.
    has_mail: AtomicBool,
    st: Mutex<State>,
}

#[derive(Default)]
struct State {
    mail: VecDeque<Mail>,
    /// The wakers of the executor tasks polling a Deferred's future on the home thread, keyed by
    /// that future's chain: waking any one of them gets the inbox drained.
    wakers: Vec<(usize, Waker)>,
    index: HashMap<usize, usize>,
    /// The std loop's thread while it runs (it parks when idle).
    parker: Option<Thread>,
    /// The home thread has exited: mail is dropped on arrival.
    closed: bool,
}

impl Home {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics under this lock; a poisoned lock still holds consistent state.
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The home thread's id.
    pub(crate) fn thread(&self) -> ThreadId {
        self.thread
    }

    /// Posts `mail` from any thread. Returns `false` (dropping it) if the home thread has exited.
    pub(crate) fn post(&self, mail: Mail) -> bool {
        let (waker, parker) = {
            let mut st = self.lock();
            if st.closed {
                drop(st);
                drop(mail);
                return false;
            }
            let first = st.mail.is_empty();
            st.mail.push_back(mail);
            if !first {
                // Whoever was told of the first letter will take this one too.
                return true;
            }
            self.has_mail.store(true, Ordering::Release);
            (st.wakers.last().map(|(_, w)| w.clone()), st.parker.clone())
        };
        // Outside the lock: a waker is an executor's code.
        if let Some(w) = waker {
            w.wake();
        }
        if let Some(t) = parker {
            t.unpark();
        }
        true
    }

    /// Whether something drains this inbox: an executor task polling a Deferred's future here,
    /// or the std loop.
    pub(crate) fn attended(&self) -> bool {
        let st = self.lock();
        !st.wakers.is_empty() || st.parker.is_some()
    }

    /// Whether there is undelivered mail.
    pub(crate) fn has_mail(&self) -> bool {
        self.has_mail.load(Ordering::Acquire)
    }

    /// Whether undelivered mail wakes coroutine `id`.
    pub(crate) fn has_wake_for(&self, id: u64) -> bool {
        self.lock()
            .mail
            .iter()
            .any(|m| matches!(m, Mail::Wake(i) if *i == id))
    }

    /// Makes the std loop on this (the home) thread the one a post unparks, or none; returns
    /// the previous one (a loop run inside another's callback restores it when it ends).
    pub(crate) fn set_parker(&self, parker: Option<Thread>) -> Option<Thread> {
        std::mem::replace(&mut self.lock().parker, parker)
    }

    /// Unparks the std loop if it runs (a reactor that must look at its timers again).
    pub(crate) fn wake_loop(&self) {
        let parker = self.lock().parker.clone();
        if let Some(t) = parker {
            t.unpark();
        }
    }

    /// Delivers the mail there is now, on the home thread. Mail posted meanwhile notifies
    /// afresh (the inbox was emptied), so one batch per call never loses any.
    pub(crate) fn drain(&self) -> bool {
        if !self.has_mail() {
            return false;
        }
        let batch = {
            let mut st = self.lock();
            self.has_mail.store(false, Ordering::Release);
            std::mem::take(&mut st.mail)
        };
        let any = !batch.is_empty();
        for mail in batch {
            deliver(mail);
        }
        any
    }
}

/// Runs one letter on the home thread.
fn deliver(mail: Mail) {
    match mail {
        Mail::Wake(id) => crate::coroutine::wake_here(id),
        Mail::Call(f) => {
            if let Err(payload) = user_code::call(f) {
                // Nobody to give it to: reported, as Twisted logs an error in `callFromThread`.
                crate::unhandled::report(&Failure::from_panic(payload));
            }
        }
    }
}

/// The thread-local slot: closes the inbox when the thread exits, so that later posts are
/// dropped on the posting thread instead of piling up.
struct Slot(OnceCell<Arc<Home>>);

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(home) = self.0.get() {
            let mail = {
                let mut st = home.lock();
                st.closed = true;
                st.wakers.clear();
                st.index.clear();
                std::mem::take(&mut st.mail)
            };
            // Closures from other threads, dropped here: their `Drop` is user code.
            user_code::drop_value(mail);
        }
    }
}

thread_local! {
    static HOME: Slot = const { Slot(OnceCell::new()) };
    /// Values a thread keeps for a letter that will come back to it ([`keep`]).
    static KEPT: RefCell<HashMap<u64, Box<dyn Any>>> = RefCell::new(HashMap::new());
}

/// Keys of [`keep`], unique across threads, so that a token taken on the wrong thread finds
/// nothing rather than another value.
static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

/// This thread's inbox (made at first use), or `None` during thread teardown.
pub(crate) fn current() -> Option<Arc<Home>> {
    HOME.try_with(|s| {
        s.0.get_or_init(|| {
            Arc::new(Home {
                thread: thread::current().id(),
                has_mail: AtomicBool::new(false),
                st: Mutex::new(State::default()),
            })
        })
        .clone()
    })
    .ok()
}

/// This thread's inbox if it has been made, without making it.
fn existing() -> Option<Arc<Home>> {
    HOME.try_with(|s| s.0.get().cloned()).ok().flatten()
}

/// A Deferred's future, keyed `key`, is pending under an executor whose waker is `waker`: leave
/// the waker with the inbox, and deliver the mail that is already there.
pub(crate) fn attend(key: usize, waker: &Waker) {
    let Some(home) = current() else { return };
    let known = {
        let st = home.lock();
        st.index
            .get(&key)
            .is_some_and(|&i| st.wakers[i].1.will_wake(waker))
    };
    if !known {
        // Cloned outside the lock: a waker's clone is an executor's code.
        let waker = waker.clone();
        let old = {
            let mut st = home.lock();
            match st.index.get(&key).copied() {
                Some(i) => Some(std::mem::replace(&mut st.wakers[i].1, waker)),
                None => {
                    let i = st.wakers.len();
                    st.wakers.push((key, waker));
                    st.index.insert(key, i);
                    None
                }
            }
        };
        user_code::drop_value(old);
    }
    home.drain();
}

/// The future keyed `key` completed or was dropped: take its waker back. If mail is waiting
/// (its task may have been the one told, and will not drain now), tell another task.
pub(crate) fn leave(key: usize) {
    let Some(home) = existing() else { return };
    let (old, next) = {
        let mut st = home.lock();
        let Some(i) = st.index.remove(&key) else {
            return;
        };
        let (_, old) = st.wakers.swap_remove(i);
        if let Some(&(moved, _)) = st.wakers.get(i) {
            st.index.insert(moved, i);
        }
        let next = if home.has_mail() {
            st.wakers.last().map(|(_, w)| w.clone())
        } else {
            None
        };
        (old, next)
    };
    user_code::drop_value(old);
    if let Some(w) = next {
        w.wake();
    }
}

/// A value kept on this thread until a letter comes back for it: the token is `Send`, the value
/// need not be.
pub(crate) struct Kept(u64);

/// Keeps `value` on this thread; [`Kept::take`] on this thread gives it back.
pub(crate) fn keep<T: 'static>(value: T) -> Kept {
    let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
    let _ = KEPT.try_with(|k| k.borrow_mut().insert(key, Box::new(value)));
    Kept(key)
}

impl Kept {
    /// The kept value, on the thread that kept it; `None` elsewhere or if already taken.
    pub(crate) fn take<T: 'static>(self) -> Option<T> {
        let boxed = KEPT
            .try_with(|k| k.borrow_mut().remove(&self.0))
            .ok()
            .flatten()?;
        boxed.downcast::<T>().ok().map(|b| *b)
    }

    /// Drops the kept value, on the thread that kept it (its `Drop` is user code).
    pub(crate) fn forget(self) {
        let boxed = KEPT
            .try_with(|k| k.borrow_mut().remove(&self.0))
            .ok()
            .flatten();
        user_code::drop_value(boxed);
    }
}
