//! A coroutine driver's waker, made only when a future keeps one (issue 11: the `Arc` of a waker
//! made for every coroutine was 56 of the bytes a suspended coroutine costs, and a coroutine
//! that only ever waits on Deferreds never needs it).
//!
//! The driver polls its body with a *borrowed* waker: its data pointer is the driver's
//! [`LazyWaker`] itself, and it owns nothing. A future that only looks at it (as a
//! `DeferredFuture` does, to recognise its driver) or wakes it by reference during the poll costs
//! nothing; a future that *keeps* it clones it, and the clone is an owned `Arc<W>` waker, made
//! the first time and shared by every later clone.
//!
//! Invariants (what the `unsafe` below relies on):
//!
//! 1. A borrowed waker exists only inside [`LazyWaker::with_borrowed`], which hands it out as a
//!    `&Waker` bound to the call: it cannot outlive the `LazyWaker` it points at. (A `&Waker` is
//!    `Sync`, so another thread may use it during the call, through a scoped thread: everything
//!    it touches here is atomic.) The only owned waker made from it is its clone, an `Arc<W>`.
//! 2. `made`, without its low bit, is null or a pointer from `Arc::into_raw`, holding one strong
//!    count, released when the `LazyWaker` is dropped; it is written once, by a compare-exchange
//!    from null. Its low bit (an `Arc`'s pointer is aligned to at least 2, asserted) is the
//!    `woken` flag of the borrowed waker: one word in all (issue 11).

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::task::{RawWaker, RawWakerVTable, Wake, Waker};

/// The borrowed waker's `woken` flag: the low bit of `made` (invariant 2).
const WOKEN: usize = 1;

/// What an owned waker is made of: made on first need, on whichever thread clones it.
pub(crate) trait MadeWaker: Wake + Send + Sync + 'static {
    /// A new one. Runs no user code.
    fn make() -> Self;
}

/// A waker that is made only when a future keeps one; see the module's docs.
pub(crate) struct LazyWaker<W: MadeWaker> {
    /// Null, or an `Arc<W>` (one strong count held), with the borrowed waker's `woken` flag in
    /// its low bit (set by a wake through the borrowed waker, always during a poll: invariant 1):
    /// invariant 2.
    made: AtomicPtr<W>,
    _owns: PhantomData<Arc<W>>,
}

impl<W: MadeWaker> LazyWaker<W> {
    const BORROWED: RawWakerVTable = RawWakerVTable::new(
        Self::clone_borrowed,
        Self::wake_borrowed,
        Self::wake_borrowed,
        Self::drop_borrowed,
    );

    pub(crate) const fn new() -> Self {
        LazyWaker {
            made: AtomicPtr::new(ptr::null_mut()),
            _owns: PhantomData,
        }
    }

    /// Calls `f` with the borrowed waker (invariant 1: it cannot leave `f`).
    #[inline]
    pub(crate) fn with_borrowed<R>(&self, f: impl FnOnce(&Waker) -> R) -> R {
        let raw = RawWaker::new(self as *const Self as *const (), &Self::BORROWED);
        // SAFETY: the vtable's functions treat the data pointer as a `&LazyWaker<W>`, which it
        // is, and it stays valid for as long as the waker can be used: the waker is only lent to
        // `f` (invariant 1), and `self` outlives this call. Its functions are thread-safe: they
        // touch only atomics and make `Arc`s.
        let waker = ManuallyDrop::new(unsafe { Waker::from_raw(raw) });
        f(&waker)
    }

    /// Whether `waker` is this one's borrowed waker (its data pointer is this `LazyWaker`: no
    /// other waker's can be, as the address is inside a live driver that hands it to nobody).
    #[inline]
    pub(crate) fn is_mine(&self, waker: &Waker) -> bool {
        ptr::eq(waker.data(), self as *const Self as *const ())
    }

    /// Takes the flag a wake through the borrowed waker set.
    #[inline]
    pub(crate) fn take_woken(&self) -> bool {
        // Read first: the common case, not woken, writes nothing.
        self.made.load(Ordering::Relaxed).addr() & WOKEN != 0
            && self.made.fetch_and(!WOKEN, Ordering::Acquire).addr() & WOKEN != 0
    }

    /// The made `Arc`'s pointer (null if none), without the flag.
    #[inline(always)]
    fn arc_ptr(&self) -> *mut W {
        const { assert!(align_of::<W>() > WOKEN) };
        self.made.load(Ordering::Acquire).map_addr(|a| a & !WOKEN)
    }

    /// The owned waker's state, if one was made.
    #[inline]
    pub(crate) fn made(&self) -> Option<&W> {
        let p = self.arc_ptr();
        // SAFETY: invariant 2: null or a live `Arc<W>` this `LazyWaker` holds a count of, so
        // valid for as long as `&self`.
        unsafe { p.as_ref() }
    }

    /// How many owned wakers (and other `Arc`s) share the made state besides this `LazyWaker`'s
    /// own count: 0 if none was made.
    pub(crate) fn others(&self) -> usize {
        let p = self.arc_ptr();
        if p.is_null() {
            return 0;
        }
        // SAFETY: invariant 2; the `Arc` is not dropped (`ManuallyDrop`), so the count we hold
        // stays held.
        let arc = ManuallyDrop::new(unsafe { Arc::from_raw(p) });
        Arc::strong_count(&arc) - 1
    }

