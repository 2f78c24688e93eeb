//! Ports of Twisted's `test_defer.py` `RaceTests`. Twisted draws the number of Deferreds before
//! and after the winner with hypothesis (0 to 3 each); here every combination runs.

use std::cell::Cell;
use std::rc::Rc;

use defer_core::errors::FailureGroup;
use defer_core::testing::{failure_result_of_kind, success_result_of, unhandled_during};
use defer_core::{Deferred, Failure, Trigger, race};

/// Cancel counts, Deferreds, and the triggers that fire them.
type RaceState = (
    Vec<Rc<Cell<u32>>>,
    Vec<Deferred<Rc<()>>>,
    Vec<Trigger<Rc<()>>>,
);

/// Twisted's `_setupRaceState(numDeferreds)`: Deferreds whose cancellers count their calls,
/// with the counts (and, since firing needs them here, the triggers).
fn setup_race_state(num_deferreds: usize) -> RaceState {
    let cancelled_state: Vec<Rc<Cell<u32>>> = (0..num_deferreds).map(|_| Rc::default()).collect();
    let mut ds = Vec::new();
    let mut triggers = Vec::new();
    for state in &cancelled_state {
        let count = state.clone();
        let (d, t) = Deferred::with_canceller(move |_d| count.set(count.get() + 1));
        ds.push(d);
        triggers.push(t);
    }
    (cancelled_state, ds, triggers)
}

fn counts(state: &[Rc<Cell<u32>>]) -> Vec<u32> {
    state.iter().map(|c| c.get()).collect()
}

#[test]
fn test_success() {
    for before_winner in 0..=3 {
        for after_winner in 0..=3 {
            let (cancelled_state, ds, triggers) =
                setup_race_state(before_winner + 1 + after_winner);
            let race_result = race(ds);
            let expected = Rc::new(());
            let mut triggers: Vec<Option<Trigger<Rc<()>>>> =
                triggers.into_iter().map(Some).collect();
            triggers[before_winner]
                .take()
                .unwrap()
                .callback(expected.clone());
            // The result is the index and result of the only Deferred that fired.
            let (index, value) = success_result_of(race_result);
            assert_eq!(index, before_winner);
            assert!(Rc::ptr_eq(&value, &expected));
            // All Deferreds except the winner have been cancelled once.
            let mut expected_cancelled_state = vec![1; before_winner];
            expected_cancelled_state.push(0);
            expected_cancelled_state.extend(vec![1; after_winner]);
            assert_eq!(counts(&cancelled_state), expected_cancelled_state);
        }
    }
}

#[test]
fn test_failure() {
    for before_winner in 0..=3 {
        for after_winner in 0..=3 {
            let (cancelled_state, ds, triggers) =
                setup_race_state(before_winner + 1 + after_winner);
            let n = ds.len();
            let failure = Failure::msg("The test demands failures.");
            let race_result = race(ds);
            for t in triggers {
                t.errback(failure.clone());
            }
            let actual_failure = failure_result_of_kind::<FailureGroup>(race_result);
            assert_eq!(actual_failure.failures().len(), n);
            assert!(
                actual_failure
                    .failures()
                    .iter()
                    .all(|f| f.same_as(&failure))
            );
            assert_eq!(counts(&cancelled_state), vec![0; n]);
        }
    }
}

#[test]
fn test_result_after_cancel() {
    for before_winner in 0..=3 {
        for after_winner in 0..=3 {
            // A Deferred to win and at least one other that ignores cancellation.
            let (ds, triggers): (Vec<Deferred<()>>, Vec<Trigger<()>>) =
                (0..before_winner + 2 + after_winner)
                    .map(|_| Deferred::new())
                    .unzip();
            let logged = unhandled_during(|| {
                let race_result = race(ds);
                let mut triggers: Vec<Option<Trigger<()>>> =
                    triggers.into_iter().map(Some).collect();
                triggers[before_winner].take().unwrap().callback(());
                // Cancelled already: its late result goes nowhere.
                assert!(!triggers[before_winner + 1].take().unwrap().callback(()));
                success_result_of(race_result);
            });
            assert!(logged.is_empty(), "{logged:?}");
        }
    }
}

#[test]
fn test_result_from_cancel() {
    let (winner, winner_t) = Deferred::<Rc<()>>::new();
    let (loser, _loser_t) = Deferred::with_canceller(|d: Trigger<Rc<()>>| {
        d.callback(Rc::new(()));
    });
    let expected = Rc::new(());
    let logged = unhandled_during(|| {
        let race_result = race([winner, loser]);
        winner_t.callback(expected.clone());
        let (index, value) = success_result_of(race_result);
        assert_eq!(index, 0);
        assert!(Rc::ptr_eq(&value, &expected));
    });
    assert!(logged.is_empty(), "{logged:?}");
}

#[test]
fn test_cancel() {
    for num_deferreds in 1..=3 {
        let (cancelled_state, ds, _triggers) = setup_race_state(num_deferreds);
        let race_result = race(ds);
        race_result.cancel();
        assert_eq!(counts(&cancelled_state), vec![1; num_deferreds]);
        failure_result_of_kind::<FailureGroup>(race_result);
    }
}
