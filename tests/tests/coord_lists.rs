//! Lists of Deferreds (twisted-semantics.md §2.12): `DeferredList`, `gather_results`, `race`,
//! `FirstError`, `FailureGroup` and the tuple gather; cases C46–C63.

use std::cell::{Cell, RefCell};
use std::error::Error;
use std::rc::Rc;

use defer_core::errors::{CancelledError, FailureGroup, FirstError};
use defer_core::list::FirstResult;
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{
    Deferred, DeferredList, Failure, Gather, Trigger, fail, gather_results, race, succeed,
    unhandled,
};

#[macro_use]
#[path = "support/error_kinds.rs"]
mod error_kinds;

error_kind!(E1, ValueError);

/// Collects the failures reported as unhandled while `body` runs on this thread.
fn unhandled_during<R>(body: impl FnOnce() -> R) -> (R, Vec<Failure>) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    let r = unhandled::with_hook(move |f| sink.borrow_mut().push(f.clone()), body);
    (
        r,
        Rc::try_unwrap(seen).expect("the hook is gone").into_inner(),
    )
}

/// A Deferred whose canceller succeeds with "Callback Result".
fn succeeding_canceller() -> (Deferred<&'static str>, Trigger<&'static str>) {
    Deferred::with_canceller(|t| {
        t.callback("Callback Result");
    })
}

/// A Deferred whose canceller counts its calls.
fn counted(count: &Rc<Cell<u32>>) -> (Deferred<u32>, Trigger<u32>) {
    let c = count.clone();
    Deferred::with_canceller(move |_t| c.set(c.get() + 1))
}

// ---- DeferredList ----------------------------------------------------------------------------

#[test]
fn c46_list_fires_once_all_have_fired_with_results_in_input_order() {
    let ((), reported) = unhandled_during(|| {
        let (d1, t1) = Deferred::<&str>::new();
        let (d2, t2) = Deferred::new();
        let (d3, t3) = Deferred::new();
        let out = Rc::new(RefCell::new(None));
        let o = out.clone();
        let _list = DeferredList::new([d1, d2, d3])
            .build()
            .add_callback(move |r| {
                *o.borrow_mut() = Some(r);
                Ok(())
            });
        t1.callback("1");
        t2.errback(E1::new("2"));
        assert!(out.borrow().is_none());
        t3.callback("3");
        let r = out.borrow_mut().take().expect("the list fired");
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].as_ref().ok(), Some(&"1"));
        let f = r[1].as_ref().unwrap_err();
        assert!(f.check::<E1>());
        assert_eq!(f.message(), "2");
        assert_eq!(r[2].as_ref().ok(), Some(&"3"));
    });
    // Without consume_errors, d2 keeps its failure (Twisted's later `d2.addErrback` is not
    // possible: d2 was moved into the list), so it is reported once.
    assert_eq!(reported.len(), 1);
    assert!(reported[0].check::<E1>());
}

#[test]
fn c47_empty_lists() {
    assert!(success_result_of(DeferredList::<u8>::new([]).build()).is_empty());
    let never = DeferredList::<u8>::new([]).fire_on_one_callback().build();
    assert_no_result(&never);
    assert!(success_result_of(gather_results::<u8>([])).is_empty());
    let never_race = race::<u8>([]);
    assert_no_result(&never_race);
    // Nothing is left to fire them: still no result (and no TriggerDropped) after a while.
    drop((never, never_race));
}

#[test]
fn c48_fire_on_one_errback_fails_with_first_error_on_the_first_failure() {
    let (d1, t1) = Deferred::<&str>::new();
    let (d2, t2) = Deferred::new();
    let (d3, _t3) = Deferred::new();
    let list = DeferredList::new([d1, d2, d3])
        .fire_on_one_errback(true)
        .consume_errors(true)
        .build();
    t1.callback("1");
    assert_no_result(&list);
    t2.errback(E1::new("from def2"));
    let f = failure_result_of(list);
    let first = f.downcast_ref::<FirstError>().expect("a FirstError");
    assert_eq!(first.index(), 1);
    assert!(first.sub_failure().check::<E1>());
    assert_eq!(first.sub_failure().message(), "from def2");
}

