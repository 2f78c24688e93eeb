//! Conformance: unhandled errors (C43, C45) and `Failure`'s `check` and `trap` (C99) of
//! twisted-semantics.md §4. Reports are captured with `unhandled::with_hook`, which replaces the
//! hook for this thread only.

use std::cell::RefCell;
use std::error::Error;
use std::fmt;
use std::rc::Rc;

use defer_core::testing::{failure_result_of, success_result_of};
use defer_core::unhandled::with_hook;
use defer_core::{Deferred, Failure, IntoFailure, fail};

/// Python's `ZeroDivisionError` for `1 // 0`.
#[derive(Debug)]
struct ZeroDivisionError;
impl fmt::Display for ZeroDivisionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("division by zero")
    }
}
impl Error for ZeroDivisionError {}

/// Declares an error kind; `$base` (optional) is the kind it "derives from": Rust errors have no
/// inheritance, so a sub-kind wraps its base and returns it as its `source()`, which is what
/// `Failure::check`/`trap` follow.
macro_rules! error_kind {
    ($name:ident) => {
        #[derive(Debug)]
        struct $name(String);
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl Error for $name {}
    };
    ($name:ident : $base:ident) => {
        #[derive(Debug)]
        struct $name(String, $base);
        impl $name {
            fn new(message: &str) -> Self {
                $name(message.to_owned(), $base(message.to_owned()))
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl Error for $name {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.1)
            }
        }
    };
}

error_kind!(E1);
error_kind!(Base);
error_kind!(Sub: Base);
error_kind!(KeyError);
error_kind!(RuntimeError);
error_kind!(NotImplementedError: RuntimeError);
error_kind!(SystemExit);

type Log<T> = Rc<RefCell<Vec<T>>>;

fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

use defer_core::testing::unhandled_during as reports_during;

/// `lambda x: 1 // x` with 0, in the form C43 and C45 use.
fn divide_by_zero(x: i32) -> Result<i32, Failure> {
    Ok(x.checked_div(0).ok_or(ZeroDivisionError)?)
}

#[test]
fn c43_unhandled_failure_is_reported_once_when_the_last_handle_goes() {
    // Create, add a step doing 1 // 0, fire, drop every handle: one report, carrying the error.
    let reports = reports_during(|| {
        let (d, t) = Deferred::<i32>::new();
        let d = d.add_callback(divide_by_zero);
        t.callback(1);
        drop(d);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].check::<ZeroDivisionError>());

    // The same when the consumer's handle went first: the report comes when the firing ends.
    let reports = reports_during(|| {
        let (d, t) = Deferred::<i32>::new();
        drop(d.add_callback(divide_by_zero));
        t.callback(1);
    });
    assert_eq!(reports.len(), 1, "{reports:?}");

    // A failed Deferred that is still held reports nothing; it reports when finally dropped.
    let outer = log::<Failure>();
    let o = outer.clone();
    with_hook(
        move |f| o.borrow_mut().push(f.clone()),
        || {
            let mut holder = vec![fail::<()>(E1("held".into()))];
            assert!(outer.borrow().is_empty());
            holder.clear();
            assert_eq!(outer.borrow().len(), 1);
            assert_eq!(outer.borrow()[0].message(), "held");
        },
    );
    assert_eq!(outer.borrow().len(), 1, "reported exactly once");
}

