//! Threads, with `std` alone: Twisted's `deferToThread`, `deferToThreadPool`, `callFromThread`
//! and `blockingCallFromThread`.
//!
//! A [`Deferred`] lives on one thread, its *home*. The functions here move work to other threads
//! and bring results back home:
//!
//! * [`defer_to_thread`] runs a blocking closure on a shared [`ThreadPool`] (ten threads by
//!   default, as Twisted's reactor pool; see [`suggest_thread_pool_size`]) and fires its Deferred
//!   on the home thread; [`defer_to_thread_pool`] does the same on a pool of your own.
//! * [`ThreadHandle`] is a `Send + Clone` handle to a home thread: its
//!   [`call_from_thread`](ThreadHandle::call_from_thread) runs a closure there.
//! * [`blocking_call_from_thread`] runs a closure on the home thread from a worker thread and
//!   blocks the worker until the result (of a Deferred, too) is there.
//!
//! # Running the home thread
//!
//! What other threads send home is delivered when the home thread attends to it, in one of
//! three ways:
//!
//! 1. [`react`](crate::react) (or [`Reactor::run_until`](crate::Reactor::run_until)), the std run
//!    loop: it parks the thread until a timer is due or something arrives;
//! 2. a tokio `LocalSet` (or the `tokio` feature's `react`): awaiting a Deferred there lets
//!    tokio's waker be told;
//! 3. `futures`' `block_on` or `LocalPool`, awaiting a Deferred likewise.
//!
//! A thread that does none of these (one blocked in a plain `recv`, say) never sees its mail:
//! the Deferreds stay pending.
//!
//! ```
//! use defer_core::threads::defer_to_thread;
//!
//! let home = std::thread::current().id();
//! let answer = defer_core::react(move |_reactor| {
//!     defer_to_thread(move || {
//!         assert_ne!(std::thread::current().id(), home); // on a pool thread
//!         Ok::<_, std::io::Error>(6 * 7)
//!     })
//!     .add_callback(move |n| {
//!         assert_eq!(std::thread::current().id(), home); // back home
//!         Ok(n)
//!     })
//! });
//! assert_eq!(answer.unwrap(), 42);
//! ```

use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::panic::{AssertUnwindSafe, Location, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};

use crate::deferred::{Deferred, fail, maybe_deferred};
use crate::engine::outcome::Outcome;
use crate::engine::user_code;
use crate::failure::{Failure, Frame, IntoFailure};
use crate::home::{self, Home, Mail};
use crate::trigger::Trigger;

/// Twisted's default size of the reactor's thread pool.
pub const DEFAULT_POOL_SIZE: usize = 10;

/// A job: run (`true`), or tell its Deferred that the pool stopped before it ran (`false`).
type Job = Box<dyn FnOnce(bool) + Send>;

/// A pool of threads that run blocking closures: Twisted's `ThreadPool`.
///
/// Threads are started on demand, up to the pool's size, and reused: an idle thread waits for
/// the next job. [`stop`](ThreadPool::stop) runs the jobs already submitted and waits for them.
/// Dropping the pool does not wait: the jobs already running finish and deliver their results,
/// and each job still queued is not run: its Deferred fails with [`PoolStopped`]. No job is
/// lost silently.
///
/// ```
/// use defer_core::threads::{ThreadPool, defer_to_thread_pool};
///
/// let pool = ThreadPool::new(4);
/// let sum = defer_core::react(|_| {
///     let d = defer_to_thread_pool(&pool, || Ok::<_, std::io::Error>(3 + 4));
///     d.add_callback(|n| Ok(n * 6))
/// });
/// assert_eq!(sum.unwrap(), 42);
/// ```
pub struct ThreadPool {
    shared: Arc<Shared>,
}

struct Shared {
    st: Mutex<PoolState>,
    work: Condvar,
}

