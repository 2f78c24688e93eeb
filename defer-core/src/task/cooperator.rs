//! [`Cooperator`]: runs long jobs, written as iterators of small steps, in time slices on a
//! [`Scheduler`], so they never starve the rest of the program. Twisted's `task.Cooperator`,
//! `cooperate` and `coiterate`.

use std::cell::RefCell;
use std::fmt;
use std::panic::Location;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::cooperative_task::{CooperativeTask, TaskInner};
use super::errors::{NoDefaultCooperator, SchedulerStopped, TaskFinished};
use super::step::IntoStep;
use crate::deferred::Deferred;
use crate::engine::user_code;
use crate::failure::Failure;
use crate::scheduler::{DelayedCall, Scheduler};

/// How long after a tick the next one is scheduled: Twisted's `_EPSILON` (1e-8 s). Not zero, so
/// that on a manual [`Clock`](crate::clock::Clock) each `advance` runs one tick rather than all
/// of them, as on Twisted's, and a real timer lets other work in between.
const TICK_DELAY: Duration = Duration::from_nanos(10);

/// How long a tick may run with the default termination predicate: Twisted's `_Timer.MAX_SLICE`.
const MAX_SLICE: Duration = Duration::from_millis(10);

type Predicate = Box<dyn FnMut() -> bool>;
type PredicateFactory = Box<dyn FnMut() -> Predicate>;

/// A cooperative task scheduler: Twisted's `task.Cooperator`.
///
/// Each task is an iterator; each `next()` is one unit of work. On every tick (a call on its
/// [`Scheduler`], 10 ns after the last one) the cooperator runs units of its tasks in turn,
/// round-robin, until its *termination predicate* says the slice is over (by default after 10 ms
/// of wall-clock time), then gives the program back. An item that is a [`Deferred`] pauses its
/// task until that Deferred fires. See [`CooperativeTask`] for what the items may be.
///
/// Uses: running CPU-heavy jobs without blocking the event loop; limiting parallelism (run N
/// tasks that take work from one shared iterator); doing one thing, waiting for a Deferred, doing
/// the next (a sequence of asynchronous steps).
///
/// Cloning gives another handle to the same cooperator. While it has tasks it is held by its
/// scheduled tick, as Twisted's reactor holds it.
///
/// ```
/// use defer_core::{task::{Clock, Cooperator}, gather_results, testing::success_result_of};
/// use std::{cell::RefCell, rc::Rc, time::Duration};
///
/// let clock = Clock::new();
/// let coop = Cooperator::new(clock.clone());
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let jobs: Vec<_> = ["a", "b"].into_iter().map(|name| {
///     let log = log.clone();
///     coop.coiterate((1..=2).map(move |i| { log.borrow_mut().push(format!("{name}{i}")); Ok(()) }))
/// }).collect();
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(*log.borrow(), ["a1", "b1", "a2", "b2"]); // interleaved
/// success_result_of(gather_results(jobs));
/// ```
#[derive(Clone)]
pub struct Cooperator {
    inner: Rc<CoopInner>,
}

/// Builds a [`Cooperator`] with a termination predicate of your own, or one that does not start
/// at once. From [`Cooperator::builder`].
///
/// ```
/// use defer_core::task::{Clock, Cooperator};
/// let coop = Cooperator::builder(Clock::new())
///     .termination_predicate_factory(|| || true)   // one unit of work per tick
///     .started(false)
///     .build();
/// assert!(!coop.running());
/// ```
pub struct CooperatorBuilder {
    scheduler: Rc<dyn Scheduler>,
    factory: Option<PredicateFactory>,
    started: bool,
}

pub(super) struct CoopInner {
    scheduler: Rc<dyn Scheduler>,
    /// `None`: the default, a 10 ms wall-clock slice.
    factory: RefCell<Option<PredicateFactory>>,
    /// The thread's stand-in when no default cooperator is set: its tasks fail at once with
    /// [`NoDefaultCooperator`].
    no_default: bool,
    st: RefCell<CoopState>,
}

struct CoopState {
    /// The tasks that are neither paused nor finished, in round-robin order.
    tasks: Vec<Rc<TaskInner>>,
    /// The next task to run in this round (Twisted's `_metarator`); kept across ticks.
    cursor: usize,
    delayed_call: Option<DelayedCall>,
    stopped: bool,
    started: bool,
    must_schedule_on_start: bool,
}

impl CooperatorBuilder {
    /// The factory called at the start of each tick for a predicate that returns `true` when the
    /// tick should end; it is asked after each unit of work. Twisted's
    /// `terminationPredicateFactory`. The default ends a tick after 10 ms of wall-clock time.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator};
    /// use std::{cell::Cell, rc::Rc, time::Duration};
    /// let clock = Clock::new();
    /// let coop = Cooperator::builder(clock.clone())
    ///     .termination_predicate_factory(|| { let mut n = 0; move || { n += 1; n == 3 } })
    ///     .build();
    /// let done = Rc::new(Cell::new(0));
    /// let d = done.clone();
    /// coop.cooperate((0..10).map(move |_| { d.set(d.get() + 1); Ok(()) }));
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(done.get(), 3);   // three units per tick
    /// # coop.stop();
    /// ```
    pub fn termination_predicate_factory<F, P>(mut self, mut factory: F) -> Self
    where
        F: FnMut() -> P + 'static,
        P: FnMut() -> bool + 'static,
    {
        self.factory = Some(Box::new(move || Box::new(factory()) as Predicate));
        self
    }

    /// Whether tasks run as soon as they are added (the default), or wait for
    /// [`Cooperator::start`]. Twisted's `started`.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator};
    /// let coop = Cooperator::builder(Clock::new()).started(false).build();
    /// assert!(!coop.running());
    /// coop.start();
    /// assert!(coop.running());
    /// ```
    pub fn started(mut self, started: bool) -> Self {
        self.started = started;
        self
    }

    /// The cooperator.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator};
    /// assert!(Cooperator::builder(Clock::new()).build().running());
    /// ```
    pub fn build(self) -> Cooperator {
        Cooperator::from_inner(Rc::new(CoopInner {
            scheduler: self.scheduler,
            factory: RefCell::new(self.factory),
            no_default: false,
            st: RefCell::new(CoopState {
                tasks: Vec::new(),
                cursor: 0,
                delayed_call: None,
                stopped: false,
                started: self.started,
                must_schedule_on_start: false,
            }),
        }))
    }
}

impl fmt::Debug for CooperatorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CooperatorBuilder")
            .field("custom_predicate", &self.factory.is_some())
            .field("started", &self.started)
            .finish()
    }
}

