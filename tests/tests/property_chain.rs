//! Issue 2, "The seed's promise, checked by machine".
//!
//! The seed says a chain of callbacks and errbacks is an asynchronous `try`/`except`/`else`/
//! `finally`. This property test builds random chains of steps, runs them on real Deferreds under
//! a random schedule of events, and compares the final result *and the exact order of the step
//! calls, with what each call received,* with [`interpret`]: a plain loop that executes the
//! equivalent synchronous Python program, knowing nothing about Deferreds, pausing or time.
//!
//! The steps (each one's closure records `(step index, "cb" | "eb" | "both", input)`):
//! - `add_callback(f)`: a statement in the `try` body, skipped while an exception propagates;
//! - `add_errback(g)`: an `except` clause, run only on an exception, which recovers or raises;
//! - `add_callbacks(f, g)`: `try: … except: g else: f`, where `g` never sees what `f` raises;
//! - `add_both(h)`: a `finally` that may replace the result (recover, re-raise, transform).
//!
//! Each closure does one [`Action`]: return a value, raise a new exception, pass its input on
//! unchanged (a bare `raise` for an errback), return an already fired Deferred (`succeed`/`fail`),
//! or return one of the case's *pending* Deferreds. Those are made before the chain, may be
//! paused, may have a step of their own, and fire at random moments: before the outer chain fires,
//! before or after the step returns them, or never consumed at all (their step was skipped).
//!
//! The schedule shuffles: firing the outer Deferred (unless it started fired, by `succeed`/
//! `fail`), firing each pending inner Deferred, unpausing the paused ones, pausing and unpausing
//! the outer chain around all that (plus `unpause` calls without a `pause`, which must not wedge
//! it), and adding the second part of the chain's steps (steps added to a fired chain run at
//! once). Whatever the schedule, the chain must end with the interpreter's result, and at every
//! point the calls made so far must be a prefix of the interpreter's calls.
//!
//! It also checks identity (a re-raised failure is the *same* failure, as Python's bare `raise`
//! re-raises the same exception object) and the unhandled-failure reports: exactly the failed
//! pending Deferreds that no step consumed are reported, once each.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use defer_core::{Deferred, DeferredControl, Failure, Trigger, fail, succeed, unhandled};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// ---------------------------------------------------------------------------------------------
// The cases
// ---------------------------------------------------------------------------------------------

/// What a closure does with its input. `base` is the input's number: the value, or `n` for the
/// failure `E{n}`.
#[derive(Clone, Debug)]
enum Action {
    /// `return base + k`.
    Return(i64),
    /// `raise E(base + k)`: a new failure.
    Raise(i64),
    /// Return the input as it came: the value, or the same failure re-raised.
    Pass,
    /// `return succeed(base + k)`: an already fired Deferred.
    Succeed(i64),
    /// `return fail(E(base + k))`: an already failed Deferred.
    Fail(i64),
    /// Return the case's pending Deferred number `j`.
    Pending(usize),
}

#[derive(Clone, Debug)]
enum StepSpec {
    Callback(Action),
    Errback(Action),
    Callbacks(Action, Action),
    Both(Action),
}

/// A pending Deferred that a step may return.
#[derive(Clone, Debug)]
struct InnerSpec {
    /// What its trigger fires it with: `Ok(v)` or `Err(n)` for `E{n}`.
    fired_with: Result<i64, i64>,
    /// Paused when made; an `UnpauseInner` event unpauses it.
    paused: bool,
    /// Has a step of its own, added before a step returns it: `x + 1000` on success.
    own_step: bool,
}

