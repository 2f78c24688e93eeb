//! [`Deferred<T>`]: the consumer side of a result that is not here yet, and its typed chain.

use std::fmt;
use std::marker::PhantomData;
use std::panic::Location;
use std::rc::Rc;

use crate::coroutine::Driver;

use crate::engine::join::Join;
use crate::engine::outcome::Outcome;
use crate::engine::outcome::StepResult;
use crate::engine::raw::one_of::{OneOf, Pick};
use crate::engine::step::Logic;
use crate::engine::step::{Both, Callback, Callbacks, Errback, Feed, new_step};
use crate::engine::value::{Value, ValueHolder};
use crate::engine::work_loop;
use crate::engine::{self as chain, Canceller, CellRc, CellWeak, Slot, drop_queue, user_code};
use crate::failure::{Failure, IntoFailure};
use crate::recovery::Recovery;
use crate::trigger::Trigger;

/// A placeholder for a result that is not here yet: Twisted's `Deferred`.
///
/// Steps added with [`add_callback`](Deferred::add_callback), [`add_errback`](Deferred::add_errback),
/// [`add_callbacks`](Deferred::add_callbacks) and [`add_both`](Deferred::add_both) form one chain.
/// Each step gets the previous step's success or [`Failure`] and returns a success (`Ok`), a failure
/// (`Err`, or `?`) or another `Deferred` whose result the chain then waits for. The methods take the
/// handle by value and return the handle of the chain after the new step, typed by that step's
/// output, so `d.addCallback(sorted).addCallback(pprint)` is
/// `d.add_callback(sorted).add_callback(pprint)`, and two consumers cannot share one chain by
/// accident.
///
/// A `Deferred` lives on one thread and is two words: a pointer to its chain, or, for a Deferred
/// that already holds a success and has nothing attached (what [`succeed`] makes), the boxed value
/// itself, so that `succeed(v)` costs one allocation and a step added to it runs at once without
/// building a chain. It knows nothing of event loops: steps run inside the call that fires it (or
/// inside `add_*` when it has already fired).
///
/// ```
/// use defer_core::Deferred;
/// use std::{cell::RefCell, rc::Rc};
///
/// let printed = Rc::new(RefCell::new(Vec::new()));
/// let out = printed.clone();
/// let (names, trigger) = Deferred::<Vec<&str>>::new();   // x.get_names()
/// let _done = names
///     .add_callback(|mut n| { n.sort(); Ok(n) })          // .addCallback(sorted)
///     .add_callback(move |n| { out.borrow_mut().push(format!("{n:?}")); Ok(()) }); // .addCallback(pprint)
/// assert!(printed.borrow().is_empty());                   // nothing yet: no result
/// trigger.callback(vec!["moon", "earth"]);
/// assert_eq!(*printed.borrow(), ["[\"earth\", \"moon\"]"]);
/// ```
///
/// # On tokio: `spawn_local`, not `tokio::spawn`
///
/// A `Deferred` is `!Send`, as Twisted's Deferreds live on the reactor's thread: a future that
/// holds one cannot go to `tokio::spawn`, which may move it to another thread ("future cannot be
/// sent between threads safely ... `Rc<..>` cannot be sent"). Run Deferred code on one thread
/// instead, with the `tokio` feature:
///
/// * `defer_core::tokio::react(|| main())` runs a function that returns a Deferred on a
///   current-thread runtime inside a `LocalSet`, until the Deferred fires (Twisted's
///   `task.react`);
/// * inside a `LocalSet` (`LocalSet::block_on`, or `run_until` from
///   `#[tokio::main(flavor = "current_thread")]`), spawn tasks that hold Deferreds with
///   `tokio::task::spawn_local`;
/// * `defer_core::tokio::from_future` turns a future (a request, a timer) into a Deferred, and
///   `defer_core::tokio::defer_to_thread` runs blocking work elsewhere and delivers its result
///   back to this thread.
///
#[cfg_attr(
    feature = "tokio",
    doc = r#"
```
use defer_core::{Deferred, tokio::react};

let (d, trigger) = Deferred::<u32>::new();
let answer = react(move || {
    // Not `tokio::spawn(async move { .. })`: that task could run on another thread.
    tokio::task::spawn_local(async move {
        trigger.callback(41);
    });
    d.add_callback(|n| Ok(n + 1))
});
assert_eq!(answer.unwrap(), 42);

// The same inside a `LocalSet` of your own:
let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
let total = tokio::task::LocalSet::new().block_on(&rt, async {
    let (d, trigger) = Deferred::<u32>::new();
    let task = tokio::task::spawn_local(async move { d.await });
    trigger.callback(7);
    task.await.unwrap()
});
assert_eq!(total.unwrap(), 7);
```
"#
)]
#[must_use = "a Deferred's result is lost (and a failure reported) unless you add steps, await it, or hand it on"]
pub struct Deferred<T: 'static> {
    /// A [`Repr`], in one word (`engine/raw/one_of.rs`).
    repr: std::cell::Cell<PackedRepr<T>>,
    /// Invariant in `T`, like every handle: the chain is type-erased, and variance would let a
    /// value of another type into it.
    _value: PhantomData<fn(T) -> T>,
}

