//! Coroutines without an executor: the driver behind [`ensure_deferred`] and
//! `#[inline_callbacks]`, and `Deferred`'s [`IntoFuture`].
//!
//! The driver polls its future at once, so the body runs synchronously until it waits on a
//! Deferred that has not fired, as Twisted's `inlineCallbacks` does. While it polls, it is this
//! thread's *current driver*; a [`DeferredFuture`] polled by it (recognised by the driver's own
//! waker) registers the driver itself as the awaiter of its Deferred. When that Deferred's chain
//! finishes, the chain loop resumes the driver directly — no executor, no queue — and, when the
//! coroutine finishes, moves on to the coroutine's own Deferred as a tail call, so a million
//! nested coroutines resuming in a cascade use constant stack.
//!
//! Everywhere else (inside tokio, `futures`' executors, or a combinator that swaps the waker) a
//! `DeferredFuture` is an ordinary future: it stores the context's waker and wakes it. The
//! driver's own waker is honest too: waking it on the driver's thread resumes the driver, so a
//! coroutine may await other futures that complete on this thread. A wake from another thread
//! cannot reach a `!Send` coroutine; bridge such futures with an executor (see the `tokio`
//! feature).

use std::cell::{Cell as StdCell, RefCell};
use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, ThreadId};

use crate::chain::{self, Awaiter, Canceller, Cell, Resume, Slot};
use crate::deferred::{Deferred, Repr};
use crate::failure::{Failure, Frame};
use crate::value::{Value, ValueHolder};

type BoxedBody<T> = Pin<Box<dyn Future<Output = Result<T, Failure>>>>;

/// The state machine's driver.
struct Driver<T> {
    body: RefCell<Option<BoxedBody<T>>>,
    /// The coroutine's own Deferred.
    cell: Rc<Cell>,
    waker: Waker,
    /// The same allocation as `waker`: its `woken` flag, and its strong count, which tells
    /// whether a foreign future kept a clone of the waker (see `resume`).
    waker_state: Arc<DriverWaker>,
    id: u64,
    /// The Deferred the body is suspended on, for cancellation.
    awaiting: RefCell<Option<Weak<Cell>>>,
    /// The other Deferreds it is suspended on at the same time (a `join` of several), which
    /// cancelling the coroutine cancels too. Empty, with no allocation, in the usual case.
    awaiting_more: RefCell<Vec<Weak<Cell>>>,
    /// Whether the driver is in `PARKED`.
    parked: StdCell<bool>,
    polling: StdCell<bool>,
    repoll: StdCell<bool>,
    name: &'static str,
}

/// What a [`DeferredFuture`] needs of the driver polling it.
trait DriverCtx {
    /// If `waker` is this driver's own, records that the coroutine waits on `cell` and returns
    /// the awaiter that resumes it; else gives the driver back. One dynamic call per pending
    /// await.
    fn awaiter_for(self: Rc<Self>, waker: &Waker, cell: &Rc<Cell>) -> Option<Awaiter>;
}

thread_local! {
    /// The driver polling right now on this thread, if any.
    static CURRENT: StdCell<Option<Rc<dyn DriverCtx>>> = const { StdCell::new(None) };
    /// Drivers suspended on something other than a Deferred, kept alive until their waker fires.
    static PARKED: RefCell<HashMap<u64, Rc<dyn Resume>>> = RefCell::new(HashMap::new());
    static NEXT_ID: StdCell<u64> = const { StdCell::new(0) };
}

/// The driver's waker: `Send + Sync` as the contract demands, holding no pointer to the `!Send`
/// coroutine, only its id and home thread.
struct DriverWaker {
    id: u64,
    home: ThreadId,
    /// Set by every wake. A wake that arrives while the driver is polling (a future that wakes
    /// itself at once, as `yield_now` does) cannot find it in `PARKED`: the driver reads this
    /// flag after the poll and polls again, instead of losing the wake and hanging.
    woken: AtomicBool,
}

impl Wake for DriverWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if thread::current().id() != self.home {
            // A !Send coroutine cannot be resumed from another thread.
            return;
        }
        self.woken.store(true, Ordering::Relaxed);
        let parked = PARKED
            .try_with(|p| p.borrow_mut().remove(&self.id))
            .ok()
            .flatten();
        if let Some(driver) = parked
            && let Some(cell) = driver.resume()
        {
            chain::run(cell);
        }
    }
}

impl<T: 'static> DriverCtx for Driver<T> {
    fn awaiter_for(self: Rc<Self>, waker: &Waker, cell: &Rc<Cell>) -> Option<Awaiter> {
        if !waker.will_wake(&self.waker) {
            return None;
        }
        {
            let mut awaiting = self.awaiting.borrow_mut();
            if awaiting.is_none() {
                *awaiting = Some(Rc::downgrade(cell));
            } else {
                // Several Deferreds awaited in one poll (`join`): remember them all for `cancel`.
                self.awaiting_more.borrow_mut().push(Rc::downgrade(cell));
            }
        }
        Some(Awaiter::Driver(self))
    }
}

