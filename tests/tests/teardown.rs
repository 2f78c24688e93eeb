//! Thread-local teardown: Deferreds, triggers, coroutines and clocks kept in the *user's* own
//! `thread_local!`s when their thread ends, or dropped by another thread-local's destructor. The
//! library's own thread-locals may be destroyed before the user's (destructors run in the reverse
//! order of first use), so a library that touches them with `with` then panics ("cannot access a
//! Thread Local Storage value during or after destruction"), and a panic in a thread-local
//! destructor aborts the process ("thread local panicked on drop, aborting").
//!
//! Each scenario runs in a child process (`support/child_process.rs`), which must exit
//! successfully with no "panicked", "aborting" or "fatal runtime error" on its stderr. Every
//! scenario is run
//!
//! - at the end of a **spawned thread** (the child joins it: its thread-local destructors have
//!   run by then), and at **process exit**: the scenario's thread calls `std::process::exit`,
//!   which runs the calling thread's thread-local destructors (glibc runs them in `exit`, as it
//!   does for the main thread when `main` returns). The test harness runs each test on a thread of
//!   its own, so "the main thread" here is the thread that ends the process. (The main thread's
//!   destructors may also never run; that is allowed, and then there is nothing to check.)
//! - with the user's thread-local **first used before** the library's on that thread (so the
//!   library's are destroyed first, and the user's destructor finds them gone), and **after**.
//!
//! An unhandled failure dropped at teardown may be reported (to the process-wide hook, which here
//! prints `teardown-report:` lines) or silently skipped, but never abort; each scenario bounds
//! how many reports it may make.

#[path = "support/child_process.rs"]
mod child_process;

use std::cell::RefCell;
use std::time::Duration;

use defer_core::clock::Clock;
use defer_core::testing::success_result_of;
use defer_core::{Deferred, Failure, Trigger, ensure_deferred, fail, succeed, unhandled};
use futures::channel::oneshot;

const TIMEOUT: Duration = Duration::from_secs(60);
const REPORT: &str = "teardown-report:";

/// Which thread-local is first used on the scenario's thread.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// The user's: it is destroyed after the library's.
    UserFirst,
    /// The library's: the user's is destroyed first.
    LibraryFirst,
}

/// How the scenario's thread ends.
#[derive(Clone, Copy, Debug)]
enum End {
    /// A spawned thread returns; the child joins it.
    ThreadExit,
    /// The scenario's thread exits the process.
    ProcessExit,
}

// The user's thread-locals.
thread_local! {
    static DEFERREDS: RefCell<Vec<Deferred<u64>>> = const { RefCell::new(Vec::new()) };
    static TRIGGERS: RefCell<Vec<Trigger<u64>>> = const { RefCell::new(Vec::new()) };
    static UNIT_DEFERREDS: RefCell<Vec<Deferred<()>>> = const { RefCell::new(Vec::new()) };
    static SENDERS: RefCell<Vec<oneshot::Sender<u64>>> = const { RefCell::new(Vec::new()) };
    static CLOCK: RefCell<Option<Clock>> = const { RefCell::new(None) };
    static DROPS_DEFERREDS: RefCell<Option<DropsDeferreds>> = const { RefCell::new(None) };
    static PAIR: RefCell<Option<(Deferred<u64>, Trigger<u64>)>> = const { RefCell::new(None) };
    static PAIR_REVERSED: RefCell<Option<(Trigger<u64>, Deferred<u64>)>> =
        const { RefCell::new(None) };
}

/// Touches every user thread-local, registering their destructors now.
fn touch_user_thread_locals() {
    DEFERREDS.with(|_| ());
    TRIGGERS.with(|_| ());
    UNIT_DEFERREDS.with(|_| ());
    SENDERS.with(|_| ());
    CLOCK.with(|_| ());
    DROPS_DEFERREDS.with(|_| ());
    PAIR.with(|_| ());
    PAIR_REVERSED.with(|_| ());
}

