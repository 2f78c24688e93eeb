//! Waiting on many Deferreds: [`DeferredList`], [`gather_results`], [`race`] and the tuple
//! gather [`Gather`].
//!
//! Every combinator takes its inputs *by value*: once a Deferred is in a list, only the list
//! consumes its result, so no step can be added to an input afterwards (in Twisted, steps added
//! after the list see what the list passed on). Cancelling the combined Deferred cancels every
//! input that was handed in.
//!
//! **Unhandled errors.** A failure is reported at most once. Without
//! [`consume_errors`](DeferredList::consume_errors), an input's failure that the list records in
//! its results *also* stays in the input's own chain, where it is reported as unhandled when the
//! input goes away (as Twisted logs "Unhandled error in Deferred"); so does one that arrives after
//! the list has fired, which reaches nobody else — except a dropped trigger's
//! [`TriggerDropped`](crate::errors::TriggerDropped), which stays quiet (an abandoned producer
//! after the list was decided is no error, as in Twisted). With it, the list consumes the failure. A
//! failure that the list fails with, wrapped in a [`FirstError`] ([`gather_results`],
//! [`Gather::gather`], [`fire_on_one_errback`](DeferredList::fire_on_one_errback)), is the
//! caller's alone: the input does not keep it, so it is not reported twice. [`race`] always
//! consumes its inputs' results.
//!
//! ```
//! use defer_core::{Deferred, gather_results, testing::success_result_of};
//! let (a, ta) = Deferred::new();
//! let (b, tb) = Deferred::new();
//! let both = gather_results([a, b]);
//! tb.callback("b");
//! ta.callback("a");
//! assert_eq!(success_result_of(both), ["a", "b"]);    // input order
//! ```

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::marker::PhantomData;
use std::panic::Location;
use std::rc::{Rc, Weak};

use crate::deferred::{Deferred, DeferredControl};
use crate::engine::CellRc;
use crate::engine::join::Join;
use crate::failure::Failure;
use crate::trigger::Trigger;

/// The output of a list whose results are all wanted ([`DeferredList::build`] without
/// [`fire_on_one_callback`](DeferredList::fire_on_one_callback)): one `Result` per input, in
/// input order. A mode marker of [`DeferredList`].
///
/// ```
/// use defer_core::{DeferredList, list::AllResults, succeed};
/// let _list: DeferredList<u8, AllResults> = DeferredList::new([succeed(1)]);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct AllResults;

/// The mode marker of a [`DeferredList`] made with
/// [`fire_on_one_callback`](DeferredList::fire_on_one_callback): it fires with the first success
/// ([`FirstResult`]).
///
/// ```
/// use defer_core::{DeferredList, list::FirstCallback, succeed};
/// let _list: DeferredList<u8, FirstCallback> = DeferredList::new([succeed(1)]).fire_on_one_callback();
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct FirstCallback;

/// What a [`fire_on_one_callback`](DeferredList::fire_on_one_callback) list fires with.
///
/// ```
/// use defer_core::{DeferredList, Failure, fail, list::FirstResult, testing::success_result_of};
/// let d = DeferredList::new([fail::<u8>(Failure::msg("a")), fail(Failure::msg("b"))])
///     .consume_errors(true)
///     .fire_on_one_callback()
///     .build();
/// match success_result_of(d) {
///     FirstResult::AllFailed(failures) => assert_eq!(failures.len(), 2),
///     FirstResult::Success { .. } => unreachable!(),
/// }
/// ```
#[derive(Debug)]
pub enum FirstResult<T> {
    /// The first input to succeed, and its index: Twisted's `(value, index)`.
    Success {
        /// The input's position in the list.
        index: usize,
        /// Its success value.
        value: T,
    },
    /// Every input failed (Twisted then fires with the full list of failures): their failures in
    /// input order.
    AllFailed(Vec<Failure>),
}

/// Waits for several Deferreds of one type: Twisted's `DeferredList`, its result typed by the
/// flags instead of guessed from tuples.
///
/// Made with [`new`](DeferredList::new), set up with the flags, and turned into the Deferred that
/// fires with the results by [`build`](DeferredList::build) (or [`gather`](DeferredList::gather)):
///
/// | flags | the Deferred's success | fails with |
/// |---|---|---|
/// | none | `Vec<Result<T, Failure>>`, in input order, once all have fired | never |
/// | [`fire_on_one_errback`](DeferredList::fire_on_one_errback) | the same, when all succeeded | [`FirstError`] on the first failure |
/// | [`fire_on_one_callback`](DeferredList::fire_on_one_callback) | [`FirstResult`]: the first success and its index, or all the failures | never (or [`FirstError`] with `fire_on_one_errback` too) |
///
/// Inputs that have already fired are processed by `build` itself. Cancelling the built Deferred
/// before it fires cancels every input; what it then fires with follows the flags. (If that does
/// not decide it, because an input is paused, say, the list fails with
/// [`CancelledError`](crate::errors::CancelledError), where Twisted would leave it unfired.) An
/// empty list fires at once with `[]`, except with `fire_on_one_callback`, where it never fires.
/// A [`FirstError`] records the `build`, `gather` or `gather_results` call as where it entered the
/// chain.
///
/// ```
/// use defer_core::{Deferred, DeferredList, Failure, testing::*};
///
/// let (d1, t1) = Deferred::<&str>::new();
/// let (d2, t2) = Deferred::new();
/// let all = DeferredList::new(vec![d1, d2]).consume_errors(true).build();
/// t2.errback(Failure::msg("2"));
/// assert_no_result(&all);
/// t1.callback("1");
/// let results = success_result_of(all);
/// assert_eq!(results[0].as_ref().ok(), Some(&"1"));
/// assert_eq!(results[1].as_ref().unwrap_err().message(), "2");
/// ```
#[must_use = "a DeferredList does nothing until `build` or `gather` attaches it to its inputs"]
pub struct DeferredList<T: 'static, M = AllResults> {
    inputs: Vec<Deferred<T>>,
    fire_on_one_errback: bool,
    consume_errors: bool,
    _mode: PhantomData<M>,
}

