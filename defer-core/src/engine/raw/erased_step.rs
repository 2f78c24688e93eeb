//! [`ErasedStep`]: a chain's step, type-erased, held in place when it is one word or smaller.
//!
//! Each step is a value of its own type (its closure, what it does with the input, the type of
//! its output: `step.rs`). A `Box<dyn RunStep>` holding it is two words and an allocation. Most
//! closures a user adds capture one word or nothing (a counter, an `Rc`, a `u64`), so a step of
//! at most one word is held in the queue entry itself, behind a pointer to a static table of its
//! type's functions, and allocates nothing (issue 11: a pending Deferred with one step); a larger
//! one is boxed and the word holds the box. Either way the entry is two words.
//!
//! Invariant: `data` holds an `S` in place (if `vtable` is `VTables::<S>::HELD`) or a pointer
//! from `Box::<S>::into_raw` (if it is `VTables::<S>::BOXED`), for the `S` the table was made for,
//! owned by this `ErasedStep` and consumed exactly once: by `run` or by `Drop`.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::panic::Location;
use std::rc::Rc;

use super::super::cell::CellRc;
use super::super::join::Join;
use super::super::step::{Current, RunStep};

/// The entry's word: a step in place, or a box's pointer (a pointer, so that it keeps its
/// provenance). Held in an `UnsafeCell`: a step held in place may itself hold a `Cell`, and a
/// `&S` made from the word for `join` must be allowed to reach it (a `&` to bytes without an
/// `UnsafeCell` around them grants no such right; Miri's Stacked Borrows flags it).
type Data = MaybeUninit<*mut ()>;

/// What the queue knows of a step's type.
struct StepVTable {
    run: unsafe fn(Data, &mut Current, &'static Location<'static>) -> Option<CellRc>,
    join: unsafe fn(&UnsafeCell<Data>) -> Option<Rc<dyn Join>>,
    /// Takes the word by value, not by reference: a step being dropped (on a landing pad, say)
    /// need not be in memory.
    drop: unsafe fn(Data),
}

/// A step of some type, held in place or boxed (see the module's docs).
pub(crate) struct ErasedStep {
    data: UnsafeCell<Data>,
    vtable: &'static StepVTable,
    /// The step may own `!Send` values (an `Rc`): so is its holder.
    _not_send: PhantomData<*const ()>,
}

/// Whether an `S` is held in place.
const fn held<S: RunStep>() -> bool {
    S::MAY_BE_HELD && size_of::<S>() <= size_of::<Data>() && align_of::<S>() <= align_of::<Data>()
}

struct VTables<S>(PhantomData<S>);

impl<S: RunStep> VTables<S> {
    const HELD: StepVTable = StepVTable {
        run: run_held::<S>,
        join: join_held::<S>,
        drop: drop_held::<S>,
    };
    const BOXED: StepVTable = StepVTable {
        run: run_boxed::<S>,
        join: join_boxed::<S>,
        drop: drop_boxed::<S>,
    };
}

impl ErasedStep {
    /// Holds `step` in place if it fits, else in a box.
    #[inline(always)]
    pub(crate) fn new<S: RunStep>(step: S) -> ErasedStep {
        // Zeroed, not left uninitialised: the entry is then copied as two known words. An
        // uninitialised word (a step of less than a word, one capturing nothing) made the copy a
        // 16-byte load of one 8-byte store, which the processor cannot forward from the store:
        // a stall on every step added, twice the time of `W1_chain_zst`.
        let mut data = Data::new(std::ptr::null_mut());
        let vtable = if const { held::<S>() } {
            // SAFETY: an `S` fits in `data`, in size and alignment (`held`), and `data` is ours.
            unsafe { data.as_mut_ptr().cast::<S>().write(step) };
            &VTables::<S>::HELD
        } else {
            data.write(Box::into_raw(Box::new(step)).cast());
            &VTables::<S>::BOXED
        };
        ErasedStep {
            data: UnsafeCell::new(data),
            vtable,
            _not_send: PhantomData,
        }
    }

    /// Runs the step (see [`RunStep::run`]).
    #[inline(always)]
    pub(crate) fn run(
        self,
        cur: &mut Current,
        added_at: &'static Location<'static>,
    ) -> Option<CellRc> {
        let mut this = ManuallyDrop::new(self);
        let data = *this.data.get_mut();
        // SAFETY: the invariant; `ManuallyDrop` keeps `Drop` from consuming the step again.
        unsafe { (this.vtable.run)(data, cur, added_at) }
    }

