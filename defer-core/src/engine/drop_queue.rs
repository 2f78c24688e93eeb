//! The drop queue: dropping nested structures without recursion, and without a user's `Drop`
//! escaping.
//!
//! A chain owns steps, whose closures may own other Deferreds, whose chains own more steps; a
//! `Waiting` result and a hand-over own other chains; a `succeed(node)` Deferred owns a
//! value that may own the next `succeed(..)`; a `Failure` may wrap an error (a `FirstError`) that
//! wraps another `Failure`. Dropped naively, each of those is a recursion as deep as the
//! structure. So only the *outermost* such drop on a thread drops anything: while it runs, every
//! drop it causes of one of those owners is queued here instead, and the outermost drop then
//! takes the queue item by item, in a loop. Each item is dropped through
//! [`user_code::drop_value`](super::user_code::drop_value), so a panicking `Drop` is reported and
//! the remaining items are still dropped.
//!
//! Thread teardown: the flag is a `const` thread-local without destructor, readable at any time;
//! if the queue itself has been destroyed, an item is dropped in place.

use std::any::Any;
use std::cell::{Cell as StdCell, RefCell};

use super::cell::State;
use super::reclaim;
use super::user_code;

/// Something whose drop is put off.
pub(crate) enum Item {
    /// A chain's state (the common case: no allocation to queue it).
    State(State),
    /// Anything else: the value of a bare `succeed`, a failure's shared error.
    Boxed(Box<dyn Any>),
}

/// The queue's flags: `const`, with no destructor, readable at any point of the thread's life.
struct Flags {
    /// Whether an outermost drop is running on this thread.
    dropping: StdCell<bool>,
    /// Items in [`LATER`], so that the common case never touches it.
    queued: StdCell<usize>,
}

thread_local! {
    static FLAGS: Flags = const {
        Flags { dropping: StdCell::new(false), queued: StdCell::new(0) }
    };
    static LATER: RefCell<Vec<Item>> = const { RefCell::new(Vec::new()) };
}

/// Drops `item` now if no drop is running on this thread (and then everything that drop queued),
/// else queues it for the one that is.
pub(crate) fn dispose(item: Item) {
    dispose_with(item, drop_item, |item| item);
}

/// Drops `value` as [`dispose`] does, boxing it only if it has to be queued: the outermost drop
/// (the common case: a failure handled and dropped) costs no allocation.
pub(crate) fn dispose_value<T: 'static>(value: T) {
    dispose_with(value, user_code::drop_value, |v| {
        Item::Boxed(Box::new(v) as Box<dyn Any>)
    });
}

#[inline(always)]
fn dispose_with<T>(value: T, drop_now: impl FnOnce(T), to_item: impl FnOnce(T) -> Item) {
    // `with` cannot fail: the flags have no destructor (see [`Flags`]).
    if FLAGS.with(|f| f.dropping.replace(true)) {
        // A drop is running on this thread: queue this one for it.
        if let Some(item) = try_queue(to_item(value)) {
            // No queue left (thread teardown): drop it in place.
            drop_item(item);
        }
        return;
    }
    // The outermost drop. `drop_now` catches a panicking `Drop` (`user_code`), so this returns
    // normally and the flag is always reset.
    drop_now(value);
    if FLAGS.with(|f| f.queued.get() > 0) {
        FLAGS.with(drain);
    }
    FLAGS.with(|f| f.dropping.set(false));
}

#[cold]
#[inline(never)]
fn drain(f: &Flags) {
    while let Some(next) = LATER
        .try_with(|q| q.try_borrow_mut().ok().and_then(|mut q| q.pop()))
        .ok()
        .flatten()
    {
        f.queued.set(f.queued.get().saturating_sub(1));
        drop_item(next);
    }
}

/// Queues `item`; gives it back if the queue is gone.
fn try_queue(item: Item) -> Option<Item> {
    let mut item = Some(item);
    let _ = LATER.try_with(|q| {
        if let Ok(mut q) = q.try_borrow_mut() {
            q.extend(item.take());
            let _ = FLAGS.try_with(|f| f.queued.set(f.queued.get() + 1));
        }
    });
    item
}

fn drop_item(item: Item) {
    match item {
        Item::State(state) => drop_state(state),
        Item::Boxed(b) => user_code::drop_value(b),
    }
}

/// Drops a dead chain's state. The chains it references (the one it waited on, the one its
/// hand-over went to) are let go of through `reclaim::release`, not dropped blindly: this
/// chain's reference may have been the last one from outside a set of chains that only hold
/// each other (a coroutine stuck on a paused chain, say), which must be freed too.
fn drop_state(mut state: State) {
    let waited = state.result.take_waits_on();
    let handed = state.take_hand_over();
    user_code::drop_value(state);
    for chain in waited.into_iter().chain(handed) {
        reclaim::release(chain);
    }
}
