//! A chain's queue of steps.

use std::collections::VecDeque;
use std::panic::Location;
use std::rc::Rc;

use super::join::Join;
use super::raw::erased_step::{ErasedStep, UndroppedStep};

/// A chain's queue of steps: a lone step inline, more in a box made when a second one comes.
///
/// Most chains have one step (a user's callback, a combinator's input, a coroutine's await
/// needs none); what hands the result on when they are done is the chain's
/// [`Tail`](super::tail::Tail), not a step. A pending chain that never has a second step (issue
/// 11: S1, S3) pays three words for its queue, one step's; the second step costs one
/// allocation, which holds both and the queue behind them, whose buffer is allocated at the
/// third.
pub(crate) struct Steps {
    head: Head,
}

/// What a queue holds. `Many` fits beside the niche of `One`'s step (its table pointer, never
/// null), so this is three words, one step's: the box of a queue costs a lone step nothing.
enum Head {
    /// The only step.
    One(Step),
    /// No step (`None`, nothing allocated), or the queue, in a box.
    Many(Option<Box<Queue>>),
}

impl Default for Steps {
    fn default() -> Self {
        Steps {
            head: Head::Many(None),
        }
    }
}

/// A queue of more than one step (see [`Steps`]). Invariant: the steps are `first`, then
/// `second`, then `rest`, front to back, where an empty place is simply skipped. Popping takes
/// the first occupied place and never shifts the others; pushing goes behind the last occupied
/// place.
struct Queue {
    first: Option<Step>,
    second: Option<Step>,
    /// The steps are dropped by hand (`Drop for Queue`): so adding one keeps nothing with a `Drop`
    /// alive across the buffer's growth (see [`push_back`](Steps::push_back)).
    rest: VecDeque<(UndroppedStep, &'static Location<'static>)>,
}

impl Drop for Queue {
    fn drop(&mut self) {
        // Each through `user_code`, as the drop queue drops a chain's state: a panicking `Drop`
        // of one step leaves none of the others behind.
        for (step, _) in self.rest.drain(..) {
            super::user_code::drop_value(step.into_step());
        }
    }
}

impl Queue {
    #[inline]
    fn is_empty(&self) -> bool {
        self.first.is_none() && self.second.is_none() && self.rest.is_empty()
    }

    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + usize::from(self.second.is_some()) + self.rest.len()
    }

    fn joins(&self) -> impl Iterator<Item = Rc<dyn Join>> {
        self.first
            .iter()
            .chain(self.second.iter())
            .filter_map(Step::join)
            .chain(self.rest.iter().filter_map(|(step, _)| step.join()))
    }

    #[inline(always)]
    fn push_back(&mut self, make: impl FnOnce() -> ErasedStep, at: &'static Location<'static>) {
        if self.second.is_some() || !self.rest.is_empty() {
            self.rest.push_back((make().undropped(), at));
        } else if self.first.is_some() {
            self.second = Some(Step::Run(make(), at));
        } else {
            self.first = Some(Step::Run(make(), at));
        }
    }

    #[inline]
    fn pop_front(&mut self) -> Option<Step> {
        // Checked before taking: once the inline places are spent, a long chain pops from
        // `rest` without writing them again.
        if self.first.is_some() {
            return self.first.take();
        }
        if self.second.is_some() {
            return self.second.take();
        }
        self.rest
            .pop_front()
            .map(|(step, at)| Step::Run(step.into_step(), at))
    }
}

impl Steps {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        match &self.head {
            Head::One(_) => false,
            Head::Many(q) => q.as_ref().is_none_or(|q| q.is_empty()),
        }
    }

    /// How many steps wait.
    pub(crate) fn len(&self) -> usize {
        match &self.head {
            Head::One(_) => 1,
            Head::Many(q) => q.as_ref().map_or(0, |q| q.len()),
        }
    }

    /// Whether a step feeds a combinator's state (`join.rs`): it runs each time a combinator's
    /// input lets go of its state.
    pub(crate) fn feeds_a_join(&self) -> bool {
        self.joins().next().is_some()
    }

    /// The combinators' states the steps feed, front to back (see [`Step::join`]).
    pub(crate) fn joins(&self) -> impl Iterator<Item = Rc<dyn Join>> {
        let (one, queue) = match &self.head {
            Head::One(step) => (Some(step), None),
            Head::Many(q) => (None, q.as_deref()),
        };
        one.into_iter()
            .filter_map(Step::join)
            .chain(queue.into_iter().flat_map(Queue::joins))
    }

    /// Takes every step out, leaving the queue empty.
    pub(crate) fn take_all(&mut self) -> Steps {
        std::mem::take(self)
    }

    /// Adds the step `make` makes, added at `at`, at the back.
    ///
    /// The step is made last, in its place, once every call that could unwind (growing the
    /// queue) is behind it. A step alive across such a call needs a landing pad that drops it,
    /// which keeps it in memory: on the stack, copied into its place by a 16-byte load of two
    /// 8-byte stores, which the processor cannot forward from the stores, a stall on every step
    /// added (`W1_chain_zst` took 40 % longer). Before it is made, what is alive is the typed
    /// closure, whose drop the compiler sees through.
    #[inline(always)]
    pub(crate) fn push_back(
        &mut self,
        make: impl FnOnce() -> ErasedStep,
        at: &'static Location<'static>,
    ) {
        match &mut self.head {
            Head::Many(Some(q)) => q.push_back(make, at),
            Head::Many(None) => self.head = Head::One(Step::Run(make(), at)),
            Head::One(_) => self.second(make, at),
        }
    }

    /// The second step: the lone one moves into a new box, with it. Out of line, so that adding
    /// a step stays small enough to inline.
    #[inline(never)]
    fn second(&mut self, make: impl FnOnce() -> ErasedStep, at: &'static Location<'static>) {
        let Head::One(first) = std::mem::replace(&mut self.head, Head::Many(None)) else {
            unreachable!("called with one step")
        };
        let mut q = Box::new(Queue {
            first: Some(first),
            second: None,
            rest: VecDeque::new(),
        });
        q.second = Some(Step::Run(make(), at));
        self.head = Head::Many(Some(q));
    }

    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<Step> {
        match &mut self.head {
            Head::Many(Some(q)) => q.pop_front(),
            Head::Many(None) => None,
            Head::One(_) => match std::mem::replace(&mut self.head, Head::Many(None)) {
                Head::One(step) => Some(step),
                Head::Many(_) => unreachable!("just matched"),
            },
        }
    }
}

pub(crate) enum Step {
    /// A step, and where it was added (for a panic's failure, and `CircularChainError`). (An
    /// enum of one variant rather than a struct: the tuple-variant patterns read as what they
    /// are.)
    Run(ErasedStep, &'static Location<'static>),
}

impl Step {
    /// The combinator's state this step feeds, if it is a combinator's input.
    #[inline]
    pub(crate) fn join(&self) -> Option<Rc<dyn super::join::Join>> {
        match self {
            Step::Run(s, _) => s.join(),
        }
    }
}

// Three words, like the queue entry of the `rc_minimal` cost model: one more word per entry
// made W2's 2000-step queue 64 KiB, the size at which glibc's `free` consolidates its fast bins,
// which made every allocation after it slow. And an empty place costs no more than a step.
const _: () = assert!(size_of::<Step>() == 3 * size_of::<usize>());
const _: () = assert!(size_of::<Option<Step>>() == 3 * size_of::<usize>());
const _: () = assert!(size_of::<Steps>() == 3 * size_of::<usize>());