#[derive(Clone, Debug)]
struct Case {
    /// The outer chain's initial result: `Ok(v)` or `Err(n)`.
    start: Result<i64, i64>,
    /// Whether the outer Deferred starts fired (`succeed`/`fail`) rather than by a trigger event.
    start_fired: bool,
    steps: Vec<StepSpec>,
    /// Steps `..split` are added at once; the rest by the `AddRest` event.
    split: usize,
    inners: Vec<InnerSpec>,
    /// Pause/unpause pairs on the outer chain: the first `OuterPauseToggle(k)` event pauses, the
    /// second unpauses.
    pause_pairs: usize,
    /// `unpause` calls on the outer chain with no `pause` of their own.
    spurious_unpauses: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Event {
    FireOuter,
    FireInner(usize),
    UnpauseInner(usize),
    OuterPauseToggle(usize),
    SpuriousUnpause,
    AddRest,
}

impl Case {
    fn events(&self) -> Vec<Event> {
        let mut ev = vec![Event::AddRest];
        if !self.start_fired {
            ev.push(Event::FireOuter);
        }
        for (j, inner) in self.inners.iter().enumerate() {
            ev.push(Event::FireInner(j));
            if inner.paused {
                ev.push(Event::UnpauseInner(j));
            }
        }
        for k in 0..self.pause_pairs {
            ev.push(Event::OuterPauseToggle(k));
            ev.push(Event::OuterPauseToggle(k));
        }
        ev.extend(std::iter::repeat_n(
            Event::SpuriousUnpause,
            self.spurious_unpauses,
        ));
        ev
    }
}

/// While generating: a `Pending` action carries its inner Deferred's spec, numbered afterwards.
#[derive(Clone, Debug)]
enum GenAction {
    Plain(Action),
    Pending(InnerSpec),
}

#[derive(Clone, Debug)]
enum GenStep {
    Callback(GenAction),
    Errback(GenAction),
    Callbacks(GenAction, GenAction),
    Both(GenAction),
}

fn number() -> impl Strategy<Value = i64> {
    0i64..50
}

fn result() -> impl Strategy<Value = Result<i64, i64>> {
    (any::<bool>(), number()).prop_map(|(ok, n)| if ok { Ok(n) } else { Err(n) })
}

fn gen_action() -> impl Strategy<Value = GenAction> {
    let inner = (result(), prop::bool::weighted(0.3), any::<bool>()).prop_map(
        |(fired_with, paused, own_step)| InnerSpec {
            fired_with,
            paused,
            own_step,
        },
    );
    prop_oneof![
        3 => number().prop_map(|k| GenAction::Plain(Action::Return(k))),
        2 => number().prop_map(|k| GenAction::Plain(Action::Raise(k))),
        2 => Just(GenAction::Plain(Action::Pass)),
        1 => number().prop_map(|k| GenAction::Plain(Action::Succeed(k))),
        1 => number().prop_map(|k| GenAction::Plain(Action::Fail(k))),
        2 => inner.prop_map(GenAction::Pending),
    ]
}

fn gen_step() -> impl Strategy<Value = GenStep> {
    prop_oneof![
        3 => gen_action().prop_map(GenStep::Callback),
        3 => gen_action().prop_map(GenStep::Errback),
        2 => (gen_action(), gen_action()).prop_map(|(f, g)| GenStep::Callbacks(f, g)),
        2 => gen_action().prop_map(GenStep::Both),
    ]
}

fn case() -> impl Strategy<Value = (Case, Vec<Event>)> {
    (
        result(),
        prop::bool::weighted(0.25),
        prop::collection::vec(gen_step(), 0..20),
        0usize..=100,
        0usize..=2,
        0usize..=1,
    )
        .prop_map(
            |(start, start_fired, gen_steps, split_pct, pause_pairs, spurious_unpauses)| {
                let mut inners = Vec::new();
                let mut number = |a: GenAction| match a {
                    GenAction::Plain(a) => a,
                    GenAction::Pending(spec) => {
                        inners.push(spec);
                        Action::Pending(inners.len() - 1)
                    }
                };
                let steps: Vec<StepSpec> = gen_steps
                    .into_iter()
                    .map(|s| match s {
                        GenStep::Callback(a) => StepSpec::Callback(number(a)),
                        GenStep::Errback(a) => StepSpec::Errback(number(a)),
                        GenStep::Callbacks(f, g) => {
                            let f = number(f);
                            StepSpec::Callbacks(f, number(g))
                        }
                        GenStep::Both(a) => StepSpec::Both(number(a)),
                    })
                    .collect();
                let split = steps.len() * split_pct / 100;
                Case {
                    start,
                    start_fired,
                    steps,
                    split,
                    inners,
                    pause_pairs,
                    spurious_unpauses,
                }
            },
        )
        .prop_flat_map(|case| {
            let events = case.events();
            (Just(case), Just(events).prop_shuffle())
        })
}

// ---------------------------------------------------------------------------------------------
// The interpreter: the synchronous try/except/else/finally program
// ---------------------------------------------------------------------------------------------

/// Where a failure was created: identity, as Python's `is` on exception objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Origin {
    /// The outer chain's initial failure.
    Start,
    /// Raised (or `fail`ed) by step `i`.
    Step(usize),
    /// The pending Deferred `j` was fired with it.
    Inner(usize),
}

