//! [`CooperativeTask`]: one iterator run by a [`Cooperator`](super::Cooperator), which can be
//! paused, resumed, stopped and waited on. Twisted's `task.CooperativeTask`.

use std::cell::RefCell;
use std::fmt;
use std::panic::Location;
use std::rc::Rc;

use super::cooperator::{CoopInner, Cooperator};
use super::errors::{NotPaused, TaskFinished, TaskStopped};
use super::step::{IntoStep, Step};
use crate::deferred::Deferred;
use crate::engine::user_code;
use crate::failure::Failure;
use crate::trigger::Trigger;

/// A long job inside a [`Cooperator`](super::Cooperator): an iterator whose every `next()` is
/// one small unit of work. Made by [`Cooperator::cooperate`](super::Cooperator::cooperate).
///
/// Each item says what to do next ([`IntoStep`]): `()` or `Ok(_)` go on (a value is ignored),
/// `Err(failure)` fails the task, a [`Deferred`] (or `Some` of one) makes the task wait for it
/// before its next unit of work, and fail if it fails. A panic in `next()` fails the task too.
///
/// Cloning gives another handle to the same task.
///
/// ```
/// use defer_core::{task::{Clock, Cooperator}, testing::success_result_of};
/// use std::{cell::Cell, rc::Rc, time::Duration};
///
/// let clock = Clock::new();
/// let coop = Cooperator::new(clock.clone());
/// let sum = Rc::new(Cell::new(0));
/// let s = sum.clone();
/// let task = coop.cooperate((1..=100).map(move |i| { s.set(s.get() + i); Ok(()) }));
/// let done = task.when_done();
/// while !done.is_called() {
///     clock.advance(Duration::from_millis(1));
/// }
/// success_result_of(done);
/// assert_eq!(sum.get(), 5050);
/// ```
#[derive(Clone)]
pub struct CooperativeTask {
    pub(super) inner: Rc<TaskInner>,
}

type Work = Box<dyn Iterator<Item = Step>>;

pub(super) struct TaskInner {
    coop: Rc<CoopInner>,
    /// Where the task was made: a panic in its iterator is located there.
    at: &'static Location<'static>,
    /// Taken out while `next()` runs; dropped when the task finishes.
    work: RefCell<Option<Work>>,
    st: RefCell<TaskState>,
}

#[derive(Default)]
struct TaskState {
    when_done: Vec<Trigger<()>>,
    pause_count: usize,
    completion: Option<TaskFinished>,
    result: Option<Result<(), Failure>>,
    /// Whether `when_done` was ever asked: if not, a failure is reported when the task goes.
    observed: bool,
}

impl TaskInner {
    /// A task for `iter`, not yet added to its cooperator.
    pub(super) fn new<I>(
        iter: I,
        coop: Rc<CoopInner>,
        at: &'static Location<'static>,
    ) -> Rc<TaskInner>
    where
        I: IntoIterator + 'static,
        I::IntoIter: 'static,
        I::Item: IntoStep,
    {
        let work: Work = Box::new(iter.into_iter().map(IntoStep::into_step));
        Rc::new(TaskInner {
            coop,
            at,
            work: RefCell::new(Some(work)),
            st: RefCell::new(TaskState::default()),
        })
    }

    fn check_finish(&self) -> Result<(), TaskFinished> {
        match self.st.borrow().completion {
            Some(state) => Err(state),
            None => Ok(()),
        }
    }

    fn finished(&self) -> bool {
        self.st.borrow().completion.is_some()
    }

    fn pause(self: &Rc<Self>) -> Result<(), TaskFinished> {
        self.check_finish()?;
        let first = {
            let mut st = self.st.borrow_mut();
            st.pause_count += 1;
            st.pause_count == 1
        };
        if first {
            self.coop.remove_task(self);
        }
        Ok(())
    }

    fn resume(self: &Rc<Self>) -> Result<(), NotPaused> {
        let add = {
            let mut st = self.st.borrow_mut();
            if st.pause_count == 0 {
                return Err(NotPaused);
            }
            st.pause_count -= 1;
            st.pause_count == 0 && st.completion.is_none()
        };
        if add {
            CoopInner::add_task(&self.coop, self.clone());
        }
        Ok(())
    }

