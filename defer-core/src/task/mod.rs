//! Twisted's `twisted.internet.task` toolkit: [`LoopingCall`] (call a function every interval),
//! [`Cooperator`] with [`cooperate`] and [`coiterate`] (run long jobs as iterators of small steps,
//! interleaved so that they never starve the rest of the program), and, for Twisted users who look
//! for them here, [`defer_later`] and the manual [`Clock`].
//!
//! Everything here runs on a [`Scheduler`](crate::Scheduler) you give it: the manual `Clock` in
//! tests, [`TokioScheduler`](crate::TokioScheduler) (feature `tokio`) in programs. There is no
//! global reactor; the module-level [`cooperate`] and [`coiterate`] use a thread-local default
//! [`Cooperator`] that you install with [`set_default_cooperator`].
//!
//! ```
//! use defer_core::task::{Clock, LoopingCall};
//! use std::{cell::Cell, rc::Rc, time::Duration};
//!
//! let clock = Clock::new();
//! let ticks = Rc::new(Cell::new(0));
//! let t = ticks.clone();
//! let lc = LoopingCall::new(clock.clone(), move || { t.set(t.get() + 1); Ok(()) });
//! let done = lc.start(Duration::from_secs(1), true).unwrap();
//! clock.pump([Duration::from_secs(1); 3]);
//! assert_eq!(ticks.get(), 4); // at 0, 1, 2 and 3 seconds
//! lc.stop().unwrap();
//! assert!(done.is_called());
//! ```

mod cooperative_task;
mod cooperator;
mod errors;
mod looping_call;
mod step;

pub use crate::clock::Clock;
pub use crate::timeout::defer_later;
pub use cooperative_task::CooperativeTask;
pub use cooperator::{
    Cooperator, CooperatorBuilder, coiterate, cooperate, default_cooperator, set_default_cooperator,
};
pub use errors::{
    LoopingCallError, NoDefaultCooperator, NotPaused, SchedulerStopped, TaskDone, TaskFailed,
    TaskFinished, TaskStopped,
};
pub use looping_call::{LoopingCall, WeakLoopingCall};
pub use step::{IntoStep, Step};
