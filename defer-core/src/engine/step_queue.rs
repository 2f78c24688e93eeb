//! A chain's queue of steps.

use std::collections::VecDeque;
use std::panic::Location;
use std::rc::Rc;

use super::raw::erased_step::ErasedStep;

/// A chain's queue of steps: the first inline, the others in a box made when a second one comes.
///
/// Most chains have one step (a user's callback, a combinator's input, a coroutine's await
/// needs none); what hands the result on when they are done is the chain's
/// [`Tail`](super::tail::Tail), not a step. A pending chain that never has a second step (issue
/// 11: S1, S3) pays one inline step for its queue; the second step costs one allocation, which
/// holds it and the queue behind it, whose buffer is allocated at the third.
#[derive(Default)]
pub(crate) struct Steps {
    /// Invariant: the queue is `first`, then the box's `second`, then its `rest`, front to back,
    /// where an empty place is simply skipped. Popping takes the first occupied place and never
    /// shifts the others; pushing goes behind the last occupied place.
    first: Option<Step>,
    more: Option<Box<MoreSteps>>,
}

/// The steps behind the first (see [`Steps`]).
#[derive(Default)]
struct MoreSteps {
    second: Option<Step>,
    /// Every place holds a step but while one is being added (see
    /// [`push_back`](Steps::push_back)).
    rest: VecDeque<Option<Step>>,
}

impl MoreSteps {
    #[inline]
    fn is_empty(&self) -> bool {
        self.second.is_none() && self.rest.is_empty()
    }
}

impl Steps {
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.more.as_ref().is_none_or(|m| m.is_empty())
    }

    /// How many steps wait.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some())
            + self.more.as_ref().map_or(0, |m| {
                usize::from(m.second.is_some()) + m.rest.iter().flatten().count()
            })
    }

    /// Whether a step feeds a combinator's state (`join.rs`). Written out, not as an iterator:
    /// it runs each time a combinator's input lets go of its state.
    pub(crate) fn feeds_a_join(&self) -> bool {
        let feeds = |step: &Step| step.join().is_some();
        self.first.as_ref().is_some_and(feeds)
            || self.more.as_ref().is_some_and(|m| {
                m.second.as_ref().is_some_and(feeds) || m.rest.iter().flatten().any(feeds)
            })
    }

    /// Every step, front to back.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Step> {
        self.first.iter().chain(
            self.more
                .iter()
                .flat_map(|m| m.second.iter().chain(m.rest.iter().flatten())),
        )
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
        if let Some(m) = &mut self.more
            && !m.is_empty()
        {
            // Grown first, with no step alive yet (a `None` needs no landing pad); then the step is
            // written over the `None`, which is forgotten, not dropped: no read of the place
            // just written either.
            m.rest.push_back(None);
            if let Some(place) = m.rest.back_mut() {
                std::mem::forget(place.replace(Step::Run(make(), at)));
            }
            return;
        }
        if self.first.is_none() {
            self.first = Some(Step::Run(make(), at));
            return;
        }
        let m = match &mut self.more {
            Some(m) => m,
            None => self.new_more(),
        };
        m.second = Some(Step::Run(make(), at));
    }

    /// The box of the steps behind the first, made when a second comes: out of line, so that
    /// adding the first stays small enough to inline.
    #[inline(never)]
    fn new_more(&mut self) -> &mut MoreSteps {
        self.more.insert(Box::default())
    }

    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<Step> {
        // Checked before taking: once the inline place is spent, a long chain pops from `rest`
        // without writing it again.
        if self.first.is_some() {
            return self.first.take();
        }
        let m = self.more.as_mut()?;
        if m.second.is_some() {
            return m.second.take();
        }
        m.rest.pop_front().flatten()
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
