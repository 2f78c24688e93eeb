//! Typed steps behind the type-erased chain.
//!
//! A chain's value changes type at every step, so the chain itself stores steps type-erased
//! (`raw/erased_step.rs`) and values as type-erased [`Value`]s. Passing a value from one step to
//! the next costs no heap allocation: a small output (at most 16 bytes) leaves the step in place,
//! and the step, which then holds only the closure, is held in its queue entry when the closure
//! captures one word or nothing (no allocation at all); a large output stays in the step's box,
//! which becomes its holder. Either way the only allocation per step is the box of a closure that
//! captures more than a word. Where the step was added is kept in the chain's queue entry.

use std::any::Any;
use std::marker::PhantomData;
use std::panic::Location;
use std::rc::Rc;

use super::cell::CellRc;
use super::join::{Join, JoinRef};
use super::outcome::{Outcome, StepResult};
use super::raw::erased_step::ErasedStep;
use super::user_code;
use super::value::{Holder, Small, Value};
use crate::deferred::Repr;
use crate::failure::Failure;

/// The chain's current result between steps: `None` only while a step holds it, or when a step
/// returned a Deferred that has not fired.
pub(crate) type Current = Option<Result<Value, Failure>>;

/// A step as the chain loop sees it: run it on the current result. The queue holds it
/// type-erased (`raw/erased_step.rs`): in place when it is one word or smaller, else boxed.
pub(crate) trait RunStep: 'static {
    /// Whether the step may be held in place: not if its box is what carries its output on
    /// ([`StepBox`]).
    const MAY_BE_HELD: bool = true;

    /// Runs the step, which was added at `added_at`, on the chain's current result, which it
    /// replaces with its own, in place (no result is copied in and out). If the step returned a
    /// Deferred that is still a chain, that chain is returned and `cur` is left empty. A panic in
    /// the step's code becomes a failure located where the step was added.
    fn run(
        self: Box<Self>,
        cur: &mut Current,
        added_at: &'static Location<'static>,
    ) -> Option<CellRc>;

    /// As [`run`](RunStep::run), for a step held in place.
    fn run_in_place(self, cur: &mut Current, added_at: &'static Location<'static>) -> Option<CellRc>
    where
        Self: Sized,
    {
        Box::new(self).run(cur, added_at)
    }

    /// The combinator state this step feeds, if it is an input's step of a list, race or gather:
    /// a reference the reclaim walk follows (see `join.rs`). Never called on the hot path.
    fn join(&self) -> Option<Rc<dyn Join>> {
        None
    }
}

/// Puts a result in a `Current` that a step has emptied.
#[inline(always)]
fn fill(cur: &mut Current, result: Result<Value, Failure>) {
    if let Some(old) = cur.replace(result) {
        // Never: the step took the input. Dropped rather than leaked if it ever happens.
        drop(old);
    }
}

/// What a step does with its input: the four kinds of step Twisted has.
pub(crate) trait Logic<T>: 'static {
    type Out: 'static;
    fn call(self, input: Result<T, Failure>) -> StepResult<Self::Out>;

    /// See [`RunStep::join`].
    fn join(&self) -> Option<Rc<dyn Join>> {
        None
    }
}

/// A combinator's input step: `f` on the input's result, with the shared state `node`, which the
/// reclaim walk can see (see `join.rs`).
pub(crate) struct Feed<S: Join + 'static, F> {
    pub(crate) node: JoinRef<S>,
    pub(crate) f: F,
}

impl<T, S, R, F> Logic<T> for Feed<S, F>
where
    T: 'static,
    S: Join + 'static,
    R: Outcome,
    F: FnOnce(&Rc<S>, Result<T, Failure>) -> R + 'static,
{
    type Out = R::Value;
    #[inline(always)]
    fn call(self, input: Result<T, Failure>) -> StepResult<R::Value> {
        let Feed { node, f } = self;
        let r = f(node.get(), input).into_step_result();
        // Letting go of the state may leave a cycle through it: see `JoinRef`.
        drop(node);
        r
    }
    fn join(&self) -> Option<Rc<dyn Join>> {
        Some(self.node.get().clone())
    }
}

/// `add_callback(f)`: `f` on success; a failure passes by.
pub(crate) struct Callback<F>(pub(crate) F);
/// `add_errback(g)`: `g` on failure; a value passes by.
pub(crate) struct Errback<G>(pub(crate) G);
/// `add_callbacks(f, g)`: one step, so `g` never sees `f`'s failure.
pub(crate) struct Callbacks<F, G>(pub(crate) F, pub(crate) G);
/// `add_both(h)`: a `finally`.
pub(crate) struct Both<H>(pub(crate) H);

impl<T: 'static, R: Outcome, F: FnOnce(T) -> R + 'static> Logic<T> for Callback<F> {
    type Out = R::Value;
    #[inline(always)]
    fn call(self, input: Result<T, Failure>) -> StepResult<R::Value> {
        match input {
            Ok(v) => (self.0)(v).into_step_result(),
            Err(f) => StepResult::Err(f),
        }
    }
}

impl<T: 'static, R: Outcome<Value = T>, G: FnOnce(Failure) -> R + 'static> Logic<T> for Errback<G> {
    type Out = T;
    #[inline(always)]
    fn call(self, input: Result<T, Failure>) -> StepResult<T> {
        match input {
            Ok(v) => StepResult::Ok(v),
            Err(f) => (self.0)(f).into_step_result(),
        }
    }
}

