//! [`OneOf<A, B, C, D>`]: one owned pointer of one of two to four kinds, or none, in one word.
//!
//! A `Deferred<T>` is a chain, or a bare value not yet given a chain (`succeed`), or a coroutine
//! whose own chain is made only when something needs it, or, only while a `&self` method swaps
//! it, nothing. A chain's tail is a chain it hands its result to (two ways) or an awaiter (two
//! kinds). As an enum of pointers each is two words: the tag takes one. The pointers are aligned
//! to at least 4, so the tag fits in the two low bits of the pointer (issue 11: every pending
//! `Deferred` handle is one word, and every chain's tail).
//!
//! Invariant: `word` is 0 (none), or a pointer given by `A::into_raw` (tag 0), by `B::into_raw`
//! (tag 1), by `C::into_raw` (tag 2) or by `D::into_raw` (tag 3), the tag or-ed into its low
//! bits; it is owned by this `OneOf`, and taken back exactly once, by `into_pick` (which `Drop`
//! also uses). A [`Lent`] view of it is a copy of the pointer that is never dropped, and lives no
//! longer than a shared borrow of the `OneOf`.

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::rc::Rc;

use super::shared::{Dispose, Shared, SharedWeak};

/// An owning pointer that can be turned into a raw one and back.
///
/// # Safety
/// `into_raw` gives a pointer aligned to at least [`ALIGN`](Thin::ALIGN) that owns what `self`
/// owned, and `from_raw` of that pointer (once) gives back an equal `Self`.
pub(crate) unsafe trait Thin: Sized {
    /// The alignment every pointer `into_raw` gives has at least.
    const ALIGN: usize;
    fn into_raw(self) -> NonNull<()>;
    /// # Safety
    /// `p` came from `into_raw` of this type and is taken back once.
    unsafe fn from_raw(p: NonNull<()>) -> Self;
}

// SAFETY: `Box::leak` owns the value, at an address aligned for it.
unsafe impl<X> Thin for Box<X> {
    const ALIGN: usize = align_of::<X>();
    #[inline(always)]
    fn into_raw(self) -> NonNull<()> {
        NonNull::from(Box::leak(self)).cast()
    }
    #[inline(always)]
    unsafe fn from_raw(p: NonNull<()>) -> Self {
        // SAFETY: `p` came from `into_raw` (the caller guarantees), i.e. from `Box::leak`.
        unsafe { Box::from_raw(p.cast::<X>().as_ptr()) }
    }
}

