//! Twisted's `FakeScheduler` and `FakeDelayedCall` of `test_cooperator.py`: a scheduler whose
//! calls run only when the test pumps it. A module of `cooperator_tests.rs`, used by
//! `run_state_tests.rs` too.

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use defer_core::errors::DelayedCallError;
use defer_core::{DelayedCall, DelayedCallHandle, ScheduledFn, Scheduler};

/// A fake delayed call which lets us simulate the scheduler.
#[derive(Default)]
pub struct FakeDelayedCall {
    func: RefCell<Option<Box<dyn ScheduledFn>>>,
    cancelled: Cell<bool>,
    called: Cell<bool>,
}

impl FakeDelayedCall {
    pub fn cancelled(&self) -> bool {
        self.cancelled.get()
    }

    /// Runs the function (Twisted's `unit.func()`), unless cancelled.
    pub fn run(&self) {
        if self.cancelled.get() || self.called.replace(true) {
            return;
        }
        let f = self.func.borrow_mut().take();
        if let Some(f) = f {
            f.run();
        }
    }
}

impl DelayedCallHandle for FakeDelayedCall {
    fn cancel(&self) -> Result<(), DelayedCallError> {
        if self.called.get() {
            return Err(DelayedCallError::AlreadyCalled);
        }
        if self.cancelled.replace(true) {
            return Err(DelayedCallError::AlreadyCancelled);
        }
        drop(self.func.borrow_mut().take());
        Ok(())
    }
    fn reset(&self, _: Duration) -> Result<(), DelayedCallError> {
        Ok(())
    }
    fn delay(&self, _: Duration) -> Result<(), DelayedCallError> {
        Ok(())
    }
    fn active(&self) -> bool {
        !self.called.get() && !self.cancelled.get()
    }
    fn time(&self) -> Duration {
        Duration::ZERO
    }
}

/// A fake scheduler for testing against: a list of work to do.
#[derive(Default)]
pub struct FakeScheduler {
    pub work: RefCell<Vec<Rc<FakeDelayedCall>>>,
    /// Every call ever scheduled, in order.
    pub scheduled: RefCell<Vec<Rc<FakeDelayedCall>>>,
}

impl FakeScheduler {
    pub fn new() -> Rc<FakeScheduler> {
        Rc::default()
    }

    /// Does all of the work that is currently available to be done.
    pub fn pump(&self) {
        let work = std::mem::take(&mut *self.work.borrow_mut());
        for unit in work {
            unit.run();
        }
    }
}

impl Scheduler for FakeScheduler {
    fn call_later(&self, _delay: Duration, f: Box<dyn ScheduledFn>) -> DelayedCall {
        let unit = Rc::new(FakeDelayedCall {
            func: RefCell::new(Some(f)),
            ..FakeDelayedCall::default()
        });
        self.work.borrow_mut().push(unit.clone());
        self.scheduled.borrow_mut().push(unit.clone());
        DelayedCall::new(unit)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}
