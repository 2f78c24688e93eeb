//! The engine's `unsafe` code, all of it, each part paid for in `BENCHMARKS.md`:
//!
//! - `value.rs`: a chain's current value held in place when it is small (no allocation per
//!   fired value, nor per step's output);
//! - `shared.rs`: the counted, borrow-checked block every chain lives in, with 8 bytes of header
//!   where `Rc<RefCell<_>>` has 24 (issue 11: bytes per pending Deferred);
//! - `erased_step.rs`: a chain's step held in its queue entry when it is one word or smaller, so
//!   that adding a step whose closure captures one word or nothing allocates nothing;
//! - `one_of.rs`: a `Deferred` handle, and a chain's tail, in one word, its kind in its pointer's
//!   two low bits;
//! - `lazy_waker.rs`: a coroutine driver's waker, lent by reference while it polls and made (an
//!   `Arc`) only when a future keeps a clone of it;
//! - `tagged_location.rs`: a `&'static Location` and two flags in one word (an awaited
//!   Deferred's future, which every suspended coroutine holds).
//!
//! Each keeps its invariants local to its file, states them at its top, argues each `unsafe`
//! block against them in a `// SAFETY:` comment, tests them at its end, and runs under valgrind's
//! memcheck with the whole test suite (`tests/memcheck.sh`).

pub(crate) mod erased_step;
pub(crate) mod lazy_waker;
pub(crate) mod one_of;
pub(crate) mod shared;
pub(crate) mod tagged_location;
pub(crate) mod value;
