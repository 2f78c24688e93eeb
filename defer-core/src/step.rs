//! Typed steps behind the type-erased chain.
//!
//! A chain's value changes type at every step, so the chain itself stores steps as trait objects.
//! To pass a value from one step to the next without a heap allocation, each step's box also holds
//! the step's output once it has run: the box that held the closure becomes the *holder* of the
//! result, and the next step moves the value out of the holder's `Option<U>`, reached as
//! `&mut dyn Any` and downcast to the `Option<T>` it expects (the check that the chain's typing is
//! sound). The only allocation per step is the box made when the step is added, which
//! `add_callback` had to make anyway for the closure.

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::rc::Rc;

use crate::chain::Cell;
use crate::deferred::Repr;
use crate::failure::Failure;
use crate::outcome::{Outcome, StepResult};

/// Something that holds a chain's current success value of some type.
pub(crate) trait Holder {
    /// The holder's `Option<T>` of the held type. A leaf call: the consumer downcasts it.
    fn slot(&mut self) -> &mut dyn Any;
    /// The held value, for `Debug`.
    fn peek(&self) -> Option<&dyn Any>;
}

/// Takes the `T` out of a holder. The chain's typing guarantees the holder holds a `T`.
pub(crate) fn take_value<T: 'static>(holder: &mut dyn Holder) -> T {
    holder
        .slot()
        .downcast_mut::<Option<T>>()
        .and_then(Option::take)
        .expect("a Deferred<T>'s current value is a T")
}

/// The holder of a value that entered the chain from outside (`callback`, `succeed`).
pub(crate) struct ValueHolder<T>(pub(crate) Option<T>);

impl<T: 'static> Holder for ValueHolder<T> {
    fn slot(&mut self) -> &mut dyn Any {
        &mut self.0
    }
    fn peek(&self) -> Option<&dyn Any> {
        self.0.as_ref().map(|v| v as &dyn Any)
    }
}

/// The chain's current result once a step has run, as the chain loop sees it.
pub(crate) enum Output {
    Value(Box<dyn Holder>),
    Failure(Failure),
    /// The step (added at the location) returned a Deferred: the chain continues with its result.
    Deferred(Rc<Cell>, &'static Location<'static>),
}

/// A step as the chain loop sees it: run it on the current result.
pub(crate) trait RunStep {
    /// Runs the step. `input` is `Ok(holder)` on success, `Err(failure)` on failure. A panic in
    /// the step's code becomes a failure located where the step was added.
    fn run(self: Box<Self>, input: Result<Box<dyn Holder>, Failure>) -> Output;
}

/// What a step does with its input: the four kinds of step Twisted has.
pub(crate) trait Logic<T>: 'static {
    type Out: 'static;
    fn call(self, input: Result<T, Failure>) -> StepResult<Self::Out>;
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
    fn call(self, input: Result<T, Failure>) -> StepResult<R::Value> {
        match input {
            Ok(v) => (self.0)(v).into_step_result(),
            Err(f) => StepResult::Err(f),
        }
    }
}

impl<T: 'static, R: Outcome<Value = T>, G: FnOnce(Failure) -> R + 'static> Logic<T> for Errback<G> {
    type Out = T;
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
    fn call(self, input: Result<T, Failure>) -> StepResult<R1::Value> {
        match input {
            Ok(v) => (self.0)(v).into_step_result(),
            Err(f) => (self.1)(f).into_step_result(),
        }
    }
}

impl<T: 'static, R: Outcome, H: FnOnce(Result<T, Failure>) -> R + 'static> Logic<T> for Both<H> {
    type Out = R::Value;
    fn call(self, input: Result<T, Failure>) -> StepResult<R::Value> {
        (self.0)(input).into_step_result()
    }
}

/// What a step's box holds: first the step's logic, then its output (`None` once taken). One
/// or the other, so the box is no bigger than the larger of the two.
enum Content<L, U> {
    Logic(L),
    Output(Option<U>),
}

/// One step's box: first its logic, then its output.
pub(crate) struct StepBox<T, L: Logic<T>> {
    content: Content<L, L::Out>,
    added_at: &'static Location<'static>,
    _input: PhantomData<fn(T)>,
}

impl<T: 'static, L: Logic<T>> StepBox<T, L> {
    pub(crate) fn new(logic: L, added_at: &'static Location<'static>) -> Box<Self> {
        Box::new(StepBox {
            content: Content::Logic(logic),
            added_at,
            _input: PhantomData,
        })
    }
}

impl<T: 'static, L: Logic<T>> RunStep for StepBox<T, L> {
    fn run(mut self: Box<Self>, input: Result<Box<dyn Holder>, Failure>) -> Output {
        let Content::Logic(logic) = std::mem::replace(&mut self.content, Content::Output(None))
        else {
            unreachable!("a step runs once")
        };
        let input = input.map(|mut holder| take_value::<T>(&mut *holder));
        let added_at = self.added_at;
        match catch_unwind(AssertUnwindSafe(move || logic.call(input))) {
            Ok(StepResult::Ok(v)) => {
                self.content = Content::Output(Some(v));
                Output::Value(self)
            }
            Ok(StepResult::Err(f)) => Output::Failure(f),
            Ok(StepResult::Wait(d)) => match d.into_repr() {
                // A bare value (`succeed`): taken as is, no chain to wait on.
                Repr::Ready(h) => Output::Value(h),
                Repr::Chain(c) => Output::Deferred(c, added_at),
                Repr::Swapping => unreachable!("a Deferred is never observed mid-swap"),
            },
            Err(payload) => Output::Failure(Failure::from_panic_at(payload, added_at)),
        }
    }
}

impl<T: 'static, L: Logic<T>> Holder for StepBox<T, L> {
    fn slot(&mut self) -> &mut dyn Any {
        let StepBox {
            content, added_at, ..
        } = self;
        match content {
            Content::Output(out) => out,
            // Never asked of a step that has not run: the consumer's downcast fails, loudly.
            Content::Logic(_) => added_at,
        }
    }
    fn peek(&self) -> Option<&dyn Any> {
        match &self.content {
            Content::Output(out) => out.as_ref().map(|v| v as &dyn Any),
            Content::Logic(_) => None,
        }
    }
}