#[test]
fn c50_already_fired_inputs_are_processed_at_construction() {
    let ((), reported) = unhandled_during(|| {
        let d1 = fail::<u8>(E1::new("Bang"));
        let (d2, t2) = Deferred::new();
        let list = DeferredList::new([d1, d2])
            .fire_on_one_errback(true)
            .build();
        let f = failure_result_of(list);
        assert_eq!(f.downcast_ref::<FirstError>().unwrap().index(), 0);
        assert!(t2.callback(2), "a later input still fires normally");

        let d1 = fail::<u8>(E1::new("Bang"));
        let d2 = succeed(2);
        let list = DeferredList::new([d1, d2]).build();
        let r = success_result_of(list);
        assert!(r[0].as_ref().unwrap_err().check::<E1>());
        assert_eq!(r[1].as_ref().ok(), Some(&2));
    });
    // The first list fails with d1's failure (a FirstError): the caller has it, so d1 does not
    // keep it. The second list records d1's failure in its results and d1 keeps it too (no
    // consume_errors), as Twisted does: reported once.
    assert_eq!(
        reported.len(),
        1,
        "only the failure no list failed with is kept"
    );
}

#[test]
fn c52_cancelling_a_list_cancels_its_inputs() {
    let (d1, t1) = Deferred::<&str>::new();
    let (d2, t2) = Deferred::new();
    let list = DeferredList::new([d1, d2]).consume_errors(true).build();
    list.cancel();
    assert!(t1.is_cancelled() && t2.is_cancelled());
    let r = success_result_of(list);
    assert!(
        r.iter()
            .all(|x| x.as_ref().unwrap_err().check::<CancelledError>())
    );

    let (d1, _t1) = succeeding_canceller();
    let (d2, t2) = Deferred::new();
    let list = DeferredList::new([d1, d2]).consume_errors(true).build();
    list.cancel();
    assert!(t2.is_cancelled());
    let r = success_result_of(list);
    assert_eq!(r[0].as_ref().ok(), Some(&"Callback Result"));
    assert!(r[1].as_ref().unwrap_err().check::<CancelledError>());
}

#[test]
fn c54_cancelling_a_fire_on_one_errback_list() {
    let (d1, t1) = Deferred::<&str>::new();
    let (d2, t2) = Deferred::new();
    let list = DeferredList::new([d1, d2])
        .fire_on_one_errback(true)
        .consume_errors(true)
        .build();
    list.cancel();
    assert!(t1.is_cancelled() && t2.is_cancelled());
    let f = failure_result_of(list);
    let first = f.downcast_ref::<FirstError>().unwrap();
    assert!(first.sub_failure().check::<CancelledError>());
    assert_eq!(first.index(), 0);

    let (d1, _t1) = succeeding_canceller();
    let (d2, _t2) = succeeding_canceller();
    let list = DeferredList::new([d1, d2])
        .fire_on_one_errback(true)
        .build();
    list.cancel();
    let r: Vec<&str> = success_result_of(list)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(r, ["Callback Result", "Callback Result"]);
}

#[test]
fn c55_cancel_reaches_only_the_inputs_given_at_construction() {
    let (d1, t1) = Deferred::<u8>::new();
    let (d2, t2) = Deferred::new();
    let mut args = vec![d1, d2];
    let list = DeferredList::new(args.drain(..))
        .consume_errors(true)
        .build();
    let (d3, t3) = Deferred::new();
    args.push(d3);
    list.cancel();
    assert!(t1.is_cancelled() && t2.is_cancelled());
    assert!(!t3.is_cancelled());
    assert_no_result(&args[0]);
    let _ = success_result_of(list);
}

// ---- gather_results ----------------------------------------------------------------------------

