//! Ports of Twisted's `test_defer.py` `FirstErrorTests`: `FirstError`'s `Debug` (Twisted's
//! repr), `Display` (its str) and equality.

use defer_core::Failure;
use defer_core::errors::FirstError;

error_kind!(ValueError, ZeroDivisionError);

#[test]
fn test_repr() {
    // The repr includes the index and the repr of the sub-failure's error.
    let exc = ValueError::new("some text");
    let f = Failure::new(exc.clone());
    let error = FirstError::new(3, f);
    assert_eq!(format!("{error:?}"), format!("FirstError[#3, {exc:?}]"));
}

#[test]
fn test_str() {
    // Twisted: "FirstError[#5, <str of the sub-failure>]", where a Failure's str is its
    // multi-line traceback. Here `Display` is one line (it ends up inside other errors'
    // messages): the index and the sub-failure's error message.
    let exc = ValueError::new("some text");
    let f = Failure::new(exc.clone());
    let error = FirstError::new(5, f.clone());
    assert_eq!(error.to_string(), format!("input #5 failed first: {exc}"));
    assert_eq!(
        error.to_string(),
        format!("input #5 failed first: {}", f.message())
    );
}

#[test]
fn test_comparison() {
    // Equal if and only if the failure and the index are equal.
    let first_failure = Failure::new(ZeroDivisionError::new("integer division or modulo by zero"));
    let one = FirstError::new(13, first_failure.clone());
    let another_one = FirstError::new(13, first_failure.clone());
    let second_failure = Failure::new(ValueError::new("bar"));
    let another = FirstError::new(9, second_failure);

    assert!(one == another_one);
    assert!(!(one == another));
    assert!(one != another);
    assert!(!(one != another_one));
    // `one == 10` is false in Python; here it does not type-check. Same failure, another
    // index, is not equal either.
    assert!(one != FirstError::new(10, first_failure));
}