// SAFETY: `Shared::into_raw` keeps its strong reference, and gives the block's address.
unsafe impl<T: Dispose> Thin for Shared<T> {
    const ALIGN: usize = Shared::<T>::BLOCK_ALIGN;
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

// SAFETY: `SharedWeak::into_raw` keeps its weak reference, and gives the block's address.
unsafe impl<T: Dispose> Thin for SharedWeak<T> {
    const ALIGN: usize = Shared::<T>::BLOCK_ALIGN;
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

// SAFETY: `Rc::into_raw` keeps its strong reference, and points at the value inside the `Rc`'s
// block, aligned for it.
unsafe impl<X> Thin for Rc<X> {
    // Only what `Rc::into_raw` documents: a pointer to the `X`, aligned for it (its block's
    // counts would align it further, but that layout is the standard library's to change).
    const ALIGN: usize = align_of::<X>();
    #[inline(always)]
    fn into_raw(self) -> NonNull<()> {
        // SAFETY: `Rc::into_raw` never gives null.
        unsafe { NonNull::new_unchecked(Rc::into_raw(self) as *mut ()) }
    }
    #[inline(always)]
    unsafe fn from_raw(p: NonNull<()>) -> Self {
        // SAFETY: `p` came from `into_raw` (the caller guarantees), i.e. from `Rc::into_raw`.
        unsafe { Rc::from_raw(p.cast::<X>().as_ptr()) }
    }
}

// SAFETY: a `&'static` reference is its (aligned, never null) address, and owns nothing:
// turning it back is making the same reference again.
unsafe impl<X: 'static> Thin for &'static X {
    const ALIGN: usize = align_of::<X>();
    #[inline(always)]
    fn into_raw(self) -> NonNull<()> {
        NonNull::from(self).cast()
    }
    #[inline(always)]
    unsafe fn from_raw(p: NonNull<()>) -> Self {
        // SAFETY: `p` came from `into_raw` of a `&'static X` (the caller guarantees).
        unsafe { p.cast::<X>().as_ref() }
    }
}

/// The third kind of a [`OneOf`] that has two: there is none.
pub(crate) enum Absent {}

// SAFETY: no value exists, so neither function is ever called with one.
unsafe impl Thin for Absent {
    const ALIGN: usize = usize::MAX;
    fn into_raw(self) -> NonNull<()> {
        match self {}
    }
    unsafe fn from_raw(_: NonNull<()>) -> Self {
        unreachable!("no `Absent` was ever made into a pointer")
    }
}

/// What a [`OneOf`] holds, unpacked.
pub(crate) enum Pick<A, B, C = Absent, D = Absent> {
    First(A),
    Second(B),
    Third(C),
    Fourth(D),
    Neither,
}

/// One of two to four owned pointers, or none, in one word (see the module's docs).
pub(crate) struct OneOf<A: Thin, B: Thin, C: Thin = Absent, D: Thin = Absent> {
    /// Null, or a pointer with the tag in its low bits (a pointer, not an integer: it keeps its
    /// provenance).
    word: *mut (),
    /// Owns an `A`, a `B`, a `C` or a `D`: so its auto traits (`Send`) and the drop checker see
    /// them.
    _owns: PhantomData<(A, B, C, D)>,
}

// SAFETY: a `OneOf` owns an `A`, a `B`, a `C` or a `D` and nothing else, so it may go to another thread,
// or be shared with one, when they may. (Written out rather than left to the raw pointer, which
// would make it `!Send` whatever they are: the compiler then names the field that is not `Send`,
// as it does for every other handle, and reports a `Deferred` sent to another thread once, not
// once per field; `ui-tests`' `deferred_in_tokio_spawn`.)
unsafe impl<A: Thin + Send, B: Thin + Send, C: Thin + Send, D: Thin + Send> Send
    for OneOf<A, B, C, D>
{
}
// SAFETY: as for `Send`: nothing is shared but through an `A`, a `B`, a `C` or a `D`.
unsafe impl<A: Thin + Sync, B: Thin + Sync, C: Thin + Sync, D: Thin + Sync> Sync
    for OneOf<A, B, C, D>
{
}

const TAG: usize = 0b11;

impl<A: Thin, B: Thin, C: Thin, D: Thin> OneOf<A, B, C, D> {
    #[inline(always)]
    pub(crate) fn new(pick: Pick<A, B, C, D>) -> Self {
        const { assert!(A::ALIGN > TAG && B::ALIGN > TAG && C::ALIGN > TAG && D::ALIGN > TAG) };
        let word = match pick {
            Pick::First(a) => a.into_raw().as_ptr(),
            Pick::Second(b) => b.into_raw().as_ptr().map_addr(|a| a | 1),
            Pick::Third(c) => c.into_raw().as_ptr().map_addr(|a| a | 2),
            Pick::Fourth(d) => d.into_raw().as_ptr().map_addr(|a| a | 3),
            Pick::Neither => std::ptr::null_mut(),
        };
        OneOf {
            word,
            _owns: PhantomData,
        }
    }

    /// What it holds, given back to the caller.
    #[inline(always)]
    pub(crate) fn into_pick(self) -> Pick<A, B, C, D> {
        let this = ManuallyDrop::new(self);
        // SAFETY (each arm): the invariant; `ManuallyDrop` keeps `Drop` from taking it again.
        match NonNull::new(this.word.map_addr(|a| a & !TAG)) {
            None => Pick::Neither,
            Some(p) => match this.word.addr() & TAG {
                0 => Pick::First(unsafe { A::from_raw(p) }),
                1 => Pick::Second(unsafe { B::from_raw(p) }),
                2 => Pick::Third(unsafe { C::from_raw(p) }),
                _ => Pick::Fourth(unsafe { D::from_raw(p) }),
            },
        }
    }