/// What a step received: `Ok(value)`, or `Err(n)` for the failure `E{n}`.
type Seen = Result<i64, i64>;
/// One step call: its index, which function ran, and what it received.
type Call = (usize, &'static str, Seen);
/// A result in the interpreter: a value, or an exception `E{n}` with its identity.
type PyResult = Result<i64, (i64, Origin)>;

#[derive(Debug)]
struct Expected {
    result: PyResult,
    calls: Vec<Call>,
    /// For each call: the pending Deferred that its function returned, if any. The chain cannot
    /// go past that call before that Deferred has fired and is not paused.
    waits_on: Vec<Option<usize>>,
    /// Messages of the failures reported as unhandled, sorted.
    unhandled: Vec<String>,
}

fn base(r: &PyResult) -> i64 {
    match r {
        Ok(v) => *v,
        Err((n, _)) => *n,
    }
}

fn inner_result(j: usize, spec: &InnerSpec) -> PyResult {
    match spec.fired_with {
        Ok(v) if spec.own_step => Ok(v + 1000),
        Ok(v) => Ok(v),
        Err(n) => Err((n, Origin::Inner(j))),
    }
}

/// Runs the case as the synchronous program it stands for, in one loop over the steps:
///
/// ```python
/// result = start                      # a value, or an exception being raised
/// for i, step in enumerate(steps):
///     callback f:        if no exception: result = f(result)      (a statement in `try`)
///     errback g:         if exception:    result = g(exception)   (`except`)
///     callbacks (f, g):  try/except/else: exactly one of them, and g never sees f's exception
///     both h:            result = h(result or exception)          (`finally` that may replace it)
/// ```
///
/// where a function "returning" a pending Deferred returns what that Deferred will hold.
fn interpret(case: &Case) -> Expected {
    let mut cur: PyResult = case.start.map_err(|n| (n, Origin::Start));
    let mut calls = Vec::new();
    let mut waits_on = Vec::new();
    let mut consumed = vec![false; case.inners.len()];
    for (i, step) in case.steps.iter().enumerate() {
        let (label, action) = match (step, &cur) {
            (StepSpec::Callback(a), Ok(_)) => ("cb", a),
            (StepSpec::Errback(a), Err(_)) => ("eb", a),
            (StepSpec::Callbacks(f, _), Ok(_)) => ("cb", f),
            (StepSpec::Callbacks(_, g), Err(_)) => ("eb", g),
            (StepSpec::Both(h), _) => ("both", h),
            (StepSpec::Callback(_), Err(_)) | (StepSpec::Errback(_), Ok(_)) => continue,
        };
        calls.push((i, label, cur.map_err(|(n, _)| n)));
        waits_on.push(match *action {
            Action::Pending(j) => Some(j),
            _ => None,
        });
        let b = base(&cur);
        cur = match *action {
            Action::Return(k) | Action::Succeed(k) => Ok(b + k),
            Action::Raise(k) | Action::Fail(k) => Err((b + k, Origin::Step(i))),
            Action::Pass => cur,
            Action::Pending(j) => {
                consumed[j] = true;
                inner_result(j, &case.inners[j])
            }
        };
    }
    let mut unhandled: Vec<String> = case
        .inners
        .iter()
        .enumerate()
        .filter(|&(j, _)| !consumed[j])
        .filter_map(|(j, spec)| inner_result(j, spec).err())
        .map(|(n, _)| format!("E{n}"))
        .collect();
    unhandled.sort();
    Expected {
        result: cur,
        calls,
        waits_on,
        unhandled,
    }
}

/// What has happened so far in a run, as far as progress of the outer chain goes.
struct World {
    outer_fired: bool,
    /// `pause()` calls on the outer chain not yet undone (an `unpause` without one does nothing).
    outer_pauses: usize,
    rest_added: bool,
    inner_fired: Vec<bool>,
    inner_paused: Vec<bool>,
}

impl World {
    fn new(case: &Case) -> World {
        World {
            outer_fired: case.start_fired,
            outer_pauses: 0,
            rest_added: false,
            inner_fired: vec![false; case.inners.len()],
            inner_paused: case.inners.iter().map(|i| i.paused).collect(),
        }
    }

    /// How many of the expected calls an unpaused outer chain has made by now: everything up to
    /// the first thing it must wait for (its own firing, steps not added yet, a pending Deferred
    /// returned by a step that has not fired or is paused). Deferreds run synchronously, so the
    /// chain must have got exactly that far, no less (it would be stuck) and no further (it
    /// would not have waited).
    fn reachable(&self, case: &Case, expected: &Expected) -> usize {
        if !self.outer_fired {
            return 0;
        }
        let mut made = 0;
        for (&(i, _, _), waits_on) in expected.calls.iter().zip(&expected.waits_on) {
            if i >= case.split && !self.rest_added {
                break;
            }
            made += 1;
            if let Some(j) = *waits_on
                && (!self.inner_fired[j] || self.inner_paused[j])
            {
                break;
            }
        }
        made
    }
}

// ---------------------------------------------------------------------------------------------
// The real thing
// ---------------------------------------------------------------------------------------------

/// What the closures share: the calls made, and every failure created, by origin.
#[derive(Default)]
struct Log {
    calls: RefCell<Vec<Call>>,
    failures: RefCell<HashMap<Origin, Failure>>,
}

impl Log {
    /// A new failure `E{n}`, remembered under `origin` for identity checks.
    fn failure(&self, n: i64, origin: Origin) -> Failure {
        let f = Failure::msg(format!("E{n}"));
        self.failures.borrow_mut().insert(origin, f.clone());
        f
    }
}

/// The number of `E{n}`; `i64::MIN` for a failure this test did not make (a mismatch).
fn failure_number(f: &Failure) -> i64 {
    f.message()
        .strip_prefix('E')
        .and_then(|n| n.parse().ok())
        .unwrap_or(i64::MIN)
}

fn seen(input: &Result<i64, Failure>) -> Seen {
    input.as_ref().map(|v| *v).map_err(failure_number)
}

type Input = Result<i64, Failure>;

/// A step's closure, before it is adapted to the kind of step: it records its call and does its
/// action. Returning a `Result` and returning a `Deferred` are two types of closure.
enum Body {
    Value(Box<dyn FnOnce(Input) -> Result<i64, Failure>>),
    Deferred(Box<dyn FnOnce(Input) -> Deferred<i64>>),
}

fn body(
    action: &Action,
    i: usize,
    label: &'static str,
    log: &Rc<Log>,
    inners: &mut [Option<Deferred<i64>>],
) -> Body {
    let log = log.clone();
    let record = move |input: &Input| {
        log.calls.borrow_mut().push((i, label, seen(input)));
        let b = match input {
            Ok(v) => *v,
            Err(f) => failure_number(f),
        };
        (log, b)
    };
    match *action {
        Action::Return(k) => Body::Value(Box::new(move |input| {
            let (_, b) = record(&input);
            Ok(b + k)
        })),
        Action::Raise(k) => Body::Value(Box::new(move |input| {
            let (log, b) = record(&input);
            Err(log.failure(b + k, Origin::Step(i)))
        })),
        Action::Pass => Body::Value(Box::new(move |input| {
            record(&input);
            input
        })),
        Action::Succeed(k) => Body::Deferred(Box::new(move |input| {
            let (_, b) = record(&input);
            succeed(b + k)
        })),
        Action::Fail(k) => Body::Deferred(Box::new(move |input| {
            let (log, b) = record(&input);
            fail(log.failure(b + k, Origin::Step(i)))
        })),
        Action::Pending(j) => {
            let inner = inners[j]
                .take()
                .expect("each pending Deferred is used once");
            Body::Deferred(Box::new(move |input| {
                record(&input);
                inner
            }))
        }
    }
}

fn add_step(
    d: Deferred<i64>,
    i: usize,
    spec: &StepSpec,
    log: &Rc<Log>,
    inners: &mut [Option<Deferred<i64>>],
) -> Deferred<i64> {
    match spec {
        StepSpec::Callback(a) => match body(a, i, "cb", log, inners) {
            Body::Value(f) => d.add_callback(move |x| f(Ok(x))),
            Body::Deferred(f) => d.add_callback(move |x| f(Ok(x))),
        },
        StepSpec::Errback(a) => match body(a, i, "eb", log, inners) {
            Body::Value(g) => d.add_errback(move |e| g(Err(e))),
            Body::Deferred(g) => d.add_errback(move |e| g(Err(e))),
        },
        StepSpec::Both(a) => match body(a, i, "both", log, inners) {
            Body::Value(h) => d.add_both(h),
            Body::Deferred(h) => d.add_both(h),
        },
        StepSpec::Callbacks(fa, ga) => {
            let f = body(fa, i, "cb", log, inners);
            let g = body(ga, i, "eb", log, inners);
            match (f, g) {
                (Body::Value(f), Body::Value(g)) => {
                    d.add_callbacks(move |x| f(Ok(x)), move |e| g(Err(e)))
                }
                (Body::Value(f), Body::Deferred(g)) => {
                    d.add_callbacks(move |x| f(Ok(x)), move |e| g(Err(e)))
                }
                (Body::Deferred(f), Body::Value(g)) => {
                    d.add_callbacks(move |x| f(Ok(x)), move |e| g(Err(e)))
                }
                (Body::Deferred(f), Body::Deferred(g)) => {
                    d.add_callbacks(move |x| f(Ok(x)), move |e| g(Err(e)))
                }
            }
        }
    }
}

fn fire(t: Trigger<i64>, with: Result<i64, i64>, log: &Log, origin: Origin) -> bool {
    match with {
        Ok(v) => t.callback(v),
        Err(n) => {
            let f = log.failures.borrow()[&origin].clone();
            debug_assert_eq!(failure_number(&f), n);
            t.errback(f)
        }
    }
}

/// Builds the case on real Deferreds, plays the events, and returns the chain's final result
/// (`None` if it never finished). After building and after every event, the calls so far must be
/// exactly the expected calls that [`World::reachable`] allows.
fn run_real(
    case: &Case,
    events: &[Event],
    log: &Rc<Log>,
    expected: &Expected,
) -> Result<Option<Input>, TestCaseError> {
    // The pending inner Deferreds, their triggers and their controls.
    let mut inner_ds = Vec::new();
    let mut inner_ts = Vec::new();
    let mut inner_ctls: Vec<DeferredControl> = Vec::new();
    for (j, spec) in case.inners.iter().enumerate() {
        let (d, t) = Deferred::<i64>::new();
        if spec.paused {
            d.pause();
        }
        inner_ctls.push(d.control());
        let d = if spec.own_step {
            d.add_callback(|x| Ok(x + 1000))
        } else {
            d
        };
        if let Err(n) = spec.fired_with {
            log.failure(n, Origin::Inner(j));
        }
        inner_ds.push(Some(d));
        inner_ts.push(Some(t));
    }

    // The outer chain.
    let (d, mut outer_trigger) = if case.start_fired {
        let d = match case.start {
            Ok(v) => succeed(v),
            Err(n) => fail(log.failure(n, Origin::Start)),
        };
        (d, None)
    } else {
        if let Err(n) = case.start {
            log.failure(n, Origin::Start);
        }
        let (d, t) = Deferred::<i64>::new();
        (d, Some(t))
    };
    let outer = d.control();
    let mut d = Some(d);
    for (i, spec) in case.steps[..case.split].iter().enumerate() {
        d = Some(add_step(d.take().unwrap(), i, spec, log, &mut inner_ds));
    }

    let mut world = World::new(case);
    let mut progress = world.reachable(case, expected);
    let check_progress = |progress: usize, when: &dyn std::fmt::Debug| {
        let calls = log.calls.borrow();
        prop_assert!(
            *calls == expected.calls[..progress],
            "{:?}: the calls made are {:?}, but by now they must be {:?} (all expected: {:?})",
            when,
            *calls,
            &expected.calls[..progress],
            expected.calls
        );
        Ok(())
    };
    check_progress(progress, &"after building")?;

    let mut toggled = vec![false; case.pause_pairs];
    for (e, event) in events.iter().enumerate() {
        match *event {
            Event::FireOuter => {
                let t = outer_trigger.take().expect("one FireOuter event");
                prop_assert!(fire(t, case.start, log, Origin::Start));
                world.outer_fired = true;
            }
            Event::FireInner(j) => {
                let t = inner_ts[j].take().expect("one FireInner event per inner");
                let with = case.inners[j].fired_with;
                // Nothing is cancelled, so every trigger fires its Deferred, consumed or not.
                prop_assert!(fire(t, with, log, Origin::Inner(j)));
                world.inner_fired[j] = true;
            }
            Event::UnpauseInner(j) => {
                // `false` once the inner chain is gone (its result taken, or its step skipped).
                inner_ctls[j].unpause();
                world.inner_paused[j] = false;
            }
            Event::OuterPauseToggle(k) => {
                if toggled[k] {
                    outer.unpause();
                    world.outer_pauses = world.outer_pauses.saturating_sub(1);
                } else {
                    outer.pause();
                    toggled[k] = true;
                    world.outer_pauses += 1;
                }
            }
            Event::SpuriousUnpause => {
                outer.unpause();
                world.outer_pauses = world.outer_pauses.saturating_sub(1);
            }
            Event::AddRest => {
                for (i, spec) in case.steps.iter().enumerate().skip(case.split) {
                    d = Some(add_step(d.take().unwrap(), i, spec, log, &mut inner_ds));
                }
                world.rest_added = true;
            }
        }
        // A paused outer chain makes no progress; an unpaused one goes as far as it can.
        if world.outer_pauses == 0 {
            progress = world.reachable(case, expected);
        }
        check_progress(progress, &format_args!("after event {e} ({event:?})"))?;
    }

    // Take the final result with one more step: it runs only if the chain has finished.
    let slot = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let _done: Deferred<()> = d.take().unwrap().add_both(move |r| {
        *s.borrow_mut() = Some(r);
        Ok(())
    });
    let out = slot.borrow_mut().take();
    Ok(out)
}

fn check(case: &Case, events: &[Event]) -> Result<(), TestCaseError> {
    check_against(case, events, &interpret(case))
}

/// Runs the case and compares it with `expected`.
fn check_against(case: &Case, events: &[Event], expected: &Expected) -> Result<(), TestCaseError> {
    let log = Rc::new(Log::default());
    let reports = Rc::new(RefCell::new(Vec::new()));
    let r = reports.clone();
    let outcome = unhandled::with_hook(
        move |f| r.borrow_mut().push(f.message()),
        || run_real(case, events, &log, expected),
    )?;

    prop_assert_eq!(&*log.calls.borrow(), &expected.calls, "the step calls");
    match (outcome, &expected.result) {
        (None, _) => {
            return Err(TestCaseError::fail(
                "the chain never finished although every event happened",
            ));
        }
        (Some(Ok(v)), Ok(want)) => prop_assert_eq!(v, *want, "the final value"),
        (Some(Err(f)), Err((n, origin))) => {
            prop_assert_eq!(f.message(), format!("E{n}"), "the final failure");
            let same = log.failures.borrow()[origin].same_as(&f);
            prop_assert!(same, "the final failure is not the one from {:?}", origin);
        }
        (Some(got), want) => {
            return Err(TestCaseError::fail(format!(
                "final result {got:?}, expected {want:?}"
            )));
        }
    }
    let mut reports = reports.borrow().clone();
    reports.sort();
    prop_assert_eq!(
        reports,
        expected.unhandled.clone(),
        "the unhandled failures"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4096,
        // Shrinking a failure finds a small chain; no need for the default's thousands of tries.
        max_shrink_iters: 4096,
        ..ProptestConfig::default()
    })]

    /// The seed's promise: a chain of steps behaves as the try/except/else/finally program it
    /// stands for, whatever the order in which its Deferreds fire and its pauses lift.
    #[test]
    fn chain_is_try_except_else_finally((case, events) in case()) {
        check(&case, &events)?;
    }
}

