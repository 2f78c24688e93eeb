//! [`Failure`]: an error travelling down a Deferred chain, with its kind, the place it entered the
//! chain, and the `yield_!` / `.await` points it crossed on its way up through coroutines.

use std::any::Any;
use std::error::Error;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::panic::Location;
use std::rc::Rc;

use std::cell::Cell as StdCell;

use crate::engine::{drop_queue, user_code};
use crate::errors::{MessageError, Panicked};

/// An error in a Deferred chain: Twisted's `twisted.python.failure.Failure`.
///
/// It holds the error value (any [`std::error::Error`]), the error's type name, the source location
/// where it was created (where `?`, [`Failure::new`] or [`Trigger::errback`](crate::Trigger::errback)
/// was written), and the logical stack of `yield_!` and `.await` points it passed through as it rose
/// through [`inline_callbacks`](crate::inline_callbacks) functions and
/// [`ensure_deferred`](crate::ensure_deferred) coroutines, outermost first.
///
/// Cloning is cheap: the error is shared, so a [`DeferredList`](crate::DeferredList) and the input it
/// came from can both hold it.
///
/// Like `anyhow::Error`, `Failure` does not itself implement [`Error`], which is what lets
/// `impl<E: Error> From<E> for Failure` exist: `?` converts any error into a `Failure`.
///
/// ```
/// use defer_core::Failure;
///
/// let f = Failure::new(std::fmt::Error);
/// assert!(f.check::<std::fmt::Error>());
/// assert_eq!(f.type_name(), "core::fmt::Error");
/// assert_eq!(f.message(), "an error occurred when formatting an argument");
/// assert_eq!(f.location().file(), file!());
/// ```
#[derive(Clone)]
pub struct Failure {
    /// Dropped by hand (`Drop for Failure`), through the drop queue: an error may wrap failures
    /// (a `FirstError` does), so dropping the last clone may be a recursion as deep as that.
    /// `Some` until dropped.
    inner: Option<Rc<Inner<dyn Error + 'static>>>,
    trace: Option<Rc<FrameNode>>,
}

/// The error lives at the end of the shared block, unsized, so a failure is one allocation.
struct Inner<E: ?Sized> {
    type_name: &'static str,
    location: &'static Location<'static>,
    /// A failure the library made on nobody's behalf (a dropped trigger's `TriggerDropped`), not
    /// yet seen by any step: if the chain holding it goes, nothing is reported (see
    /// [`Failure::quiet`]).
    quiet: StdCell<bool>,
    /// Where the Deferred was made whose chain held this failure when it was reported unhandled
    /// (see [`Failure::unhandled_in`]).
    unhandled_in: StdCell<Option<&'static Location<'static>>>,
    error: E,
}

impl Drop for Failure {
    fn drop(&mut self) {
        let Some(inner) = self.inner.take() else {
            return;
        };
        if Rc::strong_count(&inner) == 1 {
            // The last clone: the error's `Drop` is user code, and may drop more failures.
            drop_queue::dispose_value(inner);
        }
    }
}

/// A `Box<dyn Error>` as an error of its own, whose `source` is the boxed error, so that
/// `downcast_ref` still finds the concrete type.
struct BoxedError(Box<dyn Error + 'static>);

impl fmt::Debug for BoxedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}
impl fmt::Display for BoxedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}
impl Error for BoxedError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.0)
    }
}

struct FrameNode {
    frame: Frame,
    next: Option<Rc<FrameNode>>,
}

impl Drop for FrameNode {
    /// Unlinks the rest of the trace in a loop: a failure that crossed a million nested coroutines
    /// has a million frames, and dropping them one inside the other would overflow the stack.
    fn drop(&mut self) {
        let mut next = self.next.take();
        while let Some(node) = next {
            next = match Rc::try_unwrap(node) {
                Ok(mut node) => node.next.take(),
                Err(_) => None, // still shared with a clone: that clone frees it later
            };
        }
    }
}

/// One point of a [`Failure`]'s logical trace: a `yield_!` or `.await` that the failure crossed.
///
/// ```
/// use defer_core::{Failure, Frame};
///
/// let f = Failure::msg("boom").with_frame(Frame::new("get_users", "src/users.rs", 12, 9));
/// let frames: Vec<Frame> = f.frames().collect();
/// assert_eq!(frames[0].function(), "get_users");
/// assert_eq!(frames[0].line(), 12);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    function: &'static str,
    file: &'static str,
    line: u32,
    column: u32,
}

