//! The engine: what every `Deferred` runs on, and the mechanisms that keep its guarantees.
//!
//! Each guarantee has one mechanism, in one file:
//!
//! | guarantee | mechanism | file |
//! |---|---|---|
//! | nothing recurses as deep as the program's structure | the per-thread work loop every continuation enters; the chain loop's tail calls | `work_loop.rs`, `chain_loop.rs` |
//! | a panic in user code becomes a `Failure`, never escapes, never loses a result | the one place user code is called | `user_code.rs` |
//! | no user code runs under a borrow of a chain | the state is taken out before calling in | `cell.rs` (the rule), `user_code.rs` |
//! | dropping a deep structure never recurses; a panicking `Drop` is contained | the drop queue | `drop_queue.rs` |
//! | cancelling a wait cycle terminates | the cancel walk's visited set | `cancel.rs` |
//! | a chain no handle can reach is freed, its failure reported, cycles included | reclaiming unreachable sets of chains (and of the combinators' states between them); a dropped trigger's check for listeners | `reclaim.rs`, `join.rs`, `chain_loop.rs` |
//! | a value never enters a chain as another type | invariant handles, and a checked take | `raw/value.rs` |
//! | thread teardown in any order never aborts | `try_with` and an inline fallback in each of the above | `work_loop.rs`, `drop_queue.rs` |
//!
//! `cell.rs` holds a chain's state, with its parts in `slot.rs` (the result; the canceller before
//! the chain fires), `step_queue.rs` and `tail.rs` (what receives the result: a hand-over or an
//! awaiter). `step.rs` holds the typed steps behind the type-erased chain, `outcome.rs` what a
//! step may return. `raw/` is the crate's one module with `unsafe`, each part with its invariants
//! at its top: the block a chain lives in (`shared.rs`), its value held in place (`value.rs`), a
//! step held in its queue entry (`erased_step.rs`), a `Deferred` handle and a chain's tail in one
//! word (`one_of.rs`), a coroutine's waker made only when a future keeps one (`lazy_waker.rs`), an
//! await's site and flags in one word (`tagged_location.rs`).

pub(crate) mod cancel;
pub(crate) mod cell;
pub(crate) mod chain_loop;
pub(crate) mod drop_queue;
pub(crate) mod join;
pub(crate) mod outcome;
pub(crate) mod reclaim;
pub(crate) mod slot;
pub(crate) mod step;
pub(crate) mod step_queue;
pub(crate) mod tail;
pub(crate) mod user_code;
pub(crate) use raw::value;
// The one module with `unsafe`: a small value held in place, and the chain's counted block.
#[allow(unsafe_code)]
pub(crate) mod raw;
pub(crate) mod work_loop;

pub(crate) use cancel::{cancel, cancel_at};
pub(crate) use cell::{Awaiter, Canceller, CellRc, CellWeak, Hand, Resume, Slot};
pub(crate) use chain_loop::{
    add_hand_over, add_step, fire, forget_unreachable, has_listener, pause, put, set_result,
    take_ready, take_ready_in, unpause, wait_on,
};