impl<T: 'static> DeferredList<T, AllResults> {
    /// A list of the given Deferreds, in order, with every flag off.
    ///
    /// ```
    /// use defer_core::{DeferredList, succeed, testing::success_result_of};
    /// let r = success_result_of(DeferredList::new([succeed(1), succeed(2)]).build());
    /// assert_eq!(r.into_iter().map(Result::unwrap).collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn new(inputs: impl IntoIterator<Item = Deferred<T>>) -> Self {
        DeferredList {
            inputs: inputs.into_iter().collect(),
            fire_on_one_errback: false,
            consume_errors: false,
            _mode: PhantomData,
        }
    }

    /// Fire with the first success and its index, instead of waiting for all: Twisted's
    /// `fireOnOneCallback=True`. If every input fails, the list fires with all the failures.
    ///
    /// ```
    /// use defer_core::{Deferred, DeferredList, list::FirstResult, testing::*};
    /// let (d1, _t1) = Deferred::<&str>::new();
    /// let (d2, t2) = Deferred::new();
    /// let first = DeferredList::new([d1, d2]).fire_on_one_callback().build();
    /// t2.callback("two");
    /// match success_result_of(first) {
    ///     FirstResult::Success { index, value } => assert_eq!((index, value), (1, "two")),
    ///     FirstResult::AllFailed(_) => unreachable!(),
    /// }
    /// ```
    pub fn fire_on_one_callback(self) -> DeferredList<T, FirstCallback> {
        DeferredList {
            inputs: self.inputs,
            fire_on_one_errback: self.fire_on_one_errback,
            consume_errors: self.consume_errors,
            _mode: PhantomData,
        }
    }

    /// Attaches the list to its inputs and returns the Deferred of all their results, in input
    /// order.
    ///
    /// ```
    /// use defer_core::{DeferredList, testing::success_result_of};
    /// assert!(success_result_of(DeferredList::<u8>::new([]).build()).is_empty());
    /// ```
    #[track_caller]
    pub fn build(self) -> Deferred<Vec<Result<T, Failure>>> {
        let d = attach(
            self.inputs,
            false,
            self.fire_on_one_errback,
            self.consume_errors,
        );
        d.add_callback(|fired| match fired {
            Fired::All(results) => Ok(results.into_results()),
            Fired::First(..) => unreachable!("only a fire_on_one_callback list fires early"),
        })
    }

    /// Attaches the list to its inputs as Twisted's `gatherResults` does: the Deferred of the
    /// values in input order, or a [`FirstError`] on the first failure
    /// ([`fire_on_one_errback`](DeferredList::fire_on_one_errback) is implied).
    /// [`consume_errors`](DeferredList::consume_errors) is honoured.
    ///
    /// ```
    /// use defer_core::{DeferredList, Failure, fail, succeed, errors::FirstError, testing::*};
    /// let d = DeferredList::new([succeed(1), fail(Failure::msg("no"))]).consume_errors(true).gather();
    /// let f = failure_result_of(d);
    /// assert_eq!(f.downcast_ref::<FirstError>().unwrap().index(), 1);
    /// ```
    #[track_caller]
    pub fn gather(self) -> Deferred<Vec<T>> {
        let d = attach(self.inputs, false, true, self.consume_errors);
        d.add_callback(|fired| match fired {
            // A failure fires a gather early: these are all values.
            Fired::All(results) => Ok(results.into_values()),
            Fired::First(..) => unreachable!("a gather does not fire on one callback"),
        })
    }
}

impl<T: 'static> DeferredList<T, FirstCallback> {
    /// Attaches the list to its inputs and returns the Deferred of the first success, or of
    /// every failure if all fail.
    ///
    /// ```
    /// use defer_core::{DeferredList, succeed, list::FirstResult, testing::success_result_of};
    /// let d = DeferredList::new([succeed('a'), succeed('b')]).fire_on_one_callback().build();
    /// assert!(matches!(success_result_of(d), FirstResult::Success { index: 0, value: 'a' }));
    /// ```
    #[track_caller]
    pub fn build(self) -> Deferred<FirstResult<T>> {
        let d = attach(
            self.inputs,
            true,
            self.fire_on_one_errback,
            self.consume_errors,
        );
        d.add_callback(|fired| {
            Ok(match fired {
                Fired::First(index, value) => FirstResult::Success { index, value },
                // Any success would have fired the list early: these are all failures.
                Fired::All(results) => FirstResult::AllFailed(results.into_failures()),
            })
        })
    }
}