// ---------------------------------------------------------------------------------------------
// The interpreter itself, and the harness, on hand-written cases (the seed's patterns)
// ---------------------------------------------------------------------------------------------

fn plain_case(start: Result<i64, i64>, steps: Vec<StepSpec>) -> Case {
    Case {
        start,
        start_fired: false,
        split: steps.len(),
        steps,
        inners: Vec::new(),
        pause_pairs: 0,
        spurious_unpauses: 0,
    }
}

/// The seed's "Case 1 / Case 2": `add_callback(f).add_errback(g)` lets `g` see `f`'s exception;
/// `add_callbacks(f, g)` does not.
#[test]
fn interpreter_models_add_callbacks_gotcha() {
    use Action::*;
    use StepSpec::*;
    let two_steps = plain_case(Ok(1), vec![Callback(Raise(1)), Errback(Return(10))]);
    let e = interpret(&two_steps);
    assert_eq!(e.calls, [(0, "cb", Ok(1)), (1, "eb", Err(2))]);
    assert_eq!(e.result, Ok(12));
    check(&two_steps, &two_steps.events()).unwrap();

    let one_step = plain_case(Ok(1), vec![Callbacks(Raise(1), Return(10))]);
    let e = interpret(&one_step);
    assert_eq!(e.calls, [(0, "cb", Ok(1))]);
    assert_eq!(e.result, Err((2, Origin::Step(0))));
    check(&one_step, &one_step.events()).unwrap();
}

