//! `defer_core::debug::snapshot`, coroutines' creation sites and suspension points (issue 13,
//! items 1 and 2): where each coroutine was made, the line it stopped at, what it waits on, and
//! which coroutines wait on which.

use defer_core::debug;
use defer_core::testing::{failure_result_of, success_result_of};
use defer_core::{Deferred, Failure, ensure_deferred, inline_callbacks, yield_};

/// The line of this file holding `marker` (1-based).
fn line_of(marker: &str) -> u32 {
    let text = include_str!("debug_snapshot.rs");
    let at = text
        .lines()
        .position(|l| l.contains(marker) && !l.contains("line_of("))
        .unwrap_or_else(|| panic!("no line with {marker}"));
    u32::try_from(at + 1).unwrap()
}

#[inline_callbacks]
fn stuck_inner(never: Deferred<u32>) -> Deferred<u32> {
    let v = yield_!(never)?; // stop: inner
    Ok(v)
}

#[inline_callbacks]
fn stuck_outer(never: Deferred<u32>) -> Deferred<u32> {
    let v = yield_!(stuck_inner(never))?; // stop: outer
    Ok(v + 1)
}

#[test]
fn a_coroutine_stuck_on_another_stuck_on_a_never_fired_deferred_shows_both_lines() {
    let (never, _trigger) = Deferred::new(); // made: never
    let outer = stuck_outer(never);
    let snap = debug::snapshot();
    let tree = snap.to_string();
    let file = file!();
    let outer_line = format!(
        "coroutine `stuck_outer` suspended at {file}:{}:",
        line_of("// stop: outer")
    );
    let inner_line = format!(
        "  coroutine `stuck_inner` suspended at {file}:{}:",
        line_of("// stop: inner")
    );
    let deferred_line = format!(
        "    Deferred created at {file}:{}:",
        line_of("// made: never")
    );
    let lines: Vec<&str> = tree.lines().collect();
    let at = |needle: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no line starting with {needle:?} in\n{tree}"))
    };
    // The tree: outer, then (indented) the inner it waits on, then the Deferred.
    assert_eq!(at(&inner_line), at(&outer_line) + 1, "{tree}");
    assert_eq!(at(&deferred_line), at(&inner_line) + 1, "{tree}");

    let cs = snap.coroutines();
    let o = cs.iter().position(|c| c.name() == "stuck_outer").unwrap();
    let i = cs.iter().position(|c| c.name() == "stuck_inner").unwrap();
    assert_eq!(cs[o].waits_for(), Some(i));
    assert_eq!(cs[i].waits_for(), None);
    assert_eq!(
        cs[i].waiting_on().unwrap().line(),
        line_of("// made: never")
    );
    // An `#[inline_callbacks]` coroutine is made at its function, in the user's file.
    assert_eq!(cs[o].created_at().file(), file!());
    assert!(!cs[o].is_running());
    drop(outer);
}

#[test]
fn a_finished_coroutine_is_gone_from_the_snapshot() {
    let (d, trigger) = Deferred::new();
    let outer = stuck_outer(d);
    assert_eq!(count("stuck_outer"), 1);
    assert_eq!(count("stuck_inner"), 1);
    trigger.callback(41);
    assert_eq!(success_result_of(outer), 42);
    assert_eq!(count("stuck_outer"), 0);
    assert_eq!(count("stuck_inner"), 0);
    assert!(debug::snapshot().coroutines().is_empty());
}

fn count(name: &str) -> usize {
    debug::snapshot()
        .coroutines()
        .iter()
        .filter(|c| c.name() == name)
        .count()
}

/// A snapshot of 10,000 suspended coroutines lists every one, and takes nothing from them. (How
/// long it takes is a benchmark's question, not a test's: a wall-clock bound here failed under
/// valgrind and on a loaded machine.)
#[test]
fn ten_thousand_coroutines_snapshot_completely() {
    let (all, triggers): (Vec<Deferred<u32>>, Vec<_>) = (0..10_000)
        .map(|_| {
            let (d, t) = Deferred::<u32>::new();
            (ensure_deferred(async move { d.await }), t)
        })
        .unzip();
    let snap = debug::snapshot();
    let tree = snap.to_string();
    assert_eq!(snap.coroutines().len(), 10_000);
    assert_eq!(tree.lines().count(), 20_000);
    for t in triggers {
        t.callback(7);
    }
    for d in all {
        assert_eq!(success_result_of(d), 7);
    }
    assert!(debug::snapshot().coroutines().is_empty());
}