impl<T: 'static, M> DeferredList<T, M> {
    /// Fail with [`FirstError`] (the index and the input's failure) on the first failure:
    /// Twisted's `fireOnOneErrback`. That failure is then the caller's: the input does not keep
    /// it, so it is reported (if nobody handles the list's failure) once, not twice.
    ///
    /// ```
    /// use defer_core::{Deferred, DeferredList, Failure, errors::FirstError, testing::*};
    /// let (d1, t1) = Deferred::<u8>::new();
    /// let (d2, t2) = Deferred::new();
    /// let d = DeferredList::new([d1, d2]).fire_on_one_errback(true).consume_errors(true).build();
    /// t1.callback(1);
    /// assert_no_result(&d);
    /// t2.errback(Failure::msg("from def2"));
    /// let f = failure_result_of(d);
    /// let first = f.downcast_ref::<FirstError>().unwrap();
    /// assert_eq!((first.index(), first.sub_failure().message()), (1, "from def2".to_owned()));
    /// ```
    pub fn fire_on_one_errback(mut self, on: bool) -> Self {
        self.fire_on_one_errback = on;
        self
    }

    /// Consume the inputs' failures: Twisted's `consumeErrors`. Without it, a failed input keeps
    /// its failure and reports it as unhandled when it goes away, besides the list recording it
    /// (a failure the list fails with, in a [`FirstError`], is never kept: the caller has it).
    ///
    /// ```
    /// use defer_core::{DeferredList, Failure, fail, testing::success_result_of, unhandled};
    /// use std::{cell::Cell, rc::Rc};
    /// let reported = Rc::new(Cell::new(0));
    /// let r = reported.clone();
    /// unhandled::with_hook(move |_| r.set(r.get() + 1), || {
    ///     let quiet = DeferredList::new([fail::<()>(Failure::msg("x"))]).consume_errors(true).build();
    ///     let _ = success_result_of(quiet);
    ///     let loud = DeferredList::new([fail::<()>(Failure::msg("y"))]).build();
    ///     let _ = success_result_of(loud);
    /// });
    /// assert_eq!(reported.get(), 1);   // only the input of the second list
    /// ```
    pub fn consume_errors(mut self, on: bool) -> Self {
        self.consume_errors = on;
        self
    }

    /// How many inputs the list has.
    ///
    /// ```
    /// use defer_core::{DeferredList, succeed};
    /// assert_eq!(DeferredList::new([succeed(()), succeed(())]).len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether the list has no inputs.
    ///
    /// ```
    /// assert!(defer_core::DeferredList::<u8>::new([]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }
}

impl<T: 'static, M> fmt::Debug for DeferredList<T, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredList")
            .field("inputs", &self.inputs.len())
            .field("mode", &std::any::type_name::<M>())
            .field("fire_on_one_errback", &self.fire_on_one_errback)
            .field("consume_errors", &self.consume_errors)
            .finish()
    }
}

/// Twisted's `gatherResults(ds)`: the values of all the Deferreds in input order, or a
/// [`FirstError`] on the first failure.
///
/// **Each failure is reported at most once.** The first failure goes to the caller, inside the
/// `FirstError`, so the input does not keep it too (in Twisted it would also be logged as
/// unhandled, since someone *might* add an errback to the input later; here the inputs were moved
/// in, so nobody can). A failure of another input *after* the gather has failed reaches nobody:
/// it stays in that input's chain and is reported as unhandled once, as Twisted does with
/// `consumeErrors=False`. To consume those too, use [`gather_results_consuming_errors`] (Twisted's
/// `gatherResults(ds, consumeErrors=True)`).
///
/// ```
/// use defer_core::{Deferred, gather_results, testing::*};
/// let (d1, t1) = Deferred::new();
/// let (d2, t2) = Deferred::new();
/// let all = gather_results([d1, d2]);
/// t2.callback("b");
/// assert_no_result(&all);
/// t1.callback("a");
/// assert_eq!(success_result_of(all), ["a", "b"]);
/// ```
///
/// The first failure is the caller's alone:
///
/// ```
/// use defer_core::{Failure, errors::FirstError, fail, gather_results, succeed, testing::*};
/// let lost = unhandled_during(|| {
///     let d = gather_results([succeed(1), fail(Failure::msg("bad"))]);
///     let f = failure_result_of(d);
///     assert_eq!(f.downcast_ref::<FirstError>().unwrap().index(), 1);
/// });
/// assert!(lost.is_empty());
/// ```
#[track_caller]
pub fn gather_results<T: 'static>(
    inputs: impl IntoIterator<Item = Deferred<T>>,
) -> Deferred<Vec<T>> {
    DeferredList::new(inputs).gather()
}

/// [`gather_results`] that also consumes the inputs' failures: Twisted's
/// `gatherResults(ds, consumeErrors=True)`. It fires as `gather_results` does (the values in
/// input order, or a [`FirstError`] on the first failure), but a failure of an input after the
/// gather has failed is consumed instead of reported as unhandled. The same as
/// `DeferredList::new(ds).consume_errors(true).gather()`; the tuple form is
/// [`Gather::gather_consuming_errors`].
///
/// ```
/// use defer_core::{Deferred, Failure, errors::FirstError};
/// use defer_core::list::gather_results_consuming_errors;
/// use defer_core::testing::{failure_result_of, unhandled_during};
///
/// let lost = unhandled_during(|| {
///     let (d1, t1) = Deferred::<u8>::new();
///     let (d2, t2) = Deferred::new();
///     let all = gather_results_consuming_errors([d1, d2]);
///     t1.errback(Failure::msg("first"));
///     t2.errback(Failure::msg("second, after the gather failed"));   // consumed
///     let f = failure_result_of(all);
///     assert_eq!(f.downcast_ref::<FirstError>().unwrap().index(), 0);
/// });
/// assert!(lost.is_empty());
/// ```
#[track_caller]
pub fn gather_results_consuming_errors<T: 'static>(
    inputs: impl IntoIterator<Item = Deferred<T>>,
) -> Deferred<Vec<T>> {
    DeferredList::new(inputs).consume_errors(true).gather()
}

