//! What is everything waiting on? [`snapshot`] lists every live coroutine of this thread: where
//! it was made, the `yield_!` or `.await` it is suspended at, the Deferred it waits on and where
//! that was made, and which coroutines wait on which, printable as a tree.
//!
//! A program that hangs can print it: in a test's failure message, on a timeout, on a signal.
//! Nothing is collected while nobody asks: each coroutine costs one slot in a thread-local table
//! (a weak reference), filled in the same thread-local access that gives it its id; the
//! snapshot reads the coroutines themselves when it is taken.
//!
//! ```
//! use defer_core::{Deferred, debug, inline_callbacks, yield_};
//!
//! #[inline_callbacks]
//! fn fetch(reply: Deferred<u32>) -> Deferred<u32> {
//!     let v = yield_!(reply)?; // stuck here: nobody fires `reply`
//!     Ok(v)
//! }
//! #[inline_callbacks]
//! fn handle(reply: Deferred<u32>) -> Deferred<u32> {
//!     let v = yield_!(fetch(reply))?;
//!     Ok(v + 1)
//! }
//!
//! let (reply, _server) = Deferred::new();
//! let request = handle(reply);
//! let snap = debug::snapshot();
//! // `handle` waits on `fetch`, which waits on a Deferred nobody fired:
//! let tree = snap.to_string();
//! assert!(tree.contains("coroutine `handle` suspended at"), "{tree}");
//! assert!(tree.contains("  coroutine `fetch` suspended at"), "{tree}");
//! assert!(tree.contains("    Deferred created at"), "{tree}");
//! // In a test that times out, put it in the failure message:
//! assert!(!request.is_called(), "still waiting:\n{snap}");
//! ```

use std::fmt;
use std::panic::Location;

use crate::engine::{CellRc, Resume};
use crate::failure::Frame;

/// What a coroutine driver tells about itself (`Resume::inspect`).
pub(crate) struct Inspected {
    pub(crate) name: &'static str,
    pub(crate) created_at: &'static Location<'static>,
    /// Being polled now: the snapshot was taken from inside it (or code it called).
    pub(crate) running: bool,
    pub(crate) finished: bool,
    pub(crate) suspended_at: Option<Frame>,
    /// The Deferreds it is registered on and still waits for.
    pub(crate) awaiting: Vec<CellRc>,
    /// Its own Deferred.
    pub(crate) own: Option<CellRc>,
}

/// How far the snapshot follows a chain of Deferreds each waiting on the next, looking for the
/// coroutine at its end.
const FOLLOW: usize = 64;

/// Every live coroutine of this thread (made by [`ensure_deferred`](crate::ensure_deferred) or an
/// [`#[inline_callbacks]`](crate::inline_callbacks) function, not yet finished), with what each
/// waits on. See the [module docs](self) for the tree it prints.
///
/// ```
/// use defer_core::{Deferred, debug, ensure_deferred};
///
/// async fn wait(d: Deferred<()>) -> Result<(), defer_core::Failure> {
///     d.await // the line the snapshot shows
/// }
/// let (d, trigger) = Deferred::new();
/// let done = ensure_deferred(wait(d));
/// let snap = debug::snapshot();
/// let c = snap.coroutines().iter().find(|c| c.name() == "wait").unwrap();
/// assert_eq!(c.suspended_at().unwrap().line(), line!() - 6);
/// trigger.callback(());
/// assert!(done.is_called());
/// assert!(debug::snapshot().coroutines().iter().all(|c| c.name() != "wait"));
/// ```
pub fn snapshot() -> Snapshot {
    let drivers = crate::coroutine::live_coroutines();
    let raw: Vec<Inspected> = drivers
        .iter()
        .map(|d| d.inspect())
        .filter(|i| !i.finished)
        .collect();
    drop(drivers);
    // Own Deferred → index, to recognise a chain that ends at another coroutine.
    let own: std::collections::HashMap<*const (), usize> = raw
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((CellRc::as_ptr(r.own.as_ref()?), i)))
        .collect();
    let coroutines = raw
        .iter()
        .map(|r| {
            let awaited = r.awaiting.first();
            let waiting_on = awaited.and_then(|c| c.try_borrow().ok().map(|st| st.created_at));
            let waits_for = awaited.and_then(|c| coroutine_at_end(c, &own));
            Coroutine {
                name: r.name,
                created_at: r.created_at,
                running: r.running,
                suspended_at: r.suspended_at,
                waiting_on,
                waits_for,
            }
        })
        .collect();
    Snapshot { coroutines }
}