impl Frame {
    /// A frame for `function` at `file:line:column`. `function` may be empty when it is not known
    /// (an `.await` in an `async` block).
    ///
    /// ```
    /// let f = defer_core::Frame::new("", "src/main.rs", 3, 5);
    /// assert_eq!(f.to_string(), "at src/main.rs:3:5");
    /// ```
    pub const fn new(function: &'static str, file: &'static str, line: u32, column: u32) -> Self {
        Frame {
            function,
            file,
            line,
            column,
        }
    }

    /// A frame for the caller's own source location, with no function name.
    ///
    /// ```
    /// let f = defer_core::Frame::here();
    /// assert_eq!(f.file(), file!());
    /// ```
    #[track_caller]
    pub fn here() -> Self {
        let l = Location::caller();
        Frame::new("", l.file(), l.line(), l.column())
    }

    /// The function the frame belongs to, or `""`.
    ///
    /// ```
    /// assert_eq!(defer_core::Frame::new("f", "a.rs", 1, 1).function(), "f");
    /// ```
    pub fn function(&self) -> &'static str {
        self.function
    }

    /// The source file.
    ///
    /// ```
    /// assert_eq!(defer_core::Frame::new("f", "a.rs", 1, 1).file(), "a.rs");
    /// ```
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// The line, from 1.
    ///
    /// ```
    /// assert_eq!(defer_core::Frame::new("f", "a.rs", 7, 1).line(), 7);
    /// ```
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The column, from 1.
    ///
    /// ```
    /// assert_eq!(defer_core::Frame::new("f", "a.rs", 7, 3).column(), 3);
    /// ```
    pub fn column(&self) -> u32 {
        self.column
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.function.is_empty() {
            write!(f, "at {}:{}:{}", self.file, self.line, self.column)
        } else {
            write!(
                f,
                "in {} at {}:{}:{}",
                self.function, self.file, self.line, self.column
            )
        }
    }
}