impl<T, R1, R2, F, G> Logic<T> for Callbacks<F, G>
where
    T: 'static,
    R1: Outcome,
    R2: Outcome<Value = R1::Value>,
    F: FnOnce(T) -> R1 + 'static,
    G: FnOnce(Failure) -> R2 + 'static,
{
    type Out = R1::Value;
    #[inline(always)]
    fn call(self, input: Result<T, Failure>) -> StepResult<R1::Value> {
        match input {
            Ok(v) => (self.0)(v).into_step_result(),
            Err(f) => (self.1)(f).into_step_result(),
        }
    }
}

impl<T: 'static, R: Outcome, H: FnOnce(Result<T, Failure>) -> R + 'static> Logic<T> for Both<H> {
    type Out = R::Value;
    #[inline(always)]
    fn call(self, input: Result<T, Failure>) -> StepResult<R::Value> {
        (self.0)(input).into_step_result()
    }
}

/// What a step's box holds when its output is large: first the step's logic, then its output
/// (`None` once taken), so that the box allocated for the closure carries the value on.
enum Content<L, U> {
    Logic(L),
    Output(Option<U>),
}

/// The box of a step whose output is large (see `crate::value`): it becomes the output's holder.
struct StepBox<T, L: Logic<T>> {
    content: Content<L, L::Out>,
    _input: PhantomData<fn(T)>,
}

/// A step whose output is small: only the logic, so a closure that captures one word or nothing
/// is held in its queue entry, which allocates nothing. The output leaves in place, as a `Small`.
struct SmallStep<T, L> {
    logic: L,
    _input: PhantomData<fn(T)>,
}

/// The step for `logic`, whichever fits its output.
#[inline]
pub(crate) fn new_step<T: 'static, L: Logic<T>>(logic: L) -> ErasedStep {
    if Small::fits::<L::Out>() {
        ErasedStep::new(SmallStep {
            logic,
            _input: PhantomData,
        })
    } else {
        ErasedStep::new(StepBox {
            content: Content::Logic(logic),
            _input: PhantomData,
        })
    }
}

/// Runs a step's logic on the chain's current result, catching a panic, which becomes a failure
/// located where the step was added. `Ok(v)` is the step's own output, still to be held; on
/// `Err`, the result is already in `cur`, or the step returned the chain to wait on.
#[inline]
fn call<T: 'static, L: Logic<T>>(
    logic: L,
    cur: &mut Current,
    added_at: &'static Location<'static>,
) -> Result<L::Out, Option<CellRc>> {
    let Some(input) = cur.take() else {
        unreachable!("a step runs on a result")
    };
    // A value of another type is a failure here, never a panic (see `value::wrong_type`).
    let input = input.and_then(Value::take::<T>);
    match user_code::call(move || logic.call(input)) {
        Ok(StepResult::Ok(v)) => Ok(v),
        Ok(StepResult::Err(f)) => {
            fill(cur, Err(f));
            Err(None)
        }
        Ok(StepResult::Wait(d)) => match d.into_repr() {
            // A bare value (`succeed`): taken as is, no chain to wait on.
            Repr::Ready(h) => {
                fill(cur, Ok(Value::Boxed(h)));
                Err(None)
            }
            Repr::Chain(c) => Err(Some(c)),
            Repr::Coroutine(_) | Repr::Swapping => {
                unreachable!("never mid-swap, and a coroutine's chain is made by into_repr")
            }
        },
        Err(payload) => {
            fill(cur, Err(Failure::from_panic_at(payload, added_at)));
            Err(None)
        }
    }
}

impl<T: 'static, L: Logic<T>> RunStep for SmallStep<T, L> {
    fn join(&self) -> Option<Rc<dyn Join>> {
        self.logic.join()
    }

    fn run(
        self: Box<Self>,
        cur: &mut Current,
        added_at: &'static Location<'static>,
    ) -> Option<CellRc> {
        (*self).run_in_place(cur, added_at)
    }

    #[inline(always)]
    fn run_in_place(
        self,
        cur: &mut Current,
        added_at: &'static Location<'static>,
    ) -> Option<CellRc> {
        let SmallStep { logic, .. } = self;
        match call::<T, L>(logic, cur, added_at) {
            Ok(v) => {
                fill(cur, Ok(Value::new(v)));
                None
            }
            Err(wait) => wait,
        }
    }
}

impl<T: 'static, L: Logic<T>> RunStep for StepBox<T, L> {
    const MAY_BE_HELD: bool = false;

    fn join(&self) -> Option<Rc<dyn Join>> {
        match &self.content {
            Content::Logic(logic) => logic.join(),
            Content::Output(_) => None,
        }
    }

    fn run(
        mut self: Box<Self>,
        cur: &mut Current,
        added_at: &'static Location<'static>,
    ) -> Option<CellRc> {
        let Content::Logic(logic) = std::mem::replace(&mut self.content, Content::Output(None))
        else {
            unreachable!("a step runs once")
        };
        match call::<T, L>(logic, cur, added_at) {
            Ok(v) => {
                self.content = Content::Output(Some(v));
                fill(cur, Ok(Value::Boxed(self)));
                None
            }
            Err(wait) => wait,
        }
    }
}

impl<T: 'static, L: Logic<T>> Holder for StepBox<T, L> {
    fn slot(&mut self) -> &mut dyn Any {
        let StepBox { content, _input } = self;
        match content {
            Content::Output(out) => out,
            // Never asked of a step that has not run: the consumer's downcast fails, loudly.
            Content::Logic(_) => _input,
        }
    }
    fn peek(&self) -> Option<&dyn Any> {
        match &self.content {
            Content::Output(out) => out.as_ref().map(|v| v as &dyn Any),
            Content::Logic(_) => None,
        }
    }
}
