//! A dropped trigger names the user's line, and a trigger detached on purpose leaves its Deferred
//! pending without a report and without a leak (issue 13, item 3).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use defer_core::errors::{CancelledError, TriggerDropped};
use defer_core::testing::{assert_no_result, failure_result_of, success_result_of};
use defer_core::{Deferred, Failure, inline_callbacks, yield_};

/// Runs `f` with a hook that collects what is reported as unhandled.
fn reports_during(f: impl FnOnce()) -> Vec<Failure> {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let sink = seen.clone();
    defer_core::unhandled::with_hook(move |f| sink.borrow_mut().push(f.clone()), f);
    seen.borrow().clone()
}

#[test]
fn trigger_bound_to_underscore_names_the_line_of_new() {
    let (d, _) = Deferred::<u8>::new();
    let line = line!() - 1;
    let f = failure_result_of(d);
    let e = f.downcast_ref::<TriggerDropped>().expect("TriggerDropped");
    assert_eq!(
        (e.created_at().file(), e.created_at().line()),
        (file!(), line)
    );
    // The failure itself is located at the user's line, not in the library.
    assert_eq!((f.location().file(), f.location().line()), (file!(), line));
    assert!(!f.location().file().ends_with("src/trigger.rs"));
    let message = f.message();
    assert!(
        message.contains(&format!("{}:{line}:", file!())),
        "{message}"
    );
    assert!(message.contains("dropped without firing"), "{message}");
    assert!(message.contains("Trigger::detach"), "{message}");
}

#[test]
fn with_canceller_trigger_dropped_names_the_line() {
    let (d, _) = Deferred::<u8>::with_canceller(|_own| {});
    let line = line!() - 1;
    let f = failure_result_of(d);
    let e = f.downcast_ref::<TriggerDropped>().expect("TriggerDropped");
    assert_eq!(e.created_at().line(), line);
    assert_eq!(f.location().line(), line);
}

#[test]
fn trigger_dropped_later_still_names_where_it_was_created() {
    let (d, trigger) = Deferred::<u8>::new();
    let line = line!() - 1;
    assert_eq!(trigger.created_at().line(), line);
    let d = d.add_callback(|x| Ok(x + 1));
    assert_no_result(&d);
    drop(trigger);
    let f = failure_result_of(d);
    assert_eq!(f.location().line(), line);
    assert!(format!("{:?}", Deferred::<u8>::new().1).contains(file!()));
}

#[test]
fn the_unhandled_report_names_the_user_line() {
    let line = Cell::new(0);
    let reports = reports_during(|| {
        let (d, trigger) = Deferred::<u8>::new();
        line.set(line!() - 1);
        let d = d.add_callback(|x| Ok(x + 1));
        drop(trigger);
        drop(d);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].check::<TriggerDropped>());
    assert_eq!(reports[0].location().line(), line.get());
    assert_eq!(reports[0].location().file(), file!());
}

#[test]
fn a_canceller_trigger_records_the_same_line() {
    let seen = Rc::new(Cell::new(0));
    let s = seen.clone();
    let (d, trigger) = Deferred::<u8>::with_canceller(move |own| {
        s.set(own.created_at().line());
        own.callback(7);
    });
    let line = line!() - 4;
    trigger.detach();
    d.cancel();
    assert_eq!(seen.get(), line);
    assert_eq!(success_result_of(d), 7);
}

#[test]
fn detached_trigger_leaves_the_deferred_pending_without_report() {
    let reports = reports_during(|| {
        let (d, trigger) = Deferred::<u8>::new();
        let d = d.add_callback(|x| Ok(x + 1));
        trigger.detach();
        assert_no_result(&d);
        drop(d);
    });
    assert!(reports.is_empty(), "{reports:?}");
}

#[test]
fn detached_trigger_deferred_dropped_frees_the_chain_and_its_steps() {
    // A step owns a value whose drop we can see: the chain (and the step with it) is freed when
    // the last handle goes, although it never fired.
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let freed = Rc::new(Cell::new(false));
    let flag = Flag(freed.clone());
    let (d, trigger) = Deferred::<u8>::new();
    let d = d.add_callback(move |x| {
        let _keep = &flag;
        Ok(x)
    });
    trigger.detach();
    assert!(!freed.get());
    drop(d);
    assert!(freed.get(), "the chain of a detached trigger leaked");
}

#[test]
fn detached_trigger_cancel_still_fails_with_cancelled_error() {
    let (d, trigger) = Deferred::<u8>::new();
    trigger.detach();
    assert_no_result(&d);
    d.cancel();
    assert!(failure_result_of(d).check::<CancelledError>());
}

#[test]
fn coroutine_waiting_on_detached_deferred_is_freed_quietly() {
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    #[inline_callbacks]
    fn serve(forever: Deferred<()>, flag: Flag) -> Deferred<u8> {
        let _flag = flag;
        yield_!(forever)?;
        Ok(1)
    }
    let freed = Rc::new(Cell::new(false));
    let reports = reports_during(|| {
        let (forever, trigger) = Deferred::<()>::new();
        let d = serve(forever, Flag(freed.clone()));
        trigger.detach();
        assert_no_result(&d);
        drop(d);
    });
    assert!(freed.get(), "the coroutine waiting forever leaked");
    assert!(reports.is_empty(), "{reports:?}");
}