#[test]
fn c45_unhandled_report_says_where_the_failure_entered_the_chain() {
    // Twisted's debug mode adds the creator/invoker stacks to the log ("(debug:  I…"). We have no
    // debug mode: the failure always carries the source location where it entered the chain, and
    // the report shows it.
    let reports = reports_during(|| {
        let (d, t) = Deferred::<i32>::new();
        let _d = d.add_callback(divide_by_zero);
        t.callback(1);
    });
    assert_eq!(reports.len(), 1);
    let at = reports[0].location();
    assert_eq!(at.file(), file!());
    let source_line = include_str!("core_failure.rs")
        .lines()
        .nth(at.line() as usize - 1)
        .unwrap();
    assert!(
        source_line.contains("ok_or(ZeroDivisionError)?"),
        "the location is the `?` in divide_by_zero, got line {}: {source_line}",
        at.line()
    );
    let text = reports[0].to_string();
    assert!(
        text.contains(&format!("raised at {}:{}:", at.file(), at.line())),
        "{text}"
    );
    assert!(
        text.ends_with("ZeroDivisionError: division by zero"),
        "{text}"
    );

    // A failure fired by a producer enters the chain at its `errback`.
    let reports = reports_during(|| {
        let (d, t) = Deferred::<()>::new();
        let _d = d.add_callback(Ok);
        t.errback(E1("producer".into()));
    });
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].location().file(), file!());
    assert!(
        include_str!("core_failure.rs")
            .lines()
            .nth(reports[0].location().line() as usize - 1)
            .unwrap()
            .contains("t.errback(E1(\"producer\".into()))")
    );
}

#[test]
fn c99_failure_check_and_trap() {
    let f = Failure::new(Sub::new("msg"));
    assert!(f.type_name().ends_with("::Sub"), "{}", f.type_name());
    assert_eq!(f.message(), "msg");

    // check(KeyError, Base) is Base; check(KeyError) is None. A sub-kind matches its base.
    assert!(f.check::<KeyError>() || f.check::<Base>());
    assert!(f.check::<Base>() && f.check::<Sub>());
    assert!(!f.check::<KeyError>());

    // trap(Base) gives the Base; trap(KeyError) gives back the *original* failure, Sub inside.
    let original_sub: *const Sub = f.downcast_ref::<Sub>().unwrap();
    let trapped = f.clone().trap::<Base>().expect("Sub derives from Base");
    assert_eq!(trapped.0, "msg");
    assert!(trapped.failure().same_as(&f));
    let back = f.clone().trap::<KeyError>().expect_err("not a KeyError");
    assert!(back.same_as(&f));
    assert!(std::ptr::eq(
        back.downcast_ref::<Sub>().unwrap(),
        original_sub
    ));

    // trap(SystemExit, RuntimeError) on a NotImplementedError gives RuntimeError: Rust traps one
    // kind at a time, so the second trap runs on what the first gave back.
    let g = Failure::new(NotImplementedError::new("test"));
    let trapped = g
        .clone()
        .trap::<SystemExit>()
        .map(|_| "SystemExit")
        .or_else(|g| g.trap::<RuntimeError>().map(|_| "RuntimeError"));
    assert_eq!(trapped.ok(), Some("RuntimeError"));
    assert!(g.type_name().ends_with("::NotImplementedError"));

    // `f.trap::<E>()?` re-raises from an errback: the chain keeps the original failure.
    let f2 = f.clone();
    let d = fail::<i32>(f2).add_errback(|e| {
        let _key = e.trap::<KeyError>()?;
        Ok(0)
    });
    assert!(failure_result_of(d).same_as(&f));
    let d = fail::<i32>(f.clone()).add_errback(|e| {
        let base = e.trap::<Base>()?;
        Ok(base.0.len() as i32)
    });
    assert_eq!(success_result_of(d), 3);

    // Failure(f).value is f.value: a failure passed on is the same failure.
    assert!(f.clone().into_failure().same_as(&f));

    // repr: "<twisted.python.failure.Failure builtins.ZeroDivisionError: division by zero>".
    let z = Failure::new(ZeroDivisionError);
    let repr = format!("{z:?}");
    assert!(
        repr.starts_with(&format!("<Failure {}: division by zero at ", z.type_name())),
        "{repr}"
    );
    // getTraceback() with no frames: "…Failure: mod.Sub: msg". Display ends the same way.
    assert!(
        f.to_string().ends_with(&format!("{}: msg", f.type_name())),
        "{f}"
    );
    // `Failure()` with no current exception (NoCurrentExceptionError) cannot be written: every
    // constructor takes an error.
}