impl<T: 'static> Drop for Deferred<T> {
    fn drop(&mut self) {
        match self.swap_repr(Repr::Swapping) {
            Repr::Chain(c) => {
                // The last handle to a chain waiting on one that can never go on, or to a
                // coroutine's: see `engine/reclaim.rs`.
                if CellRc::strong_count(&c) > 1 {
                    chain::reclaim::release(c);
                }
            }
            // A bare value may own the next bare value (`struct Node { next:
            // Option<Deferred<Node>> }` built from `succeed`): dropped through the drop queue, so
            // a long such list is not a recursion as deep as the list, and a panicking `Drop` of
            // the value is contained.
            Repr::Ready(h) if std::mem::needs_drop::<T>() => {
                drop_queue::dispose(drop_queue::Item::Boxed(h));
            }
            // A coroutine whose own chain nobody needed yet: it gets one now, as the handle lets
            // go of it, and the handle's chain is let go of as above (a coroutine that can never
            // resume is freed; a failure its finished chain holds is reported).
            Repr::Coroutine(driver) => {
                let c = crate::coroutine::handle_chain(&driver);
                drop(driver);
                if CellRc::strong_count(&c) > 1 {
                    chain::reclaim::release(c);
                }
            }
            Repr::Ready(_) | Repr::Swapping => {}
        }
    }
}

/// A `Repr` as a `Deferred` keeps it: one word.
type PackedRepr<T> = OneOf<CellRc, Box<ValueHolder<T>>, Rc<Driver>>;

impl<T> Repr<T> {
    #[inline(always)]
    fn pack(self) -> PackedRepr<T> {
        OneOf::new(match self {
            Repr::Chain(c) => Pick::First(c),
            Repr::Ready(h) => Pick::Second(h),
            Repr::Coroutine(d) => Pick::Third(d),
            Repr::Swapping => Pick::Neither,
        })
    }

    #[inline(always)]
    fn unpack(packed: PackedRepr<T>) -> Repr<T> {
        match packed.into_pick() {
            Pick::First(c) => Repr::Chain(c),
            Pick::Second(h) => Repr::Ready(h),
            Pick::Third(d) => Repr::Coroutine(d),
            Pick::Neither => Repr::Swapping,
        }
    }
}

impl<T: 'static> Deferred<T> {
    /// Swaps the representation.
    #[inline(always)]
    fn swap_repr(&self, new: Repr<T>) -> Repr<T> {
        Repr::unpack(self.repr.replace(new.pack()))
    }
}

/// What a `Deferred` handle points at.
pub(crate) enum Repr<T> {
    /// A chain.
    Chain(CellRc),
    /// A success with nothing attached: no chain needed yet.
    Ready(Box<ValueHolder<T>>),
    /// A suspended coroutine whose own chain nothing needed yet (issue 11): the handle holds the
    /// coroutine's driver. Never given out by [`Deferred::into_repr`], which makes the chain.
    Coroutine(Rc<Driver>),
    /// Only while a `&self` method swaps the representation.
    Swapping,
}

