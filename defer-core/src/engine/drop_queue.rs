//! The drop queue: dropping nested structures without recursion, and without a user's `Drop`
//! escaping.
//!
//! A chain owns steps, whose closures may own other Deferreds, whose chains own more steps; a
//! `Waiting` result and a hand-over step own other chains; a `succeed(node)` Deferred owns a
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
use super::user_code;

/// Something whose drop is put off.
pub(crate) enum Item {
    /// A chain's state (the common case: no allocation to queue it).
    State(State),
    /// Anything else: the value of a bare `succeed`, a failure's shared error.
    Boxed(Box<dyn Any>),
}

thread_local! {
    /// Whether an outermost drop is running on this thread.
    static DROPPING: StdCell<bool> = const { StdCell::new(false) };
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

fn dispose_with<T>(value: T, drop_now: impl FnOnce(T), to_item: impl FnOnce(T) -> Item) {
    let outermost = DROPPING.try_with(|d| !d.replace(true)).unwrap_or(false);
    if !outermost {
        if let Some(item) = try_queue(to_item(value)) {
            // No queue left (thread teardown): drop it in place.
            drop_item(item);
        }
        return;
    }
    struct Outermost;
    impl Drop for Outermost {
        fn drop(&mut self) {
            let _ = DROPPING.try_with(|d| d.set(false));
        }
    }
    let _outermost = Outermost;
    drop_now(value);
    while let Some(next) = LATER
        .try_with(|q| q.try_borrow_mut().ok().and_then(|mut q| q.pop()))
        .ok()
        .flatten()
    {
        drop_item(next);
    }
}

/// Queues `item`; gives it back if the queue is gone.
fn try_queue(item: Item) -> Option<Item> {
    let mut item = Some(item);
    let _ = LATER.try_with(|q| {
        if let Ok(mut q) = q.try_borrow_mut() {
            q.extend(item.take());
        }
    });
    item
}

fn drop_item(item: Item) {
    match item {
        Item::State(state) => user_code::drop_value(state),
        Item::Boxed(b) => user_code::drop_value(b),
    }
}
