//! How a chain holds its current success value, whose type changes at every step.
//!
//! The chain is type-erased, so between two steps a value is held behind a type-erased [`Value`]
//! and checked against the type the next step expects when it is taken. Two representations:
//!
//! - [`Small`]: a value of at most 16 bytes (alignment at most 8), which covers integers, floats,
//!   `bool`, `char`, `()`, references, `Rc`/`Box`/`Arc` and pairs of them, held *in place*, with a
//!   pointer to a static table of its type's `TypeId`, drop and `Any` view. Firing a chain with
//!   such a value, or passing one from step to step, touches no heap at all.
//! - [`Value::Boxed`]: anything larger, in a box. A step whose output is large keeps it in its own
//!   box (allocated anyway, for the step's closure), so passing a large value costs nothing
//!   either; a large value entering the chain from outside (`callback`) is boxed once.
//!
//! `Small` needs `unsafe` (one of the parts of `raw/`, the crate's one module with it): a
//! type-erased inline buffer cannot be written without it. It paid for itself in the benchmarks (`BENCHMARKS.md`: the allocation of
//! every fired value, and the type-erased hand-off between steps, gone) and its invariants are
//! local to this file, tested at its end and, with the whole test suite, under valgrind's memcheck.

use std::any::{Any, TypeId};
use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};

/// Something that holds a chain's current success value of some type, in a box.
pub(crate) trait Holder {
    /// The holder's `Option<T>` of the held type. A leaf call: the consumer downcasts it.
    fn slot(&mut self) -> &mut dyn Any;
    /// The held value, for `Debug`.
    fn peek(&self) -> Option<&dyn Any>;
}

/// Takes the `T` out of a holder (and frees it); `None` if it holds another type (or nothing).
#[inline(never)]
fn take_boxed<T: 'static>(mut holder: Box<dyn Holder>) -> Option<T> {
    holder
        .slot()
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
}

/// A value of another type than the step expects. Every handle is invariant in its `T`, so safe
/// code cannot make one (the variance case in `ui-tests` pins it); the check stays, as the
/// defence that keeps a type confusion from ever becoming undefined behaviour, and it fails the
/// chain instead of panicking in the middle of it.
#[cold]
#[inline(never)]
fn wrong_type<T>() -> crate::failure::Failure {
    crate::failure::Failure::msg(format!(
        "a value of another type than the Deferred's `{}` reached its chain",
        std::any::type_name::<T>()
    ))
}

/// The holder of a large value that entered the chain from outside (`callback`, `succeed`), and
/// where it did (a `succeed` Deferred's creation site, before it has a chain).
pub(crate) struct ValueHolder<T>(
    pub(crate) Option<T>,
    pub(crate) &'static std::panic::Location<'static>,
);

impl<T: 'static> Holder for ValueHolder<T> {
    fn slot(&mut self) -> &mut dyn Any {
        &mut self.0
    }
    fn peek(&self) -> Option<&dyn Any> {
        self.0.as_ref().map(|v| v as &dyn Any)
    }
}

/// A chain's current success value, type-erased.
pub(crate) enum Value {
    /// At most 16 bytes, in place.
    Small(Small),
    /// Anything larger, in a box.
    Boxed(Box<dyn Holder>),
}

impl Value {
    /// Holds `v`: in place if it is small, else in a new box.
    #[inline]
    pub(crate) fn new<T: 'static>(v: T) -> Value {
        match Small::new(v) {
            Ok(small) => Value::Small(small),
            Err(v) => Value::Boxed(Box::new(ValueHolder(
                Some(v),
                std::panic::Location::caller(),
            ))),
        }
    }

    /// Moves the value out, checking that it is a `T` (see [`wrong_type`]). Inlined into every
    /// step: for a small value it is a type check and a copy.
    #[inline(always)]
    pub(crate) fn take<T: 'static>(self) -> Result<T, crate::failure::Failure> {
        match self {
            Value::Small(small) => small.into_inner::<T>(),
            Value::Boxed(holder) => take_boxed::<T>(holder),
        }
        .ok_or_else(wrong_type::<T>)
    }

    /// The value, for `Debug`.
    pub(crate) fn peek(&self) -> Option<&dyn Any> {
        match self {
            Value::Small(small) => Some(small.as_any()),
            Value::Boxed(holder) => holder.peek(),
        }
    }

    /// Whether dropping the value may run code (which may own other chains).
    #[inline]
    pub(crate) fn needs_drop(&self) -> bool {
        match self {
            Value::Small(small) => small.vtable.needs_drop,
            Value::Boxed(_) => true,
        }
    }
}

/// The storage of a [`Small`]: 16 bytes, aligned to 8.
type Buf = MaybeUninit<[u64; 2]>;

/// What a [`Small`] knows of the type it holds.
struct SmallVTable {
    type_id: TypeId,
    needs_drop: bool,
    /// Drops the value in the buffer.
    drop: unsafe fn(&mut Buf),
    /// The value in the buffer, as `&dyn Any`.
    as_any: unsafe fn(&UnsafeCell<Buf>) -> &dyn Any,
}

/// The table of `T`, promoted to a `'static` constant.
struct VTableOf<T>(PhantomData<T>);

impl<T: 'static> VTableOf<T> {
    const VTABLE: SmallVTable = SmallVTable {
        type_id: TypeId::of::<T>(),
        needs_drop: std::mem::needs_drop::<T>(),
        drop: drop_as::<T>,
        as_any: as_any_as::<T>,
    };
}