impl<T: 'static> Deferred<T> {
    /// Creates a pending Deferred and the [`Trigger`] that fires it, like a oneshot channel.
    ///
    /// ```
    /// use defer_core::{Deferred, testing::{assert_no_result, success_result_of}};
    /// let (d, trigger) = Deferred::new();
    /// assert_no_result(&d);
    /// trigger.callback("orange");
    /// assert_eq!(success_result_of(d), "orange");
    /// ```
    ///
    /// Keep the trigger: `let (d, _) = Deferred::new();` drops it on that very line, and a
    /// trigger dropped unfired fails its Deferred with
    /// [`TriggerDropped`](crate::errors::TriggerDropped), which names this line. To leave a
    /// Deferred pending on purpose, [`detach`](Trigger::detach) the trigger.
    ///
    /// ```
    /// use defer_core::{Deferred, errors::TriggerDropped, testing::failure_result_of};
    /// let (d, _) = Deferred::<u8>::new();     // the mistake: `_` is not a binding
    /// let f = failure_result_of(d);
    /// assert!(f.check::<TriggerDropped>());
    /// assert_eq!((f.location().file(), f.location().line()), (file!(), line!() - 3));
    /// ```
    #[track_caller]
    pub fn new() -> (Deferred<T>, Trigger<T>) {
        let cell = CellRc::new(None);
        (Deferred::from_cell(cell.clone()), Trigger::from_cell(cell))
    }

    /// Creates a pending Deferred whose [`cancel`](Deferred::cancel) calls `canceller` (at most
    /// once) with a trigger of its own. The canceller stops the work; if it fires the Deferred,
    /// that result stands, otherwise the Deferred fails with
    /// [`CancelledError`](crate::errors::CancelledError).
    ///
    /// ```
    /// use defer_core::{Deferred, testing::success_result_of};
    /// let (d, producer) = Deferred::with_canceller(|t| { t.callback("hello!"); });
    /// d.cancel();
    /// assert!(producer.is_cancelled());
    /// assert!(!producer.callback("too late"));   // a no-op, and the producer can tell
    /// assert_eq!(success_result_of(d), "hello!");
    /// ```
    ///
    /// The trigger returned here is the producer's: dropping it fails the Deferred with
    /// [`TriggerDropped`](crate::errors::TriggerDropped) even though a canceller exists. For a
    /// Deferred that only its canceller ever fires, [`detach`](Trigger::detach) the trigger:
    ///
    /// ```
    /// use defer_core::{Deferred, errors::TriggerDropped, testing::{assert_no_result, failure_result_of, success_result_of}};
    /// let (d, _) = Deferred::<&str>::with_canceller(|t| { t.callback("stopped"); });
    /// assert!(failure_result_of(d).check::<TriggerDropped>());   // the mistake
    ///
    /// let (d, trigger) = Deferred::<&str>::with_canceller(|t| { t.callback("stopped"); });
    /// trigger.detach();                                            // on purpose
    /// assert_no_result(&d);
    /// d.cancel();
    /// assert_eq!(success_result_of(d), "stopped");
    /// ```
    #[track_caller]
    pub fn with_canceller(
        canceller: impl FnOnce(Trigger<T>) + 'static,
    ) -> (Deferred<T>, Trigger<T>) {
        let cell = CellRc::new(Some(Canceller::Once(Box::new(move |cell| {
            canceller(Trigger::from_cell(cell))
        }))));
        (Deferred::from_cell(cell.clone()), Trigger::from_cell(cell))
    }

    /// A suspended coroutine's Deferred, holding its driver until something needs its chain.
    pub(crate) fn from_driver(driver: Rc<Driver>) -> Self {
        Deferred {
            repr: std::cell::Cell::new(Repr::Coroutine(driver).pack()),
            _value: PhantomData,
        }
    }

    pub(crate) fn from_cell(cell: CellRc) -> Self {
        Deferred {
            repr: std::cell::Cell::new(Repr::Chain(cell).pack()),
            _value: PhantomData,
        }
    }

    fn from_repr(repr: Repr<T>) -> Self {
        Deferred {
            repr: std::cell::Cell::new(repr.pack()),
            _value: PhantomData,
        }
    }

    #[track_caller]
    pub(crate) fn ready(value: T) -> Self {
        Deferred::ready_at(value, Location::caller())
    }

    /// A bare value made at `at` (what `Debug` and the `debug` snapshot show as its origin).
    pub(crate) fn ready_at(value: T, at: &'static Location<'static>) -> Self {
        Deferred {
            repr: std::cell::Cell::new(Repr::Ready(Box::new(ValueHolder(Some(value), at))).pack()),
            _value: PhantomData,
        }
    }

    /// What the handle holds, a coroutine given its chain first: never [`Repr::Coroutine`].
    pub(crate) fn into_repr(self) -> Repr<T> {
        // Not dropped: what it held is moved out.
        let this = std::mem::ManuallyDrop::new(self);
        match this.swap_repr(Repr::Swapping) {
            Repr::Coroutine(d) => Repr::Chain(crate::coroutine::handle_chain(&d)),
            repr => repr,
        }
    }

    /// The chain, built now (and kept) if the Deferred was a bare value.
    pub(crate) fn cell(&self) -> CellRc {
        // A coroutine's driver is let go of only once the handle holds the chain: its last
        // reference going drops the body, which is user code and may look at this handle.
        let mut driver = None;
        let cell = match self.swap_repr(Repr::Swapping) {
            Repr::Chain(c) => c,
            Repr::Ready(h) => {
                let at = h.1;
                CellRc::fired_at(Slot::Value(Value::Boxed(h)), at)
            }
            Repr::Coroutine(d) => {
                let c = crate::coroutine::handle_chain(&d);
                driver = Some(d);
                c
            }
            Repr::Swapping => unreachable!("a Deferred is never observed mid-swap"),
        };
        self.repr.set(Repr::Chain(cell.clone()).pack());
        drop(driver);
        cell
    }

    /// The chain, if there is one (not for a bare value). The representation is swapped back
    /// before anything else runs: `f` in [`with_chain`](Self::with_chain) may run user code,
    /// which may look at this very handle.
    fn chain(&self) -> Option<CellRc> {
        // (A coroutine's driver let go of after the handle holds the chain, as in `cell`.)
        let mut driver = None;
        let repr = match self.swap_repr(Repr::Swapping) {
            Repr::Coroutine(d) => {
                let c = crate::coroutine::handle_chain(&d);
                driver = Some(d);
                Repr::Chain(c)
            }
            repr => repr,
        };
        let cell = match &repr {
            Repr::Chain(c) => Some(c.clone()),
            _ => None,
        };
        self.repr.set(repr.pack());
        drop(driver);
        cell
    }

    /// Runs `f` on the chain, if there is one; `ready` otherwise (a bare value: fired, unpaused).
    fn with_chain<R>(&self, f: impl FnOnce(&CellRc) -> R, ready: R) -> R {
        match self.chain() {
            Some(c) => f(&c),
            None => ready,
        }
    }

    /// Adds a step. On a bare value the step runs at once, with no chain built: the outcome is
    /// the new Deferred (a bare value again, a fired chain holding the failure, or the Deferred
    /// the step returned, which is then this chain's continuation).
    #[inline]
    fn push<L: Logic<T>>(self, logic: L, at: &'static Location<'static>) -> Deferred<L::Out> {
        match self.into_repr() {
            Repr::Chain(c) => {
                chain::add_step(&c, move || new_step::<T, L>(logic), at);
                Deferred::from_cell(c)
            }
            Repr::Ready(mut h) => {
                let value = h.0.take().expect("a ready Deferred holds its value");
                // The Deferred after the step is the same Deferred, as in Twisted: made where
                // the bare value was.
                let made = h.1;
                drop(h);
                match user_code::call_at(at, move || logic.call(Ok(value))) {
                    Ok(StepResult::Ok(v)) => Deferred::ready_at(v, made),
                    Ok(StepResult::Err(f)) => {
                        Deferred::from_cell(CellRc::fired_at(Slot::Failure(f), made))
                    }
                    Ok(StepResult::Wait(d)) => match d.into_repr() {
                        Repr::Ready(h) => Deferred::from_repr(Repr::Ready(h)),
                        // The step returned a chain: the Deferred after the step is a chain of
                        // its own that waits on it, as in Twisted, never that chain itself (its
                        // pauses, its state and its later steps are its own).
                        Repr::Chain(inner) => {
                            let outer = CellRc::fired_at(Slot::Empty, made);
                            let slot = chain::wait_on(&outer, inner, at);
                            outer.borrow_mut().result = slot;
                            Deferred::from_cell(outer)
                        }
                        Repr::Coroutine(_) | Repr::Swapping => unreachable!(
                            "never mid-swap, and a coroutine's chain is made by into_repr"
                        ),
                    },
                    Err(f) => Deferred::from_cell(CellRc::fired_at(Slot::Failure(f), made)),
                }
            }
            Repr::Coroutine(_) | Repr::Swapping => {
                unreachable!("never mid-swap, and a coroutine's chain is made by into_repr")
            }
        }
    }

    /// Adds a step that runs `f` on success; a failure passes it by. Twisted's `addCallback`.
    ///
    /// `f` returns `Ok(u)`, `Err(failure)` (or uses `?`), or a `Deferred<U>` to wait for. If the
    /// Deferred has already fired, `f` runs before `add_callback` returns.
    ///
    /// ```
    /// use defer_core::{succeed, testing::success_result_of};
    /// let d = succeed(1).add_callback(|r| Ok(r + 1));
    /// assert_eq!(success_result_of(d), 2);
    /// ```
    #[track_caller]
    pub fn add_callback<F, R>(self, f: F) -> Deferred<R::Value>
    where
        F: FnOnce(T) -> R + 'static,
        R: Outcome,
    {
        self.push(Callback(f), Location::caller())
    }

    /// Adds a step that runs `g` on failure; a success passes it by. Twisted's `addErrback`: the
    /// `except` clause. `g` recovers with `Ok(t)` (or a `Deferred<T>`) or re-raises with `Err`.
    ///
    /// ```
    /// use defer_core::{fail, Failure, testing::success_result_of};
    /// let d = fail::<i32>(Failure::msg("boom")).add_errback(|f| {
    ///     assert_eq!(f.message(), "boom");
    ///     Ok(0)
    /// });
    /// assert_eq!(success_result_of(d), 0);
    /// ```
    ///
    /// `g` may also trap and then return a Deferred to wait for, Twisted's
    /// `f.trap(E); return more_work()` (see [`Recovery`](crate::Recovery)):
    ///
    /// ```
    /// use defer_core::{fail, succeed, errors::CancelledError, testing::success_result_of};
    /// let d = fail::<i32>(CancelledError).add_errback(|f| {
    ///     f.trap::<CancelledError>()?;
    ///     Ok(succeed(7))                  // more_work()
    /// });
    /// assert_eq!(success_result_of(d), 7);
    /// ```
    #[track_caller]
    pub fn add_errback<G, R>(self, g: G) -> Deferred<T>
    where
        G: FnOnce(Failure) -> R + 'static,
        R: Recovery<T>,
    {
        self.push(
            Errback(move |f| g(f).into_step_result()),
            Location::caller(),
        )
    }

    /// Adds `f` and `g` as *one* step: `f` on success, `g` on failure. `try`/`except`/`else`:
    /// unlike `add_callback(f).add_errback(g)`, `g` never sees a failure raised by `f`.
    ///
    /// ```
    /// use defer_core::{succeed, Failure, testing::failure_result_of};
    /// let d = succeed(1).add_callbacks(
    ///     |_| Err::<i32, _>(Failure::msg("from f")),
    ///     |_| Ok(-1),                     // not called: same step
    /// );
    /// assert_eq!(failure_result_of(d).message(), "from f");
    /// ```
    #[track_caller]
    pub fn add_callbacks<F, G, R1, R2>(self, f: F, g: G) -> Deferred<R1::Value>
    where
        F: FnOnce(T) -> R1 + 'static,
        G: FnOnce(Failure) -> R2 + 'static,
        R1: Outcome,
        R2: Recovery<R1::Value>,
    {
        self.push(
            Callbacks(f, move |e| g(e).into_step_result()),
            Location::caller(),
        )
    }

    /// Adds a step that runs `h` whatever happened: `finally`. `h` sees `Ok(value)` or
    /// `Err(failure)` and decides what follows; to re-raise, return the `Err`.
    ///
    /// ```
    /// use defer_core::{succeed, testing::success_result_of};
    /// let d = succeed(5).add_both(|r| { assert_eq!(r.as_ref().ok(), Some(&5)); r });
    /// assert_eq!(success_result_of(d), 5);
    /// ```
    #[track_caller]
    pub fn add_both<H, R>(self, h: H) -> Deferred<R::Value>
    where
        H: FnOnce(Result<T, crate::Failure>) -> R + 'static,
        R: Outcome,
    {
        self.push(Both(h), Location::caller())
    }

    /// A combinator's input step (an `add_both` whose shared state `node` the reclaim walk can
    /// see through; see `engine/join.rs`).
    #[track_caller]
    pub(crate) fn feed<S, F, R>(self, node: Rc<S>, f: F) -> Deferred<R::Value>
    where
        S: Join + 'static,
        F: FnOnce(&Rc<S>, Result<T, crate::Failure>) -> R + 'static,
        R: Outcome,
    {
        self.push(
            Feed {
                node: crate::engine::join::JoinRef::new(node),
                f,
            },
            Location::caller(),
        )
    }

    /// Hands this chain's result to the Deferred that `other` fires, and ends this chain there:
    /// Twisted's `d.chainDeferred(other)`. Long runs of such links never recurse.
    ///
    /// ```
    /// use defer_core::{Deferred, succeed, testing::success_result_of};
    /// let (a, a_trigger) = Deferred::new();
    /// succeed(3).chain_deferred(a_trigger);
    /// assert_eq!(success_result_of(a), 3);
    /// ```
    pub fn chain_deferred(self, other: Trigger<T>) {
        match self.into_repr() {
            Repr::Chain(c) => {
                let target = other.into_cell();
                if CellRc::ptr_eq(&c, &target) {
                    // Chained to its own trigger. The hand-over would fire the chain itself,
                    // which has fired (by a cancel) or never will: like any late fire, it drops
                    // the result. A sink that has already fired does exactly that, without the
                    // chain holding itself.
                    drop(target);
                    chain::add_hand_over(&c, CellRc::fired(Slot::Empty), chain::Hand::ChainTo);
                    return;
                }
                // Until the source hands its result over, the target holds it (as a chain holds
                // the one it waits on): a source nobody else holds, paused with its hand-over
                // pending, stays alive for whoever unpauses it through a control.
                {
                    let mut tst = target.borrow_mut();
                    // (Keeping its canceller, which shares the slot until it fires.)
                    if !tst.called
                        && let Some(old) = tst.result.hold_source(c.clone())
                    {
                        drop(tst);
                        user_code::drop_value(old);
                    }
                }
                chain::add_hand_over(&c, target, chain::Hand::ChainTo);
                // Two chains chained to each other's triggers hold each other, and nothing else.
                chain::reclaim::release(c);
            }
            Repr::Ready(h) => {
                chain::fire(&other.into_cell(), Slot::Value(Value::Boxed(h)));
            }
            Repr::Coroutine(_) | Repr::Swapping => {
                unreachable!("never mid-swap, and a coroutine's chain is made by into_repr")
            }
        }
    }

    /// Stops the chain before its next step until a matching [`unpause`](Deferred::unpause).
    /// Pauses nest.
    ///
    /// ```
    /// use defer_core::{succeed, testing::{assert_no_result, success_result_of}};
    /// let d = succeed(1);
    /// d.pause();
    /// let d = d.add_callback(|x| Ok(x + 1));
    /// assert_no_result(&d);
    /// d.unpause();
    /// assert_eq!(success_result_of(d), 2);
    /// ```
    pub fn pause(&self) {
        chain::pause(&self.cell())
    }

    /// Undoes one [`pause`](Deferred::pause) and, at zero, resumes the chain. Returns `false`,
    /// doing nothing, when there was no pause to undo (Twisted would wedge the Deferred for good).
    ///
    /// ```
    /// let d = defer_core::succeed(1);
    /// assert!(!d.unpause());
    /// d.pause();
    /// assert!(d.unpause());
    /// ```
    pub fn unpause(&self) -> bool {
        self.with_chain(chain::unpause, false)
    }

    /// Cancels: an unfired Deferred runs its canceller and, unless that fired it, fails with
    /// [`CancelledError`](crate::errors::CancelledError); one waiting on another Deferred cancels
    /// that one; otherwise nothing happens. Never panics.
    ///
    /// ```
    /// use defer_core::{Deferred, errors::CancelledError, testing::failure_result_of};
    /// let (d, producer) = Deferred::<u32>::new();
    /// d.cancel();
    /// assert!(producer.is_cancelled());
    /// assert!(failure_result_of(d).check::<CancelledError>());
    /// ```
    #[track_caller]
    pub fn cancel(&self) {
        let at = std::panic::Location::caller();
        self.with_chain(|c| chain::cancel_at(c, at), ())
    }

    /// Whether the Deferred has fired (by its trigger or by `cancel`). Twisted's `called`.
    ///
    /// ```
    /// let (d, t) = defer_core::Deferred::<()>::new();
    /// assert!(!d.is_called());
    /// t.callback(());
    /// assert!(d.is_called());
    /// ```
    pub fn is_called(&self) -> bool {
        self.with_chain(|c| c.borrow().called, true)
    }

    /// Whether the chain is stopped by [`pause`](Deferred::pause).
    ///
    /// ```
    /// let d = defer_core::succeed(());
    /// d.pause();
    /// assert!(d.is_paused());
    /// ```
    pub fn is_paused(&self) -> bool {
        self.with_chain(|c| c.borrow().pauses > 0, false)
    }

    /// A handle that can pause, unpause and cancel this Deferred after the Deferred itself has
    /// been handed to another chain, a list or a coroutine. It does not keep the chain alive.
    ///
    /// ```
    /// use defer_core::{Deferred, testing::{assert_no_result, success_result_of}};
    /// let (inner, t) = Deferred::new();
    /// let ctl = inner.control();
    /// ctl.pause();
    /// let outer = defer_core::succeed(()).add_callback(move |()| inner);
    /// t.callback(2);
    /// assert_no_result(&outer);            // the inner Deferred is paused
    /// ctl.unpause();
    /// assert_eq!(success_result_of(outer), 2);
    /// ```
    pub fn control(&self) -> DeferredControl {
        DeferredControl {
            cell: CellRc::downgrade(&self.cell()),
        }
    }
}