/// What the shared engine fires with; each front end maps it to its own typed result.
enum Fired<T> {
    All(Outcomes<T>),
    First(usize, T),
}

/// Every input's result: the values in place, the failures apart.
///
/// Apart, so that a gather (whose failures fire it early, and are never kept) pays per input
/// only for a value's place, which until the input reports is the weak handle that cancels it:
/// for a `u64`, two words per input, where a result slot (`Option<Result<u64, Failure>>`) and a
/// separate handle were five (issue 11, the bytes per gathered input).
struct Outcomes<T> {
    /// In input order.
    values: Vec<Place<T>>,
    /// In the order they came, with their input's index.
    failures: Vec<(usize, Failure)>,
}

/// One input's place in [`Outcomes`].
enum Place<T> {
    /// It has not reported: what cancelling the list cancels.
    Waiting(DeferredControl),
    Value(T),
    /// It failed (its failure is in `failures`).
    Failed,
}

impl<T> Outcomes<T> {
    fn new(controls: impl Iterator<Item = DeferredControl>) -> Self {
        Outcomes {
            values: controls.map(Place::Waiting).collect(),
            failures: Vec::new(),
        }
    }

    fn empty() -> Self {
        Outcomes {
            values: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// The handles of the inputs that have not reported, in input order.
    fn waiting(&self) -> Vec<DeferredControl> {
        self.values
            .iter()
            .filter_map(|p| match p {
                Place::Waiting(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// The results in input order.
    fn into_results(self) -> Vec<Result<T, Failure>> {
        let mut failures = self.failures;
        failures.sort_by_key(|(i, _)| *i);
        let mut failures = failures.into_iter().peekable();
        self.values
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Place::Value(v) => Ok(v),
                Place::Waiting(_) | Place::Failed => match failures.next_if(|(j, _)| *j == i) {
                    Some((_, f)) => Err(f),
                    // (Every input has reported when the list fires.)
                    None => Err(Failure::msg("an input of the list did not report")),
                },
            })
            .collect()
    }

    /// The values in input order (a gather's: there are no failures).
    fn into_values(self) -> Vec<T> {
        // Sized up front: a `filter_map`'s collect would grow the vector by doubling.
        let mut values = Vec::with_capacity(self.values.len());
        values.extend(self.values.into_iter().filter_map(|p| match p {
            Place::Value(v) => Some(v),
            _ => None,
        }));
        values
    }

    /// The failures in input order (a `fire_on_one_callback` list's: there are no values).
    fn into_failures(self) -> Vec<Failure> {
        let mut failures = self.failures;
        failures.sort_by_key(|(i, _)| *i);
        failures.into_iter().map(|(_, f)| f).collect()
    }
}

struct ListState<T> {
    results: Outcomes<T>,
    remaining: usize,
    trigger: Option<Trigger<Fired<T>>>,
    fire_on_one_callback: bool,
    fire_on_one_errback: bool,
    /// Where the list was built: where a `FirstError` enters the list's chain.
    at: &'static Location<'static>,
}

// The shared states are nodes the reclaim walk sees through (`engine/join.rs`): each holds the
// combined Deferred's trigger until it fires.

impl<T: 'static> Join for RefCell<ListState<T>> {
    fn holds(&self) -> Option<Option<CellRc>> {
        Some(held(self.try_borrow().ok()?.trigger.as_ref()))
    }
    fn held_leading_somewhere(&self) -> Option<CellRc> {
        held_leading_somewhere(self.try_borrow().ok()?.trigger.as_ref())
    }
}

impl<T: 'static> Join for RefCell<RaceState<T>> {
    fn holds(&self) -> Option<Option<CellRc>> {
        Some(held(self.try_borrow().ok()?.trigger.as_ref()))
    }
    fn held_leading_somewhere(&self) -> Option<CellRc> {
        held_leading_somewhere(self.try_borrow().ok()?.trigger.as_ref())
    }
}

impl<V: 'static, O: 'static> Join for RefCell<TupleState<V, O>> {
    fn holds(&self) -> Option<Option<CellRc>> {
        Some(held(self.try_borrow().ok()?.trigger.as_ref()))
    }
    fn held_leading_somewhere(&self) -> Option<CellRc> {
        held_leading_somewhere(self.try_borrow().ok()?.trigger.as_ref())
    }
}

/// The chain a combinator's trigger fires, if it could close a cycle (`join::leads_anywhere`).
fn held_leading_somewhere<T: 'static>(trigger: Option<&Trigger<T>>) -> Option<CellRc> {
    let out = trigger.and_then(Trigger::cell)?;
    crate::engine::join::leads_anywhere(out).then(|| out.clone())
}

/// The chain a combinator's trigger fires, while it has not fired.
fn held<T: 'static>(trigger: Option<&Trigger<T>>) -> Option<CellRc> {
    trigger.and_then(Trigger::cell).cloned()
}

/// Cancels every input, each through its weak handle (a finished input is simply gone).
fn cancel_all(controls: &[DeferredControl]) {
    for c in controls {
        c.cancel();
    }
}

