//! [`Shared<T>`]: what `Rc<RefCell<T>>` does for a chain's state, with 8 bytes of header
//! instead of 24.
//!
//! Every pending `Deferred` is one of these blocks (issue 11: memory per pending unit). `Rc`
//! keeps two `usize` counts and `RefCell` one `isize` flag: 24 bytes before the state. A chain is
//! never shared by four billion handles, nor borrowed more than a few times at once, so here the
//! header is one word:
//!
//! | field | holds |
//! |---|---|
//! | `strong: u32` | the strong handles (`Shared`) |
//! | `weak: u16` | the weak handles (`SharedWeak`), plus one held by all the strong ones together |
//! | `borrow: u8` | 0 free, 1 to 254 shared borrows, 255 borrowed mutably |
//!
//! The borrow state has a byte of its own: borrowing mutably and letting go store constants, so
//! the chain loop's borrow after borrow of one chain is no chain of loads waiting on stores (with
//! the flag sharing a word with the weak count, masked in and out, `W1_chain_zst` took 40 % longer).
//!
//! Overflow never wraps: a strong count at `u32::MAX` aborts, as `Rc` does at `usize::MAX`; a
//! weak count that would overflow (65,535 weak handles to one chain at once: `DeferredControl`s
//! kept by the thousand) sticks at its maximum, so that the block (not what the chain holds,
//! which goes with the last strong handle) is leaked rather than freed under a handle; a 255th
//! shared borrow is refused like a conflicting one.
//!
//! The value is never dropped by its glue: when the last strong handle goes, [`Dispose::dispose`]
//! is called on it (the chain's state queues what it owns on the drop queue and reports a failure
//! nobody handled, see `cell.rs`), and whatever it leaves in place is forgotten. The block is
//! freed when the last weak handle goes too.
//!
//! The invariants every `unsafe` block below relies on:
//! 1. `ptr` of every handle points at a live block: the block is freed only when the weak count
//!    drops to zero, and each handle (strong handles through the one weak they share)
//!    holds one.
//! 2. The value is initialised while `strong > 0`, and never touched once `strong == 0`, but by
//!    `dispose` itself.
//! 3. A `&mut T` exists only inside a [`RefMut`] (borrow state 255) or inside `dispose` (no strong
//!    handle left, so no guard: each guard borrows a strong handle); a `&T` only inside a [`Ref`]
//!    (borrow state 1 to 254).

use std::cell::{Cell as StdCell, UnsafeCell};
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// What happens to a [`Shared`] value when its last strong handle goes. It is never dropped
/// otherwise: what `dispose` leaves in place is forgotten (leaked, never freed twice).
pub(crate) trait Dispose {
    fn dispose(&mut self);
}

const BORROWED_MUT: u8 = 0xFF;
const MAX_SHARED: u8 = 0xFE;

/// `repr(C)`: the counts first, in the value's cache line, where they are touched with the first
/// fields of the value (left to itself the compiler puts them after the value, at its end).
#[repr(C)]
struct Block<T> {
    strong: StdCell<u32>,
    weak: StdCell<u16>,
    borrow: StdCell<u8>,
    value: UnsafeCell<ManuallyDrop<T>>,
}

/// A counted, borrow-checked handle to a `T` (see the module's docs).
///
/// `NonNull` makes it `!Send` and `!Sync`, and nothing else does: a user who sends a `Deferred` to
/// another thread is told of that one field, not of every field of `T` a `PhantomData<T>` would
/// expose (`ui-tests`' `deferred_in_tokio_spawn`). `Drop` makes the drop checker assume a `T` is
/// used, as `PhantomData<T>` would.
pub(crate) struct Shared<T: Dispose> {
    ptr: NonNull<Block<T>>,
}

/// A handle that keeps the block, not the value: [`upgrade`](SharedWeak::upgrade) gives a strong
/// handle while one is left.
pub(crate) struct SharedWeak<T: Dispose> {
    ptr: NonNull<Block<T>>,
}

/// The value is borrowed in a way that conflicts with the borrow asked for.
#[derive(Debug)]
pub(crate) struct BorrowError;

impl<T: Dispose> Shared<T> {
    /// A block holding `value`, with one strong handle (this one).
    #[cfg(test)]
    pub(crate) fn with_value(value: T) -> Shared<T> {
        Shared::new_with(|| value)
    }

    /// A block holding what `make` makes, with one strong handle (this one). The block is
    /// allocated first and `make` called after, so that the value can be built in place rather
    /// than on the stack and copied in (a copy as costly as the rest of making a chain).
    #[inline(always)]
    pub(crate) fn new_with(make: impl FnOnce() -> T) -> Shared<T> {
        let block = Box::<Block<T>>::new_uninit();
        let block = Box::write(
            block,
            Block {
                strong: StdCell::new(1),
                weak: StdCell::new(1),
                borrow: StdCell::new(0),
                value: UnsafeCell::new(ManuallyDrop::new(make())),
            },
        );
        Shared {
            ptr: NonNull::from(Box::leak(block)),
        }
    }