impl<T: 'static> Resume for Driver<T> {
    fn resume(self: Rc<Self>) -> Option<Rc<Cell>> {
        if self.polling.get() {
            // Woken from inside its own poll: poll again once this one returns.
            self.repoll.set(true);
            return None;
        }
        self.polling.set(true);
        if self.parked.replace(false) {
            // Resumed by a Deferred while parked for a foreign future too: leave `PARKED`, or
            // it would keep the driver alive after the coroutine has finished.
            let me = PARKED.try_with(|p| p.borrow_mut().remove(&self.id));
            drop(me);
        }
        loop {
            self.repoll.set(false);
            self.waker_state.woken.store(false, Ordering::Relaxed);
            self.awaiting.borrow_mut().take();
            self.awaiting_more.borrow_mut().clear();
            let polled = {
                let mut body = self.body.borrow_mut();
                let Some(fut) = body.as_mut() else {
                    self.polling.set(false);
                    return None;
                };
                let ctx: Rc<dyn DriverCtx> = self.clone();
                let prev = CURRENT.replace(Some(ctx));
                let mut cx = Context::from_waker(&self.waker);
                let polled = catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx)));
                CURRENT.set(prev);
                polled
            };
            let result = match polled {
                Ok(Poll::Pending) => {
                    if self.repoll.get() || self.waker_state.woken.load(Ordering::Relaxed) {
                        continue;
                    }
                    // Suspended on a foreign future: its waker will find us here. That is the
                    // case when no Deferred registered the driver, and also when a foreign
                    // future kept a clone of the waker beside a pending Deferred (`select` of
                    // the two): before, that wake was lost and the coroutine hung until the
                    // Deferred fired. The driver itself holds two references to the waker.
                    if self.awaiting.borrow().is_none() || Arc::strong_count(&self.waker_state) > 2
                    {
                        let me: Rc<dyn Resume> = self.clone();
                        PARKED.with(|p| p.borrow_mut().insert(self.id, me));
                        self.parked.set(true);
                    }
                    self.polling.set(false);
                    return None;
                }
                Ok(Poll::Ready(r)) => r,
                Err(payload) => Err(Failure::from_panic(payload)),
            };
            let finished = self.body.borrow_mut().take();
            drop(finished);
            self.polling.set(false);
            let slot = match result {
                Ok(v) => Slot::Value(Value::new(v)),
                Err(f) => {
                    // Raised in this body itself (it crossed no yield point here): name the
                    // function it was raised in, as a traceback's innermost frame would.
                    let f = if !self.name.is_empty() && f.frames().next().is_none() {
                        let l = f.location();
                        f.with_frame(Frame::new(self.name, l.file(), l.line(), l.column()))
                    } else {
                        f
                    };
                    Slot::Failure(f)
                }
            };
            return chain::set_result(&self.cell, slot).then(|| self.cell.clone());
        }
    }

    fn cancel_current(&self) -> Option<Rc<Cell>> {
        let first = self.awaiting.borrow().as_ref().and_then(Weak::upgrade);
        if let Some(cell) = first {
            // Awaiting several Deferreds at once (`join`): cancel the others here (before, only
            // the last one polled was cancelled, and the others went on unaware). Only those
            // still awaited: a `select` may have dropped the future of one. The first one goes
            // back to `chain::cancel`'s loop, so a stack of coroutines cancels without recursion.
            let more: Vec<Rc<Cell>> = self
                .awaiting_more
                .borrow()
                .iter()
                .filter_map(Weak::upgrade)
                .collect();
            for other in more {
                let awaited = other.st.try_borrow().is_ok_and(|st| st.awaiter.is_some());
                if awaited {
                    chain::cancel(&other);
                }
            }
            return Some(cell);
        }
        if !self.polling.get() && self.body.borrow().is_some() {
            // Suspended on a foreign future, which cannot be cancelled through a Deferred:
            // cancelling drops it, as Rust cancels futures, and the coroutine fails.
            let parked = PARKED.with(|p| p.borrow_mut().remove(&self.id));
            self.parked.set(false);
            let body = self.body.borrow_mut().take();
            drop(body);
            chain::fire(
                &self.cell,
                Slot::Failure(Failure::new(crate::errors::CancelledError)),
            );
            drop(parked);
        }
        None
    }
}

impl<T> Drop for Driver<T> {
    fn drop(&mut self) {
        let _ = PARKED.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                p.remove(&self.id);
            }
        });
    }
}

pub(crate) fn drive<T, F>(name: &'static str, body: F) -> Deferred<T>
where
    T: 'static,
    F: Future<Output = Result<T, Failure>> + 'static,
{
    let cell = Cell::new(Canceller::None);
    let id = NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1));
        id
    });
    let waker_state = Arc::new(DriverWaker {
        id,
        home: thread::current().id(),
        woken: AtomicBool::new(false),
    });
    let driver = Rc::new(Driver {
        body: RefCell::new(Some(Box::pin(body))),
        cell: cell.clone(),
        waker: Waker::from(waker_state.clone()),
        waker_state,
        id,
        awaiting: RefCell::new(None),
        awaiting_more: RefCell::new(Vec::new()),
        parked: StdCell::new(false),
        polling: StdCell::new(false),
        repoll: StdCell::new(false),
        name,
    });
    let weak: Weak<dyn Resume> = Rc::downgrade(&driver) as Weak<dyn Resume>;
    cell.st.borrow_mut().canceller = Canceller::Coroutine(weak);
    if let Some(fired) = driver.resume() {
        chain::run(fired);
    }
    Deferred::from_cell(cell)
}