/// A weak handle to a Deferred's chain that can [`pause`](DeferredControl::pause),
/// [`unpause`](DeferredControl::unpause) and [`cancel`](DeferredControl::cancel) it, but not add
/// steps or take its result. Made by [`Deferred::control`].
///
/// ```
/// let (d, t) = defer_core::Deferred::<u8>::new();
/// let ctl = d.control();
/// ctl.cancel();
/// assert!(t.is_cancelled());
/// # let _ = d;
/// ```
#[derive(Clone)]
pub struct DeferredControl {
    cell: CellWeak,
}

impl DeferredControl {
    /// As [`Deferred::pause`]; nothing if the chain is gone.
    ///
    /// ```
    /// let d = defer_core::succeed(1);
    /// d.control().pause();
    /// assert!(d.is_paused());
    /// ```
    pub fn pause(&self) {
        if let Some(c) = self.cell.upgrade() {
            chain::pause(&c);
            // What a pause leaves behind (a chain only the paused one still reaches) is looked
            // at as the control lets go: see `engine/reclaim.rs`.
            chain::reclaim::release(c);
        }
    }

    /// As [`Deferred::unpause`]; `false` if the chain is gone or was not paused.
    ///
    /// ```
    /// let d = defer_core::succeed(1);
    /// let ctl = d.control();
    /// ctl.pause();
    /// assert!(ctl.unpause());
    /// assert!(!ctl.unpause());
    /// ```
    pub fn unpause(&self) -> bool {
        self.cell.upgrade().is_some_and(|c| {
            let undone = chain::unpause(&c);
            chain::reclaim::release(c);
            undone
        })
    }