struct PoolState {
    queue: VecDeque<Job>,
    max: usize,
    threads: usize,
    idle: usize,
    stopped: bool,
    handles: Vec<JoinHandle<()>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // Jobs run outside the lock and catch their panics: a poisoned lock is still consistent.
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ThreadPool {
    /// A pool of at most `size` threads (at least one: `0` counts as `1`). No thread starts
    /// until a job comes.
    ///
    /// ```
    /// let pool = defer_core::threads::ThreadPool::new(8);
    /// assert_eq!(pool.size(), 8);
    /// assert_eq!(pool.threads(), 0);
    /// ```
    pub fn new(size: usize) -> Self {
        ThreadPool {
            shared: Arc::new(Shared {
                st: Mutex::new(PoolState {
                    queue: VecDeque::new(),
                    max: size.max(1),
                    threads: 0,
                    idle: 0,
                    stopped: false,
                    handles: Vec::new(),
                }),
                work: Condvar::new(),
            }),
        }
    }

    /// The most threads the pool runs at once.
    ///
    /// ```
    /// assert_eq!(defer_core::threads::ThreadPool::new(3).size(), 3);
    /// ```
    pub fn size(&self) -> usize {
        self.shared.lock().max
    }

    /// Changes the pool's size (Twisted's `adjustPoolsize`); threads beyond it exit when idle.
    ///
    /// ```
    /// let pool = defer_core::threads::ThreadPool::new(3);
    /// pool.set_size(34);
    /// assert_eq!(pool.size(), 34);
    /// ```
    pub fn set_size(&self, size: usize) {
        self.shared.lock().max = size.max(1);
        self.shared.work.notify_all();
    }

    /// How many threads the pool has started and not yet retired.
    ///
    /// ```
    /// let pool = defer_core::threads::ThreadPool::new(3);
    /// assert_eq!(pool.threads(), 0); // threads start on demand
    /// ```
    pub fn threads(&self) -> usize {
        self.shared.lock().threads
    }

    /// Runs `f` on a pool thread: Twisted's `callInThread`. A panic in `f` is reported as an
    /// unhandled failure on the pool thread (there is no Deferred to give it to). If the pool
    /// has stopped, `f` is dropped unrun and `false` returned.
    ///
    /// ```
    /// let pool = defer_core::threads::ThreadPool::new(2);
    /// let (tx, rx) = std::sync::mpsc::channel();
    /// assert!(pool.call_in_thread(move || tx.send(std::thread::current().id()).unwrap()));
    /// assert_ne!(rx.recv().unwrap(), std::thread::current().id());
    /// ```
    pub fn call_in_thread(&self, f: impl FnOnce() + Send + 'static) -> bool {
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = ran.clone();
        self.submit(Box::new(move |run| {
            if !run {
                flag.store(false, std::sync::atomic::Ordering::Relaxed);
                return;
            }
            if let Err(payload) = catch_unwind(AssertUnwindSafe(f)) {
                let message = user_code::payload_message(payload);
                crate::unhandled::report(&Failure::msg(format!(
                    "a closure run by call_in_thread panicked: {message}"
                )));
            }
        }));
        ran.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn submit(&self, job: Job) {
        let shared = &self.shared;
        let spawn = {
            let mut st = shared.lock();
            if st.stopped {
                drop(st);
                job(false);
                return;
            }
            st.queue.push_back(job);
            if st.idle > 0 {
                shared.work.notify_one();
            }
            st.queue.len() > st.idle && st.threads < st.max
        };
        if spawn {
            self.spawn_worker();
        }
    }

    fn spawn_worker(&self) {
        let shared = self.shared.clone();
        let mut st = self.shared.lock();
        st.threads += 1;
        let spawned = thread::Builder::new()
            .name("defer-pool".into())
            .spawn(move || worker(shared));
        match spawned {
            Ok(handle) => {
                st.handles.retain(|h| !h.is_finished());
                st.handles.push(handle);
            }
            Err(_) => {
                st.threads -= 1;
                if st.threads == 0 {
                    // No thread will ever take these jobs: fail them rather than lose them.
                    let jobs = std::mem::take(&mut st.queue);
                    drop(st);
                    for job in jobs {
                        job(false);
                    }
                }
            }
        }
    }

    /// Stops the pool and waits for its threads to finish the jobs already submitted (Twisted's
    /// `ThreadPool.stop`). A job submitted afterwards is not run: its Deferred fails with
    /// [`PoolStopped`] (delivered home like any result).
    ///
    /// ```
    /// use defer_core::threads::{PoolStopped, ThreadPool, defer_to_thread_pool};
    ///
    /// let pool = ThreadPool::new(1);
    /// let result = defer_core::react(move |_| {
    ///     let d = defer_to_thread_pool(&pool, || Ok::<_, std::io::Error>(1));
    ///     pool.stop();
    ///     let late = defer_to_thread_pool(&pool, || Ok::<_, std::io::Error>(2));
    ///     d.add_callback(|_| late)
    /// });
    /// assert!(result.unwrap_err().check::<PoolStopped>());
    /// ```
    pub fn stop(&self) {
        let handles = self.shutdown(false);
        let me = thread::current().id();
        for h in handles {
            if h.thread().id() != me {
                let _ = h.join();
            }
        }
    }

    /// Marks the pool stopped, fails the queued jobs (`fail_queued`; else the threads run them
    /// before they exit), and hands back the threads to join.
    fn shutdown(&self, fail_queued: bool) -> Vec<JoinHandle<()>> {
        let (jobs, handles) = {
            let mut st = self.shared.lock();
            st.stopped = true;
            let jobs = if fail_queued || st.threads == 0 {
                std::mem::take(&mut st.queue)
            } else {
                VecDeque::new()
            };
            (jobs, std::mem::take(&mut st.handles))
        };
        self.shared.work.notify_all();
        for job in jobs {
            job(false);
        }
        handles
    }
}

impl Drop for ThreadPool {
    /// Stops the pool without waiting: jobs running finish and deliver their results; jobs still
    /// queued fail with [`PoolStopped`].
    fn drop(&mut self) {
        drop(self.shutdown(true));
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("ThreadPool")
            .field("size", &st.max)
            .field("threads", &st.threads)
            .field("queued", &st.queue.len())
            .field("stopped", &st.stopped)
            .finish()
    }
}

fn worker(shared: Arc<Shared>) {
    let mut st = shared.lock();
    loop {
        if let Some(job) = st.queue.pop_front() {
            drop(st);
            // Every job catches its own panics (see `defer_to_thread_pool`).
            job(true);
            st = shared.lock();
            continue;
        }
        if st.stopped || st.threads > st.max {
            st.threads -= 1;
            return;
        }
        st.idle += 1;
        st = shared.work.wait(st).unwrap_or_else(|e| e.into_inner());
        st.idle -= 1;
    }
}

/// The pool [`defer_to_thread`] uses, made at first use.
fn default_pool() -> &'static ThreadPool {
    static POOL: OnceLock<ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| ThreadPool::new(DEFAULT_POOL_SIZE))
}

