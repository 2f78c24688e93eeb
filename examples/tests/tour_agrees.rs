//! The tour's promise: every pattern of the seed gives the same log and outcome synchronously
//! and with Deferreds, for an input that succeeds and one that fails.

use defer_examples::seed::{Input, patterns};

#[test]
fn every_pattern_agrees_on_success_and_failure() {
    let all = patterns();
    assert_eq!(all.len(), 10, "the seed has ten patterns");
    for p in &all {
        for input in [Input::Succeeds, Input::Fails] {
            if let Err((sync, deferred)) = p.agrees(input) {
                panic!(
                    "{} with {input:?}:\n sync     {sync:?}\n deferred {deferred:?}",
                    p.title
                );
            }
        }
    }
}

#[test]
fn failing_inputs_reach_the_error_handlers() {
    let all = patterns();
    let by_title = |t: &str| all.iter().find(|p| p.title.starts_with(t)).unwrap();
    let run = by_title("Simple failure").agrees(Input::Fails).unwrap();
    assert!(
        run.log
            .contains(&"report_error(connection refused)".to_owned()),
        "{run:?}"
    );
    let run = by_title("Do something regardless")
        .agrees(Input::Fails)
        .unwrap();
    assert_eq!(run.outcome, "Err(connection refused)");
    assert_eq!(run.log.last().unwrap(), "g()");
    let run = by_title("Inline callbacks").agrees(Input::Fails).unwrap();
    assert_eq!(run.outcome, "Ok([])");
    let run = by_title("Inline callbacks")
        .agrees(Input::Succeeds)
        .unwrap();
    assert_eq!(run.outcome, r#"Ok(["ada", "grace"])"#);
}