impl Cooperator {
    /// A started cooperator on `scheduler`, with 10 ms time slices.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator};
    /// assert!(Cooperator::new(Clock::new()).running());
    /// ```
    pub fn new<S: Scheduler + 'static>(scheduler: S) -> Cooperator {
        Cooperator::builder(scheduler).build()
    }

    /// A builder, to choose the termination predicate or start later.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator};
    /// let coop = Cooperator::builder(Clock::new()).started(false).build();
    /// assert!(!coop.running());
    /// ```
    pub fn builder<S: Scheduler + 'static>(scheduler: S) -> CooperatorBuilder {
        CooperatorBuilder {
            scheduler: Rc::new(scheduler),
            factory: None,
            started: true,
        }
    }

    pub(super) fn from_inner(inner: Rc<CoopInner>) -> Cooperator {
        Cooperator { inner }
    }

    /// Adds `iter` as a task and returns it, to pause, resume, stop or wait on. Twisted's
    /// `Cooperator.cooperate`. Its items say whether to go on, wait for a Deferred or fail
    /// ([`IntoStep`]). On a stopped cooperator the task fails at once with
    /// [`SchedulerStopped`].
    ///
    /// ```
    /// use defer_core::{succeed, Failure, task::{Clock, Cooperator}, testing::*};
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// let coop = Cooperator::new(clock.clone());
    /// let steps: Vec<defer_core::Deferred<u8>> = vec![succeed(1), succeed(2)];
    /// let done = coop.cooperate(steps).when_done();
    /// clock.pump([Duration::from_millis(1); 3]);
    /// success_result_of(done);
    /// ```
    #[track_caller]
    pub fn cooperate<I>(&self, iter: I) -> CooperativeTask
    where
        I: IntoIterator + 'static,
        I::IntoIter: 'static,
        I::Item: IntoStep,
    {
        let task = TaskInner::new(iter, self.inner.clone(), Location::caller());
        CoopInner::add_task(&self.inner, task.clone());
        CooperativeTask { inner: task }
    }

    /// Adds `iter` as a task and returns a Deferred that fires when it is done (Twisted's
    /// `coiterate`): `cooperate(iter).when_done()`. For Twisted's `doneDeferred` argument,
    /// [`chain_deferred`](Deferred::chain_deferred) the result into your trigger.
    ///
    /// ```
    /// use defer_core::{Failure, task::{Clock, Cooperator}, testing::*};
    /// use std::time::Duration;
    /// let clock = Clock::new();
    /// let coop = Cooperator::new(clock.clone());
    /// let d = coop.coiterate((0..3).map(|i| if i < 2 { Ok(i) } else { Err(Failure::msg("third")) }));
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(failure_result_of(d).message(), "third");
    /// ```
    #[track_caller]
    pub fn coiterate<I>(&self, iter: I) -> Deferred<()>
    where
        I: IntoIterator + 'static,
        I::IntoIter: 'static,
        I::Item: IntoStep,
    {
        self.cooperate(iter).when_done()
    }

    /// Starts running tasks, of a cooperator built with `started(false)` or stopped. Twisted's
    /// `start`.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator};
    /// use std::{cell::Cell, rc::Rc, time::Duration};
    /// let clock = Clock::new();
    /// let coop = Cooperator::builder(clock.clone()).started(false).build();
    /// let ran = Rc::new(Cell::new(false));
    /// let r = ran.clone();
    /// let done = coop.coiterate(std::iter::once_with(move || { r.set(true); Ok(()) }));
    /// clock.advance(Duration::from_secs(1));
    /// assert!(!ran.get());
    /// coop.start();
    /// clock.advance(Duration::from_secs(1));
    /// assert!(ran.get() && done.is_called());
    /// ```
    pub fn start(&self) {
        {
            let mut st = self.inner.st.borrow_mut();
            st.stopped = false;
            st.started = true;
            if !std::mem::take(&mut st.must_schedule_on_start) {
                return;
            }
        }
        CoopInner::reschedule(&self.inner);
    }

    /// Stops the cooperator: every task it is running fails with [`SchedulerStopped`] and is
    /// forgotten, and tasks added later fail at once, until [`start`](Cooperator::start). A
    /// task that is paused (also one waiting on a Deferred) fails when it is resumed. Twisted's
    /// `stop`.
    ///
    /// ```
    /// use defer_core::{task::{Clock, Cooperator, SchedulerStopped}, testing::failure_result_of};
    /// let coop = Cooperator::new(Clock::new());
    /// let d = coop.coiterate((0..3).map(Ok));
    /// coop.stop();
    /// assert!(failure_result_of(d).check::<SchedulerStopped>());
    /// assert!(!coop.running());
    /// ```
    pub fn stop(&self) {
        let (tasks, call) = {
            let mut st = self.inner.st.borrow_mut();
            st.stopped = true;
            st.cursor = 0;
            (std::mem::take(&mut st.tasks), st.delayed_call.take())
        };
        if let Some(call) = call {
            let _ = call.cancel();
        }
        // Every task, also when a callback of one of them adds or stops others (Twisted skips
        // every other task here, as it removes them from the list it is walking).
        for task in tasks {
            task.complete_with(
                TaskFinished::SchedulerStopped,
                Err(Failure::new(SchedulerStopped)),
            );
        }
    }

    /// Whether the cooperator runs its tasks: started and not stopped. Twisted's `running`.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator};
    /// let coop = Cooperator::new(Clock::new());
    /// assert!(coop.running());
    /// coop.stop();
    /// assert!(!coop.running());
    /// ```
    pub fn running(&self) -> bool {
        let st = self.inner.st.borrow();
        st.started && !st.stopped
    }

    /// Whether `self` and `other` are handles to the same cooperator, as Python's `is`.
    ///
    /// ```
    /// use defer_core::task::{Clock, Cooperator};
    /// let coop = Cooperator::new(Clock::new());
    /// assert!(coop.same_as(&coop.clone()));
    /// assert!(!coop.same_as(&Cooperator::new(Clock::new())));
    /// ```
    pub fn same_as(&self, other: &Cooperator) -> bool {
        Rc::ptr_eq(&self.inner, &other.inner)
    }
}