impl Failure {
    /// Wraps an error, recording the caller's location as where it entered the chain.
    ///
    /// ```
    /// let f = defer_core::Failure::new(std::io::Error::other("disk on fire"));
    /// assert_eq!(f.message(), "disk on fire");
    /// ```
    #[track_caller]
    pub fn new<E: Error + 'static>(error: E) -> Self {
        Self::build(error, std::any::type_name::<E>(), Location::caller())
    }

    /// A failure that is only a message, like `anyhow!("...")`. Its kind is
    /// [`MessageError`](crate::errors::MessageError).
    ///
    /// ```
    /// let f = defer_core::Failure::msg("no such user");
    /// assert_eq!(f.message(), "no such user");
    /// assert!(f.check::<defer_core::errors::MessageError>());
    /// ```
    #[track_caller]
    pub fn msg(message: impl fmt::Display) -> Self {
        Self::new(MessageError::new(message.to_string()))
    }

    /// Wraps an already boxed error (a `Box<dyn Error>` does not implement `Error`, so it cannot
    /// go through `?`). [`downcast_ref`](Failure::downcast_ref) still finds the concrete type.
    ///
    /// ```
    /// let b: Box<dyn std::error::Error> = Box::new(std::fmt::Error);
    /// let f = defer_core::Failure::from_boxed(b);
    /// assert!(f.check::<std::fmt::Error>());
    /// ```
    #[track_caller]
    pub fn from_boxed(error: Box<dyn Error + 'static>) -> Self {
        Self::build(BoxedError(error), "Box<dyn Error>", Location::caller())
    }

    /// Turns a panic payload (from [`std::panic::catch_unwind`]) into a failure of kind
    /// [`Panicked`](crate::errors::Panicked) carrying the panic message.
    ///
    /// ```
    /// let payload = std::panic::catch_unwind(|| panic!("oh no")).unwrap_err();
    /// let f = defer_core::Failure::from_panic(payload);
    /// assert!(f.is_panic());
    /// assert_eq!(f.message(), "panicked: oh no");
    /// ```
    #[track_caller]
    pub fn from_panic(payload: Box<dyn Any + Send>) -> Self {
        Self::from_panic_at(payload, Location::caller())
    }

    pub(crate) fn from_panic_at(
        payload: Box<dyn Any + Send>,
        location: &'static Location<'static>,
    ) -> Self {
        // The payload's own `Drop` may panic: `user_code` reads it and drops it safely.
        let message = user_code::payload_message(payload);
        Self::build(
            Panicked::new(message),
            std::any::type_name::<Panicked>(),
            location,
        )
    }

    pub(crate) fn new_at<E: Error + 'static>(
        error: E,
        location: &'static Location<'static>,
    ) -> Self {
        Self::build(error, std::any::type_name::<E>(), location)
    }

    fn build<E: Error + 'static>(
        error: E,
        type_name: &'static str,
        location: &'static Location<'static>,
    ) -> Self {
        let inner: Rc<Inner<dyn Error + 'static>> = Rc::new(Inner {
            type_name,
            location,
            quiet: StdCell::new(false),
            unhandled_in: StdCell::new(None),
            error,
        });
        Failure {
            inner: Some(inner),
            trace: None,
        }
    }

    #[inline]
    fn inner(&self) -> &Rc<Inner<dyn Error + 'static>> {
        match &self.inner {
            Some(inner) => inner,
            None => unreachable!("a failure has its error until it is dropped"),
        }
    }

    /// A failure the library made on nobody's behalf (a dropped trigger's `TriggerDropped`):
    /// reported as unhandled only once a step has seen it. A bare handle dropped with it, or a
    /// cycle of hand-overs that nobody listens to, reports nothing, as in Twisted, where there is
    /// no such failure at all.
    pub(crate) fn quiet(self) -> Self {
        self.inner().quiet.set(true);
        self
    }

    /// Where the Deferred was created whose chain held this failure when it was reported as
    /// unhandled (`None` until then, or for a failure reported by [`log_error`](crate::log_error)).
    /// The default report names it; a hook ([`unhandled::with_hook`](crate::unhandled::with_hook))
    /// can read it.
    ///
    /// ```
    /// use defer_core::{fail, Failure, unhandled::with_hook};
    /// use std::{cell::RefCell, rc::Rc};
    /// let seen = Rc::new(RefCell::new(None));
    /// let s = seen.clone();
    /// with_hook(move |f| *s.borrow_mut() = f.unhandled_in().map(|l| l.line()), || {
    ///     drop(fail::<u8>(Failure::msg("lost")));
    /// });
    /// assert_eq!(*seen.borrow(), Some(line!() - 2));
    /// ```
    pub fn unhandled_in(&self) -> Option<&'static Location<'static>> {
        self.inner().unhandled_in.get()
    }

    /// Records where the Deferred holding this unhandled failure was created.
    pub(crate) fn set_unhandled_in(&self, at: &'static Location<'static>) {
        self.inner().unhandled_in.set(Some(at));
    }

    /// Whether the failure is [`quiet`](Failure::quiet) and no step has seen it yet.
    pub(crate) fn is_quiet(&self) -> bool {
        self.inner().quiet.get()
    }

    /// A step, a coroutine or a consumer saw the failure: from now on it is reported if lost.
    #[inline]
    pub(crate) fn seen(&self) {
        if self.inner().quiet.get() {
            self.inner().quiet.set(false);
        }
    }

    /// The error itself.
    ///
    /// ```
    /// let f = defer_core::Failure::msg("x");
    /// assert_eq!(f.error().to_string(), "x");
    /// ```
    pub fn error(&self) -> &(dyn Error + 'static) {
        &self.inner().error
    }

    /// The error's type name, as [`std::any::type_name`] gives it: the failure's *kind*.
    ///
    /// ```
    /// let f = defer_core::Failure::new(std::fmt::Error);
    /// assert_eq!(f.type_name(), "core::fmt::Error");
    /// ```
    pub fn type_name(&self) -> &'static str {
        self.inner().type_name
    }

    /// The error's message: its `Display` (Twisted's `getErrorMessage()`).
    ///
    /// ```
    /// assert_eq!(defer_core::Failure::msg("late").message(), "late");
    /// ```
    pub fn message(&self) -> String {
        // The error's `Display` is user code: a panic in it shows as a placeholder.
        user_code::display(&self.inner().error)
    }

    /// Where the failure entered the chain: the `?`, `Failure::new`, `errback` or panicking step.
    ///
    /// ```
    /// let f = defer_core::Failure::msg("x"); let line = line!();
    /// assert_eq!(f.location().line(), line);
    /// ```
    pub fn location(&self) -> &'static Location<'static> {
        self.inner().location
    }

    /// The `yield_!` / `.await` points the failure crossed, outermost first.
    ///
    /// ```
    /// use defer_core::{Failure, Frame};
    /// let f = Failure::msg("x")
    ///     .with_frame(Frame::new("inner", "a.rs", 2, 1))
    ///     .with_frame(Frame::new("outer", "a.rs", 9, 1));
    /// let names: Vec<_> = f.frames().map(|fr| fr.function()).collect();
    /// assert_eq!(names, ["outer", "inner"]);
    /// ```
    pub fn frames(&self) -> impl Iterator<Item = Frame> + '_ {
        let mut node = self.trace.as_deref();
        std::iter::from_fn(move || {
            let n = node?;
            node = n.next.as_deref();
            Some(n.frame)
        })
    }

    /// The same failure with its outermost frame named `function`, if that frame has no name (an
    /// `.await` in a coroutine's body: the coroutine names it as it hands the failure on).
    pub(crate) fn name_outermost(mut self, function: &'static str) -> Self {
        if let Some(node) = self.trace.take() {
            self.trace = Some(if node.frame.function.is_empty() {
                let f = node.frame;
                Rc::new(FrameNode {
                    frame: Frame::new(function, f.file, f.line, f.column),
                    next: node.next.clone(),
                })
            } else {
                node
            });
        }
        self
    }

    /// The same failure with `frame` added as the new outermost point of its trace. The
    /// coroutine machinery calls this at every `yield_!` and `.await` a failure crosses.
    ///
    /// ```
    /// use defer_core::{Failure, Frame};
    /// let f = Failure::msg("x").with_frame(Frame::new("f", "a.rs", 1, 1));
    /// assert_eq!(f.frames().count(), 1);
    /// ```
    pub fn with_frame(mut self, frame: Frame) -> Self {
        let next = self.trace.take();
        self.trace = Some(Rc::new(FrameNode { frame, next }));
        self
    }

    /// The first error of type `E` in the error or its [`source`](Error::source) chain.
    ///
    /// Twisted matches an exception against its base classes; Rust errors have no inheritance, so a
    /// failure matches the kinds it was built from: its own type and every error it wraps.
    ///
    /// ```
    /// let f = defer_core::Failure::new(std::fmt::Error);
    /// assert!(f.downcast_ref::<std::fmt::Error>().is_some());
    /// assert!(f.downcast_ref::<std::io::Error>().is_none());
    /// ```
    pub fn downcast_ref<E: Error + 'static>(&self) -> Option<&E> {
        let mut cur: Option<&(dyn Error + 'static)> = Some(&self.inner().error);
        while let Some(e) = cur {
            if let Some(hit) = e.downcast_ref::<E>() {
                return Some(hit);
            }
            cur = e.source();
        }
        None
    }

    /// Twisted's `check`: whether the failure is of kind `E` (see
    /// [`downcast_ref`](Failure::downcast_ref) for what matches). It does not consume the failure.
    ///
    /// ```
    /// let f = defer_core::Failure::new(std::fmt::Error);
    /// assert!(f.check::<std::fmt::Error>());
    /// assert!(!f.check::<std::io::Error>());
    /// ```
    pub fn check<E: Error + 'static>(&self) -> bool {
        self.downcast_ref::<E>().is_some()
    }

    /// Twisted's `trap`: the typed error when the failure is of kind `E`, or the same failure
    /// back as `Err` so that `f.trap::<E>()?` re-raises anything else from an errback.
    ///
    /// ```
    /// use defer_core::{fail, testing::success_result_of, Deferred};
    /// #[derive(Debug)] struct ConnectionError;
    /// impl std::fmt::Display for ConnectionError {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result { f.write_str("refused") }
    /// }
    /// impl std::error::Error for ConnectionError {}
    ///
    /// let d: Deferred<Vec<String>> = fail(ConnectionError);
    /// let d = d.add_errback(|f| {
    ///     let e = f.trap::<ConnectionError>()?; // anything else is re-raised
    ///     assert_eq!(e.to_string(), "refused");
    ///     Ok(vec![])
    /// });
    /// assert!(success_result_of(d).is_empty());
    /// ```
    #[allow(clippy::result_large_err)]
    pub fn trap<E: Error + 'static>(self) -> Result<Trapped<E>, Failure> {
        if self.check::<E>() {
            Ok(Trapped {
                failure: self,
                _kind: PhantomData,
            })
        } else {
            Err(self)
        }
    }

    /// Whether this failure came from a panic in a step, a canceller or a coroutine.
    ///
    /// ```
    /// assert!(!defer_core::Failure::msg("x").is_panic());
    /// ```
    pub fn is_panic(&self) -> bool {
        self.check::<Panicked>()
    }

    /// Whether `self` and `other` are the same failure (clones of one another), as Python's `is`.
    ///
    /// ```
    /// let f = defer_core::Failure::msg("x");
    /// assert!(f.same_as(&f.clone()));
    /// assert!(!f.same_as(&defer_core::Failure::msg("x")));
    /// ```
    pub fn same_as(&self, other: &Failure) -> bool {
        std::ptr::addr_eq(Rc::as_ptr(self.inner()), Rc::as_ptr(other.inner()))
    }
}