    #[inline(always)]
    fn block(&self) -> &Block<T> {
        // SAFETY: invariant 1: the block is live while this handle is.
        unsafe { self.ptr.as_ref() }
    }

    /// Borrows the value; `Err` if it is borrowed mutably (or by 254 shared borrows already).
    #[inline]
    pub(crate) fn try_borrow(&self) -> Result<Ref<'_, T>, BorrowError> {
        let b = self.block();
        let n = b.borrow.get();
        if n >= MAX_SHARED {
            return Err(BorrowError);
        }
        b.borrow.set(n + 1);
        Ok(Ref {
            ptr: self.ptr,
            _handle: PhantomData,
        })
    }

    /// Borrows the value mutably; `Err` if it is borrowed at all.
    #[inline]
    pub(crate) fn try_borrow_mut(&self) -> Result<RefMut<'_, T>, BorrowError> {
        let b = self.block();
        if b.borrow.get() != 0 {
            return Err(BorrowError);
        }
        b.borrow.set(BORROWED_MUT);
        Ok(RefMut {
            ptr: self.ptr,
            _handle: PhantomData,
        })
    }

    /// Borrows the value. The engine never borrows a chain it has borrowed mutably (no user code
    /// runs under a borrow, `cell.rs`): a conflict is a bug of the engine's, and panics.
    #[inline]
    #[track_caller]
    pub(crate) fn borrow(&self) -> Ref<'_, T> {
        match self.try_borrow() {
            Ok(r) => r,
            Err(_) => borrow_conflict(),
        }
    }

    /// Borrows the value mutably; a conflict panics, as in [`borrow`](Shared::borrow).
    #[inline]
    #[track_caller]
    pub(crate) fn borrow_mut(&self) -> RefMut<'_, T> {
        match self.try_borrow_mut() {
            Ok(r) => r,
            Err(_) => borrow_conflict(),
        }
    }

    /// The alignment of the block, which `into_raw` gives the address of (`one_of.rs` keeps its
    /// tag in the low bits).
    pub(crate) const BLOCK_ALIGN: usize = align_of::<Block<T>>();

    /// The handle as a raw pointer, keeping its strong reference (for `one_of.rs`).
    #[inline(always)]
    pub(crate) fn into_raw(this: Self) -> NonNull<()> {
        ManuallyDrop::new(this).ptr.cast()
    }

    /// The handle [`into_raw`](Shared::into_raw) gave.
    ///
    /// # Safety
    /// `p` came from `into_raw` of a `Shared<T>`, and is taken back once.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(p: NonNull<()>) -> Shared<T> {
        Shared { ptr: p.cast() }
    }

    /// How many strong handles there are.
    #[inline]
    pub(crate) fn strong_count(this: &Self) -> usize {
        this.block().strong.get() as usize
    }

    /// Whether the two handles are to the same block.
    #[inline]
    pub(crate) fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }

    /// The block's address, as an identity (never dereferenced).
    #[inline]
    pub(crate) fn as_ptr(this: &Self) -> *const () {
        this.ptr.as_ptr() as *const ()
    }

    /// A weak handle to the same block.
    #[inline]
    pub(crate) fn downgrade(this: &Self) -> SharedWeak<T> {
        add_weak(this.block());
        SharedWeak { ptr: this.ptr }
    }

    /// The last strong handle went: dispose of the value, then let go of the weak reference the
    /// strong handles held together.
    #[inline(never)]
    fn last_strong_gone(&mut self) {
        // SAFETY: `strong` is 0, so no other strong handle, hence no guard, exists (invariant 3),
        // and no weak handle can make one (`upgrade` checks `strong`); the value is still
        // initialised (invariant 2). `dispose` is the last use of the value.
        let value: &mut T = unsafe { &mut *(*self.ptr.as_ptr()).value.get() };
        value.dispose();
        // SAFETY: the strong handles' weak reference is released exactly once, here.
        unsafe { release_weak(self.ptr) };
    }
}

#[cold]
#[track_caller]
fn borrow_conflict() -> ! {
    panic!(
        "defer: a chain's state was borrowed while borrowed mutably, or borrowed mutably while \
         borrowed (a bug in the engine)"
    )
}

/// One more weak reference; sticks at the maximum (the block then leaks).
#[inline]
fn add_weak<T>(b: &Block<T>) {
    let w = b.weak.get();
    if w != u16::MAX {
        b.weak.set(w + 1);
    }
}