    /// Which kind it holds (0 to 3), if any.
    #[inline(always)]
    pub(crate) fn kind(&self) -> Option<usize> {
        (!self.word.is_null()).then_some(self.word.addr() & TAG)
    }

    /// The pointer of kind `kind` it holds, untagged, if it holds that kind.
    #[inline(always)]
    fn pointer_of(&self, kind: usize) -> Option<NonNull<()>> {
        if self.kind() != Some(kind) {
            return None;
        }
        NonNull::new(self.word.map_addr(|a| a & !TAG))
    }

    /// The `A` it holds, lent.
    #[inline(always)]
    pub(crate) fn first(&self) -> Option<Lent<'_, A>>
    where
        A: Lendable,
    {
        // SAFETY: the invariant: an `A`'s pointer, which this `OneOf` owns and keeps while the
        // `Lent` borrows it; the `Lent` never drops its copy.
        self.pointer_of(0)
            .map(|p| unsafe { Lent::new(A::from_raw(p)) })
    }

    /// The `B` it holds, lent.
    #[inline(always)]
    pub(crate) fn second(&self) -> Option<Lent<'_, B>>
    where
        B: Lendable,
    {
        // SAFETY: as in `first`.
        self.pointer_of(1)
            .map(|p| unsafe { Lent::new(B::from_raw(p)) })
    }

    /// The `D` it holds, lent.
    #[inline(always)]
    pub(crate) fn fourth(&self) -> Option<Lent<'_, D>>
    where
        D: Lendable,
    {
        // SAFETY: as in `first`.
        self.pointer_of(3)
            .map(|p| unsafe { Lent::new(D::from_raw(p)) })
    }
}

/// A [`Thin`] pointer that can be lent: a shared handle (a counted pointer with no uniqueness
/// claim), of which a second copy may exist beside the owned one as long as it is never dropped.
/// Not a `Box`, whose pointer claims to be the only one.
///
/// # Safety
/// Two copies of the same handle existing at once (one never dropped) is sound: besides the
/// `from_raw` that takes the pointer back once, [`OneOf`] makes further copies with `from_raw`
/// for its [`Lent`] views, which are never dropped.
pub(crate) unsafe trait Lendable: Thin {}
// SAFETY: a `Shared` is a `NonNull` to its block, claiming nothing unique.
unsafe impl<T: Dispose> Lendable for Shared<T> {}
// SAFETY: an `Rc` is a `NonNull` to its block, claiming nothing unique.
unsafe impl<X> Lendable for Rc<X> {}

/// A handle a [`OneOf`] holds, lent for as long as the `OneOf` is borrowed: a copy that is never
/// dropped (so it changes no count), read through `Deref`.
pub(crate) struct Lent<'a, X> {
    copy: ManuallyDrop<X>,
    _borrow: PhantomData<&'a X>,
}

impl<X> Lent<'_, X> {
    /// # Safety
    /// `copy` is a copy of a handle that stays owned, unchanged, for the `Lent`'s lifetime.
    #[inline(always)]
    unsafe fn new(copy: X) -> Self {
        Lent {
            copy: ManuallyDrop::new(copy),
            _borrow: PhantomData,
        }
    }
}

impl<X> std::ops::Deref for Lent<'_, X> {
    type Target = X;
    #[inline(always)]
    fn deref(&self) -> &X {
        &self.copy
    }
}

impl<A: Thin, B: Thin, C: Thin, D: Thin> Drop for OneOf<A, B, C, D> {
    #[inline(always)]
    fn drop(&mut self) {
        // Empty (a handle whose owner moved its pointer out, a completed future): one test.
        if !self.word.is_null() {
            self.drop_held();
        }
    }
}