#[test]
fn c57_gather_results_in_input_order_or_first_error() {
    assert_eq!(
        success_result_of(gather_results([succeed(1), succeed(2)])),
        [1, 2]
    );

    let (d1, t1) = Deferred::new();
    let (d2, t2) = Deferred::new();
    let g = gather_results([d1, d2]);
    t2.callback("b");
    assert_no_result(&g);
    t1.callback("a");
    assert_eq!(success_result_of(g), ["a", "b"]);

    let (f, reported) = unhandled_during(|| {
        failure_result_of(gather_results([succeed(1), fail(ValueError::new("bad"))]))
    });
    let first = f.downcast_ref::<FirstError>().unwrap();
    assert_eq!(first.index(), 1);
    assert!(first.sub_failure().check::<ValueError>());
    // The first failure is the caller's (inside the FirstError): it is not also reported as
    // unhandled by the input, which Twisted would do since an errback might still be added to
    // the input; here the input was moved into the gather, so nothing can.
    assert!(reported.is_empty(), "{reported:?}");
    // The consuming variant reports nothing.
    let ((), reported) = unhandled_during(|| {
        let d = DeferredList::new([succeed(1), fail(ValueError::new("bad"))])
            .consume_errors(true)
            .gather();
        assert!(failure_result_of(d).check::<FirstError>());
    });
    assert!(reported.is_empty());
}

#[test]
fn c59_cancelling_a_gather_cancels_its_inputs() {
    let ((), _reported) = unhandled_during(|| {
        let (d1, t1) = Deferred::<u8>::new();
        let (d2, t2) = Deferred::new();
        let g = gather_results([d1, d2]);
        g.cancel();
        assert!(t1.is_cancelled() && t2.is_cancelled());
        let f = failure_result_of(g);
        let first = f.downcast_ref::<FirstError>().unwrap();
        assert!(first.sub_failure().check::<CancelledError>());
    });

    let (d1, _t1) = succeeding_canceller();
    let (d2, _t2) = succeeding_canceller();
    let g = gather_results([d1, d2]);
    g.cancel();
    assert_eq!(success_result_of(g), ["Callback Result", "Callback Result"]);
}

// ---- race --------------------------------------------------------------------------------------

#[test]
fn c62_cancelling_a_race_cancels_each_input_once() {
    for n in 1..=3 {
        let counts: Vec<Rc<Cell<u32>>> = (0..n).map(|_| Rc::new(Cell::new(0))).collect();
        let mut triggers = Vec::new();
        let inputs: Vec<Deferred<u32>> = counts
            .iter()
            .map(|c| {
                let (d, t) = counted(c);
                triggers.push(t);
                d
            })
            .collect();
        let r = race(inputs);
        r.cancel();
        r.cancel();
        assert!(counts.iter().all(|c| c.get() == 1), "n = {n}");
        let f = failure_result_of(r);
        let group = f.downcast_ref::<FailureGroup>().expect("a FailureGroup");
        assert_eq!(group.failures().len(), n);
        assert!(group.failures().iter().all(|f| f.check::<CancelledError>()));
    }
}

#[test]
fn race_first_success_wins_and_every_loser_is_cancelled_exactly_once() {
    for before in 0..=3 {
        for after in 0..=3 {
            let n = before + 1 + after;
            let counts: Vec<Rc<Cell<u32>>> = (0..n).map(|_| Rc::new(Cell::new(0))).collect();
            let mut triggers = Vec::new();
            let inputs: Vec<Deferred<u32>> = counts
                .iter()
                .map(|c| {
                    let (d, t) = counted(c);
                    triggers.push(Some(t));
                    d
                })
                .collect();
            let r = race(inputs);
            assert_no_result(&r);
            triggers[before].take().unwrap().callback(99);
            assert_eq!(success_result_of(r), (before, 99));
            for (i, c) in counts.iter().enumerate() {
                let expected = u32::from(i != before);
                assert_eq!(c.get(), expected, "input {i} of {n}, winner {before}");
            }
        }
    }
}