    /// Finishes the task: it leaves its cooperator *before* its `when_done` Deferreds fire, so
    /// that their callbacks may use the cooperator (stop it, add tasks) freely.
    pub(super) fn complete_with(self: &Rc<Self>, state: TaskFinished, result: Result<(), Failure>) {
        let (triggers, leave) = {
            let mut st = self.st.borrow_mut();
            if st.completion.is_some() {
                return;
            }
            st.completion = Some(state);
            st.result = Some(result.clone());
            (std::mem::take(&mut st.when_done), st.pause_count == 0)
        };
        if leave {
            self.coop.remove_task(self);
        }
        // The iterator is done with; its drop is user code.
        let work = self.work.borrow_mut().take();
        user_code::drop_value(work);
        for trigger in triggers {
            trigger.resolve(result.clone());
        }
    }

    /// One unit of work (Twisted's `_oneWorkUnit`): one `next()`, and what its item says.
    /// Returns whether there was work to do (not while the iterator runs already, from a nested
    /// tick).
    pub(super) fn one_work_unit(self: &Rc<Self>) -> bool {
        let Some(mut work) = self.work.borrow_mut().take() else {
            return false;
        };
        let step = user_code::call_at(self.at, || work.next());
        if self.finished() {
            // `next()` stopped its own task (or its cooperator): what it produced has nowhere
            // to go but the unhandled-error report, if it is a failure.
            user_code::drop_value(work);
            match step {
                Err(f) | Ok(Some(Step::Fail(f))) => crate::unhandled::report(&f),
                Ok(Some(Step::Wait(d))) => drop(d),
                Ok(Some(Step::Continue) | None) => {}
            }
            return true;
        }
        *self.work.borrow_mut() = Some(work);
        match step {
            Ok(Some(Step::Continue)) => {}
            Ok(None) => self.complete_with(TaskFinished::Done, Ok(())),
            Ok(Some(Step::Fail(f))) | Err(f) => self.complete_with(TaskFinished::Failed, Err(f)),
            Ok(Some(Step::Wait(d))) => {
                let _ = self.pause();
                let (me, me_too) = (self.clone(), self.clone());
                drop(d.add_callbacks(
                    move |()| {
                        // A resume too many (the user resumed it meanwhile) is not an error of
                        // the Deferred's.
                        let _ = me.resume();
                        Ok(())
                    },
                    move |f: Failure| {
                        if me_too.finished() {
                            // Stopped meanwhile: nobody waits for this failure; leave it on
                            // the Deferred, which reports it.
                            return Err(f);
                        }
                        me_too.complete_with(TaskFinished::Failed, Err(f));
                        Ok(())
                    },
                ));
            }
        }
        true
    }
}

impl Drop for TaskInner {
    fn drop(&mut self) {
        // A task that failed with nobody ever asking `when_done`: the failure would be lost.
        let st = self.st.get_mut();
        if st.completion == Some(TaskFinished::Failed)
            && !st.observed
            && let Some(Err(f)) = st.result.take()
        {
            crate::unhandled::report(&f);
        }
    }
}

impl CooperativeTask {
    /// A new Deferred that fires with `()` when the iterator is exhausted, or fails with the
    /// iterator's failure, with [`TaskStopped`] after [`stop`](CooperativeTask::stop), or with
    /// [`SchedulerStopped`](super::SchedulerStopped) when the cooperator stops. Each call gives
    /// its own Deferred, fired at once if the task has finished. (Twisted fires it with the
    /// iterator; here the iterator belongs to the task and is dropped when it finishes.)
    ///
    /// ```
    /// use defer_core::{task::{Clock, Cooperator, TaskStopped}, testing::*};
    /// let task = Cooperator::new(Clock::new()).cooperate((0..3).map(Ok));
    /// let (a, b) = (task.when_done(), task.when_done());
    /// assert_no_result(&a);
    /// task.stop().unwrap();
    /// assert!(failure_result_of(a).check::<TaskStopped>());
    /// assert!(failure_result_of(b).check::<TaskStopped>());
    /// assert!(failure_result_of(task.when_done()).check::<TaskStopped>());
    /// ```
    pub fn when_done(&self) -> Deferred<()> {
        let (d, trigger) = Deferred::new();
        let done = {
            let mut st = self.inner.st.borrow_mut();
            st.observed = true;
            match &st.result {
                Some(result) => Some(result.clone()),
                None => {
                    st.when_done.push(trigger);
                    return d;
                }
            }
        };
        if let Some(result) = done {
            trigger.resolve(result);
        }
        d
    }