impl fmt::Debug for Cooperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Cooperator");
        if let Ok(st) = self.inner.st.try_borrow() {
            s.field("tasks", &st.tasks.len())
                .field("started", &st.started)
                .field("stopped", &st.stopped);
        }
        s.finish()
    }
}

impl CoopInner {
    /// Takes a task in (Twisted's `_addTask`); on a stopped cooperator it fails at once.
    pub(super) fn add_task(this: &Rc<CoopInner>, task: Rc<TaskInner>) {
        if this.no_default {
            task.complete_with(
                TaskFinished::SchedulerStopped,
                Err(Failure::new(NoDefaultCooperator)),
            );
            return;
        }
        if this.st.borrow().stopped {
            task.complete_with(
                TaskFinished::SchedulerStopped,
                Err(Failure::new(SchedulerStopped)),
            );
            return;
        }
        this.st.borrow_mut().tasks.push(task);
        CoopInner::reschedule(this);
    }

    /// Lets a task go (Twisted's `_removeTask`); with no task left, the next tick is cancelled.
    pub(super) fn remove_task(&self, task: &Rc<TaskInner>) {
        let call = {
            let mut st = self.st.borrow_mut();
            if let Some(i) = st.tasks.iter().position(|t| Rc::ptr_eq(t, task)) {
                st.tasks.remove(i);
                // The round goes on with the task after it (Twisted's list iterator would skip
                // that one).
                if i < st.cursor {
                    st.cursor -= 1;
                }
            }
            if st.tasks.is_empty() {
                st.delayed_call.take()
            } else {
                None
            }
        };
        if let Some(call) = call {
            let _ = call.cancel();
        }
    }