#[test]
fn a_chain_that_leads_to_a_coroutine_is_an_edge() {
    // The awaited Deferred is not the coroutine's own but a chain waiting on it.
    let (never, _t) = Deferred::<u32>::new();
    let inner = stuck_inner(never);
    let (outer_d, outer_t) = Deferred::<()>::new();
    let via = outer_d.add_callback(move |()| inner);
    outer_t.callback(());
    let outer = ensure_deferred(async move { via.await }); // made: via
    let snap = debug::snapshot();
    let cs = snap.coroutines();
    let i = cs.iter().position(|c| c.name() == "stuck_inner").unwrap();
    let o = cs
        .iter()
        .position(|c| c.created_at().line() == line_of("// made: via"))
        .unwrap_or_else(|| panic!("{snap}\n{cs:#?}"));
    assert_eq!(cs[o].waits_for(), Some(i), "{snap}");
    drop(outer);
}

#[test]
fn ensure_deferred_is_located_at_its_caller_and_named_after_the_async_fn() {
    async fn waits(d: Deferred<()>) -> Result<(), Failure> {
        d.await?; // stop: waits
        Ok(())
    }
    let (d, t) = Deferred::new();
    let c = ensure_deferred(waits(d)); // made: waits
    let snap = debug::snapshot();
    let w = &snap.coroutines()[0];
    assert_eq!(w.name(), "waits");
    assert_eq!(w.created_at().file(), file!());
    assert_eq!(w.created_at().line(), line_of("// made: waits"));
    let at = w.suspended_at().unwrap();
    assert_eq!((at.file(), at.line()), (file!(), line_of("// stop: waits")));
    // Its Deferred's `Debug` says the same.
    let shown = format!("{c:?}");
    let expected = format!(
        "coroutine suspended at {}:{}:",
        file!(),
        line_of("// stop: waits")
    );
    assert!(shown.contains(&expected), "{shown}");
    assert!(
        shown.contains(" waiting on Deferred created at "),
        "{shown}"
    );
    assert!(
        shown.ends_with(&format!(
            "created at {}:{}:{})",
            file!(),
            line_of("// made: waits"),
            w.created_at().column()
        )),
        "{shown}"
    );
    t.callback(());
    success_result_of(c);
}

#[test]
fn inline_callbacks_deferred_debug_shows_its_yield() {
    let (never, _t) = Deferred::new();
    let d = stuck_inner(never);
    let shown = format!("{d:?}");
    let expected = format!(
        "coroutine suspended at {}:{}:",
        file!(),
        line_of("// stop: inner")
    );
    assert!(shown.contains(&expected), "{shown}");
}

#[test]
fn a_panic_in_a_coroutine_is_located_where_it_was_made() {
    #[rustfmt::skip]
    let d = ensure_deferred(async { // made: panics
        if true {
            panic!("boom");
        }
        Ok(())
    });
    let f = failure_result_of(d);
    assert!(f.is_panic());
    assert_eq!(f.location().file(), file!(), "{f}");
    assert_eq!(f.location().line(), line_of("// made: panics"), "{f}");
}

#[test]
fn a_failure_raised_in_an_async_fn_names_it() {
    async fn raises() -> Result<(), Failure> {
        Err(Failure::msg("no"))
    }
    let f = failure_result_of(ensure_deferred(raises()));
    let names: Vec<_> = f.frames().map(|fr| fr.function()).collect();
    assert_eq!(names, ["raises"], "{f}");
}

#[test]
fn cancel_is_located_at_the_callers_line() {
    let (d, _t) = Deferred::<()>::new();
    d.cancel(); // cancel: here
    let f = failure_result_of(d);
    assert_eq!(f.location().file(), file!(), "{f}");
    assert_eq!(f.location().line(), line_of("// cancel: here"), "{f}");
}