/// The typed error of a [`Failure`] that [`Failure::trap`] matched. It dereferences to the error;
/// [`into_failure`](Trapped::into_failure) gives the failure back to re-raise it.
///
/// ```
/// let f = defer_core::Failure::new(std::fmt::Error);
/// let t = f.trap::<std::fmt::Error>().unwrap();
/// let again: defer_core::Failure = t.into_failure();
/// assert!(again.check::<std::fmt::Error>());
/// ```
pub struct Trapped<E> {
    failure: Failure,
    _kind: PhantomData<fn() -> E>,
}

impl<E: Error + 'static> Trapped<E> {
    /// The failure the error came from.
    ///
    /// ```
    /// let t = defer_core::Failure::new(std::fmt::Error).trap::<std::fmt::Error>().unwrap();
    /// assert_eq!(t.failure().type_name(), "core::fmt::Error");
    /// ```
    pub fn failure(&self) -> &Failure {
        &self.failure
    }

    /// Gives the failure back, to re-raise it with `Err(t.into_failure())`.
    ///
    /// ```
    /// let t = defer_core::Failure::msg("x").trap::<defer_core::errors::MessageError>().unwrap();
    /// assert_eq!(t.into_failure().message(), "x");
    /// ```
    pub fn into_failure(self) -> Failure {
        self.failure
    }
}

