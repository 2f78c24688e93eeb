//! With the `tracing` feature, a coroutine resumes inside the span that was current when it was
//! made (issue 13, item 9), as `tracing::Instrument` does for a future: its events carry its own
//! span, not that of whoever fired the Deferred it waited on.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use defer_core::testing::success_result_of;
use defer_core::{Deferred, ensure_deferred, inline_callbacks, yield_};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Metadata, Subscriber};

/// Records, for each event, its line and the name of the span current then.
#[derive(Default)]
struct Recorder {
    next: AtomicU64,
}

thread_local! {
    static STACK: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    static SPANS: RefCell<HashMap<u64, &'static Metadata<'static>>> = RefCell::new(HashMap::new());
    static EVENTS: RefCell<Vec<(u32, &'static str)>> = const { RefCell::new(Vec::new()) };
}

fn current() -> Option<(u64, &'static Metadata<'static>)> {
    let top = STACK.with(|s| s.borrow().last().copied())?;
    SPANS.with(|m| m.borrow().get(&top).copied().map(|meta| (top, meta)))
}

impl Subscriber for Recorder {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        Interest::always()
    }
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        SPANS.with(|m| m.borrow_mut().insert(id, span.metadata()));
        Id::from_u64(id)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let span = current().map_or("none", |(_, m)| m.name());
        let line = event.metadata().line().unwrap_or(0);
        EVENTS.with(|e| e.borrow_mut().push((line, span)));
    }
    fn enter(&self, span: &Id) {
        STACK.with(|s| s.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, span: &Id) {
        STACK.with(|s| {
            let mut s = s.borrow_mut();
            if let Some(at) = s.iter().rposition(|&x| x == span.into_u64()) {
                s.remove(at);
            }
        });
    }
    fn current_span(&self) -> tracing_core::span::Current {
        match current() {
            Some((id, meta)) => tracing_core::span::Current::new(Id::from_u64(id), meta),
            None => tracing_core::span::Current::none(),
        }
    }
}

/// The span names of the events at the lines marked `marker`, in order.
fn spans_at(marker: &str) -> Vec<&'static str> {
    let text = include_str!("tracing_resume.rs");
    let line = text
        .lines()
        .position(|l| l.trim_end().ends_with(marker))
        .map(|i| u32::try_from(i + 1).unwrap())
        .unwrap();
    EVENTS.with(|e| {
        e.borrow()
            .iter()
            .filter(|(l, _)| *l == line)
            .map(|(_, s)| *s)
            .collect()
    })
}

#[inline_callbacks]
fn handler(reply: Deferred<u32>) -> Deferred<u32> {
    tracing::info!("before"); // event: before
    let v = yield_!(reply)?;
    tracing::info!("after"); // event: after
    Ok(v)
}

#[test]
fn an_inline_callbacks_coroutine_resumes_inside_its_own_span() {
    tracing::subscriber::with_default(Recorder::default(), || {
        let (reply, server) = Deferred::new();
        let d = tracing::info_span!("request").in_scope(|| handler(reply));
        // Fired from code in another span: the coroutine's events stay in its own.
        tracing::info_span!("server").in_scope(|| {
            server.callback(7);
            tracing::info!("fired"); // event: fired
        });
        assert_eq!(success_result_of(d), 7);
        assert_eq!(spans_at("// event: before"), ["request"]);
        assert_eq!(spans_at("// event: after"), ["request"]);
        assert_eq!(spans_at("// event: fired"), ["server"]);
    });
}

#[test]
fn an_async_fn_resumes_inside_its_own_span_and_a_span_it_holds_survives_the_suspension() {
    async fn work(d: Deferred<()>) -> Result<(), defer_core::Failure> {
        let step = tracing::info_span!("step").entered();
        tracing::info!("in step"); // event: step before
        d.await?;
        tracing::info!("in step again"); // event: step after
        drop(step);
        tracing::info!("back"); // event: back
        Ok(())
    }
    tracing::subscriber::with_default(Recorder::default(), || {
        let (d, t) = Deferred::new();
        let c = tracing::info_span!("job").in_scope(|| ensure_deferred(work(d)));
        // The span the body holds does not leak into the caller.
        tracing::info!("caller"); // event: caller
        tracing::info_span!("other").in_scope(|| t.callback(()));
        success_result_of(c);
        assert_eq!(spans_at("// event: caller"), ["none"]);
        assert_eq!(spans_at("// event: step before"), ["step"]);
        assert_eq!(spans_at("// event: step after"), ["step"]);
        assert_eq!(spans_at("// event: back"), ["job"]);
        assert!(STACK.with(|s| s.borrow().is_empty()));
    });
}