    /// See [`RunStep::join`].
    pub(crate) fn join(&self) -> Option<Rc<dyn Join>> {
        // SAFETY: the invariant (the step is only looked at).
        unsafe { (self.vtable.join)(&self.data) }
    }
}

/// An [`ErasedStep`] its holder drops by hand, by making it an `ErasedStep` again
/// ([`into_step`](UndroppedStep::into_step)): a queue's buffer holds these, so that adding one to
/// it keeps nothing with a `Drop` alive across the buffer's growth (see `step_queue.rs`). One
/// dropped as is leaks its step: never freed twice, never freed under anyone.
pub(crate) struct UndroppedStep {
    data: UnsafeCell<Data>,
    vtable: &'static StepVTable,
    _not_send: PhantomData<*const ()>,
}

impl ErasedStep {
    /// This step, to be dropped by hand.
    #[inline(always)]
    pub(crate) fn undropped(self) -> UndroppedStep {
        let mut this = ManuallyDrop::new(self);
        UndroppedStep {
            data: UnsafeCell::new(*this.data.get_mut()),
            vtable: this.vtable,
            _not_send: PhantomData,
        }
    }
}

impl UndroppedStep {
    /// The step, dropped as usual again.
    #[inline(always)]
    pub(crate) fn into_step(self) -> ErasedStep {
        ErasedStep {
            data: self.data,
            vtable: self.vtable,
            _not_send: PhantomData,
        }
    }

    /// See [`RunStep::join`].
    pub(crate) fn join(&self) -> Option<Rc<dyn Join>> {
        // SAFETY: the invariant of `ErasedStep`, which this holds unchanged.
        unsafe { (self.vtable.join)(&self.data) }
    }
}

impl Drop for ErasedStep {
    fn drop(&mut self) {
        // SAFETY: the invariant; a step that ran was wrapped in `ManuallyDrop`. The word is a
        // bitwise copy, and the step in `self` is not used again.
        unsafe { (self.vtable.drop)(*self.data.get_mut()) }
    }
}

/// # Safety
/// `data` holds an `S` in place, moved out here.
unsafe fn run_held<S: RunStep>(
    data: Data,
    cur: &mut Current,
    added_at: &'static Location<'static>,
) -> Option<CellRc> {
    // SAFETY: as the caller guarantees; `data` is a bitwise copy the caller no longer uses.
    let step = unsafe { data.as_ptr().cast::<S>().read() };
    step.run_in_place(cur, added_at)
}

/// # Safety
/// `data` holds a pointer from `Box::<S>::into_raw`, taken back here.
unsafe fn run_boxed<S: RunStep>(
    data: Data,
    cur: &mut Current,
    added_at: &'static Location<'static>,
) -> Option<CellRc> {
    // SAFETY: as the caller guarantees.
    let step = unsafe { Box::from_raw(data.assume_init().cast::<S>()) };
    step.run(cur, added_at)
}

/// # Safety
/// `data` holds an `S` in place.
unsafe fn join_held<S: RunStep>(data: &UnsafeCell<Data>) -> Option<Rc<dyn Join>> {
    // SAFETY: as the caller guarantees; the reference borrows `data`, through the `UnsafeCell`'s
    // pointer (never through a `&Data`), so any `Cell` in `S` keeps its rights.
    unsafe { &*data.get().cast::<S>() }.join()
}

/// # Safety
/// `data` holds a pointer from `Box::<S>::into_raw`, still owned.
unsafe fn join_boxed<S: RunStep>(data: &UnsafeCell<Data>) -> Option<Rc<dyn Join>> {
    // SAFETY: as the caller guarantees; the box lives as long as `data` holds it.
    unsafe { &*(*data.get()).assume_init().cast::<S>() }.join()
}

/// # Safety
/// `data` holds an `S` in place, not used again.
unsafe fn drop_held<S: RunStep>(mut data: Data) {
    // SAFETY: as the caller guarantees.
    unsafe { std::ptr::drop_in_place(data.as_mut_ptr().cast::<S>()) }
}

/// # Safety
/// `data` holds a pointer from `Box::<S>::into_raw`, not used again.
unsafe fn drop_boxed<S: RunStep>(data: Data) {
    // SAFETY: as the caller guarantees.
    drop(unsafe { Box::from_raw(data.assume_init().cast::<S>()) })
}