/// A `finally` that passes the failure on re-raises the very same failure; a skipped callback
/// leaves its pending Deferred unconsumed, and that one's failure is reported.
#[test]
fn interpreter_models_finally_identity_and_unconsumed_inner() {
    use Action::*;
    use StepSpec::*;
    let mut case = plain_case(
        Err(5),
        vec![
            Both(Pass),
            Callback(Pending(0)),
            Errback(Pass),
            Both(Return(0)),
        ],
    );
    case.inners.push(InnerSpec {
        fired_with: Err(9),
        paused: false,
        own_step: false,
    });
    let e = interpret(&case);
    assert_eq!(
        e.calls,
        [(0, "both", Err(5)), (2, "eb", Err(5)), (3, "both", Err(5))]
    );
    assert_eq!(e.result, Ok(5));
    assert_eq!(e.unhandled, ["E9"]);
    let events = case.events();
    check(&case, &events).unwrap();
}

/// The harness must be able to fail: a wrong result, a wrong call list or a wrong set of
/// unhandled reports is each caught.
#[test]
fn check_catches_wrong_expectations() {
    use Action::*;
    use StepSpec::*;
    let mut case = plain_case(Ok(1), vec![Callback(Return(1)), Errback(Pending(0))]);
    case.inners.push(InnerSpec {
        fired_with: Err(4),
        paused: true,
        own_step: true,
    });
    let events = case.events();
    let right = interpret(&case);
    assert_eq!(right.result, Ok(2));
    assert_eq!(right.unhandled, ["E4"]);
    check_against(&case, &events, &right).unwrap();

    let mut wrong = interpret(&case);
    wrong.result = Ok(3);
    assert!(check_against(&case, &events, &wrong).is_err());

    let mut wrong = interpret(&case);
    wrong.calls.push((1, "eb", Err(2)));
    assert!(check_against(&case, &events, &wrong).is_err());

    let mut wrong = interpret(&case);
    wrong.unhandled.clear();
    assert!(check_against(&case, &events, &wrong).is_err());
}