    /// The owned state, made now if it was not.
    pub(crate) fn get_or_make(&self) -> Arc<W> {
        let p = self.arc_ptr();
        if !p.is_null() {
            // SAFETY: invariant 2: a live `Arc<W>`'s pointer; one more count for the one
            // returned.
            unsafe {
                Arc::increment_strong_count(p);
                return Arc::from_raw(p);
            }
        }
        let new = Arc::new(W::make());
        let raw = Arc::into_raw(new.clone()) as *mut W;
        // From null (no flag) or from the flag alone: the flag is kept.
        let mut seen = self.made.load(Ordering::Acquire);
        loop {
            if !seen.map_addr(|a| a & !WOKEN).is_null() {
                break;
            }
            let with = raw.map_addr(|a| a | (seen.addr() & WOKEN));
            match self
                .made
                .compare_exchange(seen, with, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return new,
                Err(now) => seen = now,
            }
        }
        // Another thread made one first (a scoped thread cloning the borrowed waker while the
        // driver's thread does): use that one.
        let existing = seen.map_addr(|a| a & !WOKEN);
        // SAFETY: `raw` came from `Arc::into_raw` above and was not published; `existing` is
        // invariant 2's pointer.
        unsafe {
            drop(Arc::from_raw(raw));
            Arc::increment_strong_count(existing);
            Arc::from_raw(existing)
        }
    }

    /// An owned waker, made now if none was.
    pub(crate) fn owned(&self) -> Waker {
        Waker::from(self.get_or_make())
    }

    fn clone_borrowed(data: *const ()) -> RawWaker {
        // SAFETY: invariant 1: a borrowed waker's data is a live `LazyWaker<W>`.
        let this = unsafe { &*(data as *const Self) };
        let owned = ManuallyDrop::new(this.owned());
        RawWaker::new(owned.data(), owned.vtable())
    }

    fn wake_borrowed(data: *const ()) {
        // SAFETY: invariant 1: a borrowed waker's data is a live `LazyWaker<W>`.
        let this = unsafe { &*(data as *const Self) };
        this.made.fetch_or(WOKEN, Ordering::Release);
    }

    fn drop_borrowed(_: *const ()) {}
}

impl<W: MadeWaker> Drop for LazyWaker<W> {
    fn drop(&mut self) {
        let p = self.made.get_mut().map_addr(|a| a & !WOKEN);
        if !p.is_null() {
            // SAFETY: invariant 2: the count this `LazyWaker` holds, released once.
            drop(unsafe { Arc::from_raw(p) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Counted(AtomicUsize);
    impl Wake for Counted {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    impl MadeWaker for Counted {
        fn make() -> Self {
            Counted(AtomicUsize::new(0))
        }
    }

    #[test]
    fn looking_and_waking_by_reference_makes_nothing() {
        let lw = LazyWaker::<Counted>::new();
        lw.with_borrowed(|w| {
            assert!(lw.is_mine(w));
            w.wake_by_ref();
        });
        assert!(lw.made().is_none());
        assert!(lw.take_woken());
        assert!(!lw.take_woken());
        assert_eq!(lw.others(), 0);
    }

    #[test]
    fn a_clone_is_owned_and_shared_by_later_clones() {
        let lw = LazyWaker::<Counted>::new();
        let (a, b) = lw.with_borrowed(|w| (w.clone(), w.clone()));
        assert!(!lw.is_mine(&a));
        assert!(a.will_wake(&b));
        assert_eq!(lw.others(), 2);
        a.wake_by_ref();
        b.wake();
        assert_eq!(lw.made().unwrap().0.load(Ordering::SeqCst), 2);
        drop(a);
        assert_eq!(lw.others(), 0);
        assert!(!lw.take_woken());
    }

    #[test]
    fn a_clone_outlives_the_lazy_waker() {
        let lw = LazyWaker::<Counted>::new();
        let kept = lw.with_borrowed(|w| w.clone());
        drop(lw);
        kept.wake_by_ref();
        drop(kept);
    }

    #[test]
    fn a_wake_before_the_waker_is_made_is_kept_with_it() {
        let lw = LazyWaker::<Counted>::new();
        let kept = lw.with_borrowed(|w| {
            w.wake_by_ref();
            w.clone()
        });
        assert!(lw.made().is_some());
        assert!(lw.take_woken());
        assert!(!lw.take_woken());
        assert!(lw.made().is_some());
        assert_eq!(lw.others(), 1);
        drop(kept);
    }

    #[test]
    fn clones_on_two_threads_share_one_made_state() {
        let lw = LazyWaker::<Counted>::new();
        let wakers = lw.with_borrowed(|w| {
            std::thread::scope(|s| {
                let t = s.spawn(|| w.clone());
                let here = w.clone();
                (here, t.join().unwrap())
            })
        });
        assert!(wakers.0.will_wake(&wakers.1));
        assert_eq!(lw.others(), 2);
        lw.with_borrowed(|w| std::thread::scope(|s| s.spawn(|| w.wake_by_ref()).join().unwrap()));
        assert!(lw.take_woken());
    }
}
