//! Ports of Twisted's `test_defer.py` `LogTests`.
//!
//! Twisted's log observer becomes the unhandled-failure hook (`testing::unhandled_during`), and
//! `gc.collect()` the drop of the last handle. Twisted's `_check` sees two logged error events for
//! one unhandled failure (the "Unhandled error in Deferred:" line and the failure); here one
//! report carries the failure, so `check` asserts exactly one, of the right kind.

use std::time::Duration;

use defer_core::testing::unhandled_during;
use defer_core::{Deferred, Failure, fail};

use crate::child_process;

error_kind!(ZeroDivisionError, RuntimeError);

/// `lambda x: 1 // 0`.
fn one_divided_by_zero(_x: i32) -> Result<i32, Failure> {
    Ok(1i32
        .checked_div(0)
        .ok_or(ZeroDivisionError::new("integer division or modulo by zero"))?)
}

/// Twisted's `_check`: the unhandled error was reported, and it is the ZeroDivisionError.
fn check(reports: &[Failure]) {
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].check::<ZeroDivisionError>(), "{reports:?}");
}

#[test]
fn test_error_log() {
    let reports = unhandled_during(|| {
        let (d, t) = Deferred::<i32>::new();
        let d = d.add_callback(one_divided_by_zero);
        t.callback(1);
        drop(d);
    });
    check(&reports);
}

#[test]
fn test_error_log_with_inner_frame_ref() {
    fn sub_error_log_with_inner_frame_ref() {
        let (d, t) = Deferred::<i32>::new();
        let _d = d.add_callback(one_divided_by_zero);
        t.callback(1);
    }
    let reports = unhandled_during(sub_error_log_with_inner_frame_ref);
    check(&reports);
}

#[test]
fn test_error_log_with_inner_frame_cycle() {
    fn sub_error_log_with_inner_frame_cycle() {
        let (d, t) = Deferred::<i32>::new();
        // `unusedCycle(x, d=d)`: the step holds a handle to its own chain, a reference cycle
        // (Twisted adds `d._d = d`; a Deferred has no attributes to hang itself on, so the step is
        // the only part of the chain that can hold it). The step is consumed when it runs, which
        // breaks the cycle, so the failure is reported once the last handle goes.
        let own = d.control();
        let d = d.add_callback(move |x| {
            let _cycle = &own;
            one_divided_by_zero(x)
        });
        t.callback(1);
        drop(d);
    }
    let reports = unhandled_during(sub_error_log_with_inner_frame_cycle);
    check(&reports);
}

#[test]
fn test_error_log_no_repr() {
    // The report must go to stderr, as Twisted's goes to the log: run it in a child process and
    // read what it wrote. (No tracing subscriber is installed there, so the report is text.)
    const NAME: &str = "test_defer::log_tests::test_error_log_no_repr";
    let out = child_process::run_in_child(NAME, Duration::from_secs(60), || {
        let (d, t) = Deferred::<i32>::new();
        drop(d.add_callback(one_divided_by_zero));
        t.callback(1);
    });
    let Some(out) = out else { return };
    let out = out.expect("the child finishes");
    assert!(out.succeeded(), "{}", out.diagnosis());
    let at = out
        .stderr
        .find("Unhandled error in Deferred (created at ")
        .expect("the report is written");
    let report = &out.stderr[at..];
    // "Unhandled Error\nTraceback ": the header (naming where the Deferred was made, which
    // Twisted's debug mode adds), then the traceback, not a repr of the failure.
    let header_end = report.find("):\n").expect("one header line");
    assert!(
        report[..header_end].contains("log_tests.rs:"),
        "the header names the Deferred's creation site: {report}"
    );
    assert!(
        report[header_end..].starts_with("):\n  raised at "),
        "the traceback follows the header: {report}"
    );
    assert!(
        !report.contains("<Failure"),
        "no repr of the failure: {report}"
    );
    assert!(
        report.contains("ZeroDivisionError: integer division or modulo by zero"),
        "{report}"
    );
}

#[test]
fn test_error_log_debug_info() {
    // Twisted's debug mode adds where the Deferred was created and invoked ("(debug:  I…").
    // There is no debug mode: every failure carries where it entered the chain, and the report
    // shows it.
    fn doit() {
        let (d, t) = Deferred::<i32>::new();
        let _d = d.add_callback(one_divided_by_zero);
        t.callback(1);
    }
    let reports = unhandled_during(doit);
    check(&reports);
    let at = reports[0].location();
    assert_eq!(at.file(), file!());
    let text = reports[0].to_string();
    assert!(
        text.contains(&format!("raised at {}:{}:", at.file(), at.line())),
        "{text}"
    );
}

#[test]
fn test_chained_error_cleanup() {
    let reports = unhandled_during(|| {
        let (d, t) = Deferred::<()>::new();
        let d = d.add_callback(|()| fail::<()>(RuntimeError::new("zoop")));
        t.callback(());
        // The original Deferred got the failure.
        let mut results = Vec::new();
        let mut errors = Vec::new();
        let d = d.add_both(Ok);
        match defer_core::testing::success_result_of(d) {
            Ok(v) => results.push(v),
            Err(f) => errors.push(f),
        }
        assert!(results.is_empty());
        assert_eq!(errors.len(), 1);
        assert!(errors[0].check::<RuntimeError>());
        drop(errors);
    });
    // And nothing is reported, neither by the inner Deferred nor by the outer one.
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn test_error_cleared_by_chaining() {
    let reports = unhandled_during(|| {
        let bad = fail::<()>(RuntimeError::new("oh no"));
        // `good` never fires; dropping its trigger is Twisted's `good = None` for its producer.
        let (good, good_trigger) = Deferred::<()>::new();
        let bad = bad.add_errback(move |_ignored| good);
        drop(good_trigger);
        drop(bad);
    });
    assert!(reports.is_empty(), "{reports:?}");
}