#[test]
fn race_all_failing_gives_a_failure_group_in_index_order_and_cancels_nothing() {
    let counts: Vec<Rc<Cell<u32>>> = (0..3).map(|_| Rc::new(Cell::new(0))).collect();
    let mut triggers: Vec<Trigger<u32>> = Vec::new();
    let inputs: Vec<Deferred<u32>> = counts
        .iter()
        .map(|c| {
            let (d, t) = counted(c);
            triggers.push(t);
            d
        })
        .collect();
    let ((), reported) = unhandled_during(|| {
        let r = race(inputs);
        // Fail out of order: 2, 0, 1.
        let mut ts: Vec<Option<Trigger<u32>>> = triggers.drain(..).map(Some).collect();
        for i in [2, 0, 1] {
            ts[i].take().unwrap().errback(Failure::msg(format!("f{i}")));
        }
        let f = failure_result_of(r);
        let group = f.downcast_ref::<FailureGroup>().unwrap();
        let messages: Vec<String> = group.failures().iter().map(Failure::message).collect();
        assert_eq!(messages, ["f0", "f1", "f2"]);
        assert_eq!(f.message(), "all 3 inputs failed: #0: f0; #1: f1; #2: f2");
    });
    assert!(counts.iter().all(|c| c.get() == 0));
    assert!(reported.is_empty(), "race consumes its inputs' failures");
}

#[test]
fn race_swallows_a_losers_late_result_and_a_cancellers_success() {
    let ((), reported) = unhandled_during(|| {
        // A loser without canceller fires later: ignored, nothing logged.
        let (a, ta) = Deferred::<&str>::new();
        let (b, tb) = Deferred::new();
        let r = race([a, b]);
        ta.callback("a");
        assert!(tb.is_cancelled());
        assert!(!tb.errback(Failure::msg("late")));
        assert_eq!(success_result_of(r), (0, "a"));

        // A loser whose canceller succeeds is ignored.
        let (a, ta) = Deferred::<&str>::new();
        let (b, _tb) = succeeding_canceller();
        let r = race([a, b]);
        ta.callback("winner");
        assert_eq!(success_result_of(r), (0, "winner"));
    });
    assert!(reported.is_empty());
}

#[test]
fn race_with_an_input_already_succeeded_wins_at_once() {
    let count = Rc::new(Cell::new(0));
    let (pending, _t) = counted(&count);
    let r = race([pending, succeed(5)]);
    assert_eq!(success_result_of(r), (1, 5));
    assert_eq!(count.get(), 1);
}

// ---- FirstError, FailureGroup ------------------------------------------------------------------

#[test]
fn c63_first_error_equality_and_repr() {
    let f1 = Failure::new(ValueError::new("division"));
    let f2 = Failure::new(ValueError::new("bar"));
    let one = FirstError::new(13, f1.clone());
    let same = FirstError::new(13, f1);
    let other = FirstError::new(9, f2);
    assert_eq!(one, same);
    assert!(one != other);
    // "It is not equal to 10": comparing with an integer does not type-check in Rust.
    let e = FirstError::new(3, Failure::new(ValueError::new("some text")));
    assert_eq!(
        format!("{e:?}"),
        "FirstError[#3, ValueError(\"some text\")]"
    );
    assert_eq!(e.to_string(), "input #3 failed first: some text");
}

#[test]
fn first_error_source_is_the_inputs_error() {
    let e = FirstError::new(0, Failure::new(ValueError::new("inner")));
    let source = e.source().expect("a source");
    assert_eq!(source.to_string(), "inner");
    let f = Failure::new(e);
    assert!(f.check::<FirstError>());
    assert!(
        f.check::<ValueError>(),
        "check sees through to the sub-failure's kind"
    );
}

#[test]
fn failure_group_displays_every_failure() {
    let g = FailureGroup::new(vec![Failure::msg("a"), Failure::msg("b")]);
    assert_eq!(g.to_string(), "all 2 inputs failed: #0: a; #1: b");
    assert_eq!(g.into_failures().len(), 2);
}

// ---- fire_on_one_callback and consume_errors ---------------------------------------------------