impl<A: Thin, B: Thin, C: Thin, D: Thin> OneOf<A, B, C, D> {
    /// Drops what it holds: out of line, so that dropping an empty one stays one test.
    #[inline(never)]
    fn drop_held(&mut self) {
        let word = std::mem::replace(&mut self.word, std::ptr::null_mut());
        drop(
            OneOf::<A, B, C, D> {
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
        assert_eq!(size_of::<OneOf<Box<u64>, Box<u32>>>(), size_of::<usize>());
        let drops = Rc::new(Cell::new(0));
        let a = OneOf::<Box<Counted>, Box<u32>>::new(Pick::First(Box::new(Counted(drops.clone()))));
        let b = OneOf::<Box<Counted>, Box<u32>>::new(Pick::Second(Box::new(7)));
        let n = OneOf::<Box<Counted>, Box<u32>>::new(Pick::Neither);
        assert!(matches!(b.into_pick(), Pick::Second(v) if *v == 7));
        assert!(matches!(n.into_pick(), Pick::Neither));
        match a.into_pick() {
            Pick::First(c) => assert_eq!(c.0.get(), 0),
            _ => panic!("not the first kind"),
        }
        assert_eq!(drops.get(), 1);
        // Dropped unpacked: what it holds is dropped once.
        drop(OneOf::<Box<u32>, Box<Counted>>::new(Pick::Second(
            Box::new(Counted(drops.clone())),
        )));
        assert_eq!(drops.get(), 2);
    }

    #[test]
    fn a_third_kind_in_the_same_word() {
        type Three = OneOf<Box<u64>, Box<u32>, Rc<Counted>>;
        assert_eq!(size_of::<Three>(), size_of::<usize>());
        let drops = Rc::new(Cell::new(0));
        let shared = Rc::new(Counted(drops.clone()));
        let c = Three::new(Pick::Third(shared.clone()));
        assert_eq!(Rc::strong_count(&shared), 2);
        match c.into_pick() {
            Pick::Third(back) => assert!(Rc::ptr_eq(&back, &shared)),
            _ => panic!("not the third kind"),
        }
        assert_eq!(Rc::strong_count(&shared), 1);
        drop(Three::new(Pick::Third(shared.clone())));
        assert_eq!(Rc::strong_count(&shared), 1);
        drop(shared);
        assert_eq!(drops.get(), 1);
        assert!(
            matches!(Three::new(Pick::Second(Box::new(3))).into_pick(), Pick::Second(v) if *v == 3)
        );
    }

    #[test]
    fn four_kinds_lent_in_place_without_touching_counts() {
        type Four = OneOf<Rc<u64>, Rc<u32>, Box<u64>, Rc<Counted>>;
        let drops = Rc::new(Cell::new(0));
        let d = Rc::new(Counted(drops.clone()));
        let four = Four::new(Pick::Fourth(d.clone()));
        assert_eq!(four.kind(), Some(3));
        assert!(four.first().is_none() && four.second().is_none());
        {
            let lent = four.fourth().expect("the fourth kind");
            assert!(Rc::ptr_eq(&lent, &d));
            assert_eq!(Rc::strong_count(&d), 2, "lending changes no count");
            let kept = (*lent).clone();
            assert_eq!(Rc::strong_count(&d), 3);
            drop(kept);
        }
        assert_eq!(Rc::strong_count(&d), 2);
        drop(four);
        assert_eq!(Rc::strong_count(&d), 1);
        drop(d);
        assert_eq!(drops.get(), 1);

        let a = Rc::new(5u64);
        let first = Four::new(Pick::First(a.clone()));
        assert_eq!(
            (first.kind(), first.first().map(|x| **x)),
            (Some(0), Some(5))
        );
        let second = Four::new(Pick::Second(Rc::new(6u32)));
        assert_eq!(second.second().map(|x| **x), Some(6));
        let third = Four::new(Pick::Third(Box::new(7)));
        assert_eq!(third.kind(), Some(2));
        assert!(matches!(third.into_pick(), Pick::Third(b) if *b == 7));
        assert_eq!(Four::new(Pick::Neither).kind(), None);
        drop(first);
        assert_eq!(Rc::strong_count(&a), 1);
    }
}