/// The coroutine whose own Deferred `cell` is, or leads to through chains each waiting on the
/// next (a step that returned it, a `chain_deferred` target waiting on its source).
fn coroutine_at_end(
    cell: &CellRc,
    own: &std::collections::HashMap<*const (), usize>,
) -> Option<usize> {
    let mut cur = cell.clone();
    for _ in 0..FOLLOW {
        if let Some(&i) = own.get(&CellRc::as_ptr(&cur)) {
            return Some(i);
        }
        let next = {
            let st = cur.try_borrow().ok()?;
            if st.result.is_coroutines() {
                // A coroutine's Deferred, but of one that has finished.
                return None;
            }
            match st.result.waits_on() {
                Some(next) => next.clone(),
                None => return None,
            }
        };
        cur = next;
    }
    None
}

/// The live coroutines of a thread at one moment: made by [`snapshot`]. Its `Display` is a tree:
/// each coroutine nobody waits on, with the coroutine it waits on indented below it, down to the
/// Deferred at the end.
///
/// ```
/// let snap = defer_core::debug::snapshot();
/// assert!(snap.coroutines().is_empty());
/// assert_eq!(snap.to_string(), "no coroutines on this thread\n");
/// ```
#[derive(Clone, Debug)]
pub struct Snapshot {
    coroutines: Vec<Coroutine>,
}

/// One coroutine in a [`Snapshot`].
///
/// ```
/// use defer_core::{Deferred, debug, ensure_deferred};
/// let (d, _t) = Deferred::<()>::new();
/// let _c = ensure_deferred(async move { d.await });
/// let snap = debug::snapshot();
/// let c = &snap.coroutines()[0];
/// assert_eq!(c.created_at().line(), line!() - 3);
/// assert!(!c.is_running());
/// assert_eq!(c.waiting_on().unwrap().line(), line!() - 6);
/// assert_eq!(c.waits_for(), None); // a plain Deferred, not another coroutine's
/// ```
#[derive(Clone, Debug)]
pub struct Coroutine {
    name: &'static str,
    created_at: &'static Location<'static>,
    running: bool,
    suspended_at: Option<Frame>,
    waiting_on: Option<&'static Location<'static>>,
    waits_for: Option<usize>,
}

impl Snapshot {
    /// The coroutines, in no particular order.
    ///
    /// ```
    /// let (d, _t) = defer_core::Deferred::<()>::new();
    /// let _c = defer_core::ensure_deferred(async move { d.await });
    /// assert_eq!(defer_core::debug::snapshot().coroutines().len(), 1);
    /// ```
    pub fn coroutines(&self) -> &[Coroutine] {
        &self.coroutines
    }
}

impl Coroutine {
    /// The coroutine's function: an `#[inline_callbacks]` function's name, or the `async fn` (or
    /// the function around the `async` block) given to `ensure_deferred`; `""` if unknown.
    ///
    /// ```
    /// async fn wait(d: defer_core::Deferred<()>) -> Result<(), defer_core::Failure> { d.await }
    /// let (d, _t) = defer_core::Deferred::new();
    /// let _c = defer_core::ensure_deferred(wait(d));
    /// assert_eq!(defer_core::debug::snapshot().coroutines()[0].name(), "wait");
    /// ```
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Where the coroutine was made: the call of `ensure_deferred`, or the `#[inline_callbacks]`
    /// function.
    ///
    /// ```
    /// let (d, _t) = defer_core::Deferred::<()>::new();
    /// let _c = defer_core::ensure_deferred(async move { d.await });
    /// let snap = defer_core::debug::snapshot();
    /// let made = snap.coroutines()[0].created_at();
    /// assert_eq!((made.file(), made.line()), (file!(), line!() - 3));
    /// ```
    pub fn created_at(&self) -> &'static Location<'static> {
        self.created_at
    }