    fn reschedule(this: &Rc<CoopInner>) {
        {
            let mut st = this.st.borrow_mut();
            if !st.started {
                st.must_schedule_on_start = true;
                return;
            }
            if st.delayed_call.is_some() || st.tasks.is_empty() {
                return;
            }
        }
        let me = this.clone();
        let call = this
            .scheduler
            .call_later(TICK_DELAY, Box::new(move || CoopInner::tick(&me)));
        // A scheduler that ran the tick at once has already rescheduled.
        if call.active() {
            this.st.borrow_mut().delayed_call = Some(call);
        }
    }

    /// One time slice (Twisted's `_tick`): units of work of each task in turn until the
    /// termination predicate says stop, or no task is left.
    fn tick(this: &Rc<CoopInner>) {
        this.st.borrow_mut().delayed_call = None;
        let mut terminate = this.predicate();
        'slice: loop {
            if this.st.borrow().tasks.is_empty() {
                break;
            }
            let whole_round = this.st.borrow().cursor == 0;
            let mut worked = false;
            loop {
                let next = {
                    let mut st = this.st.borrow_mut();
                    let next = st.tasks.get(st.cursor).cloned();
                    if next.is_some() {
                        st.cursor += 1;
                    }
                    next
                };
                let Some(task) = next else { break };
                worked |= task.one_work_unit();
                drop(task);
                if terminate() {
                    break 'slice;
                }
            }
            this.st.borrow_mut().cursor = 0;
            // A whole round without work: every task left is running its `next()` further up
            // the stack (a nested tick), and there is nothing this tick can do.
            if whole_round && !worked {
                break;
            }
        }
        CoopInner::reschedule(this);
    }

    /// This tick's termination predicate. The user's factory and predicate are user code: a
    /// panic in either is reported and ends the tick.
    fn predicate(&self) -> Predicate {
        let Ok(mut factory) = self.factory.try_borrow_mut() else {
            return wall_clock_slice();
        };
        let Some(factory) = factory.as_mut() else {
            return wall_clock_slice();
        };
        match user_code::call(factory) {
            Ok(mut predicate) => Box::new(move || match user_code::call(&mut predicate) {
                Ok(stop) => stop,
                Err(payload) => {
                    crate::unhandled::report(&Failure::from_panic(payload));
                    true
                }
            }),
            Err(payload) => {
                crate::unhandled::report(&Failure::from_panic(payload));
                Box::new(|| true)
            }
        }
    }
}