/// Uses every part of the library that keeps thread-local state: the thread-local unhandled
/// hook, a coroutine parked on a foreign future (and cancelled), a coroutine resumed by a
/// Deferred, and a nested chain dropped (the deferred-drop queue).
fn touch_library_thread_locals() {
    // The failures made here (a cancelled coroutine, a dropped trigger) go to this silent hook.
    unhandled::with_hook(|_| (), prime_library);
}

fn prime_library() {
    drop(fail::<u64>(Failure::msg("primed")));
    let parked = ensure_deferred(std::future::pending::<Result<u64, Failure>>());
    parked.cancel();
    drop(parked);
    let (d, t) = Deferred::<u64>::new();
    let coro = ensure_deferred(async move { Ok(d.await? + 1) });
    assert!(t.callback(1));
    assert_eq!(success_result_of(coro), 2);
    let (inner, ti) = Deferred::<u64>::new();
    let (outer, to) = Deferred::<u64>::new();
    let outer = outer.add_callback(move |_: u64| inner);
    assert!(to.callback(0));
    drop(outer);
    drop(ti);
}

/// Sets up `fill` on the current thread in `order`.
fn prepare(order: Order, fill: fn()) {
    match order {
        Order::UserFirst => {
            touch_user_thread_locals();
            touch_library_thread_locals();
        }
        Order::LibraryFirst => {
            touch_library_thread_locals();
            touch_user_thread_locals();
        }
    }
    fill();
}

/// The child's side: installs the reporting hook, runs `fill` on a thread in `order`, and ends
/// that thread as `end` says.
fn child_body(order: Order, end: End, fill: fn()) {
    unhandled::set_hook(|f| eprintln!("{REPORT} {}", f.message()));
    match end {
        End::ThreadExit => {
            std::thread::Builder::new()
                .name("teardown".into())
                .spawn(move || prepare(order, fill))
                .expect("spawn")
                .join()
                .expect("the scenario's thread panicked");
            eprintln!("the scenario's thread has ended");
        }
        End::ProcessExit => {
            prepare(order, fill);
            child_process::exit_process(0);
        }
    }
}

/// The parent's side: runs the test in a child and checks it exited cleanly, with at most
/// `max_reports` reports.
fn teardown(name: &str, order: Order, end: End, fill: fn(), max_reports: usize) {
    let Some(out) =
        child_process::assert_child_succeeds(name, TIMEOUT, || child_body(order, end, fill))
    else {
        return;
    };
    for bad in ["panicked", "aborting", "fatal runtime error"] {
        assert!(
            !out.stderr.contains(bad),
            "{name}: the child's stderr says {bad:?}:\n{}",
            child_process::tail(&out.stderr, 4000)
        );
    }
    if matches!(end, End::ThreadExit) {
        assert!(
            out.stderr.contains("the scenario's thread has ended"),
            "{name}: the child did not get past the join"
        );
    }
    let reports = out.stderr.matches(REPORT).count()
        + out.stderr.matches("Unhandled error in Deferred").count();
    assert!(
        reports <= max_reports,
        "{name}: {reports} unhandled reports, at most {max_reports} expected:\n{}",
        child_process::tail(&out.stderr, 4000)
    );
}