#[test]
fn fire_on_one_callback_fires_with_the_first_success_and_its_index() {
    let (d1, t1) = Deferred::<&str>::new();
    let (d2, t2) = Deferred::new();
    let (d3, t3) = Deferred::new();
    let first = DeferredList::new([d1, d2, d3])
        .consume_errors(true)
        .fire_on_one_callback()
        .build();
    t1.errback(Failure::msg("no"));
    assert_no_result(&first);
    t3.callback("three");
    match success_result_of(first) {
        FirstResult::Success { index, value } => assert_eq!((index, value), (2, "three")),
        FirstResult::AllFailed(_) => panic!("expected a success"),
    }
    t2.callback("late: ignored");
}

#[test]
fn fire_on_one_callback_with_every_input_failing_gives_all_the_failures() {
    let (d1, t1) = Deferred::<u8>::new();
    let (d2, t2) = Deferred::new();
    let d = DeferredList::new([d1, d2])
        .consume_errors(true)
        .fire_on_one_callback()
        .build();
    t2.errback(Failure::msg("second"));
    t1.errback(Failure::msg("first"));
    match success_result_of(d) {
        FirstResult::AllFailed(fs) => {
            let m: Vec<String> = fs.iter().map(Failure::message).collect();
            assert_eq!(m, ["first", "second"]);
        }
        FirstResult::Success { .. } => panic!("expected all failed"),
    }
}

#[test]
fn both_fire_on_one_flags_fire_on_whichever_comes_first() {
    let (d1, t1) = Deferred::<u8>::new();
    let (d2, _t2) = Deferred::new();
    let d = DeferredList::new([d1, d2])
        .fire_on_one_callback()
        .fire_on_one_errback(true)
        .consume_errors(true)
        .build();
    t1.errback(Failure::msg("first failure"));
    let f = failure_result_of(d);
    assert_eq!(f.downcast_ref::<FirstError>().unwrap().index(), 0);
}

#[test]
fn consume_errors_decides_whether_an_inputs_failure_is_reported() {
    let (_, loud) = unhandled_during(|| {
        let (d, t) = Deferred::<u8>::new();
        let list = DeferredList::new([d]).build();
        t.errback(Failure::msg("kept by the input"));
        assert!(success_result_of(list)[0].is_err());
    });
    assert_eq!(loud.len(), 1);
    assert_eq!(loud[0].message(), "kept by the input");

    let (_, quiet) = unhandled_during(|| {
        let (d, t) = Deferred::<u8>::new();
        let list = DeferredList::new([d]).consume_errors(true).build();
        t.errback(Failure::msg("consumed"));
        assert!(success_result_of(list)[0].is_err());
    });
    assert!(quiet.is_empty());
}

#[test]
fn list_shares_the_inputs_failure_rather_than_copying_it() {
    let original = Failure::msg("shared");
    let list = DeferredList::new([fail::<u8>(original.clone())])
        .consume_errors(true)
        .build();
    let r = success_result_of(list);
    assert!(r[0].as_ref().unwrap_err().same_as(&original));
}

#[test]
fn steps_added_to_an_input_before_the_list_run_first() {
    let (d, t) = Deferred::<u8>::new();
    let d = d.add_callback(|x| Ok(x * 10));
    let list = DeferredList::new([d]).build();
    t.callback(4);
    assert_eq!(success_result_of(list)[0].as_ref().ok(), Some(&40));
}

// ---- the tuple gather --------------------------------------------------------------------------

#[test]
fn tuple_gather_collects_values_of_different_types_in_position() {
    let (name, tn) = Deferred::<String>::new();
    let (age, ta) = Deferred::<u32>::new();
    let both = (name, age).gather();
    ta.callback(36);
    assert_no_result(&both);
    tn.callback("ada".to_owned());
    let (n, a): (String, u32) = success_result_of(both);
    assert_eq!((n.as_str(), a), ("ada", 36));
}