/// One weak reference fewer; frees the block at the last.
///
/// # Safety
/// `ptr` is live, and the caller owned one weak reference, which it does not use again.
#[inline]
unsafe fn release_weak<T>(ptr: NonNull<Block<T>>) {
    // SAFETY: live, as the caller guarantees.
    let b = unsafe { ptr.as_ref() };
    let weak = b.weak.get();
    if weak == u16::MAX {
        // Stuck at the maximum: never freed.
        return;
    }
    b.weak.set(weak - 1);
    if weak == 1 {
        // SAFETY: that was the last reference of any kind: no handle points here any more
        // (invariant 1), and the value was disposed of when `strong` reached 0 (a weak count of
        // 0 implies it: the strong handles hold one). The block came from `Box::new`; freeing it
        // drops no `T` (`ManuallyDrop`).
        drop(unsafe { Box::from_raw(ptr.as_ptr()) });
    }
}

impl<T: Dispose> Clone for Shared<T> {
    #[inline]
    fn clone(&self) -> Self {
        let b = self.block();
        let s = b.strong.get();
        if s == u32::MAX {
            // As `Rc` at `usize::MAX`: four billion handles to one chain is a leak of handles.
            std::process::abort();
        }
        b.strong.set(s + 1);
        Shared { ptr: self.ptr }
    }
}

impl<T: Dispose> Drop for Shared<T> {
    #[inline]
    fn drop(&mut self) {
        let b = self.block();
        let s = b.strong.get() - 1;
        b.strong.set(s);
        if s == 0 {
            self.last_strong_gone();
        }
    }
}

impl<T: Dispose> SharedWeak<T> {
    /// A strong handle, if one is left.
    #[inline]
    pub(crate) fn upgrade(&self) -> Option<Shared<T>> {
        // SAFETY: invariant 1: the block is live while this handle is.
        let b = unsafe { self.ptr.as_ref() };
        let s = b.strong.get();
        if s == 0 {
            return None;
        }
        if s == u32::MAX {
            std::process::abort();
        }
        b.strong.set(s + 1);
        Some(Shared { ptr: self.ptr })
    }
}

impl<T: Dispose> SharedWeak<T> {
    /// The block's address, as an identity (never dereferenced).
    #[inline]
    pub(crate) fn as_ptr(&self) -> *const () {
        self.ptr.as_ptr() as *const ()
    }

    /// The weak handle as a raw pointer, keeping its weak reference (for `one_of.rs`).
    #[inline(always)]
    pub(crate) fn into_raw(this: Self) -> NonNull<()> {
        ManuallyDrop::new(this).ptr.cast()
    }

    /// The weak handle [`into_raw`](SharedWeak::into_raw) gave.
    ///
    /// # Safety
    /// `p` came from `into_raw` of a `SharedWeak<T>`, and is taken back once.
    #[inline(always)]
    pub(crate) unsafe fn from_raw(p: NonNull<()>) -> SharedWeak<T> {
        SharedWeak { ptr: p.cast() }
    }
}

impl<T: Dispose> Clone for SharedWeak<T> {
    fn clone(&self) -> Self {
        // SAFETY: invariant 1.
        add_weak(unsafe { self.ptr.as_ref() });
        SharedWeak { ptr: self.ptr }
    }
}

impl<T: Dispose> Drop for SharedWeak<T> {
    fn drop(&mut self) {
        // SAFETY: this handle's weak reference, released once, as it goes.
        unsafe { release_weak(self.ptr) }
    }
}

/// A shared borrow of a [`Shared`] value.
pub(crate) struct Ref<'a, T: Dispose> {
    ptr: NonNull<Block<T>>,
    /// Borrows the strong handle, which keeps the value alive (invariant 2).
    _handle: PhantomData<&'a Shared<T>>,
}

impl<T: Dispose> Deref for Ref<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: a shared borrow is registered (invariant 3) and the strong handle it borrows
        // keeps the value initialised (invariant 2).
        unsafe { &*(*self.ptr.as_ptr()).value.get() }
    }
}

impl<T: Dispose> Drop for Ref<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: invariant 1 (the guard borrows a strong handle).
        let b = unsafe { self.ptr.as_ref() };
        b.borrow.set(b.borrow.get() - 1);
    }
}

/// A mutable borrow of a [`Shared`] value.
pub(crate) struct RefMut<'a, T: Dispose> {
    ptr: NonNull<Block<T>>,
    /// Borrows the strong handle, which keeps the value alive (invariant 2).
    _handle: PhantomData<&'a Shared<T>>,
}