/// Runs `f` on a thread of the pool [`defer_to_thread`] uses, with no Deferred: Twisted's
/// `reactor.callInThread`. A panic in `f` is reported as an unhandled failure.
///
/// ```
/// let (tx, rx) = std::sync::mpsc::channel();
/// defer_core::threads::call_in_thread(move || tx.send(std::thread::current().id()).unwrap());
/// assert_ne!(rx.recv().unwrap(), std::thread::current().id());
/// ```
pub fn call_in_thread(f: impl FnOnce() + Send + 'static) {
    default_pool().call_in_thread(f);
}

/// Sets the size of the pool [`defer_to_thread`] uses (Twisted's `suggestThreadPoolSize`).
///
/// ```
/// use defer_core::threads::{suggest_thread_pool_size, thread_pool_size};
/// suggest_thread_pool_size(34);
/// assert_eq!(thread_pool_size(), 34);
/// suggest_thread_pool_size(4);
/// assert_eq!(thread_pool_size(), 4);
/// # suggest_thread_pool_size(10);
/// ```
pub fn suggest_thread_pool_size(size: usize) {
    default_pool().set_size(size);
}

/// The size of the pool [`defer_to_thread`] uses (Twisted's `reactor.threadpool.max`).
///
/// ```
/// assert!(defer_core::threads::thread_pool_size() >= 1);
/// ```
pub fn thread_pool_size() -> usize {
    default_pool().size()
}

/// Runs `f` on a thread of a pool shared by the process (see [`suggest_thread_pool_size`]) and
/// returns a Deferred that fires with its result on this thread: Twisted's `deferToThread`.
///
/// `f`'s `Ok(value)` fires the Deferred with `value`; its `Err(e)` fails it with `e`; a panic in
/// `f` fails it with [`Panicked`](crate::errors::Panicked). The result is delivered when this
/// thread attends to its inbox (see the [module documentation](self)). A thread cannot be
/// stopped from outside: cancelling the Deferred fails it at once with
/// [`CancelledError`](crate::errors::CancelledError), and `f`'s result, when it comes, is
/// dropped.
///
/// ```
/// use defer_core::{ensure_deferred, react, threads::defer_to_thread};
///
/// let total = react(|_| ensure_deferred(async {
///     let a = defer_to_thread(|| Ok::<_, std::io::Error>(40)).await?;
///     let b = defer_to_thread(|| Ok::<_, std::io::Error>(2)).await?;
///     Ok(a + b)
/// }));
/// assert_eq!(total.unwrap(), 42);
/// ```
#[track_caller]
pub fn defer_to_thread<T, E, F>(f: F) -> Deferred<T>
where
    T: Send + 'static,
    E: IntoFailure + Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    defer_to_thread_pool(default_pool(), f)
}

