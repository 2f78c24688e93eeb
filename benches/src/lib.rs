//! Benchmarks of `defer-core` against its cost model and floors.
//!
//! - [`rc_minimal`]: a minimal `Rc<RefCell>` Deferred, the cost model the real one is held to.
//! - [`workloads`]: the workloads W1–W7 of `peer-baselines.md`, one function per workload per
//!   implementation, listed by [`workloads::all`] for the criterion benches
//!   (`cargo bench -p defer-bench`) and the `workloads` binary
//!   (`cargo run --release -p defer-bench --bin workloads`).
//! - The `memory` binary (`cargo run --release -p defer-bench --bin memory`): bytes per pending
//!   unit (a pending Deferred, a suspended coroutine, a gathered input) beside `futures` and
//!   tokio, issue 11's shapes S1–S3.
//!
//! ```
//! let w = defer_bench::workloads::all();
//! let chain = w.iter().find(|w| w.name == "W1_chain").unwrap();
//! assert_eq!(chain.run_with(10), chain.expected(10));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod rc_minimal;
pub mod workloads;
