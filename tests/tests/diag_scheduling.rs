//! `call_later` takes any closure, whatever it returns, on every scheduler; `from_future` and
//! `defer_to_thread` outside a `LocalSet` panic at the caller's line with what to do instead
//! (issue 13, item 6).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use defer_core::clock::Clock;
use defer_core::testing::success_result_of;
use defer_core::tokio::{defer_to_thread, from_future};
use defer_core::{Deferred, Failure, Scheduler, TokioScheduler};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn clock_call_later_takes_a_closure_returning_a_value() {
    let clock = Clock::new();
    let (d, trigger) = Deferred::new();
    clock.call_later(secs(1), move || trigger.callback(5));
    // The old form, a box, still works.
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    clock.call_later(secs(1), Box::new(move || r.set(true)));
    clock.advance(secs(1));
    assert_eq!(success_result_of(d), 5);
    assert!(ran.get());
}

#[test]
fn dyn_scheduler_call_later_takes_a_boxed_closure_returning_a_value() {
    let clock = Clock::new();
    let (a, ta) = Deferred::new();
    let (b, tb) = Deferred::new();
    {
        let s: &dyn Scheduler = &clock;
        s.call_later(secs(1), Box::new(move || ta.callback("by ref")));
        // A closure returning `()`, as callers of the trait method wrote it, still compiles.
        s.call_later(
            secs(1),
            Box::new(move || {
                tb.callback("unit");
            }),
        );
    }
    let owned: Rc<dyn Scheduler> = Rc::new(clock.clone());
    let (c, tc) = Deferred::new();
    owned.call_later(secs(1), Box::new(move || tc.callback("rc of dyn")));
    // Generic code sees the same signature.
    fn generic<S: Scheduler + ?Sized>(s: &S, t: defer_core::Trigger<&'static str>) {
        s.call_later(secs(1), Box::new(move || t.callback("generic")));
    }
    let (e, te) = Deferred::new();
    generic(&clock, te);
    clock.advance(secs(1));
    assert_eq!(success_result_of(a), "by ref");
    assert_eq!(success_result_of(b), "unit");
    assert_eq!(success_result_of(c), "rc of dyn");
    assert_eq!(success_result_of(e), "generic");
}

#[test]
fn tokio_scheduler_call_later_takes_a_closure_returning_a_value() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let (x, y) = tokio::task::LocalSet::new().block_on(&rt, async {
        let s = TokioScheduler::new();
        let (a, ta) = Deferred::new();
        s.call_later(secs(3), move || ta.callback(1));
        let (b, tb) = Deferred::new();
        s.call_later(
            secs(1),
            Box::new(move || {
                tb.callback(2);
            }),
        );
        (a.await, b.await)
    });
    assert_eq!((x.unwrap(), y.unwrap()), (1, 2));
}

/// Runs `f`, which must panic, and returns the panic's message and location, recorded by a
/// panic hook for this thread only (other threads' panics go to the previous hook).
fn panic_of(f: impl FnOnce()) -> (String, String) {
    // The hook is global: the tests that swap it take turns.
    static TURN: Mutex<()> = Mutex::new(());
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    type Seen = Arc<Mutex<Vec<(String, String)>>>;
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let me = std::thread::current().id();
    let previous = Arc::new(std::panic::take_hook());
    let forward = previous.clone();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() == me {
            let message = if let Some(s) = info.payload().downcast_ref::<String>() {
                s.clone()
            } else if let Some(s) = info.payload().downcast_ref::<&str>() {
                (*s).to_owned()
            } else {
                String::new()
            };
            let at = info.location().map(|l| l.to_string()).unwrap_or_default();
            sink.lock().unwrap().push((message, at));
        } else {
            forward(info);
        }
    }));
    let r = catch_unwind(AssertUnwindSafe(f));
    let _ = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| previous(info)));
    assert!(r.is_err(), "expected a panic");
    // The last panic is the one that escaped (tokio's own, caught inside, comes first).
    seen.lock()
        .unwrap()
        .last()
        .cloned()
        .expect("a panic was seen")
}

#[test]
fn from_future_outside_a_local_set_panics_at_the_caller_with_advice() {
    // No runtime at all.
    let mut line = None;
    let (message, at) = panic_of(|| {
        line = Some(Location::caller());
        let _d = from_future(async { Ok::<_, Failure>(1) });
    });
    let expected_line = line.unwrap().line() + 1;
    assert!(
        at.starts_with(&format!("{}:{expected_line}:", file!())),
        "{at}"
    );
    assert!(message.contains("from_future"), "{message}");
    assert!(message.contains("defer_core::tokio::react"), "{message}");
    assert!(message.contains("LocalSet"), "{message}");

    // Inside a runtime, but not in a `LocalSet`: tokio's own panic is replaced by ours.
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (message, at) = panic_of(|| {
        rt.block_on(async {
            let _d = from_future(async { Ok::<_, Failure>(1) });
        })
    });
    assert!(at.starts_with(file!()), "{at}");
    assert!(message.contains("defer_core::tokio::react"), "{message}");
}

#[test]
fn defer_to_thread_outside_a_local_set_panics_at_the_caller_with_advice() {
    let (message, at) = panic_of(|| {
        let _d = defer_to_thread(|| Ok::<_, std::io::Error>(1));
    });
    assert!(at.starts_with(file!()), "{at}");
    assert!(message.contains("defer_to_thread"), "{message}");
    assert!(message.contains("LocalSet"), "{message}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let (message, at) = panic_of(|| {
        rt.block_on(async {
            let _d = defer_to_thread(|| Ok::<_, std::io::Error>(1));
        })
    });
    assert!(at.starts_with(file!()), "{at}");
    assert!(message.contains("defer_core::tokio::react"), "{message}");
}