// The queue entry stays three words with the step's site (`step_queue.rs`).
const _: () = assert!(size_of::<ErasedStep>() == 2 * size_of::<usize>());
const _: () = assert!(size_of::<Option<ErasedStep>>() == 2 * size_of::<usize>());

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::value::Value;
    use std::cell::Cell;

    /// Runs and drops of a [`Probe`].
    type Counts = Rc<(Cell<u32>, Cell<u32>)>;

    /// A step that counts its runs and drops, of `N` words.
    struct Probe<const N: usize> {
        counts: Counts,
        _pad: [usize; N],
    }
    impl<const N: usize> Drop for Probe<N> {
        fn drop(&mut self) {
            self.counts.1.set(self.counts.1.get() + 1);
        }
    }
    impl<const N: usize> RunStep for Probe<N> {
        fn run(
            self: Box<Self>,
            cur: &mut Current,
            at: &'static Location<'static>,
        ) -> Option<CellRc> {
            (*self).run_in_place(cur, at)
        }
        fn run_in_place(self, cur: &mut Current, _: &'static Location<'static>) -> Option<CellRc> {
            self.counts.0.set(self.counts.0.get() + 1);
            *cur = Some(Ok(Value::new(7u64)));
            None
        }
    }

    fn probe<const N: usize>() -> (Probe<N>, Counts) {
        let counts = Rc::new((Cell::new(0), Cell::new(0)));
        let p = Probe {
            counts: counts.clone(),
            _pad: [0; N],
        };
        (p, counts)
    }

    #[test]
    fn a_step_of_one_word_is_held_and_a_larger_one_boxed() {
        assert!(held::<Probe<0>>());
        assert!(!held::<Probe<1>>());
    }

    fn runs_once_and_is_dropped_once<const N: usize>() {
        let here = Location::caller();
        let (p, counts) = probe::<N>();
        let mut cur: Current = None;
        assert!(ErasedStep::new(p).run(&mut cur, here).is_none());
        assert_eq!((counts.0.get(), counts.1.get()), (1, 1));
        let Some(Ok(v)) = cur else {
            panic!("the step left no value")
        };
        assert_eq!(v.take::<u64>().unwrap(), 7);
        // Never run: dropped, once, with the queue entry.
        let (p, counts) = probe::<N>();
        let step = ErasedStep::new(p);
        assert!(step.join().is_none());
        drop(step);
        assert_eq!((counts.0.get(), counts.1.get()), (0, 1));
    }

    /// A step held in place that holds a `Cell`: looking at it (`join`) must not take away the
    /// `Cell`'s right to be written (Miri's Stacked Borrows flagged this before the word was in
    /// an `UnsafeCell`; run `cargo +nightly miri test -p defer-core --lib raw`).
    struct CellStep(Cell<u32>);
    impl RunStep for CellStep {
        fn run(
            self: Box<Self>,
            cur: &mut Current,
            at: &'static Location<'static>,
        ) -> Option<CellRc> {
            (*self).run_in_place(cur, at)
        }
        fn run_in_place(self, cur: &mut Current, _: &'static Location<'static>) -> Option<CellRc> {
            self.0.set(self.0.get() + 1);
            *cur = Some(Ok(Value::new(self.0.get())));
            None
        }
        fn join(&self) -> Option<Rc<dyn Join>> {
            self.0.set(self.0.get() + 1);
            None
        }
    }

    #[test]
    fn a_held_step_holding_a_cell_may_write_it_when_looked_at() {
        assert!(held::<CellStep>());
        let step = ErasedStep::new(CellStep(Cell::new(0)));
        assert!(step.join().is_none());
        assert!(step.undropped().join().is_none());
        let step = ErasedStep::new(CellStep(Cell::new(0)));
        assert!(step.join().is_none());
        let mut cur: Current = None;
        assert!(step.run(&mut cur, Location::caller()).is_none());
        let Some(Ok(v)) = cur else {
            panic!("the step left no value")
        };
        assert_eq!(v.take::<u32>().unwrap(), 2, "join's write was seen by run");
    }

    #[test]
    fn a_held_step_runs_once_and_is_dropped_once() {
        runs_once_and_is_dropped_once::<0>();
    }

    #[test]
    fn a_boxed_step_runs_once_and_is_dropped_once() {
        runs_once_and_is_dropped_once::<3>();
    }
}