/// What a job sends home.
enum Outcome2<T, E> {
    Done(Result<T, E>),
    Panicked(user_code::Payload),
    Stopped,
}

/// [`defer_to_thread`] on a pool of your own: Twisted's `deferToThreadPool`.
///
/// ```
/// use defer_core::threads::{ThreadPool, defer_to_thread_pool};
/// use defer_core::errors::Panicked;
///
/// let pool = ThreadPool::new(2);
/// let failure = defer_core::react(|_| {
///     defer_to_thread_pool(&pool, || -> Result<(), std::io::Error> { panic!("boom") })
/// })
/// .unwrap_err();
/// assert_eq!(failure.downcast_ref::<Panicked>().unwrap().message(), "boom");
/// ```
#[track_caller]
pub fn defer_to_thread_pool<T, E, F>(pool: &ThreadPool, f: F) -> Deferred<T>
where
    T: Send + 'static,
    E: IntoFailure + Send + 'static,
    F: FnOnce() -> Result<T, E> + Send + 'static,
{
    let at = Location::caller();
    let Some(home) = home::current() else {
        return fail(Failure::msg(
            "defer_to_thread_pool: this thread is exiting and cannot receive a result",
        ));
    };
    // Without a canceller, `cancel` fails the Deferred at once and the late result is dropped.
    let (d, trigger) = Deferred::new();
    let kept = home::keep(trigger);
    pool.submit(Box::new(move |run| {
        let outcome = if run {
            match catch_unwind(AssertUnwindSafe(f)) {
                Ok(r) => Outcome2::Done(r),
                Err(payload) => Outcome2::Panicked(payload),
            }
        } else {
            Outcome2::Stopped
        };
        home.post(Mail::Call(Box::new(move || {
            let Some(trigger) = kept.take::<Trigger<T>>() else {
                return;
            };
            let result = match outcome {
                Outcome2::Done(Ok(v)) => Ok(v),
                Outcome2::Done(Err(e)) => Err(e.into_failure_at(at).with_frame(Frame::new(
                    "defer_to_thread",
                    at.file(),
                    at.line(),
                    at.column(),
                ))),
                Outcome2::Panicked(payload) => Err(Failure::from_panic_at(payload, at)),
                Outcome2::Stopped => Err(Failure::new_at(PoolStopped, at)),
            };
            trigger.resolve(result);
        })));
    }));
    d
}

/// The failure of a job that a stopped [`ThreadPool`] never ran.
///
/// ```
/// use defer_core::threads::PoolStopped;
/// assert_eq!(PoolStopped.to_string(), "the thread pool stopped before the job ran");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStopped;

impl fmt::Display for PoolStopped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the thread pool stopped before the job ran")
    }
}

impl Error for PoolStopped {}

/// A `Send + Clone` handle to a home thread, from which other threads reach its Deferreds:
/// Twisted's `reactor.callFromThread` is [`call_from_thread`](ThreadHandle::call_from_thread),
/// and `reactor.callFromThread(d.callback, x)` is [`RemoteTrigger::callback`].
///
/// ```
/// use defer_core::{Deferred, threads::ThreadHandle};
///
/// let result = defer_core::react(|_| {
///     let (d, trigger) = Deferred::new();
///     // A trigger is !Send; its remote handle is Send and fires it back home.
///     let remote = ThreadHandle::current().remote(trigger);
///     std::thread::spawn(move || remote.callback(5));
///     d
/// });
/// assert_eq!(result.unwrap(), 5);
/// ```
#[derive(Clone)]
pub struct ThreadHandle {
    home: Arc<Home>,
}

impl ThreadHandle {
    /// A handle to the calling thread.
    ///
    /// # Panics
    ///
    /// During the thread's teardown (its thread-locals are gone).
    ///
    /// ```
    /// let h = defer_core::threads::ThreadHandle::current();
    /// assert!(h.is_current());
    /// ```
    pub fn current() -> Self {
        ThreadHandle {
            home: home::current().expect("ThreadHandle::current: the thread is exiting"),
        }
    }

    /// Whether the calling thread is the handle's thread.
    ///
    /// ```
    /// let h = defer_core::threads::ThreadHandle::current();
    /// let elsewhere = std::thread::spawn(move || h.is_current()).join().unwrap();
    /// assert!(!elsewhere);
    /// ```
    pub fn is_current(&self) -> bool {
        thread::current().id() == self.home.thread()
    }

