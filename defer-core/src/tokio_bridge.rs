//! Running Deferred code on tokio (the `tokio` feature): futures and blocking closures as
//! Deferreds, and a `LocalSet` to run it all in.
//!
//! A [`Deferred`] is `!Send`: it lives on one thread, and its steps run inside the call that fires
//! it. tokio runs such `!Send` work in a [`LocalSet`], whose tasks all
//! stay on the thread that drives it. The bridges here need one:
//!
//! * [`from_future`] turns any local future (a hyper request, a timer, a channel receive) into a
//!   Deferred, by running it as a task of the current `LocalSet`
//!   ([`spawn_local`]). Cancelling the Deferred aborts the task.
//! * [`defer_to_thread`] runs a blocking closure on tokio's blocking pool
//!   ([`spawn_blocking`]) and fires its Deferred back on the
//!   `LocalSet`'s thread: Twisted's `deferToThread`.
//! * A Deferred is a future too: `d.await` inside any tokio task gives `Result<T, Failure>`.
//!
//! # Running Deferred code in a `LocalSet`
//!
//! Build a current-thread runtime, make a `LocalSet`, and do the Deferred work inside
//! [`LocalSet::block_on`] (or
//! [`run_until`](::tokio::task::LocalSet::run_until) from `#[tokio::main(flavor =
//! "current_thread")]`). [`react`] does exactly this for a function that returns a Deferred,
//! as Twisted's `task.react` runs `main(reactor)` until its Deferred fires.
//!
//! ```
//! use defer_core::tokio::{defer_to_thread, from_future};
//! use defer_core::{ensure_deferred, Failure};
//! use tokio::task::LocalSet;
//!
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let local = LocalSet::new();
//! let total = local.block_on(&rt, async {
//!     // A future (here a plain async block; in real code a client request) as a Deferred...
//!     let a = from_future(async { Ok::<_, Failure>(40) });
//!     // ...and a blocking computation on the blocking pool, delivered back here.
//!     let b = defer_to_thread(|| Ok::<_, std::io::Error>(2));
//!     // Chain and combine them as any Deferreds, then await the result.
//!     let sum = ensure_deferred(async move { Ok(a.await? + b.await?) })
//!         .add_callback(|n| Ok(format!("total: {n}")));
//!     sum.await
//! });
//! assert_eq!(total.unwrap(), "total: 42");
//! ```
//!
//! Outside a `LocalSet` (for example in a plain `#[tokio::main]` multi-thread runtime, or with no
//! runtime at all) [`from_future`] and [`defer_to_thread`] panic, as `spawn_local` does; the panic
//! names the line that called them and says to use [`react`] or a `LocalSet`.

use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use ::tokio::task::{AbortHandle, LocalSet, spawn_blocking, spawn_local};

use crate::deferred::Deferred;
use crate::failure::{Failure, Frame, IntoFailure};

/// The [`Scheduler`](crate::Scheduler) on tokio's timer, also reachable from here.
pub use crate::tokio_scheduler::TokioScheduler;

/// Polls a future, turning a panic in its `poll` into `Err(payload)`.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match crate::engine::user_code::call(move || fut.poll(cx)) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// `spawn_local(future)`, with a panic that names the caller's line and says what to do when
/// there is no [`LocalSet`] to spawn on (tokio's own panic names a line inside tokio).
///
/// With no runtime at all, nothing is spawned and the panic is ours alone. Inside a runtime but
/// outside a `LocalSet`, tokio has no way to ask first: its panic is caught (the panic hook has
/// already printed it) and ours follows, located at the caller.
#[track_caller]
fn spawn_local_or_explain<F>(function: &'static str, future: F) -> ::tokio::task::JoinHandle<()>
where
    F: Future<Output = ()> + 'static,
{
    if ::tokio::runtime::Handle::try_current().is_err() {
        drop(future);
        outside_local_set(function);
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || spawn_local(future))) {
        Ok(handle) => handle,
        Err(payload) => {
            crate::engine::user_code::drop_payload(payload);
            outside_local_set(function)
        }
    }
}