    /// As [`Deferred::cancel`]; nothing if the chain is gone.
    ///
    /// ```
    /// let (d, t) = defer_core::Deferred::<u8>::new();
    /// d.control().cancel();
    /// assert!(d.is_called() && t.is_cancelled());
    /// ```
    #[track_caller]
    pub fn cancel(&self) {
        if let Some(c) = self.cell.upgrade() {
            chain::cancel(&c);
            // The control's reference may have been the last one from outside a set of chains
            // the cancel left only holding each other (a coroutine awaiting this paused chain).
            chain::reclaim::release(c);
        }
    }

    /// As [`Deferred::is_called`]; `false` if the chain is gone.
    ///
    /// ```
    /// let d = defer_core::succeed(1);
    /// assert!(d.control().is_called());
    /// ```
    pub fn is_called(&self) -> bool {
        self.cell.upgrade().is_some_and(|c| c.borrow().called)
    }
}

impl fmt::Debug for DeferredControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeferredControl({:p})", self.cell.as_ptr())
    }
}

/// A Deferred that has already succeeded with `value`. Twisted's `succeed`.
///
/// ```
/// use defer_core::{succeed, testing::success_result_of};
/// assert_eq!(success_result_of(succeed("yes")), "yes");
/// ```
#[track_caller]
pub fn succeed<T: 'static>(value: T) -> Deferred<T> {
    Deferred::ready(value)
}

