//! The `tracing` feature: an unhandled failure's default report is a `tracing::error!` event with
//! the failure's type, message and trace as fields. Recorded here by a tiny subscriber.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use defer_core::{Deferred, Failure, ensure_deferred, fail, unhandled};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

/// One event as the subscriber saw it.
#[derive(Debug, Clone)]
struct Seen {
    level: Level,
    target: String,
    fields: BTreeMap<String, String>,
}

/// A subscriber that records every event (and ignores spans), optionally only up to a level.
#[derive(Clone, Default)]
struct Recorder {
    events: Arc<Mutex<Vec<Seen>>>,
    /// When set, events of this level are not wanted.
    refuse: Option<Level>,
}

impl Recorder {
    fn events(&self) -> Vec<Seen> {
        self.events.lock().unwrap().clone()
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl Subscriber for Recorder {
    fn register_callsite(&self, _metadata: &'static Metadata<'static>) -> Interest {
        Interest::sometimes() // ask `enabled` every time: other tests' recorders differ
    }
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        Some(*metadata.level()) != self.refuse
    }
    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _span: &Id, _values: &Record<'_>) {}
    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.events.lock().unwrap().push(Seen {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        });
    }
    fn enter(&self, _span: &Id) {}
    fn exit(&self, _span: &Id) {}
}

/// Runs `body` with `recorder` as this thread's subscriber.
fn recording<R>(recorder: &Recorder, body: impl FnOnce() -> R) -> R {
    tracing::subscriber::with_default(recorder.clone(), body)
}

#[test]
fn an_unhandled_failure_is_one_error_event_with_type_message_and_trace() {
    let rec = Recorder::default();
    let line = line!() + 4;
    recording(&rec, || {
        let (d, trigger) = Deferred::<u8>::new();
        let outer = ensure_deferred(async move {
            let v = d.await?;
            Ok(v)
        });
        trigger.errback(std::io::Error::other("disk on fire"));
        drop(outer); // nobody handled it
    });
    let events = rec.events();
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.level, Level::ERROR);
    assert_eq!(e.target, "defer_core::unhandled");
    assert_eq!(e.fields["message"], "Unhandled error in Deferred");
    assert_eq!(e.fields["failure.type"], "std::io::error::Error");
    assert_eq!(e.fields["failure.message"], "disk on fire");
    let trace = &e.fields["failure.trace"];
    assert!(
        trace.contains(&format!("at {}:{line}:", file!())),
        "the .await point is in the trace: {trace}"
    );
    let last = trace.lines().last().unwrap();
    assert!(
        last.starts_with("raised at ") && last.contains(file!()),
        "ends with where it was raised: {trace}"
    );
}

#[test]
fn a_handled_failure_emits_no_event() {
    let rec = Recorder::default();
    recording(&rec, || {
        let d = fail::<u8>(Failure::msg("caught")).add_errback(|_| Ok(0));
        drop(d);
    });
    assert!(rec.events().is_empty(), "{:?}", rec.events());
}

#[test]
fn default_report_called_directly_emits_the_event() {
    let rec = Recorder::default();
    let f = Failure::msg("by hand");
    recording(&rec, || unhandled::default_report(&f));
    let events = rec.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].fields["failure.message"], "by hand");
    assert_eq!(
        events[0].fields["failure.type"],
        "defer_core::errors::MessageError"
    );
    assert_eq!(
        events[0].fields["failure.trace"],
        format!(
            "raised at {}:{}:{}",
            f.location().file(),
            f.location().line(),
            f.location().column()
        ),
        "no yield points: the trace is where it was raised"
    );
}

#[test]
fn a_thread_local_hook_takes_the_report_instead_of_tracing() {
    let rec = Recorder::default();
    let hooked = Rc::new(RefCell::new(Vec::new()));
    let h = hooked.clone();
    recording(&rec, || {
        unhandled::with_hook(
            move |f| h.borrow_mut().push(f.message()),
            || drop(fail::<()>(Failure::msg("to the hook"))),
        )
    });
    assert_eq!(*hooked.borrow(), ["to the hook"]);
    assert!(rec.events().is_empty());
}

/// Runs the test `name` of this binary in a child process with `DEFER_TRACING_CHILD` set, and
/// returns the child's stderr.
fn child_stderr(name: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("DEFER_TRACING_CHILD", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stderr).unwrap()
}

fn in_child() -> bool {
    std::env::var_os("DEFER_TRACING_CHILD").is_some()
}

#[test]
fn with_no_subscriber_the_report_falls_back_to_stderr() {
    if in_child() {
        drop(fail::<()>(Failure::msg("nobody subscribed")));
        return;
    }
    let stderr = child_stderr("with_no_subscriber_the_report_falls_back_to_stderr");
    assert!(
        stderr.contains("Unhandled error in Deferred (created at ")
            && stderr.contains("tracing_report.rs:")
            && stderr.contains("nobody subscribed"),
        "{stderr}"
    );
}

#[test]
fn a_subscriber_that_refuses_errors_gets_no_event_and_stderr_gets_the_report() {
    let rec = Recorder {
        refuse: Some(Level::ERROR),
        ..Recorder::default()
    };
    recording(&rec, || {
        drop(fail::<()>(Failure::msg("refused by the subscriber")))
    });
    assert!(rec.events().is_empty());
    if in_child() {
        return;
    }
    let stderr =
        child_stderr("a_subscriber_that_refuses_errors_gets_no_event_and_stderr_gets_the_report");
    assert!(stderr.contains("refused by the subscriber"), "{stderr}");
}

#[test]
fn a_subscriber_that_takes_the_event_leaves_stderr_quiet() {
    let rec = Recorder::default();
    recording(&rec, || drop(fail::<()>(Failure::msg("only in the event"))));
    assert_eq!(rec.events().len(), 1);
    if in_child() {
        return;
    }
    let stderr = child_stderr("a_subscriber_that_takes_the_event_leaves_stderr_quiet");
    assert!(!stderr.contains("only in the event"), "{stderr}");
}
