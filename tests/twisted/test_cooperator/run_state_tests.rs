//! Ports of Twisted's `test_cooperator.py` `RunStateTests`: `CooperativeTask`'s `pause`,
//! `resume`, `stop`, exhausting the iterator, and how they interact.
//!
//! Twisted's `worker` generator yields an integer or a Deferred; a Rust iterator has one item
//! type, so it yields a `Step`: `Continue` for an integer (which it records in `work`, as
//! Twisted's does), `Wait(d)` for a Deferred, `Fail` for Twisted's `raise`. Where Twisted keeps
//! the yielded Deferred to fire it, the test keeps its `Trigger`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use defer_core::task::{
    CooperativeTask, Cooperator, IntoStep, NotPaused, Step, TaskFinished, TaskStopped,
};
use defer_core::testing::unhandled_during;
use defer_core::{Deferred, Failure, Trigger};

use super::cooperator_tests::fake_scheduler::FakeScheduler;

error_kind!(UnhandledException);

/// What the worker did: an integer, or a Deferred (whose trigger the test fires).
enum Work {
    Int(u32),
    Deferred(Option<Trigger<&'static str>>),
}

#[derive(Default)]
struct WorkerState {
    do_defer_next: Cell<bool>,
    do_stop_next: Cell<bool>,
    do_die_next: Cell<bool>,
    work: RefCell<Vec<Work>>,
}

struct Fixture {
    scheduler: Rc<FakeScheduler>,
    cooperator: Cooperator,
    task: CooperativeTask,
    state: Rc<WorkerState>,
}

/// The sample worker: yields Deferreds when deferral is being tested and an ascending integer
/// count otherwise.
fn worker(state: Rc<WorkerState>) -> impl Iterator<Item = Step> {
    let mut i = 0;
    std::iter::from_fn(move || {
        i += 1;
        if state.do_defer_next.replace(false) {
            let (d, trigger) = Deferred::<&'static str>::new();
            state.work.borrow_mut().push(Work::Deferred(Some(trigger)));
            Some(d.into_step())
        } else if state.do_stop_next.get() {
            None
        } else if state.do_die_next.get() {
            Some(Step::Fail(Failure::new(UnhandledException::new(""))))
        } else {
            state.work.borrow_mut().push(Work::Int(i));
            Some(Step::Continue)
        }
    })
}

/// Twisted's `setUp`: a cooperator with a fake scheduler and a termination predicate that makes
/// each tick do one unit of work.
fn set_up() -> Fixture {
    let scheduler = FakeScheduler::new();
    let cooperator = Cooperator::builder(scheduler.clone())
        .termination_predicate_factory(|| || true)
        .build();
    let state = Rc::new(WorkerState::default());
    let task = cooperator.cooperate(worker(state.clone()));
    cooperator.start();
    Fixture {
        scheduler,
        cooperator,
        task,
        state,
    }
}

impl Fixture {
    fn defer_next(&self) {
        self.state.do_defer_next.set(true);
    }
    fn stop_next(&self) {
        self.state.do_stop_next.set(true);
    }
    fn die_next(&self) {
        self.state.do_die_next.set(true);
    }
    fn pump(&self) {
        self.scheduler.pump();
    }
    /// The integers of `work`, with 0 for a Deferred.
    fn ints(&self) -> Vec<u32> {
        self.state
            .work
            .borrow()
            .iter()
            .map(|w| match w {
                Work::Int(i) => *i,
                Work::Deferred(_) => 0,
            })
            .collect()
    }
    fn work_len(&self) -> usize {
        self.state.work.borrow().len()
    }
}

#[test]
fn test_pause_resume() {
    let t = set_up();
    // first, sanity check
    t.pump();
    assert_eq!(t.ints(), [1]);
    t.pump();
    assert_eq!(t.ints(), [1, 2]);
    // OK, now for real
    t.task.pause().unwrap();
    t.pump();
    assert_eq!(t.ints(), [1, 2]);
    t.task.resume().unwrap();
    // Resuming itself should not do any work
    assert_eq!(t.ints(), [1, 2]);
    t.pump();
    // But when the scheduler rolls around again...
    assert_eq!(t.ints(), [1, 2, 3]);
}

#[test]
fn test_resume_not_paused() {
    let t = set_up();
    assert_eq!(t.task.resume(), Err(NotPaused));
    t.task.pause().unwrap();
    t.task.resume().unwrap();
    assert_eq!(t.task.resume(), Err(NotPaused));
}

#[test]
fn test_pause_twice() {
    let t = set_up();
    // pause once
    t.task.pause().unwrap();
    t.pump();
    assert!(t.ints().is_empty());
    // pause twice
    t.task.pause().unwrap();
    t.pump();
    assert!(t.ints().is_empty());
    // resume once (it shouldn't)
    t.task.resume().unwrap();
    t.pump();
    assert!(t.ints().is_empty());
    // resume twice (now it should go)
    t.task.resume().unwrap();
    t.pump();
    assert_eq!(t.ints(), [1]);
}

#[test]
fn test_pause_while_deferred() {
    let t = set_up();
    t.defer_next();
    t.pump();
    assert_eq!(t.work_len(), 1);
    assert!(matches!(t.state.work.borrow()[0], Work::Deferred(_)));
    t.pump();
    assert_eq!(t.work_len(), 1);
    t.task.pause().unwrap();
    t.pump();
    assert_eq!(t.work_len(), 1);
    t.task.resume().unwrap();
    t.pump();
    assert_eq!(t.work_len(), 1);
    let trigger = match &mut t.state.work.borrow_mut()[0] {
        Work::Deferred(trigger) => trigger.take().unwrap(),
        Work::Int(_) => unreachable!(),
    };
    trigger.callback("STUFF!");
    t.pump();
    assert_eq!(t.work_len(), 2);
    assert_eq!(t.ints()[1], 2);
}

#[test]
fn test_when_done() {
    let t = set_up();
    let deferred1 = t.task.when_done();
    let deferred2 = t.task.when_done();
    let results1 = Rc::new(RefCell::new(Vec::new()));
    let results2 = Rc::new(RefCell::new(Vec::new()));
    let final1 = Rc::new(RefCell::new(Vec::new()));
    let final2 = Rc::new(RefCell::new(Vec::new()));

    let (r1, r2, f1, f2) = (
        results1.clone(),
        results2.clone(),
        final1.clone(),
        final2.clone(),
    );
    let _d1 = deferred1
        .add_callback(move |result| {
            r1.borrow_mut().push(result);
            Ok(1)
        })
        .add_callback(move |v| {
            f1.borrow_mut().push(v);
            Ok(())
        });
    let _d2 = deferred2
        .add_callback(move |result| {
            r2.borrow_mut().push(result);
            Ok(2)
        })
        .add_callback(move |v| {
            f2.borrow_mut().push(v);
            Ok(())
        });

    // exhaust the task iterator; callbacks fire
    t.stop_next();
    t.pump();

    // Twisted fires each with the task's iterator; here the iterator belongs to the task and
    // each fires with `()`.
    assert_eq!(*results1.borrow(), [()]);
    assert_eq!(*results2.borrow(), [()]);
    assert_eq!(*final1.borrow(), [1]);
    assert_eq!(*final2.borrow(), [2]);
}

#[test]
fn test_when_done_error() {
    let t = set_up();
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = results.clone();
    let _d = t.task.when_done().add_errback(move |f| {
        r.borrow_mut().push(f);
        Ok(())
    });
    t.die_next();
    t.pump();
    assert_eq!(results.borrow().len(), 1);
    assert!(results.borrow()[0].check::<UnhandledException>());
}

#[test]
fn test_when_done_stop() {
    let t = set_up();
    let errors = Rc::new(RefCell::new(Vec::new()));
    let e = errors.clone();
    let _d = t.task.when_done().add_errback(move |f| {
        e.borrow_mut().push(f);
        Ok(())
    });
    t.task.stop().unwrap();
    assert_eq!(errors.borrow().len(), 1);
    assert!(errors.borrow()[0].check::<TaskStopped>());
}

#[test]
fn test_when_done_already_done() {
    let t = set_up();
    t.stop_next();
    t.pump();
    let results = Rc::new(RefCell::new(Vec::new()));
    let r = results.clone();
    let _d = t.task.when_done().add_callback(move |v| {
        r.borrow_mut().push(v);
        Ok(())
    });
    assert_eq!(*results.borrow(), [()]);
}

#[test]
fn test_stop_stops() {
    let t = set_up();
    t.task.stop().unwrap();
    t.pump();
    assert_eq!(t.work_len(), 0);
    assert_eq!(t.task.stop(), Err(TaskFinished::Stopped));
    assert_eq!(t.task.pause(), Err(TaskFinished::Stopped));
    // Sanity check - it's still not scheduled, is it?
    t.pump();
    assert!(t.ints().is_empty());
}

#[test]
fn test_pause_stop_resume() {
    let t = set_up();
    t.task.pause().unwrap();
    t.task.stop().unwrap();
    t.task.resume().unwrap();
    t.pump();
    assert!(t.ints().is_empty());
}

#[test]
fn test_stop_deferred() {
    let t = set_up();
    t.defer_next();
    t.pump();
    let trigger = match t.state.work.borrow_mut().pop() {
        Some(Work::Deferred(trigger)) => trigger.unwrap(),
        _ => panic!("the worker should have yielded a Deferred"),
    };
    assert!(t.task.is_paused());
    let reported = unhandled_during(|| {
        t.pump();
        t.task.stop().unwrap();
        t.pump();
        trigger.callback("7");
        t.pump();
    });
    // Twisted checks that the Deferred does not come out with an unhandled error (its result
    // is the cooperator's `None`); here the Deferred belongs to the cooperator, and nothing was
    // reported.
    assert!(reported.is_empty(), "{reported:?}");
    // But more importantly, no further work should have happened.
    assert!(t.ints().is_empty());
}

#[test]
fn test_stop_exhausted() {
    let t = set_up();
    t.stop_next();
    t.pump();
    assert_eq!(t.task.stop(), Err(TaskFinished::Done));
}

#[test]
fn test_stop_errored() {
    let t = set_up();
    t.die_next();
    let reported = unhandled_during(|| t.pump());
    assert_eq!(t.task.stop(), Err(TaskFinished::Failed));
    // Nobody asked `when_done` yet: the failure waits for it rather than being reported.
    assert!(reported.is_empty());
    let f = defer_core::testing::failure_result_of(t.task.when_done());
    assert!(f.check::<UnhandledException>());
}

#[test]
fn test_stop_cooperator_reentrancy() {
    // A callback of a `when_done` Deferred that stops the task's cooperator: the task already
    // counts as finished and removed by then, so `stop` goes through.
    let t = set_up();
    let callback_phases = Rc::new(RefCell::new(Vec::new()));
    let (cp, coop) = (callback_phases.clone(), t.cooperator.clone());
    let _d = t.task.when_done().add_callback(move |result| {
        cp.borrow_mut().push(format!("{result:?}"));
        coop.stop();
        cp.borrow_mut().push("done".to_owned());
        Ok(())
    });
    t.stop_next();
    t.pump();
    assert_eq!(*callback_phases.borrow(), ["()", "done"]);
}