/// Cancels every input of a list that has not reported, in input order: the handles are taken
/// first, with no borrow of the state held while the cancels run (each may report at once).
fn cancel_waiting<T: 'static>(state: &Weak<RefCell<ListState<T>>>) {
    let waiting = match state.upgrade() {
        Some(state) => match state.try_borrow() {
            Ok(s) => s.results.waiting(),
            Err(_) => Vec::new(),
        },
        None => Vec::new(),
    };
    cancel_all(&waiting);
}

/// Drops a trigger without firing it: the Deferred it belongs to never fires (an empty
/// `fire_on_one_callback` list, `race([])`), and no `TriggerDropped` is raised.
fn never_fire<T: 'static>(trigger: Trigger<T>) {
    drop(trigger.into_cell());
}

#[track_caller]
fn attach<T: 'static>(
    inputs: Vec<Deferred<T>>,
    fire_on_one_callback: bool,
    fire_on_one_errback: bool,
    consume_errors: bool,
) -> Deferred<Fired<T>> {
    let n = inputs.len();
    if n == 0 {
        let (out, trigger) = Deferred::new();
        if fire_on_one_callback {
            never_fire(trigger);
        } else {
            trigger.callback(Fired::All(Outcomes::empty()));
        }
        return out;
    }
    let state = Rc::new(RefCell::new(ListState {
        results: Outcomes::new(inputs.iter().map(Deferred::control)),
        remaining: n,
        trigger: None,
        fire_on_one_callback,
        fire_on_one_errback,
        at: Location::caller(),
    }));
    // Cancelling the list cancels the inputs that have not reported: the canceller finds them in
    // the state, through a weak reference (the state holds the list's trigger). Made here, not in
    // a closure, so that the list's Deferred is located at the user's call (`#[track_caller]`).
    let in_canceller = Rc::downgrade(&state);
    let (out, trigger) =
        Deferred::with_canceller(move |_own: Trigger<Fired<T>>| cancel_waiting(&in_canceller));
    state.borrow_mut().trigger = Some(trigger.held_by_join());
    for (index, input) in inputs.into_iter().enumerate() {
        let input_of = InputOf::new(index, consume_errors);
        let rest = input.feed(state.clone(), move |state, result: Result<T, Failure>| {
            let kept = match &result {
                Err(f) if !input_of.consume_errors() => Some(f.clone()),
                _ => None,
            };
            match record(state, input_of.index(), result) {
                // The failure went to the caller inside a `FirstError`: the caller handles it,
                // so the input must not report it too.
                Recorded::FirstError => Ok(()),
                Recorded::Kept => kept.map_or(Ok(()), Err),
                Recorded::Late => kept.filter(keep_late).map_or(Ok(()), Err),
            }
        });
        // The input's chain lives on in its producer; only the list consumes its result.
        drop(rest);
    }
    out
}

/// Which input of a list a step feeds, and whether the list consumes its failures: one word, so
/// that an input's step is two (with the list's state), not three (issue 11, the bytes per
/// gathered input). A `Vec` holds fewer than `isize::MAX` elements, so an index leaves the top
/// bit free for the flag.
#[derive(Clone, Copy)]
struct InputOf(usize);

impl InputOf {
    const CONSUME: usize = 1 << (usize::BITS - 1);

    fn new(index: usize, consume_errors: bool) -> Self {
        InputOf((index & !Self::CONSUME) | if consume_errors { Self::CONSUME } else { 0 })
    }

    fn index(self) -> usize {
        self.0 & !Self::CONSUME
    }

    fn consume_errors(self) -> bool {
        self.0 & Self::CONSUME != 0
    }
}

/// What [`record`] did with an input's result.
enum Recorded {
    /// The failure became the list's [`FirstError`]: the caller has it.
    FirstError,
    /// Anything else (a success, a failure recorded in the results).
    Kept,
    /// The list had fired already: the result reached nobody.
    Late,
}

/// Whether an input's failure that reached nobody (it came after the list or gather had fired)
/// stays in the input's chain, to be reported as unhandled there as Twisted reports it. A
/// [`TriggerDropped`](crate::errors::TriggerDropped) does not: it is quiet until a step sees it,
/// and the list's own step, which ignores it, does not count. An input whose producer is
/// dropped after the list was decided (say, the other requests of a `gather_results` whose
/// first request failed) is what Twisted's abandoned, never-fired Deferred is: no error.
fn keep_late(failure: &Failure) -> bool {
    !failure.error().is::<crate::errors::TriggerDropped>()
}