macro_rules! teardown_tests {
    ($($fill:ident, max_reports = $max:expr;)*) => {
        mod thread_exit_user_first {
            $(
                #[test]
                fn $fill() {
                    super::teardown(
                        concat!(module_path!(), "::", stringify!($fill))
                            .trim_start_matches("teardown::"),
                        super::Order::UserFirst, super::End::ThreadExit, super::$fill, $max,
                    );
                }
            )*
        }
        mod thread_exit_library_first {
            $(
                #[test]
                fn $fill() {
                    super::teardown(
                        concat!(module_path!(), "::", stringify!($fill))
                            .trim_start_matches("teardown::"),
                        super::Order::LibraryFirst, super::End::ThreadExit, super::$fill, $max,
                    );
                }
            )*
        }
        mod process_exit_user_first {
            $(
                #[test]
                fn $fill() {
                    super::teardown(
                        concat!(module_path!(), "::", stringify!($fill))
                            .trim_start_matches("teardown::"),
                        super::Order::UserFirst, super::End::ProcessExit, super::$fill, $max,
                    );
                }
            )*
        }
        mod process_exit_library_first {
            $(
                #[test]
                fn $fill() {
                    super::teardown(
                        concat!(module_path!(), "::", stringify!($fill))
                            .trim_start_matches("teardown::"),
                        super::Order::LibraryFirst, super::End::ProcessExit, super::$fill, $max,
                    );
                }
            )*
        }
    };
}

// ------------------------------------------------------------------------------------------
// The scenarios: what the user's thread-locals hold when the thread ends.

/// Fired Deferreds with values: `succeed`, a fired trigger's Deferred, and a chain with a step.
fn fired_values() {
    DEFERREDS.with(|c| {
        let mut c = c.borrow_mut();
        c.push(succeed(1));
        let (d, t) = Deferred::new();
        assert!(t.callback(2));
        c.push(d);
        c.push(succeed(3).add_callback(|x: u64| Ok(x + 1)));
    });
}

/// A failed Deferred nobody handles: its report at teardown must not crash.
fn fired_failure() {
    DEFERREDS.with(|c| {
        c.borrow_mut()
            .push(fail(Failure::msg("failed, kept in a thread_local")));
    });
}

/// A pending Deferred with steps, and its trigger, in two thread-locals: when the trigger goes,
/// its `TriggerDropped` runs the steps (or is skipped) during teardown.
fn pending_with_trigger() {
    let (d, t) = Deferred::<u64>::new();
    let d = d.add_callback(|x: u64| Ok(x + 1)).add_errback(Err);
    DEFERREDS.with(|c| c.borrow_mut().push(d));
    TRIGGERS.with(|c| c.borrow_mut().push(t));
}

/// A pending Deferred with steps and its trigger in one thread-local, the Deferred dropped first
/// (and, in a second thread-local, the trigger first).
fn pending_and_trigger_together() {
    let (d, t) = Deferred::<u64>::new();
    let d = d.add_callback(|x: u64| Ok(x + 1)).add_errback(Err);
    PAIR.with(|p| *p.borrow_mut() = Some((d, t)));
    let (d, t) = Deferred::<u64>::new();
    let d = d.add_callback(|x: u64| Ok(x + 1)).add_errback(Err);
    PAIR_REVERSED.with(|p| *p.borrow_mut() = Some((t, d)));
}

/// A thousand pending Deferreds each waiting on the next (the outer ones fired), and the
/// innermost trigger.
fn nested_chain() {
    let (mut cur, innermost) = Deferred::<u64>::new();
    for _ in 0..1000 {
        let (d, t) = Deferred::<u64>::new();
        let inner = cur;
        cur = d.add_callback(move |_: u64| inner);
        assert!(t.callback(0));
    }
    DEFERREDS.with(|c| c.borrow_mut().push(cur));
    TRIGGERS.with(|c| c.borrow_mut().push(innermost));
}

/// A thousand nested levels, fired: only the outermost Deferred (holding the result) is kept.
fn nested_chain_fired() {
    let (mut cur, innermost) = Deferred::<u64>::new();
    for _ in 0..1000 {
        let (d, t) = Deferred::<u64>::new();
        let inner = cur;
        cur = d.add_callback(move |_: u64| inner);
        assert!(t.callback(0));
    }
    assert!(innermost.callback(5));
    DEFERREDS.with(|c| c.borrow_mut().push(cur));
}