/// A Deferred that has already failed. Twisted's `fail`. Its failure is reported as unhandled if
/// nothing consumes it.
///
/// ```
/// use defer_core::{fail, testing::failure_result_of};
/// let d = fail::<()>(std::fmt::Error);
/// assert!(failure_result_of(d).check::<std::fmt::Error>());
/// ```
#[track_caller]
pub fn fail<T: 'static>(failure: impl IntoFailure) -> Deferred<T> {
    Deferred::from_cell(CellRc::fired(Slot::Failure(failure.into_failure())))
}

/// Calls `f` now and returns its outcome as a Deferred: `Ok(v)` succeeds, `Err(f)` fails, a
/// returned Deferred is passed through *as is*, and a panic becomes a failure. Twisted's
/// `maybeDeferred`. For a closure that returns a plain value, see [`execute`].
///
/// ```
/// use defer_core::{maybe_deferred, succeed, Failure, testing::*};
/// assert_eq!(success_result_of(maybe_deferred(|| Ok(10 + 5))), 15);
/// assert_eq!(failure_result_of(maybe_deferred(|| Err::<(), _>(Failure::msg("no")))).message(), "no");
/// assert_eq!(success_result_of(maybe_deferred(|| succeed(7))), 7);
/// assert!(failure_result_of(maybe_deferred(|| -> Result<(), Failure> { panic!("x") })).is_panic());
/// ```
#[track_caller]
pub fn maybe_deferred<F, R>(f: F) -> Deferred<R::Value>
where
    F: FnOnce() -> R,
    R: Outcome,
{
    let at = Location::caller();
    match user_code::call_at(at, f) {
        Ok(r) => match r.into_step_result() {
            StepResult::Ok(v) => succeed(v),
            StepResult::Err(e) => fail(e),
            StepResult::Wait(d) => d,
        },
        Err(failure) => fail(failure),
    }
}