/// Records input `index`'s result and fires the list if that decides it. No user code runs
/// while the state is borrowed: the trigger and any value to drop are taken out first.
fn record<T: 'static>(
    state: &RefCell<ListState<T>>,
    index: usize,
    result: Result<T, Failure>,
) -> Recorded {
    let mut s = state.borrow_mut();
    s.remaining -= 1;
    if s.trigger.is_none() {
        // The list has fired already: later results are ignored.
        drop(s);
        drop(result);
        return Recorded::Late;
    }
    let first_error = result.is_err() && s.fire_on_one_errback;
    let fire: Option<Result<Fired<T>, Failure>> = match result {
        Ok(value) if s.fire_on_one_callback => Some(Ok(Fired::First(index, value))),
        Err(failure) if s.fire_on_one_errback => {
            Some(Err(Failure::new_at(FirstError::new(index, failure), s.at)))
        }
        result => {
            match result {
                Ok(value) => {
                    if let Some(place) = s.results.values.get_mut(index) {
                        *place = Place::Value(value);
                    }
                }
                Err(failure) => {
                    if let Some(place) = s.results.values.get_mut(index) {
                        *place = Place::Failed;
                    }
                    s.results.failures.push((index, failure));
                }
            }
            (s.remaining == 0).then(|| {
                Ok(Fired::All(std::mem::replace(
                    &mut s.results,
                    Outcomes::empty(),
                )))
            })
        }
    };
    let Some(fire) = fire else {
        return Recorded::Kept;
    };
    let trigger = s.trigger.take().expect("checked above");
    // Results recorded before an early fire are no longer needed.
    let recorded = std::mem::replace(&mut s.results, Outcomes::empty());
    drop(s);
    drop(recorded);
    // `resolve` is `false` if the list had been cancelled and fired already: then the failure
    // reached nobody.
    match (trigger.resolve(fire), first_error) {
        (true, true) => Recorded::FirstError,
        (true, false) => Recorded::Kept,
        (false, _) => Recorded::Late,
    }
}

/// Twisted's `race(ds)`: the index and value of the first input to succeed; every other input is
/// then cancelled, exactly once. If every input fails, it fails with a [`FailureGroup`] of their
/// failures in input order (and nothing is cancelled). Cancelling the race cancels all inputs.
/// `race([])` never fires. The race consumes every input's result, so nothing is reported as
/// unhandled; a loser that fires late (a success from its canceller, say) is ignored.
///
/// ```
/// use defer_core::{Deferred, race, testing::success_result_of};
/// let (slow, slow_producer) = Deferred::<&str>::new();
/// let (fast, fast_producer) = Deferred::new();
/// let winner = race([slow, fast]);
/// fast_producer.callback("fast");
/// assert_eq!(success_result_of(winner), (1, "fast"));
/// assert!(slow_producer.is_cancelled());
/// ```
#[track_caller]
pub fn race<T: 'static>(inputs: impl IntoIterator<Item = Deferred<T>>) -> Deferred<(usize, T)> {
    let inputs: Vec<Deferred<T>> = inputs.into_iter().collect();
    let n = inputs.len();
    let state = Rc::new(RefCell::new(RaceState {
        to_cancel: inputs.iter().map(|d| Some(d.control())).collect(),
        failures: (0..n).map(|_| None).collect(),
        failed: 0,
        decided: false,
        trigger: None,
        at: Location::caller(),
    }));
    let weak = Rc::downgrade(&state);
    let (out, trigger) = Deferred::with_canceller(move |_own: Trigger<(usize, T)>| {
        let Some(state) = weak.upgrade() else { return };
        // Each input is cancelled by the race at most once: take its handle out first.
        for i in 0..n {
            let ctl = state
                .borrow_mut()
                .to_cancel
                .get_mut(i)
                .and_then(Option::take);
            if let Some(ctl) = ctl {
                ctl.cancel();
            }
        }
    });
    if n == 0 {
        never_fire(trigger);
        return out;
    }
    state.borrow_mut().trigger = Some(trigger.held_by_join());
    for (index, input) in inputs.into_iter().enumerate() {
        let rest = input.feed(state.clone(), move |state, result: Result<T, Failure>| {
            race_record(state, index, result);
            Ok::<(), Failure>(())
        });
        drop(rest);
    }
    out
}

struct RaceState<T> {
    to_cancel: Vec<Option<DeferredControl>>,
    failures: Vec<Option<Failure>>,
    failed: usize,
    decided: bool,
    trigger: Option<Trigger<(usize, T)>>,
    /// Where the race was made: where a `FailureGroup` enters its chain.
    at: &'static Location<'static>,
}

fn race_record<T: 'static>(
    state: &RefCell<RaceState<T>>,
    index: usize,
    result: Result<T, Failure>,
) {
    let mut s = state.borrow_mut();
    if s.decided {
        drop(s);
        drop(result);
        return;
    }
    match result {
        Ok(value) => {
            s.decided = true;
            let trigger = s.trigger.take();
            s.to_cancel[index] = None; // the winner is never cancelled
            let losers: Vec<DeferredControl> =
                s.to_cancel.iter_mut().filter_map(Option::take).collect();
            let failures = std::mem::take(&mut s.failures);
            drop(s);
            drop(failures);
            // As Twisted: cancel the losers, then fire with the winner.
            for loser in losers {
                loser.cancel();
            }
            if let Some(trigger) = trigger {
                trigger.callback((index, value));
            }
        }
        Err(failure) => {
            s.failures[index] = Some(failure);
            s.failed += 1;
            if s.failed < s.failures.len() {
                return;
            }
            s.decided = true;
            let trigger = s.trigger.take();
            let failures: Vec<Failure> = std::mem::take(&mut s.failures)
                .into_iter()
                .map(|f| f.expect("every input failed"))
                .collect();
            s.to_cancel.clear();
            let at = s.at;
            drop(s);
            if let Some(trigger) = trigger {
                trigger.errback(Failure::new_at(FailureGroup::new(failures), at));
            }
        }
    }
}

