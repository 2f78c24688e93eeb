//! An errback may trap and then return a Deferred to wait for: Twisted's
//! `f.trap(CancelledError); return more_work()` is `f.trap::<CancelledError>()?; Ok(more_work())`
//! (issue 13, item 5).

use defer_core::errors::{CancelledError, MessageError};
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{Deferred, Failure, fail, succeed};

#[test]
fn trapped_errback_waits_for_the_deferred_it_returns() {
    let (more, more_trigger) = Deferred::<&str>::new();
    let (d, trigger) = Deferred::<&str>::new();
    let d = d
        .add_errback(move |f| {
            f.trap::<CancelledError>()?;
            Ok(more)
        })
        .add_callback(|s| Ok(s.len()));
    d.cancel();
    // Cancelled, trapped, and now waiting for `more`.
    assert_no_result(&d);
    more_trigger.callback("more work");
    assert_eq!(success_result_of(d), 9);
    drop(trigger);
}

#[test]
fn untrapped_failure_passes_on_and_the_deferred_is_never_made() {
    let made = std::rc::Rc::new(std::cell::Cell::new(false));
    let m = made.clone();
    let d = fail::<u8>(MessageError::new("timed out")).add_errback(move |f| {
        f.trap::<CancelledError>()?;
        m.set(true);
        Ok(succeed(1))
    });
    let f = failure_result_of(d);
    assert!(f.check::<MessageError>());
    assert!(!made.get());
}

#[test]
fn question_mark_on_any_error_in_such_an_errback() {
    let d = fail::<u32>(CancelledError).add_errback(|f| {
        f.trap::<CancelledError>()?;
        let n: u32 = "not a number".parse()?; // a ParseIntError, raised with `?`
        Ok(succeed(n))
    });
    let f = failure_result_of(d);
    assert!(f.check::<std::num::ParseIntError>());
    // Located at the `?`, as any `?` in a step.
    assert_eq!(f.location().file(), file!());
}

#[test]
fn the_errback_of_add_callbacks_may_return_ok_of_a_deferred() {
    let d = fail::<u8>(CancelledError).add_callbacks(
        |v| Ok(v + 1),
        |f| {
            f.trap::<CancelledError>()?;
            Ok(succeed(40))
        },
    );
    assert_eq!(success_result_of(d), 40);
}

#[test]
fn every_other_errback_shape_still_infers() {
    // Re-raise, recover with a value, with a Deferred, and a `?` then a value.
    // The closure as people write it (clippy would shorten it to `Err`): it must still infer.
    #[allow(clippy::redundant_closure)]
    let a = fail::<u8>(Failure::msg("a")).add_errback(|f| Err(f));
    assert_eq!(failure_result_of(a).message(), "a");
    let b = fail::<u8>(Failure::msg("b")).add_errback(|_| Ok(2));
    assert_eq!(success_result_of(b), 2);
    let c = fail::<u8>(Failure::msg("c")).add_errback(|_| succeed(3));
    assert_eq!(success_result_of(c), 3);
    let d = fail::<u8>(CancelledError).add_errback(|f| {
        f.trap::<CancelledError>()?;
        Ok(4)
    });
    assert_eq!(success_result_of(d), 4);
    let e = fail::<String>(Failure::msg("e")).add_errback(|f| {
        if f.check::<CancelledError>() {
            return Ok("cancelled".to_owned());
        }
        Err(f)
    });
    assert_eq!(failure_result_of(e).message(), "e");
}