    /// Runs `f` on the handle's thread, in order with the other calls from this thread, the next
    /// time that thread attends to its inbox (see the [module documentation](self)): Twisted's
    /// `callFromThread`. Returns `false`, dropping `f`, if that thread has exited. A panic in `f`
    /// is reported as an unhandled failure there.
    ///
    /// ```
    /// use defer_core::threads::ThreadHandle;
    /// use std::{cell::Cell, rc::Rc};
    ///
    /// let handle = ThreadHandle::current();
    /// let ran = defer_core::react(move |reactor| {
    ///     let reactor = reactor.clone();
    ///     std::thread::spawn(move || {
    ///         // Runs on the home thread: it may touch the reactor there.
    ///         handle.call_from_thread(move || {});
    ///     });
    ///     defer_core::defer_later(&reactor, std::time::Duration::from_millis(1), || Ok(true))
    /// });
    /// assert!(ran.unwrap());
    /// ```
    pub fn call_from_thread(&self, f: impl FnOnce() + Send + 'static) -> bool {
        self.home.post(Mail::Call(Box::new(f)))
    }

    /// A `Send` handle that fires `trigger` (which must belong to this thread) from any thread.
    ///
    /// # Panics
    ///
    /// If called on another thread than the handle's: the trigger is that thread's.
    ///
    /// ```
    /// use defer_core::{Deferred, threads::ThreadHandle};
    /// let got = defer_core::react(|_| {
    ///     let (d, t) = Deferred::<&str>::new();
    ///     let remote = ThreadHandle::current().remote(t);
    ///     std::thread::spawn(move || remote.errback(std::io::Error::other("far away")));
    ///     d
    /// });
    /// assert_eq!(got.unwrap_err().message(), "far away");
    /// ```
    pub fn remote<T: Send + 'static>(&self, trigger: Trigger<T>) -> RemoteTrigger<T> {
        assert!(
            self.is_current(),
            "ThreadHandle::remote: the trigger belongs to the handle's own thread"
        );
        RemoteTrigger {
            home: self.home.clone(),
            kept: Some(home::keep(trigger)),
            _value: std::marker::PhantomData,
        }
    }
}

/// A `Send` handle to a home thread's [`Trigger`], made by [`ThreadHandle::remote`]: firing it
/// fires the trigger on its home thread. Dropped unfired, it drops the trigger there (so the
/// Deferred fails with [`TriggerDropped`](crate::errors::TriggerDropped) if anyone listens).
pub struct RemoteTrigger<T> {
    home: Arc<Home>,
    kept: Option<home::Kept>,
    _value: std::marker::PhantomData<fn(T)>,
}

impl<T: Send + 'static> RemoteTrigger<T> {
    /// Fires the Deferred with `value`, on its home thread. Returns `false` if that thread is
    /// gone.
    ///
    /// ```
    /// # use defer_core::{Deferred, threads::ThreadHandle};
    /// let got = defer_core::react(|_| {
    ///     let (d, t) = Deferred::new();
    ///     let remote = ThreadHandle::current().remote(t);
    ///     std::thread::spawn(move || assert!(remote.callback(7)));
    ///     d
    /// });
    /// assert_eq!(got.unwrap(), 7);
    /// ```
    pub fn callback(self, value: T) -> bool {
        self.resolve_with(move || Ok(value))
    }

    /// Fails the Deferred with `error`, on its home thread. Returns `false` if that thread is
    /// gone.
    ///
    /// ```
    /// # use defer_core::{Deferred, threads::ThreadHandle};
    /// let got = defer_core::react(|_| {
    ///     let (d, t) = Deferred::<()>::new();
    ///     let remote = ThreadHandle::current().remote(t);
    ///     std::thread::spawn(move || remote.errback(std::fmt::Error));
    ///     d
    /// });
    /// assert!(got.unwrap_err().check::<std::fmt::Error>());
    /// ```
    pub fn errback<E: Error + Send + 'static>(self, error: E) -> bool {
        self.resolve_with(move || Err(Failure::new(error)))
    }

    fn resolve_with(
        mut self,
        result: impl FnOnce() -> Result<T, Failure> + Send + 'static,
    ) -> bool {
        let Some(kept) = self.kept.take() else {
            return false;
        };
        self.home.post(Mail::Call(Box::new(move || {
            if let Some(trigger) = kept.take::<Trigger<T>>() {
                trigger.resolve(result());
            }
        })))
    }
}

