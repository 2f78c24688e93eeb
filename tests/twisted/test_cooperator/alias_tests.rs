//! Ports of Twisted's `test_cooperator.py` `AliasTests`.
//!
//! Twisted's module-level `cooperate` uses the global cooperator on the reactor; here it uses
//! this thread's default cooperator, which the test installs on a manual `Clock` (each test runs
//! on its own thread, so it is the test's own).

use std::time::Duration;

use defer_core::Deferred;
use defer_core::task::{self, Clock, Cooperator};
use defer_core::testing::success_result_of;

#[test]
fn test_cooperate() {
    // `task::cooperate` ought to run the generator that it is given.
    let clock = Clock::new();
    let the_cooperator = Cooperator::new(clock.clone());
    task::set_default_cooperator(Some(the_cooperator.clone()));

    let (d, trigger) = Deferred::<&str>::new();
    let mut trigger = Some(trigger);
    let mut n = 0;
    let it = std::iter::from_fn(move || {
        n += 1;
        if n <= 3 {
            return Some(());
        }
        trigger.take().unwrap().callback("yay");
        None
    });
    let the_task = task::cooperate(it);
    // `theTask in task._theCooperator._tasks`
    assert!(the_task.cooperator().same_as(&the_cooperator));
    assert!(!the_task.is_paused() && the_task.finished().is_none());
    for _ in 0..100 {
        if d.is_called() {
            break;
        }
        clock.advance(Duration::from_millis(1));
    }
    assert_eq!(success_result_of(d), "yay");
    task::set_default_cooperator(None);
}
