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

#[test]
fn the_tour_shows_the_rust_that_runs() {
    for p in patterns() {
        assert!(!p.sync_rust.trim().is_empty(), "{}", p.title);
        assert!(!p.deferred_rust.trim().is_empty(), "{}", p.title);
        // No marker leaks into what is printed.
        assert!(!p.sync_rust.contains("tour:"), "{}", p.title);
        assert!(!p.deferred_rust.contains("tour:"), "{}", p.title);
    }
    let all = patterns();
    let by_title = |t: &str| all.iter().find(|p| p.title.starts_with(t)).unwrap();
    assert!(
        by_title("Simple failure")
            .deferred_rust
            .contains(".add_errback(move |f| {")
    );
    assert!(
        by_title("Do something regardless")
            .deferred_rust
            .contains("add_both")
    );
    let inline = &by_title("Inline callbacks").deferred_rust;
    assert!(
        inline.starts_with("#[inline_callbacks]\nfn get_users_inline("),
        "{inline}"
    );
    assert!(inline.contains("return Ok(vec![]);"));
    let coroutine = &by_title("Coroutines").deferred_rust;
    assert!(
        coroutine.starts_with("async fn get_users_async("),
        "{coroutine}"
    );
    assert!(coroutine.ends_with("ensure_deferred(get_users_async(net.clone(), log.clone()))"));
    assert!(
        by_title("Inline callbacks")
            .sync_rust
            .starts_with("fn get_users_sync(")
    );
}
