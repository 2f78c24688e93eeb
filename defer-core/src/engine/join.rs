//! A combinator's shared state, as `reclaim.rs` sees it.
//!
//! A list, a race or a gather feeds every input into one shared state, which holds the trigger of
//! the combined Deferred. Each input's step holds that state, and the state holds the output's
//! chain: references through a closure, which the reclaim walk could not see. When the output
//! then leads back to an input (it is `chain_deferred` into an input's trigger, or an input's
//! errback returns the combined Deferred), the chains form a cycle that no handle reaches, and
//! without this, it would never be freed.
//!
//! So the state is a node of its own: the inputs' steps name it
//! ([`RunStep::join`](super::step::RunStep::join)), and it names the chains it holds
//! ([`Join::holds`]). The walk counts references to it as it counts references to chains, and
//! frees the set only if every reference to the node comes from inside it. A closure of the
//! user's that holds a trigger stays invisible: such a cycle is kept, as any `Rc` cycle is (see
//! the crate's docs on leaks).

use std::rc::Rc;

use super::cell::CellRc;

/// A node the reclaim walk can see through: a combinator's shared state.
pub(crate) trait Join {
    /// The chain this node holds a strong reference to (the combined Deferred's, through its
    /// trigger, until it fires): `Some(None)` if none, `None` if it cannot tell now (in use).
    fn holds(&self) -> Option<Option<CellRc>>;

    /// The chain it holds, if that chain could lead back into a cycle through this node (see
    /// [`leads_anywhere`]); `None` otherwise, or if it cannot tell now. Checked before cloning:
    /// it runs each time an input's step lets go of the node.
    fn held_leading_somewhere(&self) -> Option<CellRc>;
}

/// Whether a chain references anything that could lead back to a combinator feeding it: a
/// hand-over, a chain it waits on, a coroutine awaiting it, another combinator it feeds. A chain
/// with none of these (the common case: the user holds the combined Deferred, with steps of
/// their own) closes no cycle the walk could see.
pub(crate) fn leads_anywhere(out: &CellRc) -> bool {
    out.try_borrow().is_ok_and(|st| {
        st.has_hand_over()
            || st.result.waits_on().is_some()
            || st.awaiting_driver().is_some()
            || st.steps.feeds_a_join()
    })
}

/// An input step's reference to its combinator's state. Letting go of it (the step ran, or was
/// dropped) may leave the state held only by a cycle through the combined Deferred (chained into
/// another input, say): so the combined Deferred is then let go of through `reclaim::release`,
/// which looks for such a cycle, as for any other reference to a chain that goes.
pub(crate) struct JoinRef<S: Join + 'static>(Option<Rc<S>>);

impl<S: Join + 'static> JoinRef<S> {
    pub(crate) fn new(node: Rc<S>) -> Self {
        JoinRef(Some(node))
    }

    pub(crate) fn get(&self) -> &Rc<S> {
        self.0.as_ref().expect("held until dropped")
    }
}

impl<S: Join + 'static> Drop for JoinRef<S> {
    fn drop(&mut self) {
        let Some(node) = self.0.take() else { return };
        let out = node.held_leading_somewhere();
        drop(node);
        if let Some(out) = out {
            // Straight to the walk's own precheck: `release`'s shortcuts look for the edges
            // between chains only, not for the combinators a chain feeds.
            super::reclaim::reclaim_if_unreachable(&out, 1);
        }
    }
}