impl<T: Dispose> Deref for RefMut<'_, T> {
    type Target = T;
    #[inline(always)]
    fn deref(&self) -> &T {
        // SAFETY: as in `deref_mut`; the `&T` borrows this guard.
        unsafe { &*(*self.ptr.as_ptr()).value.get() }
    }
}

impl<T: Dispose> DerefMut for RefMut<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the mutable borrow is registered (invariant 3): no other guard exists, and the
        // `&mut T` borrows this guard mutably, so it is the only reference; the strong handle it
        // borrows keeps the value initialised (invariant 2).
        unsafe { &mut *(*self.ptr.as_ptr()).value.get() }
    }
}

impl<T: Dispose> Drop for RefMut<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: invariant 1 (the guard borrows a strong handle).
        let b = unsafe { self.ptr.as_ref() };
        b.borrow.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    /// Counts its disposals, and what it held is dropped by them.
    struct Probe {
        disposed: Rc<StdCell<u32>>,
        held: Option<Vec<u8>>,
    }
    impl Dispose for Probe {
        fn dispose(&mut self) {
            self.disposed.set(self.disposed.get() + 1);
            self.held = None;
        }
    }

    fn probe() -> (Shared<Probe>, Rc<StdCell<u32>>) {
        let disposed = Rc::new(StdCell::new(0));
        let s = Shared::with_value(Probe {
            disposed: disposed.clone(),
            held: Some(vec![1, 2, 3]),
        });
        (s, disposed)
    }

    #[test]
    fn the_block_is_eight_bytes_of_header() {
        assert_eq!(size_of::<Block<[u64; 13]>>(), 8 + 104);
        assert_eq!(size_of::<Shared<Probe>>(), 8);
        assert_eq!(size_of::<Option<Shared<Probe>>>(), 8);
    }

    #[test]
    fn disposed_once_when_the_last_strong_handle_goes() {
        let (s, disposed) = probe();
        let t = s.clone();
        assert_eq!(Shared::strong_count(&s), 2);
        drop(s);
        assert_eq!(disposed.get(), 0);
        drop(t);
        assert_eq!(disposed.get(), 1);
    }

    #[test]
    fn a_weak_handle_outlives_the_value_and_cannot_revive_it() {
        let (s, disposed) = probe();
        let w = Shared::downgrade(&s);
        let w2 = w.clone();
        assert!(Shared::ptr_eq(&w.upgrade().unwrap(), &s));
        drop(s);
        assert_eq!(disposed.get(), 1);
        assert!(w.upgrade().is_none());
        drop(w);
        assert!(w2.upgrade().is_none());
    }

    #[test]
    fn borrows_conflict_as_in_a_ref_cell() {
        let (s, _) = probe();
        {
            let a = s.borrow();
            let b = s.try_borrow().unwrap();
            assert!(s.try_borrow_mut().is_err());
            assert_eq!(a.held.as_deref(), b.held.as_deref());
        }
        {
            let mut m = s.borrow_mut();
            m.held = Some(vec![9]);
            assert!(s.try_borrow().is_err());
            assert!(s.try_borrow_mut().is_err());
        }
        assert_eq!(s.borrow().held.as_deref(), Some(&[9u8][..]));
        // A borrow does not disturb the weak count, nor the other way round.
        let w = Shared::downgrade(&s);
        let m = s.borrow_mut();
        let w2 = w.clone();
        drop(w);
        drop(m);
        assert!(s.try_borrow_mut().is_ok());
        drop(w2);
        assert!(s.try_borrow_mut().is_ok());
    }

    #[test]
    fn shared_borrows_stop_at_254() {
        let (s, _) = probe();
        let refs: Vec<_> = (0..254).map(|_| s.try_borrow().unwrap()).collect();
        assert!(s.try_borrow().is_err());
        assert!(s.try_borrow_mut().is_err());
        drop(refs);
        assert!(s.try_borrow_mut().is_ok());
    }

    #[test]
    fn a_weak_count_at_its_maximum_sticks_and_the_block_is_leaked_not_freed() {
        let (s, disposed) = probe();
        // One weak reference is the strong handles' own: 65,534 more reach the maximum.
        let weak: Vec<_> = (0..u16::MAX - 1).map(|_| Shared::downgrade(&s)).collect();
        let more = Shared::downgrade(&s);
        assert!(Shared::ptr_eq(&more.upgrade().unwrap(), &s));
        drop(weak);
        drop(s);
        // The value is disposed of when the last strong handle goes, as ever; the block stays.
        assert_eq!(disposed.get(), 1);
        assert!(more.upgrade().is_none());
    }

    #[test]
    #[should_panic(expected = "borrowed while borrowed mutably")]
    fn a_conflicting_borrow_panics() {
        let (s, _) = probe();
        let _m = s.borrow_mut();
        let _ = s.borrow();
    }
}