/// # Safety
/// `buf` holds a valid `T`, which is not used again.
unsafe fn drop_as<T>(buf: &mut Buf) {
    // SAFETY: the caller guarantees the buffer holds a valid `T` that nobody uses afterwards; the
    // buffer is aligned for `T` (`Small::fits`).
    unsafe { std::ptr::drop_in_place(buf.as_mut_ptr().cast::<T>()) }
}

/// # Safety
/// `buf` holds a valid `T`.
unsafe fn as_any_as<T: 'static>(buf: &UnsafeCell<Buf>) -> &dyn Any {
    // SAFETY: the caller guarantees the buffer holds a valid `T`, aligned (`Small::fits`); the
    // reference borrows the buffer, so the value outlives it. Made through the `UnsafeCell`'s
    // pointer, so that a `Cell` in `T` keeps its rights (see `Small::buf`).
    unsafe { &*buf.get().cast::<T>() }
}

/// A value of a type of at most 16 bytes and alignment at most 8, held in place.
///
/// Invariant: `buf` holds a valid value of the type `vtable` was made for, owned by this `Small`.
pub(crate) struct Small {
    /// In an `UnsafeCell`: the value may hold a `Cell`, and the `&T` that `Debug` looks at must be
    /// allowed to reach it (Miri's Stacked Borrows flags a `&T` made from a plain `&Buf`).
    buf: UnsafeCell<Buf>,
    vtable: &'static SmallVTable,
    /// The value may be `!Send` or `!Sync` (an `Rc`): so is its holder.
    _not_send: PhantomData<*const ()>,
}

impl Small {
    /// Whether a `T` fits in the buffer.
    pub(crate) const fn fits<T>() -> bool {
        size_of::<T>() <= size_of::<Buf>() && align_of::<T>() <= align_of::<Buf>()
    }

    /// Holds `v` in place, or gives it back if it does not fit.
    #[inline]
    pub(crate) fn new<T: 'static>(v: T) -> Result<Small, T> {
        if !Self::fits::<T>() {
            return Err(v);
        }
        let mut buf = Buf::uninit();
        // SAFETY: `T` fits: the buffer is large enough and aligned enough for it (checked just
        // above), and nothing else refers to the new buffer.
        unsafe { buf.as_mut_ptr().cast::<T>().write(v) };
        Ok(Small {
            buf: UnsafeCell::new(buf),
            vtable: &VTableOf::<T>::VTABLE,
            _not_send: PhantomData,
        })
    }

    /// Moves the value out if it is a `T`; else drops it and returns `None`.
    #[inline]
    pub(crate) fn into_inner<T: 'static>(self) -> Option<T> {
        if self.vtable.type_id != TypeId::of::<T>() {
            return None;
        }
        let this = ManuallyDrop::new(self);
        // SAFETY: the buffer holds a valid value of the vtable's type (the invariant), which is
        // `T`, as just checked; `ManuallyDrop` keeps `Small::drop` from dropping it again.
        Some(unsafe { this.buf.get().cast::<T>().read() })
    }

    fn as_any(&self) -> &dyn Any {
        // SAFETY: the buffer holds a valid value of the vtable's type (the invariant).
        unsafe { (self.vtable.as_any)(&self.buf) }
    }
}

impl Drop for Small {
    fn drop(&mut self) {
        // SAFETY: the buffer holds a valid value of the vtable's type (the invariant), dropped
        // exactly once, here (`into_inner` wraps `self` in `ManuallyDrop`).
        unsafe { (self.vtable.drop)(self.buf.get_mut()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// Counts its drops.
    struct Counted(Rc<Cell<u32>>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn small_values_are_held_in_place_and_taken_back() {
        assert!(matches!(Value::new(7u64), Value::Small(_)));
        assert_eq!(Value::new(7u64).take::<u64>().unwrap(), 7);
        assert_eq!(Value::new(()).take::<()>().unwrap(), ());
        assert_eq!(Value::new('x').take::<char>().unwrap(), 'x');
        assert_eq!(Value::new((1u32, 2u8)).take::<(u32, u8)>().unwrap(), (1, 2));
        let b = Value::new(Box::new([1u8; 100]))
            .take::<Box<[u8; 100]>>()
            .unwrap();
        assert_eq!(b[99], 1);
    }

    #[test]
    fn large_and_overaligned_values_are_boxed() {
        assert!(matches!(Value::new(String::from("s")), Value::Boxed(_)));
        assert!(matches!(Value::new([0u64; 3]), Value::Boxed(_)));
        assert!(matches!(Value::new(1u128), Value::Boxed(_)));
        assert_eq!(Value::new(String::from("s")).take::<String>().unwrap(), "s");
        assert_eq!(Value::new(u128::MAX).take::<u128>().unwrap(), u128::MAX);
    }

    #[test]
    fn a_small_value_is_dropped_once_whether_taken_or_not() {
        let drops = Rc::new(Cell::new(0));
        drop(Value::new(Counted(drops.clone())));
        assert_eq!(drops.get(), 1);
        let taken = Value::new(Counted(drops.clone()))
            .take::<Counted>()
            .unwrap();
        assert_eq!(drops.get(), 1);
        drop(taken);
        assert_eq!(drops.get(), 2);
        // Asked for the wrong type: not read, and dropped (once) with the `Small`.
        let small = Small::new(Counted(drops.clone())).ok().unwrap();
        assert!(small.into_inner::<u64>().is_none());
        assert_eq!(drops.get(), 3);
    }

    #[test]
    fn a_small_value_shows_itself_for_debug() {
        let v = Value::new(5i32);
        assert_eq!(v.peek().and_then(|a| a.downcast_ref::<i32>()), Some(&5));
        assert!(!v.needs_drop());
        assert!(Value::new(Rc::new(1)).needs_drop());
    }
}