/// The panic of a bridge called outside a `LocalSet`, located at the bridge's caller (a function,
/// not a closure: a closure would locate it here).
#[track_caller]
fn outside_local_set(function: &str) -> ! {
    panic!(
        "defer_core::tokio::{function} was called outside a tokio `LocalSet`: a Deferred is \
         `!Send`, so its work runs as a local task. Run the Deferred code with \
         `defer_core::tokio::react(|| ...)`, or inside `LocalSet::block_on` / `run_until` \
         (from `#[tokio::main(flavor = \"current_thread\")]`), or in a task spawned there \
         with `tokio::task::spawn_local`. (Inside `react` too, an `ensure_deferred` or \
         `#[inline_callbacks]` coroutine that awaited a tokio future directly is resumed by \
         tokio's wake-up, outside the `LocalSet`: await tokio futures through `from_future`, \
         or run that async code in a `spawn_local` task.)"
    )
}

/// The frame that marks where a failure crossed from a future or a thread into a Deferred.
fn bridge_frame(function: &'static str, at: &'static Location<'static>) -> Frame {
    Frame::new(function, at.file(), at.line(), at.column())
}

/// A Deferred of a local future's result, running the future as a task of the current
/// [`LocalSet`] (through [`spawn_local`]): Twisted's `Deferred.fromFuture`.
///
/// The future's `Ok(value)` fires the Deferred with `value`; its `Err(e)` fails it with `e` as a
/// [`Failure`] (any [`std::error::Error`] or a `Failure` itself); a panic while polling it fails
/// it with [`Panicked`](crate::errors::Panicked). A failure's trace gets a frame for the line that
/// called `from_future`. The future starts on the `LocalSet`'s next turn, not inside this call.
///
/// Cancelling the Deferred aborts the task, dropping the future (which is how a Rust future is
/// cancelled), and the Deferred fails with [`CancelledError`](crate::errors::CancelledError).
///
/// # Panics
///
/// Outside a [`LocalSet`] (see the [module documentation](self)), as [`spawn_local`] does. The
/// panic is located at the line that called `from_future`, and says to run the code with
/// [`react`] or inside a `LocalSet`.
///
/// ```
/// use defer_core::{Failure, tokio::from_future};
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let result = tokio::task::LocalSet::new().block_on(&rt, async {
///     let task = tokio::task::spawn_local(async { 21 });
///     // A real future (here a task's JoinHandle; its JoinError becomes a Failure):
///     let d = from_future(task).add_callback(|n: u32| Ok(n * 2));
///     d.await
/// });
/// assert_eq!(result.unwrap(), 42);
/// ```
#[track_caller]
pub fn from_future<T, E, F>(future: F) -> Deferred<T>
where
    T: 'static,
    E: IntoFailure + 'static,
    F: Future<Output = Result<T, E>> + 'static,
{
    let at = Location::caller();
    let task: Rc<std::cell::Cell<Option<AbortHandle>>> = Rc::default();
    let abort = task.clone();
    let (d, trigger) = Deferred::with_canceller(move |_trigger| {
        // Dropping the task's future drops its trigger, which sees the cancellation and stays
        // quiet; `cancel` then fails the Deferred with `CancelledError`.
        if let Some(handle) = abort.take() {
            handle.abort();
        }
    });
    let future = CatchUnwind(Box::pin(future));
    let handle = spawn_local_or_explain("from_future", async move {
        let result = match future.await {
            Ok(Ok(value)) => Ok(value),
            // Located at the caller of `from_future`, like a panic here.
            Ok(Err(e)) => Err(e
                .into_failure_at(at)
                .with_frame(bridge_frame("from_future", at))),
            Err(payload) => Err(Failure::from_panic_at(payload, at)),
        };
        trigger.resolve(result);
    });
    task.set(Some(handle.abort_handle()));
    d
}

/// Runs the blocking closure `f` on tokio's blocking thread pool (through [`spawn_blocking`]) and
/// returns a Deferred that fires with its result *on the calling thread*, from a task of the
/// current [`LocalSet`]: Twisted's `deferToThread`.
///
/// `f`'s `Ok(value)` fires the Deferred with `value`; its `Err(e)` fails it with `e` (converted to
/// a [`Failure`] back on the Deferred's thread, since a `Failure` is `!Send`); a panic in `f`
/// fails it with [`Panicked`](crate::errors::Panicked) carrying the panic's message.
///
/// A thread cannot be stopped from outside: cancelling the Deferred fails it at once with
/// [`CancelledError`](crate::errors::CancelledError), and `f`'s result, when it comes, is dropped.
///
/// # Panics
///
/// Outside a [`LocalSet`] (see the [module documentation](self)), as [`spawn_local`] does.
///
/// ```
/// use defer_core::{testing::assert_no_result, tokio::defer_to_thread};
///
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let home = std::thread::current().id();
/// let result = tokio::task::LocalSet::new().block_on(&rt, async move {
///     let d = defer_to_thread(move || {
///         assert_ne!(std::thread::current().id(), home);     // on a pool thread
///         std::thread::sleep(std::time::Duration::from_millis(10));
///         Ok::<_, std::io::Error>(6 * 7)
///     });
///     assert_no_result(&d);                                 // it is running elsewhere
///     d.add_callback(move |n| {
///         assert_eq!(std::thread::current().id(), home);     // the result comes back here
///         Ok(n)
///     })
///     .await
/// });
/// assert_eq!(result.unwrap(), 42);
/// ```
#[track_caller]
pub fn defer_to_thread<T, E, F>(f: F) -> Deferred<T>
where
    T: Send + 'static,
    E: IntoFailure + Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    let at = Location::caller();
    // Without a canceller, `cancel` fails the Deferred at once and the late `resolve` is a no-op.
    let (d, trigger) = Deferred::new();
    if ::tokio::runtime::Handle::try_current().is_err() {
        // `spawn_blocking` would panic first, inside tokio.
        spawn_local_or_explain("defer_to_thread", async {});
    }
    let blocking = spawn_blocking(f);
    spawn_local_or_explain("defer_to_thread", async move {
        let result = match blocking.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e
                .into_failure_at(at)
                .with_frame(bridge_frame("defer_to_thread", at))),
            Err(e) if e.is_panic() => Err(Failure::from_panic_at(e.into_panic(), at)),
            // The runtime shut down before `f` ran.
            Err(e) => Err(Failure::new(e)),
        };
        trigger.resolve(result);
    });
    d
}

