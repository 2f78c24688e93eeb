//! Ports of Twisted's `test_defer.py` `AlreadyCalledTests`.
//!
//! Firing a Deferred twice raises `AlreadyCalledError` in Twisted; here it does not compile,
//! because `Trigger::callback` and `Trigger::errback` take the trigger by value. Each
//! `testAlreadyCalled_XY` / `testAlreadyCalledDebug_XY` is the compile-fail case
//! `ui-tests/cases/fail/already_called_xy.rs`, whose error (`.stderr`) sits at the second fire
//! and names what Twisted's debug text names: where the trigger was made and the first fire.
//! There is no debug mode: nothing is recorded at run time to switch on or off.

use std::cell::Cell;
use std::rc::Rc;

use defer_core::Deferred;
use defer_core::testing::success_result_of;

#[test]
fn test_switch_debugging() {
    // Twisted flips the debug flag between adding a step and firing, both ways round, and
    // checks nothing breaks. Without a debug flag, the same two sequences run, and their steps
    // run once each.
    let ran = Rc::new(Cell::new(0));

    let (d, t) = Deferred::<()>::new();
    let r = ran.clone();
    let d = d.add_both(move |_ign| {
        r.set(r.get() + 1);
        Ok(())
    });
    assert_eq!(ran.get(), 0);
    assert!(t.callback(()));
    assert_eq!(ran.get(), 1);
    success_result_of(d);

    let (d, t) = Deferred::<()>::new();
    assert!(t.callback(()));
    let r = ran.clone();
    let d = d.add_both(move |_ign| {
        r.set(r.get() + 1);
        Ok(())
    });
    assert_eq!(ran.get(), 2);
    success_result_of(d);
}