impl<T> Drop for RemoteTrigger<T> {
    fn drop(&mut self) {
        if let Some(kept) = self.kept.take() {
            // The trigger is `!Send`: it is dropped at home.
            let _ = self.home.post(Mail::Call(Box::new(move || {
                kept.forget();
            })));
        }
    }
}

impl<T> fmt::Debug for RemoteTrigger<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteTrigger")
            .field("thread", &self.home.thread())
            .finish()
    }
}

impl fmt::Debug for ThreadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadHandle")
            .field("thread", &self.home.thread())
            .finish()
    }
}

/// Runs `f` on the handle's (home) thread and blocks the calling thread until its result is
/// there: Twisted's `blockingCallFromThread`. `f` may return a `Result` or a Deferred, whose
/// result is waited for. A failure comes back as [`CallError::Failed`], carrying the failure's
/// kind and message (a `Failure` cannot leave its thread).
///
/// Called on the home thread itself, it would wait for itself for ever: it returns
/// [`CallError::OnHomeThread`] instead. If the home thread exits first,
/// [`CallError::HomeGone`].
///
/// ```
/// use defer_core::{Deferred, threads::{ThreadHandle, blocking_call_from_thread, defer_to_thread}};
///
/// let home = ThreadHandle::current();
/// let got = defer_core::react(move |_| {
///     defer_to_thread(move || {
///         // On a pool thread: ask the home thread, and wait.
///         blocking_call_from_thread(&home, || Ok(String::from("foo")))
///     })
/// });
/// assert_eq!(got.unwrap(), "foo");
/// ```
pub fn blocking_call_from_thread<F, R>(handle: &ThreadHandle, f: F) -> Result<R::Value, CallError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Outcome,
    R::Value: Send,
{
    if handle.is_current() {
        return Err(CallError::OnHomeThread);
    }
    let (tx, rx) = mpsc::sync_channel::<Result<R::Value, CallError>>(1);
    let posted = handle.call_from_thread(move || {
        let d = maybe_deferred(f);
        let _ = d.add_both(move |result: Result<R::Value, Failure>| {
            let _ = tx.send(result.map_err(|f| CallError::from_failure(&f)));
            Ok::<(), Failure>(())
        });
    });
    if !posted {
        return Err(CallError::HomeGone);
    }
    // A dropped sender (the home thread exited with the call undelivered, or the Deferred was
    // dropped unfired) is a disconnection, never a hang.
    rx.recv().unwrap_or(Err(CallError::HomeGone))
}

/// Why [`blocking_call_from_thread`] returned no value.
///
/// ```
/// use defer_core::threads::{CallError, ThreadHandle, blocking_call_from_thread};
/// let here = ThreadHandle::current();
/// assert_eq!(
///     blocking_call_from_thread(&here, || Ok(1)).unwrap_err(),
///     CallError::OnHomeThread
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The call's Deferred failed (or `f` panicked).
    Failed {
        /// The failure's kind: its error's type name ([`Failure::type_name`]).
        kind: &'static str,
        /// The failure's message ([`Failure::message`]).
        message: String,
        /// Whether it was a panic.
        panicked: bool,
    },
    /// The home thread exited before the call ran, or dropped its Deferred unfired.
    HomeGone,
    /// Called on the home thread itself, where blocking would wait for ever.
    OnHomeThread,
}

impl CallError {
    fn from_failure(f: &Failure) -> Self {
        CallError::Failed {
            kind: f.type_name(),
            message: f.message(),
            panicked: f.is_panic(),
        }
    }

    /// The failure's kind, for [`CallError::Failed`].
    ///
    /// ```
    /// use defer_core::threads::CallError;
    /// assert_eq!(CallError::HomeGone.kind(), None);
    /// ```
    pub fn kind(&self) -> Option<&'static str> {
        match self {
            CallError::Failed { kind, .. } => Some(kind),
            _ => None,
        }
    }

    /// The failure's message, for [`CallError::Failed`].
    ///
    /// ```
    /// use defer_core::threads::CallError;
    /// assert_eq!(CallError::OnHomeThread.message(), None);
    /// ```
    pub fn message(&self) -> Option<&str> {
        match self {
            CallError::Failed { message, .. } => Some(message),
            _ => None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Failed { kind, message, .. } => write!(f, "{kind}: {message}"),
            CallError::HomeGone => f.write_str("the home thread is gone"),
            CallError::OnHomeThread => {
                f.write_str("blocking_call_from_thread called on the home thread itself")
            }
        }
    }
}

impl Error for CallError {}