/// Runs `main` on a new current-thread tokio runtime inside a [`LocalSet`], and drives the
/// runtime until the Deferred it returns fires: Twisted's `task.react(main)`. Returns that
/// Deferred's result. Inside `main` and the steps it chains, [`from_future`], [`defer_to_thread`],
/// `spawn_local` and tokio's I/O (with its `net` feature) all work.
///
/// Tasks still running when the Deferred fires are dropped with the runtime.
///
/// # Panics
///
/// If the runtime cannot be built (the operating system refused its I/O driver), or when called
/// from inside another runtime.
///
/// ```
/// use defer_core::tokio::{defer_to_thread, react};
///
/// let sum = react(|| {
///     defer_to_thread(|| Ok::<_, std::io::Error>(20))
///         .add_callback(|n| Ok(n + 1))
///         .add_callback(|n| defer_to_thread(move || Ok::<_, std::io::Error>(n * 2)))
/// });
/// assert_eq!(sum.unwrap(), 42);
/// ```
pub fn react<T, M>(main: M) -> Result<T, Failure>
where
    T: 'static,
    M: FnOnce() -> Deferred<T>,
{
    let rt = ::tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("defer_core::tokio::react: cannot build a tokio runtime");
    LocalSet::new().block_on(&rt, async move { main().await })
}