impl<E: Error + 'static> Deref for Trapped<E> {
    type Target = E;
    fn deref(&self) -> &E {
        self.failure
            .downcast_ref::<E>()
            .expect("a Trapped<E> is only made from a failure that holds an E")
    }
}

impl<E: Error + 'static> fmt::Display for Trapped<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

impl<E: Error + 'static> fmt::Debug for Trapped<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl<E: Error + 'static> From<E> for Failure {
    #[track_caller]
    fn from(error: E) -> Self {
        Failure::new(error)
    }
}

/// Anything that can fail a Deferred: a [`Failure`] or any [`Error`]. Used by
/// [`fail`](crate::fail) and [`Trigger::errback`](crate::Trigger::errback) so that the location
/// recorded is the caller's.
///
/// ```
/// use defer_core::{IntoFailure, Failure};
/// let a: Failure = std::fmt::Error.into_failure();
/// let b: Failure = a.clone().into_failure();
/// assert!(a.same_as(&b));
/// ```
pub trait IntoFailure {
    /// Converts, recording the caller's location for a new failure.
    #[track_caller]
    fn into_failure(self) -> Failure;

    /// Converts, recording `at` as where a new failure entered the chain (for adapters that
    /// convert on behalf of a caller whose location they saved).
    #[doc(hidden)]
    fn into_failure_at(self, at: &'static Location<'static>) -> Failure
    where
        Self: Sized,
    {
        let _ = at;
        self.into_failure()
    }
}

impl IntoFailure for Failure {
    fn into_failure(self) -> Failure {
        self
    }
}

impl<E: Error + 'static> IntoFailure for E {
    #[track_caller]
    fn into_failure(self) -> Failure {
        Failure::new(self)
    }

    fn into_failure_at(self, at: &'static Location<'static>) -> Failure {
        Failure::new_at(self, at)
    }
}

impl fmt::Display for Failure {
    /// Python-traceback order: the logical stack outermost first, then where the error was
    /// raised, then the kind and message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.trace.is_some() {
            writeln!(f, "Failure (most recent call last):")?;
            for frame in self.frames() {
                writeln!(f, "  {frame}")?;
            }
        }
        let l = self.inner().location;
        writeln!(f, "  raised at {}:{}:{}", l.file(), l.line(), l.column())?;
        write!(f, "{}: {}", self.inner().type_name, self.message())
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = self.inner().location;
        write!(
            f,
            "<Failure {}: {} at {}:{}>",
            self.inner().type_name,
            self.message(),
            l.file(),
            l.line()
        )
    }
}
