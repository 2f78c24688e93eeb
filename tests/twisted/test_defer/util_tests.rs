//! Ports of Twisted's `test_defer.py` `UtilTests`: `defer.logError`, here
//! [`defer_core::log_error`], a pass-through errback that reports the failure and returns it.
//! Trial's `flushLoggedErrors` is `testing::unhandled_during`: what was logged while it ran.

use std::time::Duration;

use defer_core::testing::{failure_result_of, unhandled_during};
use defer_core::{Failure, fail, log_error};

use crate::child_process;

error_kind!(RuntimeError);

#[test]
fn test_log_error_returns_error() {
    let error = Failure::new(RuntimeError::new(""));
    let mut result = None;
    let logged = unhandled_during(|| result = Some(log_error::<()>(error.clone())));
    assert_eq!(logged.len(), 1);
    assert!(logged[0].check::<RuntimeError>());
    // assertIs(error, result): the very same failure comes back, as the chain's failure.
    let result = result.expect("log_error returned").unwrap_err();
    assert!(result.same_as(&error));

    // As an errback it leaves the chain failing with that failure.
    let mut out = None;
    let logged = unhandled_during(|| {
        out = Some(failure_result_of(
            fail::<u8>(error.clone()).add_errback(log_error),
        ))
    });
    assert_eq!(logged.len(), 1);
    assert!(out.unwrap().same_as(&error));
}

#[test]
fn test_log_error_logs_error() {
    let error = Failure::new(RuntimeError::new(""));
    let errors = unhandled_during(|| drop(log_error::<()>(error.clone())));
    // assertEqual(errors, [error])
    assert_eq!(errors.len(), 1);
    assert!(errors[0].same_as(&error));
}

#[test]
fn test_log_error_logs_error_no_repr() {
    // Twisted: the logged text starts "Unhandled Error\nTraceback ", the traceback, not the
    // failure's repr. Here, with no hook and no tracing subscriber, the default report goes to
    // stderr: a header line, then the failure's `Display` (the traceback-like "raised at" form),
    // never its `Debug` repr (`<Failure …>`). Run in a child process to read its stderr.
    const NAME: &str = "test_defer::util_tests::test_log_error_logs_error_no_repr";
    let Some(out) = child_process::assert_child_succeeds(NAME, Duration::from_secs(60), || {
        eprintln!("--- log_error output starts ---");
        let returned = log_error::<()>(Failure::new(RuntimeError::new("logged")));
        eprintln!("--- log_error output ends ---");
        drop(failure_result_of(fail::<()>(returned.unwrap_err())));
    }) else {
        return;
    };
    let text = out
        .stderr
        .split("--- log_error output starts ---\n")
        .nth(1)
        .and_then(|rest| rest.split("--- log_error output ends ---").next())
        .unwrap_or_else(|| panic!("no log_error output in {:?}", out.stderr));
    assert!(
        text.starts_with("Unhandled error in Deferred:\n  raised at "),
        "{text:?}"
    );
    assert!(text.contains("RuntimeError: logged"), "{text:?}");
    assert!(
        !text.contains("<Failure"),
        "no repr of the failure: {text:?}"
    );
}