    /// Stops doing work until [`resume`](CooperativeTask::resume); pauses nest, so each needs
    /// its own resume. Fails with the task's [`TaskFinished`] state if it has finished.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator};
    /// use std::{cell::Cell, rc::Rc, time::Duration};
    /// let clock = Clock::new();
    /// let n = Rc::new(Cell::new(0));
    /// let c = n.clone();
    /// let task = Cooperator::new(clock.clone()).cooperate(std::iter::repeat_with(move || { c.set(c.get() + 1); Ok(()) }));
    /// task.pause().unwrap();
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(n.get(), 0);
    /// task.resume().unwrap();
    /// clock.advance(Duration::from_secs(1));
    /// assert!(n.get() > 0);
    /// task.stop().unwrap();                          // it would run for ever
    /// ```
    pub fn pause(&self) -> Result<(), TaskFinished> {
        self.inner.pause()
    }

    /// Undoes one [`pause`](CooperativeTask::pause); the task does work again from the
    /// cooperator's next tick once every pause is undone. Resuming a finished task that is
    /// paused does nothing. Fails with [`NotPaused`] if it is not paused.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator, NotPaused};
    /// let task = Cooperator::new(Clock::new()).cooperate((0..3).map(Ok));
    /// task.pause().unwrap();
    /// assert_eq!(task.resume(), Ok(()));
    /// assert_eq!(task.resume(), Err(NotPaused));
    /// ```
    pub fn resume(&self) -> Result<(), NotPaused> {
        self.inner.resume()
    }

    /// Stops the task for good: its iterator is dropped and its `when_done` Deferreds fail with
    /// [`TaskStopped`]. A Deferred it is waiting on is left alone; the task does not go on when
    /// it fires. Fails with the task's [`TaskFinished`] state if it had finished already.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator, TaskFinished};
    /// let task = Cooperator::new(Clock::new()).cooperate((0..3).map(Ok));
    /// assert_eq!(task.stop(), Ok(()));
    /// assert_eq!(task.stop(), Err(TaskFinished::Stopped));
    /// ```
    pub fn stop(&self) -> Result<(), TaskFinished> {
        self.inner.check_finish()?;
        self.inner
            .complete_with(TaskFinished::Stopped, Err(Failure::new(TaskStopped)));
        Ok(())
    }

    /// Whether the task is paused: by [`pause`](CooperativeTask::pause), or while it waits on a
    /// Deferred its iterator yielded.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator};
    /// let task = Cooperator::new(Clock::new()).cooperate((0..3).map(Ok));
    /// assert!(!task.is_paused());
    /// task.pause().unwrap();
    /// assert!(task.is_paused());
    /// ```
    pub fn is_paused(&self) -> bool {
        self.inner.st.borrow().pause_count > 0
    }

    /// How the task finished, or `None` while it has not.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator, TaskFinished};
    /// let task = Cooperator::new(Clock::new()).cooperate((0..3).map(Ok));
    /// assert_eq!(task.finished(), None);
    /// task.stop().unwrap();
    /// assert_eq!(task.finished(), Some(TaskFinished::Stopped));
    /// ```
    pub fn finished(&self) -> Option<TaskFinished> {
        self.inner.st.borrow().completion
    }

    /// The cooperator the task belongs to.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator};
    /// let coop = Cooperator::new(Clock::new());
    /// assert!(coop.cooperate((0..3).map(Ok)).cooperator().same_as(&coop));
    /// ```
    pub fn cooperator(&self) -> Cooperator {
        Cooperator::from_inner(self.inner.coop.clone())
    }

    /// Whether `self` and `other` are handles to the same task, as Python's `is`.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator};
    /// let coop = Cooperator::new(Clock::new());
    /// let (a, b) = (coop.cooperate((0..3).map(Ok)), coop.cooperate((0..3).map(Ok)));
    /// assert!(a.same_as(&a.clone()) && !a.same_as(&b));
    /// ```
    pub fn same_as(&self, other: &CooperativeTask) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for CooperativeTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("CooperativeTask");
        if let Ok(st) = self.inner.st.try_borrow() {
            s.field("paused", &st.pause_count)
                .field("finished", &st.completion);
        }
        s.finish()
    }
}