/// Runs an `async` block or `async fn`'s future as a coroutine and returns a Deferred of its
/// result: Twisted's `ensureDeferred`. The future runs at once, synchronously, until it awaits a
/// Deferred that has not fired; it resumes inside the call that fires that Deferred. No executor
/// is involved.
///
/// Cancelling the returned Deferred cancels the Deferred the coroutine is waiting on; the
/// coroutine sees `Err` of [`CancelledError`](crate::errors::CancelledError) at that `.await`
/// and may recover.
///
/// ```
/// use defer_core::{ensure_deferred, Deferred, Failure, testing::*};
///
/// async fn get_users(request: Deferred<String>) -> Result<Vec<String>, Failure> {
///     let body = request.await?;
///     Ok(body.split(',').map(str::to_owned).collect())
/// }
///
/// let (request, server) = Deferred::new();
/// let users = ensure_deferred(get_users(request));
/// assert_no_result(&users);
/// server.callback("ada,grace".to_owned());
/// assert_eq!(success_result_of(users), ["ada", "grace"]);
/// ```
pub fn ensure_deferred<T, F>(future: F) -> Deferred<T>
where
    T: 'static,
    F: Future<Output = Result<T, Failure>> + 'static,
{
    drive("", future)
}

/// The future of a [`Deferred`], made by `.await` (through [`IntoFuture`]). Its output is the
/// Deferred's result: `Ok(value)` or `Err(failure)`, so `?` re-raises.
///
/// ```
/// use defer_core::{ensure_deferred, succeed, testing::success_result_of};
/// let d = ensure_deferred(async { Ok(succeed(20).await? + 1) });
/// assert_eq!(success_result_of(d), 21);
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct DeferredFuture<T> {
    cell: Option<Rc<Cell>>,
    /// The value of a Deferred that was a bare value (`succeed`): no chain to look at.
    ready: Option<Box<ValueHolder<T>>>,
    frame: Frame,
}

impl<T: 'static> DeferredFuture<T> {
    pub(crate) fn new(d: Deferred<T>, frame: Frame) -> Self {
        let (cell, ready) = match d.into_repr() {
            Repr::Chain(c) => (Some(c), None),
            Repr::Ready(h) => (None, Some(h)),
            Repr::Swapping => unreachable!("a Deferred is never observed mid-swap"),
        };
        DeferredFuture { cell, ready, frame }
    }
}

impl<T: 'static> Future for DeferredFuture<T> {
    type Output = Result<T, Failure>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(mut h) = this.ready.take() {
            return Poll::Ready(Ok(h.0.take().expect("a ready Deferred holds its value")));
        }
        let Some(cell) = this.cell.as_ref() else {
            return Poll::Ready(Err(Failure::msg(
                "a DeferredFuture was polled after it completed",
            )));
        };
        // One borrow of the chain: take its result, or register as its awaiter (our own code
        // only runs meanwhile).
        let mut st = cell.st.borrow_mut();
        if let Some(result) = chain::take_ready_in(&mut st) {
            drop(st);
            this.cell = None;
            return Poll::Ready(match result {
                Ok(value) => Ok(value.take::<T>()),
                Err(f) => Err(f.with_frame(this.frame)),
            });
        }
        let driver = CURRENT.with(|c| {
            let d = c.take();
            let ours = d.clone();
            c.set(d);
            ours
        });
        let awaiter = driver
            .and_then(|d| d.awaiter_for(cx.waker(), cell))
            .unwrap_or_else(|| Awaiter::Waker(cx.waker().clone()));
        let old = st.awaiter.replace(awaiter);
        drop(st);
        drop(old);
        Poll::Pending
    }
}

impl<T> Drop for DeferredFuture<T> {
    fn drop(&mut self) {
        // An abandoned await must not keep resuming (or keep alive) whoever awaited it.
        if let Some(cell) = self.cell.take() {
            let old = cell
                .st
                .try_borrow_mut()
                .ok()
                .and_then(|mut st| st.awaiter.take());
            drop(old);
        }
    }
}

impl<T: 'static> IntoFuture for Deferred<T> {
    type Output = Result<T, Failure>;
    type IntoFuture = DeferredFuture<T>;

    /// `d.await`: records the `.await`'s location for the failure's trace.
    #[track_caller]
    fn into_future(self) -> DeferredFuture<T> {
        DeferredFuture::new(self, Frame::here())
    }
}

pub(crate) fn yield_point<T: 'static>(
    d: Deferred<T>,
    function: &'static str,
    file: &'static str,
    line: u32,
    column: u32,
) -> DeferredFuture<T> {
    DeferredFuture::new(d, Frame::new(function, file, line, column))
}