#[test]
fn tuple_gather_covers_arities_two_to_eight() {
    assert_eq!(
        success_result_of((succeed(1), succeed('b')).gather()),
        (1, 'b')
    );
    assert_eq!(
        success_result_of((succeed(1), succeed('b'), succeed("c")).gather()),
        (1, 'b', "c")
    );
    assert_eq!(
        success_result_of((succeed(1), succeed('b'), succeed("c"), succeed(4u8)).gather()),
        (1, 'b', "c", 4)
    );
    assert_eq!(
        success_result_of(
            (
                succeed(1),
                succeed('b'),
                succeed("c"),
                succeed(4u8),
                succeed(5i64)
            )
                .gather()
        ),
        (1, 'b', "c", 4, 5)
    );
    assert_eq!(
        success_result_of(
            (
                succeed(1),
                succeed('b'),
                succeed("c"),
                succeed(4u8),
                succeed(5i64),
                succeed(6.5)
            )
                .gather()
        ),
        (1, 'b', "c", 4, 5, 6.5)
    );
    assert_eq!(
        success_result_of(
            (
                succeed(1),
                succeed('b'),
                succeed("c"),
                succeed(4u8),
                succeed(5i64),
                succeed(6.5),
                succeed(true)
            )
                .gather()
        ),
        (1, 'b', "c", 4, 5, 6.5, true)
    );
    let eight = (
        succeed(1),
        succeed('b'),
        succeed("c"),
        succeed(4u8),
        succeed(5i64),
        succeed(6.5),
        succeed(true),
        succeed(vec![8]),
    )
        .gather();
    assert_eq!(
        success_result_of(eight),
        (1, 'b', "c", 4, 5, 6.5, true, vec![8])
    );
}

#[test]
fn tuple_gather_fails_with_the_position_of_the_first_failure() {
    let (a, ta) = Deferred::<u8>::new();
    let (b, tb) = Deferred::<&str>::new();
    let (c, tc) = Deferred::<bool>::new();
    let d = (a, b, c).gather_consuming_errors();
    ta.callback(1);
    tc.errback(E1::new("third failed"));
    let f = failure_result_of(d);
    let first = f.downcast_ref::<FirstError>().unwrap();
    assert_eq!(first.index(), 2);
    assert!(first.sub_failure().check::<E1>());
    // A later failure of another input is ignored (and consumed).
    tb.errback(E1::new("second failed later"));
}

#[test]
fn tuple_gather_cancel_cancels_every_input() {
    let (a, ta) = Deferred::<u8>::new();
    let (b, tb) = succeeding_canceller();
    let (c, tc) = Deferred::<()>::new();
    let d = (a, b, c).gather_consuming_errors();
    d.cancel();
    assert!(ta.is_cancelled() && tb.is_cancelled() && tc.is_cancelled());
    let f = failure_result_of(d);
    let first = f.downcast_ref::<FirstError>().unwrap();
    assert_eq!(first.index(), 0);
    assert!(first.sub_failure().check::<CancelledError>());

    // When every canceller succeeds, the gather succeeds.
    let (a, _ta) = succeeding_canceller();
    let (b, _tb) = Deferred::with_canceller(|t: Trigger<u32>| {
        t.callback(7);
    });
    let d = (a, b).gather();
    d.cancel();
    assert_eq!(success_result_of(d), ("Callback Result", 7));
}

#[test]
fn tuple_gather_without_consuming_leaves_later_failures_in_the_inputs() {
    // The first failure is the caller's only.
    let (_, reported) = unhandled_during(|| {
        let d = (succeed(1), fail::<u8>(Failure::msg("first"))).gather();
        assert!(failure_result_of(d).check::<FirstError>());
    });
    assert!(reported.is_empty(), "{reported:?}");
    // One after the gather has failed reaches nobody: its input keeps it.
    let (_, reported) = unhandled_during(|| {
        let d = (
            fail::<u8>(Failure::msg("first")),
            fail::<u8>(Failure::msg("kept")),
        )
            .gather();
        assert!(failure_result_of(d).check::<FirstError>());
    });
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].message(), "kept");

    let (_, reported) = unhandled_during(|| {
        let d = (succeed(1), fail::<u8>(Failure::msg("consumed"))).gather_consuming_errors();
        assert!(failure_result_of(d).check::<FirstError>());
    });
    assert!(reported.is_empty());
}