/// A coroutine parked on a oneshot receiver whose sender is in another thread-local; the
/// coroutine's Deferred is kept too.
fn coroutine_on_oneshot_kept() {
    let (tx, rx) = oneshot::channel::<u64>();
    let d = ensure_deferred(async move { Ok(rx.await? + 1) });
    DEFERREDS.with(|c| c.borrow_mut().push(d));
    SENDERS.with(|c| c.borrow_mut().push(tx));
}

/// A coroutine parked on a oneshot receiver, its Deferred dropped: only the library keeps it.
fn coroutine_on_oneshot_dropped() {
    let (tx, rx) = oneshot::channel::<u64>();
    drop(ensure_deferred(async move { Ok(rx.await? + 1) }));
    SENDERS.with(|c| c.borrow_mut().push(tx));
}

/// A coroutine parked on `std::future::pending()`, its Deferred kept in a thread-local.
fn coroutine_on_pending_future() {
    let d = ensure_deferred(async {
        std::future::pending::<()>().await;
        Ok(1)
    });
    DEFERREDS.with(|c| c.borrow_mut().push(d));
}

/// A coroutine parked on a Deferred whose trigger is in a thread-local, its own Deferred too.
fn coroutine_on_deferred() {
    let (d, t) = Deferred::<u64>::new();
    let coro = ensure_deferred(async move { Ok(d.await? + 1) });
    DEFERREDS.with(|c| c.borrow_mut().push(coro));
    TRIGGERS.with(|c| c.borrow_mut().push(t));
}

/// A clock with pending calls that own a trigger, a Deferred and a timeout's timer.
fn clock_with_pending_calls() {
    let clock = Clock::new();
    let (d, t) = Deferred::<u64>::new();
    let d = d.add_timeout(Duration::from_secs(10), &clock);
    let (d2, t2) = Deferred::<()>::new();
    clock.call_later(Duration::from_secs(5), move || {
        t.callback(1);
    });
    clock.call_later(Duration::from_secs(20), move || drop(d2));
    DEFERREDS.with(|c| c.borrow_mut().push(d));
    UNIT_DEFERREDS.with(|c| {
        c.borrow_mut().push(succeed(()).add_callback(move |()| {
            drop(t2);
            Ok(())
        }))
    });
    CLOCK.with(|c| *c.borrow_mut() = Some(clock));
}

/// A user type whose destructor makes and drops Deferreds (a failed one, a nested chain, a
/// coroutine), run while its thread-local is destroyed.
struct DropsDeferreds;

impl Drop for DropsDeferreds {
    fn drop(&mut self) {
        drop(fail::<u64>(Failure::msg(
            "dropped in a thread_local's destructor",
        )));
        nested_chain_dropped_now();
        let (d, t) = Deferred::<u64>::new();
        let coro = ensure_deferred(async move { Ok(d.await? + 1) });
        assert!(t.callback(1));
        drop(coro);
    }
}

fn nested_chain_dropped_now() {
    let (mut cur, innermost) = Deferred::<u64>::new();
    for _ in 0..1000 {
        let (d, t) = Deferred::<u64>::new();
        let inner = cur;
        cur = d.add_callback(move |_: u64| inner);
        assert!(t.callback(0));
    }
    drop(cur);
    drop(innermost);
}

fn deferreds_dropped_in_a_destructor() {
    DROPS_DEFERREDS.with(|c| *c.borrow_mut() = Some(DropsDeferreds));
}

teardown_tests! {
    fired_values, max_reports = 0;
    fired_failure, max_reports = 1;
    pending_with_trigger, max_reports = 1;
    pending_and_trigger_together, max_reports = 2;
    nested_chain, max_reports = 1;
    nested_chain_fired, max_reports = 0;
    coroutine_on_oneshot_kept, max_reports = 1;
    coroutine_on_oneshot_dropped, max_reports = 1;
    coroutine_on_pending_future, max_reports = 1;
    coroutine_on_deferred, max_reports = 1;
    clock_with_pending_calls, max_reports = 2;
    deferreds_dropped_in_a_destructor, max_reports = 2;
}