/// The first failure of a [`gather_results`], a [`gather`](Gather::gather) or a
/// [`fire_on_one_errback`](DeferredList::fire_on_one_errback) list: which input failed, and
/// how. Twisted's `FirstError(subFailure, index)`.
///
/// Its [`source`](Error::source) is the input's error, so
/// [`Failure::check`](crate::Failure::check) on the list's failure also matches the input's
/// error kind. Two are equal when the index is equal and the sub-failures are the same failure.
///
/// ```
/// use defer_core::{Failure, errors::FirstError};
/// let f = Failure::msg("no route");
/// let e = FirstError::new(3, f.clone());
/// assert_eq!(e.to_string(), "input #3 failed first: no route");
/// assert_eq!(e, FirstError::new(3, f));
/// assert_ne!(e, FirstError::new(3, Failure::msg("no route")));
/// ```
#[derive(Clone)]
pub struct FirstError {
    index: usize,
    sub_failure: Failure,
}

impl FirstError {
    /// The first error, from input `index`, which failed with `sub_failure`.
    ///
    /// ```
    /// let e = defer_core::errors::FirstError::new(0, defer_core::Failure::msg("x"));
    /// assert_eq!(e.index(), 0);
    /// ```
    pub fn new(index: usize, sub_failure: Failure) -> Self {
        FirstError { index, sub_failure }
    }

    /// The position of the input that failed.
    ///
    /// ```
    /// assert_eq!(defer_core::errors::FirstError::new(7, defer_core::Failure::msg("x")).index(), 7);
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// The input's failure (Twisted's `subFailure`).
    ///
    /// ```
    /// let e = defer_core::errors::FirstError::new(0, defer_core::Failure::msg("inner"));
    /// assert_eq!(e.sub_failure().message(), "inner");
    /// ```
    pub fn sub_failure(&self) -> &Failure {
        &self.sub_failure
    }

    /// The input's failure, by value.
    ///
    /// ```
    /// let e = defer_core::errors::FirstError::new(0, defer_core::Failure::msg("inner"));
    /// assert_eq!(e.into_sub_failure().message(), "inner");
    /// ```
    pub fn into_sub_failure(self) -> Failure {
        self.sub_failure
    }
}

impl PartialEq for FirstError {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index && self.sub_failure.same_as(&other.sub_failure)
    }
}

impl fmt::Debug for FirstError {
    /// Twisted's repr: `FirstError[#3, <the sub-failure's error, debug-printed>]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FirstError[#{}, {:?}]",
            self.index,
            self.sub_failure.error()
        )
    }
}

impl fmt::Display for FirstError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "input #{} failed first: {}",
            self.index,
            self.sub_failure.error()
        )
    }
}

impl Error for FirstError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(self.sub_failure.error())
    }
}

/// Every input of a [`race`] failed: their failures, in input order. Twisted's `FailureGroup`.
///
/// ```
/// use defer_core::{Failure, fail, race, errors::FailureGroup, testing::failure_result_of};
/// let d = race([fail::<u8>(Failure::msg("a")), fail(Failure::msg("b"))]);
/// let f = failure_result_of(d);
/// let group = f.downcast_ref::<FailureGroup>().unwrap();
/// let messages: Vec<String> = group.failures().iter().map(|f| f.message()).collect();
/// assert_eq!(messages, ["a", "b"]);
/// assert_eq!(group.to_string(), "all 2 inputs failed: #0: a; #1: b");
/// ```
#[derive(Clone)]
pub struct FailureGroup {
    failures: Vec<Failure>,
}

impl FailureGroup {
    /// A group of failures, in input order.
    ///
    /// ```
    /// let g = defer_core::errors::FailureGroup::new(vec![defer_core::Failure::msg("x")]);
    /// assert_eq!(g.failures().len(), 1);
    /// ```
    pub fn new(failures: Vec<Failure>) -> Self {
        FailureGroup { failures }
    }

    /// The failures, in input order.
    ///
    /// ```
    /// let g = defer_core::errors::FailureGroup::new(vec![]);
    /// assert!(g.failures().is_empty());
    /// ```
    pub fn failures(&self) -> &[Failure] {
        &self.failures
    }

    /// The failures, by value.
    ///
    /// ```
    /// let g = defer_core::errors::FailureGroup::new(vec![defer_core::Failure::msg("x")]);
    /// assert_eq!(g.into_failures()[0].message(), "x");
    /// ```
    pub fn into_failures(self) -> Vec<Failure> {
        self.failures
    }
}

impl fmt::Debug for FailureGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("FailureGroup").field(&self.failures).finish()
    }
}

impl fmt::Display for FailureGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "all {} inputs failed", self.failures.len())?;
        for (i, failure) in self.failures.iter().enumerate() {
            let sep = if i == 0 { ": " } else { "; " };
            write!(f, "{sep}#{i}: {}", failure.error())?;
        }
        Ok(())
    }
}

impl Error for FailureGroup {}

/// Gathers a tuple of Deferreds of different types into one Deferred of the tuple of their
/// values, for arities 2 to 8: `(d1, d2).gather()`. Beyond Twisted, where a list of mixed results
/// needed no types.
///
/// It behaves as [`gather_results`]: the values once all have succeeded, or a [`FirstError`]
/// (with the tuple position as index) on the first failure; cancelling it cancels every input.
/// [`gather`](Gather::gather) leaves in their chains the inputs' failures that reach nobody
/// (those after the gather has failed), as `gather_results` does;
/// [`gather_consuming_errors`](Gather::gather_consuming_errors) consumes them. The failure the
/// gather fails with is the caller's only, never also reported by its input.
///
/// ```
/// use defer_core::{Deferred, Gather, succeed, testing::*};
///
/// let (name, producer) = Deferred::<String>::new();
/// let both = (succeed(42_u32), name).gather();
/// assert_no_result(&both);
/// producer.callback("ada".to_owned());
/// assert_eq!(success_result_of(both), (42, "ada".to_owned()));
/// ```
pub trait Gather {
    /// The tuple of the inputs' values.
    type Output: 'static;

