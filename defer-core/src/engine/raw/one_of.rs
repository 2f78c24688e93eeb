//! [`OneOf<A, B>`]: one owned pointer of either of two kinds, or none, in one word.
//!
//! A `Deferred<T>` is a chain, or a bare value not yet given a chain (`succeed`), or, only while a
//! `&self` method swaps it, nothing. As an enum of two pointers that is two words: the tag takes
//! one. Both pointers are aligned to at least 2, so the tag fits in the low bit of the pointer
//! (issue 11: every pending `Deferred` handle is one word).
//!
//! Invariant: `word` is 0 (none), or a pointer given by `A::into_raw` (low bit 0), or one given by
//! `B::into_raw` with the low bit set; either is owned by this `OneOf`, and taken back exactly
//! once, by `into_pick` (which `Drop` also uses).

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use super::shared::{Dispose, Shared, SharedWeak};

/// An owning pointer that can be turned into a raw one and back.
///
/// # Safety
/// `into_raw` gives a pointer aligned to at least 2 that owns what `self` owned, and
/// `from_raw` of that pointer (once) gives back an equal `Self`.
pub(crate) unsafe trait Thin: Sized {
    fn into_raw(self) -> NonNull<()>;
    /// # Safety
    /// `p` came from `into_raw` of this type and is taken back once.
    unsafe fn from_raw(p: NonNull<()>) -> Self;
}

// SAFETY: `Box::into_raw` owns the value; the assertion keeps the low bit free.
unsafe impl<X> Thin for Box<X> {
    #[inline(always)]
    fn into_raw(self) -> NonNull<()> {
        const { assert!(align_of::<X>() >= 2) };
        NonNull::from(Box::leak(self)).cast()
    }
    #[inline(always)]
    unsafe fn from_raw(p: NonNull<()>) -> Self {
        // SAFETY: `p` came from `into_raw` (the caller guarantees), i.e. from `Box::leak`.
        unsafe { Box::from_raw(p.cast::<X>().as_ptr()) }
    }
}

// SAFETY: `Shared::into_raw` keeps its strong reference, and its block is aligned to 4.
unsafe impl<T: Dispose> Thin for Shared<T> {
    #[inline(always)]
    fn into_raw(self) -> NonNull<()> {
        Shared::into_raw(self)
    }
    #[inline(always)]
    unsafe fn from_raw(p: NonNull<()>) -> Self {
        // SAFETY: as the caller guarantees.
        unsafe { Shared::from_raw(p) }
    }
}

// SAFETY: `SharedWeak::into_raw` keeps its weak reference, and its block is aligned to 4.
unsafe impl<T: Dispose> Thin for SharedWeak<T> {
    #[inline(always)]
    fn into_raw(self) -> NonNull<()> {
        SharedWeak::into_raw(self)
    }
    #[inline(always)]
    unsafe fn from_raw(p: NonNull<()>) -> Self {
        // SAFETY: as the caller guarantees.
        unsafe { SharedWeak::from_raw(p) }
    }
}

/// What a [`OneOf`] holds, unpacked.
pub(crate) enum Pick<A, B> {
    First(A),
    Second(B),
    Neither,
}

/// One of two owned pointers, or none, in one word (see the module's docs).
pub(crate) struct OneOf<A: Thin, B: Thin> {
    /// Null, or a pointer with the tag in its low bit (a pointer, not an integer: it keeps its
    /// provenance).
    word: *mut (),
    /// Owns an `A` or a `B`: so its auto traits (`Send`) and the drop checker see them.
    _owns: PhantomData<(A, B)>,
}

// SAFETY: a `OneOf` owns an `A` or a `B` and nothing else, so it may go to another thread, or be
// shared with one, when they may. (Written out rather than left to the raw pointer, which would
// make it `!Send` whatever `A` and `B` are: the compiler then names the `A` or `B` field that is
// not `Send`, as it does for every other handle, and reports a `Deferred` sent to another thread
// once, not once per field; `ui-tests`' `deferred_in_tokio_spawn`.)
unsafe impl<A: Thin + Send, B: Thin + Send> Send for OneOf<A, B> {}
// SAFETY: as for `Send`: nothing is shared but through an `A` or a `B`.
unsafe impl<A: Thin + Sync, B: Thin + Sync> Sync for OneOf<A, B> {}

impl<A: Thin, B: Thin> OneOf<A, B> {
    #[inline(always)]
    pub(crate) fn new(pick: Pick<A, B>) -> Self {
        let word = match pick {
            Pick::First(a) => a.into_raw().as_ptr(),
            Pick::Second(b) => b.into_raw().as_ptr().map_addr(|a| a | 1),
            Pick::Neither => std::ptr::null_mut(),
        };
        OneOf {
            word,
            _owns: PhantomData,
        }
    }

    /// What it holds, given back to the caller.
    #[inline(always)]
    pub(crate) fn into_pick(self) -> Pick<A, B> {
        let this = ManuallyDrop::new(self);
        // SAFETY (both arms): the invariant; `ManuallyDrop` keeps `Drop` from taking it again.
        match NonNull::new(this.word.map_addr(|a| a & !1)) {
            None => Pick::Neither,
            Some(p) if this.word.addr() & 1 == 0 => Pick::First(unsafe { A::from_raw(p) }),
            Some(p) => Pick::Second(unsafe { B::from_raw(p) }),
        }
    }
}

impl<A: Thin, B: Thin> Drop for OneOf<A, B> {
    #[inline]
    fn drop(&mut self) {
        let word = std::mem::replace(&mut self.word, std::ptr::null_mut());
        drop(
            OneOf::<A, B> {
                word,
                _owns: PhantomData,
            }
            .into_pick(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    struct Counted(Rc<Cell<u32>>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn one_word_holding_either_or_none() {
        assert_eq!(size_of::<OneOf<Box<u64>, Box<u16>>>(), size_of::<usize>());
        let drops = Rc::new(Cell::new(0));
        let a = OneOf::<Box<Counted>, Box<u16>>::new(Pick::First(Box::new(Counted(drops.clone()))));
        let b = OneOf::<Box<Counted>, Box<u16>>::new(Pick::Second(Box::new(7)));
        let n = OneOf::<Box<Counted>, Box<u16>>::new(Pick::Neither);
        assert!(matches!(b.into_pick(), Pick::Second(v) if *v == 7));
        assert!(matches!(n.into_pick(), Pick::Neither));
        match a.into_pick() {
            Pick::First(c) => assert_eq!(c.0.get(), 0),
            _ => panic!("not the first kind"),
        }
        assert_eq!(drops.get(), 1);
        // Dropped unpacked: what it holds is dropped once.
        drop(OneOf::<Box<u16>, Box<Counted>>::new(Pick::Second(
            Box::new(Counted(drops.clone())),
        )));
        assert_eq!(drops.get(), 2);
    }
}