/// The default termination predicate: a slice of [`MAX_SLICE`] of wall-clock time.
fn wall_clock_slice() -> Predicate {
    let end = Instant::now() + MAX_SLICE;
    Box::new(move || Instant::now() >= end)
}

thread_local! {
    static DEFAULT: RefCell<Option<Cooperator>> = const { RefCell::new(None) };
}

/// Sets (or, with `None`, clears) this thread's default cooperator, which [`cooperate`] and
/// [`coiterate`] use, and returns the previous one. Twisted's module-level functions use one
/// global cooperator on the reactor; there is no global reactor here, so you choose the
/// scheduler once, typically at the start of your program (a
/// [`TokioScheduler`](crate::TokioScheduler) inside a `LocalSet`, or a `Clock` in a test). It is
/// per thread because Deferreds are.
///
/// ```
/// use defer_core::task::{self, Clock, Cooperator};
/// let coop = Cooperator::new(Clock::new());
/// assert!(task::set_default_cooperator(Some(coop.clone())).is_none());
/// assert!(task::default_cooperator().unwrap().same_as(&coop));
/// task::set_default_cooperator(None);
/// ```
pub fn set_default_cooperator(cooperator: Option<Cooperator>) -> Option<Cooperator> {
    DEFAULT
        .try_with(|d| std::mem::replace(&mut *d.borrow_mut(), cooperator))
        .ok()
        .flatten()
}

/// This thread's default cooperator, if one was set with [`set_default_cooperator`].
///
/// ```
/// assert!(defer_core::task::default_cooperator().is_none());
/// ```
pub fn default_cooperator() -> Option<Cooperator> {
    DEFAULT.try_with(|d| d.borrow().clone()).ok().flatten()
}

/// Runs `iter` as a task of this thread's default cooperator (see [`set_default_cooperator`]):
/// Twisted's `task.cooperate`. With no default cooperator set, the task has failed at once with
/// [`NoDefaultCooperator`].
///
/// ```
/// use defer_core::{task::{self, Clock, Cooperator}, testing::success_result_of};
/// use std::time::Duration;
/// let clock = Clock::new();
/// task::set_default_cooperator(Some(Cooperator::new(clock.clone())));
/// let t = task::cooperate((0..3).map(Ok));
/// clock.pump([Duration::from_millis(1); 2]);
/// success_result_of(t.when_done());
/// ```
#[track_caller]
pub fn cooperate<I>(iter: I) -> CooperativeTask
where
    I: IntoIterator + 'static,
    I::IntoIter: 'static,
    I::Item: IntoStep,
{
    let coop = default_cooperator().unwrap_or_else(no_default);
    coop.cooperate(iter)
}

/// Runs `iter` as a task of this thread's default cooperator and returns a Deferred that fires
/// when it is done: Twisted's `task.coiterate`. With no default cooperator set, it has failed
/// with [`NoDefaultCooperator`].
///
/// ```
/// use defer_core::{task::{self, Clock, Cooperator}, testing::success_result_of};
/// use std::time::Duration;
/// let clock = Clock::new();
/// task::set_default_cooperator(Some(Cooperator::new(clock.clone())));
/// let d = task::coiterate((0..3).map(Ok));
/// clock.pump([Duration::from_millis(1); 2]);
/// success_result_of(d);
/// ```
#[track_caller]
pub fn coiterate<I>(iter: I) -> Deferred<()>
where
    I: IntoIterator + 'static,
    I::IntoIter: 'static,
    I::Item: IntoStep,
{
    cooperate(iter).when_done()
}

/// The stand-in for a missing default cooperator: its tasks fail at once, so its scheduler (a
/// manual clock nobody advances) is never used.
fn no_default() -> Cooperator {
    Cooperator::from_inner(Rc::new(CoopInner {
        scheduler: Rc::new(crate::clock::Clock::new()),
        factory: RefCell::new(None),
        no_default: true,
        st: RefCell::new(CoopState {
            tasks: Vec::new(),
            cursor: 0,
            delayed_call: None,
            stopped: true,
            started: true,
            must_schedule_on_start: false,
        }),
    }))
}