    /// Gathers the values; the inputs' failures after the first stay in their chains (and are
    /// reported as unhandled when the inputs go away). The first is the caller's, in the
    /// [`FirstError`].
    ///
    /// ```
    /// use defer_core::{Gather, succeed, testing::success_result_of};
    /// assert_eq!(success_result_of((succeed(1), succeed('x'), succeed("s")).gather()), (1, 'x', "s"));
    /// ```
    fn gather(self) -> Deferred<Self::Output>;

    /// Gathers the values and consumes the inputs' failures.
    ///
    /// ```
    /// use defer_core::{Failure, Gather, fail, succeed, errors::FirstError, testing::failure_result_of};
    /// let d = (succeed(1), fail::<String>(Failure::msg("no"))).gather_consuming_errors();
    /// assert_eq!(failure_result_of(d).downcast_ref::<FirstError>().unwrap().index(), 1);
    /// ```
    fn gather_consuming_errors(self) -> Deferred<Self::Output>;
}

struct TupleState<V, O> {
    values: V,
    remaining: usize,
    trigger: Option<Trigger<O>>,
    /// Where the gather was made: where a `FirstError` enters its chain.
    at: &'static Location<'static>,
}

macro_rules! tuple_gather {
    ($($T:ident $idx:tt),+) => {
        impl<$($T: 'static),+> Gather for ($(Deferred<$T>,)+) {
            type Output = ($($T,)+);

            #[track_caller]
            fn gather(self) -> Deferred<Self::Output> {
                gather_tuple(self, false)
            }

            #[track_caller]
            fn gather_consuming_errors(self) -> Deferred<Self::Output> {
                gather_tuple(self, true)
            }
        }

        impl<$($T: 'static),+> GatherImpl for ($(Deferred<$T>,)+) {
            type Values = ($(Option<$T>,)+);
            type Out = ($($T,)+);

            fn controls(&self) -> Vec<DeferredControl> {
                vec![$(self.$idx.control()),+]
            }

            fn attach(self, state: &Rc<RefCell<TupleState<Self::Values, Self::Out>>>, consume: bool) {
                $(
                    {
                        let rest = self.$idx.feed(state.clone(), move |state, result: Result<$T, Failure>| {
                            let kept = match &result {
                                Err(f) if !consume => Some(f.clone()),
                                _ => None,
                            };
                            let fire = {
                                let mut s = state.borrow_mut();
                                match result {
                                    _ if s.trigger.is_none() => None,
                                    Ok(value) => {
                                        s.values.$idx = Some(value);
                                        s.remaining -= 1;
                                        (s.remaining == 0).then(|| {
                                            let values = std::mem::take(&mut s.values);
                                            (s.trigger.take(), Ok(Self::unwrap_all(values)))
                                        })
                                    }
                                    Err(failure) => {
                                        let values = std::mem::take(&mut s.values);
                                        let first = Failure::new_at(FirstError::new($idx, failure), s.at);
                                        Some((s.trigger.take(), Err((values, first))))
                                    }
                                }
                            };
                            let delivered = match fire {
                                Some((Some(t), Ok(values))) => {
                                    t.callback(values);
                                    false
                                }
                                Some((Some(t), Err((values, first)))) => {
                                    drop(values);
                                    t.errback(first)
                                }
                                _ => false,
                            };
                            // A failure that became the gather's `FirstError` is the caller's:
                            // the input keeps only a failure that reached nobody (one after the
                            // gather fired), and only without `consume`.
                            match kept {
                                Some(f) if !delivered && keep_late(&f) => Err(f),
                                _ => Ok(()),
                            }
                        });
                        drop(rest);
                    }
                )+
            }

            fn unwrap_all(values: Self::Values) -> Self::Out {
                ($(values.$idx.expect("every input has succeeded"),)+)
            }
        }
    };
}

/// The per-arity part of the tuple gather, generated by `tuple_gather!`.
trait GatherImpl: Sized {
    type Values: Default + 'static;
    type Out: 'static;
    fn controls(&self) -> Vec<DeferredControl>;
    fn attach(self, state: &Rc<RefCell<TupleState<Self::Values, Self::Out>>>, consume: bool);
    fn unwrap_all(values: Self::Values) -> Self::Out;
}

#[track_caller]
fn gather_tuple<G: GatherImpl>(inputs: G, consume: bool) -> Deferred<G::Out> {
    let controls = inputs.controls();
    let n = controls.len();
    let (out, trigger) =
        Deferred::with_canceller(move |_own: Trigger<G::Out>| cancel_all(&controls));
    let state = Rc::new(RefCell::new(TupleState {
        values: G::Values::default(),
        remaining: n,
        trigger: Some(trigger.held_by_join()),
        at: Location::caller(),
    }));
    inputs.attach(&state, consume);
    out
}

tuple_gather!(A 0, B 1);
tuple_gather!(A 0, B 1, C 2);
tuple_gather!(A 0, B 1, C 2, D 3);
tuple_gather!(A 0, B 1, C 2, D 3, E 4);
tuple_gather!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_gather!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_gather!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