#[test]
fn tuple_gather_nests() {
    let inner = (succeed(1), succeed(2)).gather();
    let outer = (inner, succeed("x")).gather();
    assert_eq!(success_result_of(outer), ((1, 2), "x"));
}

#[test]
fn combinator_failures_point_at_the_call_that_made_the_combinator() {
    let list = DeferredList::new([fail::<u8>(Failure::msg("x"))]).consume_errors(true);
    let here = line!() + 1;
    let g = list.gather();
    let f = failure_result_of(g);
    assert_eq!((f.location().file(), f.location().line()), (file!(), here));

    let here = line!() + 1;
    let t = (succeed(1), fail::<u8>(Failure::msg("x"))).gather_consuming_errors();
    let f = failure_result_of(t);
    assert_eq!((f.location().file(), f.location().line()), (file!(), here));

    let here = line!() + 1;
    let r = race([fail::<u8>(Failure::msg("x"))]);
    let f = failure_result_of(r);
    assert!(f.check::<FailureGroup>());
    assert_eq!((f.location().file(), f.location().line()), (file!(), here));
}

#[test]
fn a_producer_dropped_after_the_list_fired_is_not_reported() {
    // Found porting Twisted's testDeferredListFireOnOneError: an input whose trigger is dropped
    // after the list (or gather) was decided reached nobody; its TriggerDropped stays quiet, as
    // Twisted's abandoned Deferred never fires and logs nothing. A real late failure is still
    // kept by its input and reported.
    let reported = defer_core::testing::unhandled_during(|| {
        let (d1, t1) = Deferred::<u8>::new();
        let (d2, t2) = Deferred::<u8>::new();
        let list = DeferredList::new([d1, d2])
            .fire_on_one_errback(true)
            .build();
        t1.errback(E1::new("first"));
        drop(t2);
        drop(failure_result_of(list));

        let (d1, t1) = Deferred::<u8>::new();
        let (d2, t2) = Deferred::<u8>::new();
        let g = gather_results([d1, d2]);
        t1.errback(E1::new("first"));
        drop(t2);
        drop(failure_result_of(g));

        let (d1, t1) = Deferred::<u8>::new();
        let (d2, t2) = Deferred::<&str>::new();
        let g = (d1, d2).gather();
        t1.errback(E1::new("first"));
        drop(t2);
        drop(failure_result_of(g));

        let (d1, t1) = Deferred::<u8>::new();
        let (d2, t2) = Deferred::<u8>::new();
        let g = gather_results([d1, d2]);
        t1.errback(E1::new("first"));
        t2.errback(ValueError::new("late"));
        drop(failure_result_of(g));
    });
    assert_eq!(reported.len(), 1, "{reported:?}");
    assert!(reported[0].check::<ValueError>());
}

/// A list's Deferred is located where the user made it: its unhandled failure names the user's
/// `gather_results` or `DeferredList::build` line, not the library's.
#[test]
fn a_lists_deferred_is_located_at_the_users_call() {
    let (lines, lost) = unhandled_during(|| {
        let (a, ta) = Deferred::<u8>::new();
        let (b, tb) = Deferred::<u8>::new();
        let gathered_at = line!() + 1;
        let gathered = gather_results([a]);
        let built_at = line!() + 1;
        let built = DeferredList::new([b]).fire_on_one_errback(true).build();
        ta.errback(Failure::msg("a"));
        tb.errback(Failure::msg("b"));
        drop((gathered, built));
        [gathered_at, built_at]
    });
    assert_eq!(lost.len(), 2, "{lost:?}");
    for (f, line) in lost.iter().zip(lines) {
        let at = f.unhandled_in().expect("the report names its Deferred");
        assert_eq!((at.file(), at.line()), (file!(), line), "{f:?}");
    }
}