    /// Whether it is running: the snapshot was taken by it, or by code it called.
    ///
    /// ```
    /// let c = defer_core::ensure_deferred(async {
    ///     Ok(defer_core::debug::snapshot().coroutines()[0].is_running())
    /// });
    /// assert!(defer_core::testing::success_result_of(c));
    /// ```
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// The `yield_!` or `.await` it is suspended at (the frame is named after the coroutine);
    /// `None` while it runs, or while it awaits a future that is not a Deferred.
    ///
    /// ```
    /// let (d, _t) = defer_core::Deferred::<()>::new();
    /// let _c = defer_core::ensure_deferred(async move { d.await });
    /// let at = defer_core::debug::snapshot().coroutines()[0].suspended_at().unwrap();
    /// assert_eq!((at.file(), at.line()), (file!(), line!() - 2));
    /// ```
    pub fn suspended_at(&self) -> Option<Frame> {
        self.suspended_at
    }

    /// Where the Deferred it waits on was made.
    ///
    /// ```
    /// let (d, _t) = defer_core::Deferred::<()>::new();
    /// let _c = defer_core::ensure_deferred(async move { d.await });
    /// let made = defer_core::debug::snapshot().coroutines()[0].waiting_on().unwrap();
    /// assert_eq!(made.line(), line!() - 3);
    /// ```
    pub fn waiting_on(&self) -> Option<&'static Location<'static>> {
        self.waiting_on
    }

    /// The coroutine (its index in [`Snapshot::coroutines`]) whose Deferred this one waits on:
    /// directly, or through Deferreds each waiting on the next.
    ///
    /// ```
    /// use defer_core::{Deferred, debug, ensure_deferred};
    /// let (d, _t) = Deferred::<()>::new();
    /// let inner = ensure_deferred(async move { d.await });
    /// let _outer = ensure_deferred(async move { inner.await });
    /// let snap = debug::snapshot();
    /// let waiting: Vec<_> = snap.coroutines().iter().filter_map(|c| c.waits_for()).collect();
    /// assert_eq!(waiting.len(), 1);
    /// assert_eq!(snap.coroutines()[waiting[0]].waits_for(), None);
    /// ```
    pub fn waits_for(&self) -> Option<usize> {
        self.waits_for
    }

    fn write_line(&self, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
        write!(f, "{:indent$}coroutine", "", indent = 2 * depth)?;
        if !self.name.is_empty() {
            write!(f, " `{}`", self.name)?;
        }
        match (self.running, self.suspended_at) {
            (true, _) => f.write_str(" running")?,
            (false, Some(at)) => write!(
                f,
                " suspended at {}:{}:{}",
                at.file(),
                at.line(),
                at.column()
            )?,
            (false, None) => f.write_str(" awaiting a future that is not a Deferred")?,
        }
        writeln!(f, " (created at {})", self.created_at)
    }
}

impl fmt::Display for Snapshot {
    /// The tree: each coroutine no other coroutine waits on, then, indented, what it waits on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.coroutines.len();
        if n == 0 {
            return f.write_str("no coroutines on this thread\n");
        }
        let mut waited = vec![false; n];
        for c in &self.coroutines {
            if let Some(i) = c.waits_for {
                waited[i] = true;
            }
        }
        let mut shown = vec![false; n];
        // Roots first; then whatever is left, which waits in a cycle.
        let roots = (0..n).filter(|&i| !waited[i]).chain(0..n);
        for root in roots {
            if shown[root] {
                continue;
            }
            let mut cur = root;
            let mut depth = 0;
            loop {
                let c = &self.coroutines[cur];
                if shown[cur] {
                    let name = if c.name.is_empty() { "?" } else { c.name };
                    writeln!(
                        f,
                        "{:indent$}coroutine `{name}` created at {} (shown above)",
                        "",
                        c.created_at,
                        indent = 2 * depth
                    )?;
                    break;
                }
                shown[cur] = true;
                c.write_line(f, depth)?;
                depth += 1;
                match (c.waits_for, c.waiting_on) {
                    (Some(next), _) => cur = next,
                    (None, Some(made)) => {
                        writeln!(
                            f,
                            "{:indent$}Deferred created at {made}",
                            "",
                            indent = 2 * depth
                        )?;
                        break;
                    }
                    (None, None) => break,
                }
            }
        }
        Ok(())
    }
}