/// Calls `f` now and returns `succeed` of its value, or a failure if it panicked. Twisted's
/// `execute`: it does not unwrap results or Deferreds.
///
/// ```
/// use defer_core::{execute, testing::*};
/// assert_eq!(success_result_of(execute(|| 3)), 3);
/// assert!(failure_result_of(execute(|| -> u8 { panic!("raise") })).is_panic());
/// ```
#[track_caller]
pub fn execute<T: 'static>(f: impl FnOnce() -> T) -> Deferred<T> {
    let at = Location::caller();
    match user_code::call_at(at, f) {
        Ok(v) => succeed(v),
        Err(failure) => fail(failure),
    }
}

impl<T: fmt::Debug + 'static> fmt::Debug for Deferred<T> {
    /// Twisted's repr, and where the Deferred came from: `Deferred(pending, created at
    /// src/main.rs:4:18)`, `Deferred(current result: Ok(5), created at ...)`, `Deferred(paused 1,
    /// current result: ..., 2 steps waiting, created at ...)`, `Deferred(waiting on Deferred at
    /// 0x... created at src/db.rs:9:5, created at ...)`.
    ///
    /// ```
    /// let (d, _t) = defer_core::Deferred::<u8>::new();
    /// let d = d.add_callback(|x| Ok(x + 1));
    /// let shown = format!("{d:?}");
    /// assert!(shown.starts_with("Deferred(pending, 1 step waiting, created at "), "{shown}");
    /// assert!(shown.contains(&format!("{}:{}", file!(), line!() - 4)), "{shown}");
    /// ```
    ///
    /// The value's own `Debug` is user code: it runs with no borrow of the chain held (the value
    /// is lent out meanwhile, and the chain marked running, so a `Debug` that touches this very
    /// Deferred sees a consistent state), and a panic in it shows as a placeholder, losing
    /// nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A bare value gets its chain now (Debug is not a hot path): one code path below.
        let cell = self.cell();
        let (pauses, lent, shown, steps, created_at, coroutine) = {
            let Ok(mut st) = cell.try_borrow_mut() else {
                return write!(f, "Deferred(running)");
            };
            let pauses = st.pauses;
            let steps = st.steps.len();
            let created_at = st.created_at;
            let coroutine = st.result.is_coroutines();
            let shown = match &st.result {
                Slot::Empty if st.called => Shown::Text("current result: None".into()),
                Slot::Empty | Slot::Cancellable(_) => Shown::Text("pending".into()),
                Slot::Value(_) if !st.running => Shown::Value,
                Slot::Value(_) => Shown::Text("current result: <value>".into()),
                Slot::Failure(e) => Shown::Failure(e.clone()),
                // A `chain_deferred` target, which its source will fire.
                Slot::Waiting(source) if !st.called => Shown::Text(format!(
                    "pending, chained from Deferred at {:p}",
                    CellRc::as_ptr(source)
                )),
                Slot::CancellableWaiting(b) => Shown::Text(format!(
                    "pending, chained from Deferred at {:p}",
                    CellRc::as_ptr(&b.0)
                )),
                Slot::Waiting(inner) => Shown::Text(match inner.try_borrow() {
                    Ok(ist) => format!(
                        "waiting on Deferred at {:p} created at {}",
                        CellRc::as_ptr(inner),
                        ist.created_at
                    ),
                    Err(_) => format!(
                        "waiting on Deferred at {:p} (running)",
                        CellRc::as_ptr(inner)
                    ),
                }),
            };
            let lent = match shown {
                Shown::Value => {
                    st.running = true;
                    match std::mem::replace(&mut st.result, Slot::Empty) {
                        Slot::Value(v) => Some(v),
                        _ => None,
                    }
                }
                _ => None,
            };
            (pauses, lent, shown, steps, created_at, coroutine)
        };
        let text = match (&shown, &lent) {
            (Shown::Value, Some(v)) => match v.peek().and_then(|v| v.downcast_ref::<T>()) {
                Some(v) => format!("current result: Ok({})", user_code::debug(v)),
                None => "current result: <value>".to_owned(),
            },
            (Shown::Failure(e), _) => format!("current result: Err({e:?})"),
            // A coroutine suspended on a future another thread may wake says so.
            (Shown::Text(t), _) if coroutine && t == "pending" => {
                match crate::coroutine::waiting_note(&cell) {
                    Some(note) => format!("pending, {note}"),
                    None => t.clone(),
                }
            }
            (Shown::Text(t), _) => t.clone(),
            (Shown::Value, None) => "current result: <value>".to_owned(),
        };
        if let Some(v) = lent {
            let runnable = {
                let mut st = cell.borrow_mut();
                chain::put(&mut st.result, Slot::Value(v));
                st.running = false;
                !st.steps.is_empty() && st.pauses == 0
            };
            if runnable {
                // Steps added by the value's `Debug` while it was lent out.
                work_loop::run(cell.clone());
            }
        }
        drop(shown);
        f.write_str("Deferred(")?;
        if pauses > 0 {
            write!(f, "paused {pauses}, ")?;
        }
        f.write_str(&text)?;
        match steps {
            0 => {}
            1 => f.write_str(", 1 step waiting")?,
            n => write!(f, ", {n} steps waiting")?,
        }
        write!(f, ", created at {created_at})")
    }
}

/// What [`Deferred`]'s `Debug` shows, decided under the chain's borrow, formatted after it.
enum Shown {
    Text(String),
    Value,
    Failure(Failure),
}