/// The function a future's type name names: `path::name::{{closure}}` (an `async fn`'s future,
/// or an `async` block in `name`) gives `name`; anything else `""`.
pub(crate) fn function_name(type_name: &'static str) -> &'static str {
    let Some(mut path) = type_name.strip_suffix("::{{closure}}") else {
        return "";
    };
    while let Some(p) = path.strip_suffix("::{{closure}}") {
        path = p;
    }
    // The last segment at generic depth 0, without its generics.
    let mut depth = 0usize;
    let mut start = 0;
    let bytes = path.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'<' => depth += 1,
            b'>' => depth = depth.saturating_sub(1),
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => start = i + 2,
            _ => {}
        }
    }
    let last = &path[start..];
    last.split('<').next().unwrap_or(last)
}

/// With the `tracing` feature: a coroutine's spans. The span current when it was made is entered
/// around every poll, as `tracing::Instrument` does for a future, so its events carry its own
/// span whoever resumes it. Spans the body enters and still holds when it suspends (a guard kept
/// across a `yield_!`) are exited then and entered again when it resumes, so they neither leak
/// into the code that resumed it nor get lost: the coroutine's spans are its own, as a Python
/// coroutine's context is.
#[cfg(feature = "tracing")]
pub(crate) struct CoroutineSpans(std::cell::Cell<Option<Box<SavedSpans>>>);

/// What [`CoroutineSpans`] keeps, boxed: in the usual case (no span current when the coroutine
/// was made, none held across a suspension) nothing at all, and a suspended coroutine costs one
/// word for its spans instead of seven (issue 11).
#[cfg(feature = "tracing")]
struct SavedSpans {
    /// The span current when the coroutine was made (`Span::none()` if it was made outside any,
    /// but its body held spans across a suspension).
    base: tracing::Span,
    /// Outermost first.
    inside: Option<Box<[tracing::Span]>>,
}

#[cfg(feature = "tracing")]
impl CoroutineSpans {
    /// The most spans saved across one suspension.
    const MAX_INSIDE: usize = 16;

    pub(crate) fn current() -> Self {
        let base = tracing::Span::current();
        CoroutineSpans(std::cell::Cell::new(if base.is_none() {
            None
        } else {
            Some(Box::new(SavedSpans { base, inside: None }))
        }))
    }

    /// Runs `poll` inside the coroutine's spans.
    pub(crate) fn poll_in<R>(&self, poll: impl FnOnce() -> R) -> R {
        // Taken out for the poll, and put back after: nothing else reads them meanwhile (the
        // driver is not polled twice at once).
        let mut saved = self.0.take();
        if let Some(saved) = saved.as_mut() {
            enter(&saved.base);
            if let Some(inside) = saved.inside.take() {
                for s in inside.iter() {
                    enter(s);
                }
            }
        }
        let r = poll();
        let mut left = Vec::new();
        let mut cur = tracing::Span::current();
        while !cur.is_none()
            && saved.as_ref().is_none_or(|s| cur != s.base)
            && left.len() < Self::MAX_INSIDE
        {
            exit(&cur);
            let next = tracing::Span::current();
            let stuck = next == cur;
            left.push(cur);
            if stuck {
                // A subscriber that does not track the current span: nothing more to learn.
                break;
            }
            cur = next;
        }
        if !left.is_empty() {
            left.reverse();
            saved
                .get_or_insert_with(|| {
                    Box::new(SavedSpans {
                        base: tracing::Span::none(),
                        inside: None,
                    })
                })
                .inside = Some(left.into_boxed_slice());
        }
        if let Some(saved) = saved.as_ref() {
            exit(&saved.base);
        }
        self.0.set(saved);
        r
    }
}

#[cfg(feature = "tracing")]
fn enter(span: &tracing::Span) {
    span.with_subscriber(|(id, dispatch)| dispatch.enter(id));
}

#[cfg(feature = "tracing")]
fn exit(span: &tracing::Span) {
    span.with_subscriber(|(id, dispatch)| dispatch.exit(id));
}

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn names_of_future_types() {
        assert_eq!(
            function_name("app::db::get_users::{{closure}}"),
            "get_users"
        );
        assert_eq!(function_name("app::get<u8>::{{closure}}"), "get");
        assert_eq!(
            function_name("app::get<alloc::string::String>::{{closure}}::{{closure}}"),
            "get"
        );
        assert_eq!(function_name("app::Db::fetch::{{closure}}"), "fetch");
        assert_eq!(function_name("core::future::Ready<u8>"), "");
    }
}
