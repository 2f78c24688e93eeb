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
//! coroutine may await other futures that complete on this thread.
//!
//! **Wakes from other threads.** The driver's waker is `Send + Sync`. Woken on another thread,
//! it posts the coroutine's id to its home thread's inbox (`home.rs`), and the home thread
//! resumes the coroutine when it next attends to its inbox: under [`react`](crate::react), or
//! when a tokio or `futures` executor polls a Deferred's future there. A coroutine is never
//! resumed on another thread, and a wake is never lost: the `woken` flag and the inbox together
//! cover a wake that lands while the coroutine is being polled (see `resume`).

use std::cell::{Cell as StdCell, RefCell};
use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::marker::PhantomData;
use std::panic::Location;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, ThreadId};

use crate::debug::Inspected;
use crate::deferred::{Deferred, Repr};
use crate::engine::raw::lazy_waker::{LazyWaker, MadeWaker};
use crate::engine::raw::one_of::{OneOf, Pick};
use crate::engine::raw::tagged_location::TaggedLocation;
use crate::engine::user_code;
use crate::engine::value::{Value, ValueHolder};
use crate::engine::work_loop::{self, Work};
use crate::engine::{self as chain, Awaiter, Canceller, CellRc, CellWeak, Resume, Slot};
use crate::errors::{CancelledError, CircularChainError};
use crate::failure::{Failure, Frame};
use crate::home::{self, Home, Mail};

/// A coroutine's body, its output's type erased: so the driver is one type whatever the
/// coroutine's, and every reference to it (the awaiter of a chain, a chain's canceller, a parked
/// coroutine) one word (issue 11).
type BoxedBody = Pin<Box<dyn Body>>;

/// A coroutine's future, polled for its result as the chain holds it.
trait Body {
    fn poll_body(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Value, Failure>>;
}

impl<T: 'static, F: Future<Output = Result<T, Failure>>> Body for F {
    #[inline]
    fn poll_body(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Value, Failure>> {
        match self.poll(cx) {
            Poll::Ready(r) => Poll::Ready(r.map(Value::new)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The state machine's driver.
///
/// Who owns it: the chain it is suspended on (as that chain's awaiter), or, while it waits on a
/// foreign future, this thread's `PARKED` table (until its waker fires); and, until something
/// needs the coroutine's own chain, the program's `Deferred` handle (`HANDLE_OUT`). Once made, it
/// owns its own Deferred's chain, as Twisted's coroutine frame does: steps attached to that chain
/// are listeners even when nobody holds the handle. A coroutine parked on a foreign future that kept
/// no clone of its waker can never resume: it is freed when the last handle to its Deferred goes
/// (`abandoned`, called by `engine/reclaim.rs`).
pub(crate) struct Driver {
    /// The body; out of the cell while it is polled (the `POLLING` flag), and gone once it
    /// finished or was freed. A `Cell`, taken and put back: one word less than a `RefCell`.
    body: StdCell<Option<BoxedBody>>,
    /// The coroutine's own Deferred's chain, made only when something needs it (issue 11: a
    /// suspended coroutine whose Deferred is only held costs no chain): a step added, a cancel,
    /// an await, the handle dropped, or the coroutine finishing. Until then the program's handle
    /// holds the driver itself (`HANDLE_OUT`), and this word holds where the coroutine was made
    /// (`ensure_deferred`'s caller, the `#[inline_callbacks]` function), which the chain takes
    /// as its creation site. One word for both (`engine/raw/one_of.rs`).
    own: StdCell<OwnOrSite>,
    /// Its waker: lent by reference to every poll, and made (an `Arc`, with the coroutine's id)
    /// only when a future keeps a clone (`engine/raw/lazy_waker.rs`). How many clones there are
    /// tells whether a foreign future may resume the coroutine (see `resume`).
    wakes: LazyWaker<DriverWaker>,
    /// The Deferreds the body registered on while suspended (more than one under a `join` or a
    /// `select`). Cancelling the coroutine cancels those of them it still awaits: the ones whose
    /// awaiter is still this driver (a `select` drops the futures of the losers, which clears
    /// their awaiter).
    awaiting: Awaits,
    /// `PARKED`, `POLLING`, `REPOLL`, `CANCEL_REQUESTED` and `HANDLE_OUT`, one bit each.
    flags: Flags,
    /// The function's name (`#[inline_callbacks]`), or the future's type name (`ensure_deferred`),
    /// from which the name is derived only when asked (`name()`): nothing on creation. A function
    /// giving it: one word, where a `&str` is two (issue 11).
    name: fn() -> &'static str,
    /// Where the body is suspended: the `yield_!` or `.await` that registered the driver on a
    /// Deferred (the first one, under a `join`); `None` while it runs, or while it waits on a
    /// future that is not a Deferred. Written once per suspension, read only by `Debug` and
    /// `debug::snapshot`.
    suspended_at: StdCell<Option<&'static Location<'static>>>,
    /// Its place in this thread's registry of live coroutines (`REGISTRY`).
    slot: u32,
    /// With the `tracing` feature: the span current when the coroutine was made, entered around
    /// every poll, and the spans the body itself left entered when it suspended.
    #[cfg(feature = "tracing")]
    spans: crate::debug::CoroutineSpans,
}

/// A coroutine's own chain, or (before it is made) where the coroutine was made.
type OwnOrSite = OneOf<CellRc, &'static Location<'static>>;

/// A driver's flags, one bit each, in one byte.
struct Flags(StdCell<u8>);

/// Whether the driver is in `PARKED`.
const PARKED_FLAG: u8 = 1;
/// Its body is being polled.
const POLLING: u8 = 2;
/// Woken from inside its own poll: it polls again once this one returns.
const REPOLL: u8 = 4;
/// `cancel()` was called from inside the body: it takes effect at the next suspension.
const CANCEL_REQUESTED: u8 = 8;
/// The program's `Deferred` handle holds the driver itself, not yet its own chain: the coroutine
/// is held from outside whether its own chain exists or not.
const HANDLE_OUT: u8 = 16;

impl Flags {
    #[inline(always)]
    fn get(&self, flag: u8) -> bool {
        self.0.get() & flag != 0
    }
    #[inline(always)]
    fn set(&self, flag: u8, on: bool) {
        let f = self.0.get();
        self.0.set(if on { f | flag } else { f & !flag });
    }
    #[inline(always)]
    fn replace(&self, flag: u8, on: bool) -> bool {
        let was = self.get(flag);
        self.set(flag, on);
        was
    }
}

/// The Deferreds a suspended coroutine registered on: the first alone, or (under a `join` or
/// `select`) all of them in a box made the first time there are several, in one word
/// (`engine/raw/one_of.rs`), where a `RefCell<Vec>` beside a `RefCell<Option>` was six (issue 11:
/// one suspended coroutine is what a server holds per open request). A `Cell`, taken and put
/// back: nothing borrows it across user code.
struct Awaits(StdCell<AwaitsRepr>);

type AwaitsRepr = OneOf<CellWeak, Several>;

/// Boxed: a `Vec` is three words, and the one word of a `OneOf` holds a thin pointer (clippy's
/// `box_collection` assumes the box buys nothing).
#[allow(clippy::box_collection)]
type Several = Box<Vec<CellWeak>>;

impl Default for Awaits {
    fn default() -> Self {
        Awaits(StdCell::new(OneOf::new(Pick::Neither)))
    }
}

impl Awaits {
    #[inline(always)]
    fn take(&self) -> Pick<CellWeak, Several> {
        self.0.replace(OneOf::new(Pick::Neither)).into_pick()
    }

    #[inline(always)]
    fn put(&self, pick: Pick<CellWeak, Several>) {
        // What is replaced is always `Neither` (taken first): dropping it runs nothing.
        self.0.set(OneOf::new(pick));
    }

    /// Records one more; returns whether it is the first.
    fn push(&self, cell: &CellRc) -> bool {
        let weak = CellRc::downgrade(cell);
        let (first, pick) = match self.take() {
            Pick::Neither => (true, Pick::First(weak)),
            Pick::First(one) => (false, Pick::Second(Box::new(vec![one, weak]))),
            Pick::Second(mut many) => {
                let first = many.is_empty();
                many.push(weak);
                (first, Pick::Second(many))
            }
        };
        self.put(pick);
        first
    }

    /// Forgets them all (keeping the box, if any, for the next suspension).
    #[inline]
    fn clear(&self) {
        match self.take() {
            Pick::First(one) => drop(one),
            Pick::Second(mut many) => {
                many.clear();
                self.put(Pick::Second(many));
            }
            _ => {}
        }
    }

    /// Whether the body registered on any.
    fn is_empty(&self) -> bool {
        let pick = self.take();
        let empty = match &pick {
            Pick::Neither => true,
            Pick::First(_) => false,
            Pick::Second(many) => many.is_empty(),
            Pick::Third(absent) | Pick::Fourth(absent) => match *absent {},
        };
        self.put(pick);
        empty
    }

    /// All of them, first to last.
    fn all(&self) -> Vec<CellWeak> {
        let pick = self.take();
        let all = match &pick {
            Pick::Neither => Vec::new(),
            Pick::First(one) => vec![one.clone()],
            Pick::Second(many) => many.to_vec(),
            Pick::Third(absent) | Pick::Fourth(absent) => match *absent {},
        };
        self.put(pick);
        all
    }
}

/// The answer of [`Driver::awaiter_for`].
enum Registration {
    /// Resume this driver when the chain finishes.
    Driver(Awaiter),
    /// Not our driver's waker: an ordinary future.
    Foreign,
    /// The coroutine awaits its own Deferred, which only it can fire.
    OwnDeferred,
}

thread_local! {
    /// The driver polling right now on this thread, if any.
    static CURRENT: StdCell<Option<Rc<Driver>>> = const { StdCell::new(None) };
    /// Drivers suspended on something other than a Deferred, kept alive until their waker fires.
    static PARKED: RefCell<HashMap<u64, Rc<Driver>>> = RefCell::new(HashMap::new());
    /// Coroutine ids, and every live coroutine of this thread, for `debug::snapshot`: one
    /// thread-local access per coroutine made (its id and its slot together), one per coroutine
    /// dropped. Nothing is collected until someone asks.
    static REGISTRY: RefCell<Registry> = const {
        RefCell::new(Registry { live: Vec::new(), free: Vec::new() })
    };
    /// Set while the engine drops a coroutine's body (reclaimed, cancelled on a foreign future,
    /// or freed): the awaits inside it are abandoned by the engine, not by the program, and do
    /// not cancel what they await.
    static ENGINE_DROP: StdCell<bool> = const { StdCell::new(false) };
}

/// This thread's live coroutines: a slab of weak references to their drivers (one word each),
/// indexed by the drivers' `slot`.
struct Registry {
    live: Vec<Option<Weak<Driver>>>,
    /// Slots freed by dropped drivers, reused first.
    free: Vec<u32>,
}

impl Registry {
    /// A new coroutine's slot.
    fn register(&mut self, driver: Weak<Driver>) -> u32 {
        match self.free.pop() {
            Some(slot) => {
                self.live[slot as usize] = Some(driver);
                slot
            }
            None => {
                self.live.push(Some(driver));
                u32::try_from(self.live.len() - 1).unwrap_or(u32::MAX)
            }
        }
    }
}

/// Every live coroutine of this thread, in the order of their slots (`debug::snapshot`).
pub(crate) fn live_coroutines() -> Vec<Rc<Driver>> {
    REGISTRY
        .try_with(|r| {
            r.try_borrow()
                .map(|r| r.live.iter().flatten().filter_map(Weak::upgrade).collect())
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

/// Drops a coroutine's body as the engine does (see `ENGINE_DROP`).
fn drop_body<B>(body: B) {
    let was = ENGINE_DROP.try_with(|f| f.replace(true)).unwrap_or(false);
    user_code::drop_value(body);
    let _ = ENGINE_DROP.try_with(|f| f.set(was));
}

/// Resumes the coroutine `id` if it is parked on this thread: a wake from another thread,
/// delivered by the home thread's inbox.
pub(crate) fn wake_here(id: u64) {
    if let Some(driver) = unpark(id) {
        work_loop::enter(Work::Resume(driver));
    }
}

/// What a coroutine's pending Deferred shows in its `Debug`: where the coroutine is suspended
/// and what it waits on, or that it waits on a future other than a Deferred (one another thread
/// may wake).
pub(crate) fn waiting_note(cell: &CellRc) -> Option<String> {
    let driver = match cell
        .try_borrow()
        .ok()
        .as_deref()
        .and_then(|st| st.result.canceller())
    {
        Some(Canceller::Coroutine(d)) => d.upgrade(),
        _ => None,
    };
    if let Some(driver) = driver {
        let seen = driver.inspect();
        if seen.running {
            return Some("its coroutine is running".to_owned());
        }
        if let Some(at) = seen.suspended_at {
            let mut note = format!(
                "coroutine suspended at {}:{}:{}",
                at.file(),
                at.line(),
                at.column()
            );
            if let Some(made) = seen
                .awaiting
                .first()
                .and_then(|c| c.try_borrow().ok().map(|st| st.created_at))
            {
                note.push_str(&format!(" waiting on Deferred created at {made}"));
            }
            return Some(note);
        }
    }
    let id = PARKED
        .try_with(|p| {
            let p = p.try_borrow().ok()?;
            p.iter().find(|(_, d)| d.is_own(cell)).map(|(id, _)| *id)
        })
        .ok()
        .flatten()?;
    let woken = home::current().is_some_and(|h| h.has_wake_for(id));
    Some(
        if woken {
            "its coroutine was woken from another thread and waits for this thread to resume it \
         (run it under defer_core::react, a tokio LocalSet, or futures' block_on or LocalPool)"
        } else {
            "its coroutine awaits a future; a wake from another thread resumes it only while this \
         thread runs defer_core::react, a tokio LocalSet, or futures' block_on or LocalPool"
        }
        .to_owned(),
    )
}

/// The driver polling now, if any (none during thread teardown).
fn current_driver() -> Option<Rc<Driver>> {
    CURRENT
        .try_with(|c| {
            let d = c.take();
            let ours = d.clone();
            c.set(d);
            ours
        })
        .ok()
        .flatten()
}

/// Takes the driver `id` out of `PARKED`, if it is there (and the table still exists).
fn unpark(id: u64) -> Option<Rc<Driver>> {
    PARKED
        .try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.remove(&id)))
        .ok()
        .flatten()
}

/// The driver's waker: `Send + Sync` as the contract demands, holding no pointer to the `!Send`
/// coroutine, only its id and home thread.
struct DriverWaker {
    id: u64,
    /// The coroutine's thread: known when the driver made this (to park), else set by the
    /// driver right after the poll in which a future cloned its waker (on whichever thread).
    /// Until then a wake is treated as one from another thread: it sets `woken`, which the
    /// driver reads after that poll.
    home: OnceLock<ThreadId>,
    /// The home thread's inbox, published the first time the coroutine parks (the only state in
    /// which a wake from another thread has something to resume): nothing on the hot path.
    inbox: OnceLock<Arc<Home>>,
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
        if self.home.get() != Some(&thread::current().id()) {
            self.wake_from_elsewhere();
            return;
        }
        if !work_loop::in_continuation() && self.resume_through_executor() {
            return;
        }
        self.woken.store(true, Ordering::Relaxed);
        // Resumed through the work loop: a pipeline of coroutines, each completing the future
        // the next one awaits, does not nest their polls on the stack.
        if let Some(driver) = unpark(self.id) {
            work_loop::enter(Work::Resume(driver));
        }
    }
}

impl MadeWaker for DriverWaker {
    fn make() -> Self {
        /// Coroutine ids: unique in the process, so a waker made on any thread (a scoped
        /// thread cloning the lent waker) gets one.
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        DriverWaker {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            home: OnceLock::new(),
            inbox: OnceLock::new(),
            woken: AtomicBool::new(false),
        }
    }
}

impl DriverWaker {
    /// A wake on the home thread from outside the library (an executor's timer or I/O driver,
    /// which tokio runs outside the `LocalSet`): if an executor drains this thread's inbox, the
    /// coroutine is resumed by it, inside its context (where `spawn_local` and `from_future`
    /// work), as a wake from another thread would be. Returns whether it was posted.
    #[cold]
    #[inline(never)]
    fn resume_through_executor(&self) -> bool {
        let Some(home) = home::current() else {
            return false;
        };
        if !home.attended() {
            return false;
        }
        let _ = self.inbox.set(home.clone());
        self.woken.store(true, Ordering::SeqCst);
        home.post(Mail::Wake(self.id))
    }

    /// A wake on another thread: the `!Send` coroutine is resumed on its home thread, by its
    /// inbox. Cold: a thread hop costs microseconds anyway.
    #[cold]
    #[inline(never)]
    fn wake_from_elsewhere(&self) {
        // Seen by a poll in progress (which then polls again) ...
        self.woken.store(true, Ordering::SeqCst);
        // ... and, with the driver's fence after publishing the inbox, either this wake sees
        // the inbox or the driver sees `woken`: the wake is never lost between the two.
        fence(Ordering::SeqCst);
        if let Some(home) = self.inbox.get() {
            home.post(Mail::Wake(self.id));
        }
    }

    /// Publishes the home inbox (first park only), then tells whether a wake from another
    /// thread came in meanwhile (one that may have found no inbox to post to).
    fn woken_while_parking(&self) -> bool {
        if self.inbox.get().is_none()
            && let Some(home) = home::current()
        {
            let _ = self.inbox.set(home);
        }
        fence(Ordering::SeqCst);
        self.woken.load(Ordering::Relaxed)
    }
}

/// What a [`DeferredFuture`] needs of the driver polling it. (One driver type for every
/// coroutine: plain calls, which the future's poll can inline.)
impl Driver {
    /// If `waker` is this driver's own, records that the coroutine waits on `cell` and returns
    /// the awaiter that resumes it; else says what else it is. `at` is the `yield_!` or
    /// `.await`, kept as the coroutine's suspension point.
    #[inline]
    fn awaiter_for(
        self: Rc<Self>,
        waker: &Waker,
        cell: &CellRc,
        at: &'static Location<'static>,
    ) -> Registration {
        if !self.wakes.is_mine(waker) {
            return Registration::Foreign;
        }
        if self.is_own(cell) {
            return Registration::OwnDeferred;
        }
        if self.awaiting.push(cell) {
            self.suspended_at.set(Some(at));
        }
        Registration::Driver(Awaiter::Driver(self))
    }

    /// The coroutine's function, which a `yield_!`'s frame is named after.
    fn function(&self) -> &'static str {
        self.name()
    }
}

impl Driver {
    /// The chains the coroutine awaits right now: registered, alive, and still resuming us.
    fn awaited_now(&self) -> Vec<CellRc> {
        let me = self as *const Self as *const ();
        self.awaiting
            .all()
            .iter()
            .filter_map(CellWeak::upgrade)
            .filter(|c| {
                c.try_borrow().is_ok_and(|st| match st.awaiting_driver() {
                    Some(d) => std::ptr::eq(Rc::as_ptr(&d) as *const (), me),
                    None => false,
                })
            })
            .collect()
    }

    /// The coroutine's function: the name given, or the one its future's type name gives
    /// (`debug::function_name`).
    fn name(&self) -> &'static str {
        let name = (self.name)();
        if name.contains("::") {
            crate::debug::function_name(name)
        } else {
            name
        }
    }

    /// Where the coroutine was made: its own Deferred's creation site.
    fn created_at(&self) -> &'static Location<'static> {
        match self.take_own() {
            Pick::First(own) => {
                // (Never borrowed here: no user code runs under a borrow of a chain. This file's
                // `Location::caller()` is only a fallback.)
                let at = own
                    .try_borrow()
                    .map_or(Location::caller(), |st| st.created_at);
                self.own.set(OneOf::new(Pick::First(own)));
                at
            }
            Pick::Second(at) => {
                self.own.set(OneOf::new(Pick::Second(at)));
                at
            }
            _ => Location::caller(),
        }
    }

    /// Takes out what `own` holds (put back by the caller).
    #[inline(always)]
    fn take_own(&self) -> Pick<CellRc, &'static Location<'static>> {
        self.own.replace(OneOf::new(Pick::Neither)).into_pick()
    }

    /// Its own chain, if it was made.
    #[inline]
    fn own(&self) -> Option<CellRc> {
        match self.take_own() {
            Pick::First(own) => {
                let copy = own.clone();
                self.own.set(OneOf::new(Pick::First(own)));
                Some(copy)
            }
            other => {
                self.own.set(OneOf::new(other));
                None
            }
        }
    }

    /// Whether `cell` is its own chain.
    fn is_own(&self, cell: &CellRc) -> bool {
        // Looked at, not cloned: no count touched on every await.
        let own = self.take_own();
        let is = matches!(&own, Pick::First(o) if CellRc::ptr_eq(o, cell));
        self.own.set(OneOf::new(own));
        is
    }

    /// Makes `cell` its own chain (there was none).
    fn set_own(&self, cell: CellRc) {
        self.own.set(OneOf::new(Pick::First(cell)));
    }

    /// Its own chain, made now if it was not: pending, with the coroutine as its canceller.
    fn own_chain(self: &Rc<Self>) -> CellRc {
        if let Some(own) = self.own() {
            return own;
        }
        let cell = CellRc::new_at(None, self.created_at());
        cell.borrow_mut()
            .result
            .put_canceller(Canceller::Coroutine(Rc::downgrade(self)));
        self.set_own(cell.clone());
        cell
    }

    /// Gives the coroutine's result to its Deferred; returns the chain to run next. With no
    /// chain made yet, the chain is made holding the result: nothing listens yet.
    fn finish(&self, slot: Slot) -> Option<CellRc> {
        match self.own() {
            Some(own) => chain::set_result(&own, slot).then_some(own),
            None => {
                self.set_own(CellRc::fired_at(slot, self.created_at()));
                None
            }
        }
    }

    /// Whether the body is still there (not finished nor freed; out of its cell while polled).
    fn has_body(&self) -> bool {
        let body = self.body.take();
        let has = body.is_some();
        self.body.set(body);
        has || self.flags.get(POLLING)
    }

    /// Takes the body out, to be dropped (`drop_body`) or polled.
    fn take_body(&self) -> Option<BoxedBody> {
        self.body.take()
    }
}

/// The chain a `Deferred` handle holding the driver `driver` itself takes instead (made now if
/// it was not): from now on the handle holds the chain, like any other. The caller lets go of
/// the driver once the handle holds the chain (the driver's last reference going drops the body,
/// user code that may look at the handle). Out of line: the handles' hot paths (an await, a step
/// added) only test for it.
#[inline(never)]
pub(crate) fn handle_chain(driver: &Rc<Driver>) -> CellRc {
    let own = driver.own_chain();
    driver.flags.set(HANDLE_OUT, false);
    own
}

impl Resume for Driver {
    fn resume(self: Rc<Self>) -> Option<CellRc> {
        if self.flags.get(POLLING) {
            // Woken from inside its own poll: poll again once this one returns.
            self.flags.set(REPOLL, true);
            return None;
        }
        self.flags.set(POLLING, true);
        if self.flags.replace(PARKED_FLAG, false) {
            // Resumed by a Deferred while parked for a foreign future too: leave `PARKED`, or
            // it would keep the driver alive after the coroutine has finished.
            user_code::drop_value(unpark(self.id()));
        }
        loop {
            self.flags.set(REPOLL, false);
            self.wakes.take_woken();
            if let Some(w) = self.wakes.made() {
                w.woken.store(false, Ordering::Relaxed);
            }
            self.awaiting.clear();
            // (`suspended_at` is left: it means something only while `awaiting` is set.)
            let polled = {
                let Some(mut fut) = self.take_body() else {
                    self.flags.set(POLLING, false);
                    return None;
                };
                let ctx = self.clone();
                let prev = CURRENT.try_with(|c| c.replace(Some(ctx))).ok().flatten();
                let polled = self.wakes.with_borrowed(|waker| {
                    let mut cx = Context::from_waker(waker);
                    #[cfg(feature = "tracing")]
                    let polled = self
                        .spans
                        .poll_in(|| user_code::call(|| fut.as_mut().poll_body(&mut cx)));
                    #[cfg(not(feature = "tracing"))]
                    let polled = user_code::call(|| fut.as_mut().poll_body(&mut cx));
                    polled
                });
                // A waker a future cloned during the poll (on this thread or a scoped one) now
                // learns its home.
                if let Some(w) = self.wakes.made() {
                    w.home.get_or_init(|| thread::current().id());
                }
                let ours = CURRENT.try_with(|c| c.replace(prev)).ok().flatten();
                drop(ours);
                (polled, fut)
            };
            let (polled, fut) = polled;
            let (result, finished) = match polled {
                Ok(Poll::Pending) => {
                    self.body.set(Some(fut));
                    if self.flags.get(REPOLL) || self.wakes.take_woken() || self.made_woken() {
                        continue;
                    }
                    // Suspended on a foreign future: its waker will find us here. That is the
                    // case when no Deferred registered the driver, and also when a foreign
                    // future kept a clone of the waker beside a pending Deferred (`select` of
                    // the two): before, that wake was lost and the coroutine hung until the
                    // Deferred fired. The driver itself holds two references to the waker.
                    if self.awaiting.is_empty() || self.wakes.others() > 0 {
                        // Parked under its id, which its waker holds: made now if no future
                        // kept one.
                        let made = self.made_here();
                        let me = self.clone();
                        let parked = PARKED
                            .try_with(|p| {
                                p.try_borrow_mut()
                                    .map(|mut p| p.insert(made.id, me))
                                    .is_ok()
                            })
                            .unwrap_or(false);
                        self.flags.set(PARKED_FLAG, parked);
                        if made.woken_while_parking() {
                            // Woken from another thread before its inbox was known: poll again.
                            if self.flags.replace(PARKED_FLAG, false) {
                                user_code::drop_value(unpark(self.id()));
                            }
                            continue;
                        }
                    } else {
                        // A foreign future that woke us from another thread may have dropped
                        // its clone of the waker before `strong_count` was read: the acquire
                        // fence makes its `woken` visible then (on x86, no instruction at all).
                        fence(Ordering::Acquire);
                        if self.made_woken() {
                            continue;
                        }
                    }
                    self.flags.set(POLLING, false);
                    if self.flags.replace(CANCEL_REQUESTED, false) {
                        // `cancel()` from inside the body: now it is suspended, cancel what it
                        // awaits (a continuation of the work loop, queued if deep). (Asked through
                        // its own chain's canceller: the chain exists.)
                        if let Some(own) = self.own() {
                            chain::cancel(&own);
                        }
                    }
                    if self.flags.get(HANDLE_OUT) {
                        // The program's handle holds the coroutine itself: held.
                        return None;
                    }
                    let own = self.own()?;
                    // Nothing but this coroutine and the chains its Deferred's own edges lead to
                    // (another coroutine awaiting it, the chain it is `chain_deferred` into,
                    // ...) may hold its Deferred: it may just have suspended on something only
                    // those reach, which nothing can ever resume (`engine/reclaim.rs`). The
                    // driver's own reference is in the budget (its `Coroutine` canceller). A
                    // handle held by the program (the hot path) is one more: no walk.
                    // (A coroutine's own Deferred has no trigger and has not fired: of its edges,
                    // only an awaiting coroutine and a hand-over may add to the budget. Checked
                    // first, so the hot path — the program holds the handle — costs two tests.)
                    // (Less the clone held here.)
                    let count = CellRc::strong_count(&own) - 1;
                    let unheld = count == 1
                        || (count <= 3
                            && match own.try_borrow() {
                                Ok(st) => {
                                    (st.awaiting_driver().is_some() || st.has_hand_over())
                                        && count <= chain::reclaim::ref_budget(&st)
                                }
                                Err(_) => false,
                            });
                    if unheld {
                        chain::reclaim::release(own);
                    }
                    return None;
                }
                Ok(Poll::Ready(r)) => (r, fut),
                // A panic in the body: located where the coroutine was made (the user's call of
                // `ensure_deferred`, the `#[inline_callbacks]` function), not in this file.
                Err(payload) => (Err(Failure::from_panic_at(payload, self.created_at())), fut),
            };
            // The finished future's `Drop` is user code, and may panic: contained, and the
            // result still delivered.
            user_code::drop_value(finished);
            self.flags.set(POLLING, false);
            self.flags.set(CANCEL_REQUESTED, false);
            let slot = match result {
                Ok(v) => Slot::Value(v),
                Err(f) => {
                    // Raised in this body itself (it crossed no yield point here): name the
                    // function it was raised in, as a traceback's innermost frame would.
                    let name = self.name();
                    let f = if name.is_empty() {
                        f
                    } else if f.frames().next().is_none() {
                        let l = f.location();
                        f.with_frame(Frame::new(name, l.file(), l.line(), l.column()))
                    } else {
                        // The `.await` it crossed last is this body's (or a nested `async fn`'s
                        // in it, which Rust gives no name to record): name it after the
                        // coroutine, as a traceback's frame would be.
                        f.name_outermost(name)
                    };
                    Slot::Failure(f)
                }
            };
            return self.finish(slot);
        }
    }

    fn cancel_current(&self) -> Option<CellRc> {
        if self.flags.get(POLLING) {
            // Called from inside the body (or code it called): nothing is awaited yet. It takes
            // effect at the next suspension point.
            self.flags.set(CANCEL_REQUESTED, true);
            return None;
        }
        let mut awaited = self.awaited_now().into_iter();
        if let Some(first) = awaited.next() {
            // Awaiting several Deferreds at once (`join`): cancel the others here, the first one
            // back in the cancel walk's loop, so a stack of coroutines cancels without recursion.
            for other in awaited {
                chain::cancel(&other);
            }
            return Some(first);
        }
        if let Some(body) = self.take_body() {
            // Suspended on a foreign future, which cannot be cancelled through a Deferred:
            // cancelling drops it, as Rust cancels futures, and the coroutine fails. (Asked
            // through its own chain's canceller: the chain exists.)
            let parked = unpark(self.id());
            self.flags.set(PARKED_FLAG, false);
            drop_body(Some(body));
            if let Some(own) = self.own() {
                chain::fire(&own, Slot::Failure(Failure::new(CancelledError)));
            }
            user_code::drop_value(parked);
        }
        None
    }

    fn stuck_on(&self) -> Option<Vec<CellRc>> {
        if self.flags.get(POLLING | HANDLE_OUT) || !self.has_body() || self.wakes.others() > 0 {
            return None;
        }
        // Read after the count, behind an acquire fence: a future on another thread that woke us
        // and then dropped its clone of the waker (the count just read) has its `woken` seen
        // here. Read before the count, it could be missed, and a coroutine about to be resumed
        // taken for stuck and freed.
        fence(Ordering::Acquire);
        if self.made_woken() {
            return None;
        }
        Some(self.awaited_now())
    }

    fn own_cell(&self) -> Option<CellRc> {
        self.own()
    }

    fn free_body(&self) {
        self.flags.set(PARKED_FLAG, false);
        let body = self.take_body();
        let me = unpark(self.id());
        drop_body(body);
        user_code::drop_value(me);
    }

    fn inspect(&self) -> Inspected {
        let running = self.flags.get(POLLING);
        Inspected {
            name: self.name(),
            created_at: self.created_at(),
            running,
            finished: !self.has_body(),
            suspended_at: if running || self.awaiting.is_empty() {
                None
            } else {
                self.suspended_at
                    .get()
                    .map(|l| Frame::new(self.name(), l.file(), l.line(), l.column()))
            },
            awaiting: if running {
                Vec::new()
            } else {
                self.awaited_now()
            },
            own: self.own(),
        }
    }
}

impl Driver {
    /// The coroutine's id (its `PARKED` key; what a wake from another thread posts), which its
    /// waker holds; `u64::MAX`, no coroutine's, if none was made (it was never parked).
    #[inline]
    fn id(&self) -> u64 {
        self.wakes.made().map_or(u64::MAX, |w| w.id)
    }

    /// Whether a wake through a made waker came in.
    #[inline]
    fn made_woken(&self) -> bool {
        self.wakes
            .made()
            .is_some_and(|w| w.woken.load(Ordering::Relaxed))
    }

    /// The made waker's state, made now (on the coroutine's thread) if it was not.
    fn made_here(&self) -> &DriverWaker {
        drop(self.wakes.get_or_make());
        let made = self.wakes.made().expect("made just now");
        made.home.get_or_init(|| thread::current().id());
        made
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let slot = self.slot;
        let _ = REGISTRY.try_with(|r| {
            if let Ok(mut r) = r.try_borrow_mut()
                && let Some(entry) = r.live.get_mut(slot as usize)
            {
                *entry = None;
                r.free.push(slot);
            }
        });
        if self.flags.get(PARKED_FLAG) {
            let _ = PARKED.try_with(|p| {
                if let Ok(mut p) = p.try_borrow_mut() {
                    p.remove(&self.id());
                }
            });
        }
        // The body's `Drop` is user code.
        let body = self.body.get_mut().take();
        drop_body(body);
    }
}

/// Starts the coroutine `body`: its Deferred is located at the caller's `#[track_caller]` chain
/// (the user's `ensure_deferred`, or the `#[inline_callbacks]` function).
#[track_caller]
pub(crate) fn drive<T, F>(name: Option<fn() -> &'static str>, body: F) -> Deferred<T>
where
    T: 'static,
    F: Future<Output = Result<T, Failure>> + 'static,
{
    // The type name is a constant: the name is derived from it only when asked.
    let name = name.unwrap_or(std::any::type_name::<F>);
    match drive_named(name, Location::caller(), Box::pin(body)) {
        Ok(finished) => Deferred::from_cell(finished),
        Err(suspended) => Deferred::from_driver(suspended),
    }
}

/// The untyped part of `drive`: one copy in all. Gives the coroutine's own chain if it finished
/// in its first poll (the common case of a coroutine awaiting only fired Deferreds), else the
/// driver, for the program's handle to hold until something needs the chain.
fn drive_named(
    name: fn() -> &'static str,
    at: &'static Location<'static>,
    body: BoxedBody,
) -> Result<CellRc, Rc<Driver>> {
    let driver = Rc::new_cyclic(|me: &Weak<Driver>| {
        let slot = REGISTRY
            .try_with(|r| {
                r.try_borrow_mut()
                    .map(|mut r| r.register(me.clone()))
                    .unwrap_or(u32::MAX)
            })
            .unwrap_or(u32::MAX);
        Driver {
            body: StdCell::new(Some(body)),
            own: StdCell::new(OneOf::new(Pick::Second(at))),
            wakes: LazyWaker::new(),
            awaiting: Awaits::default(),
            flags: Flags(StdCell::new(HANDLE_OUT)),
            name,
            suspended_at: StdCell::new(None),
            slot,
            #[cfg(feature = "tracing")]
            spans: crate::debug::CoroutineSpans::current(),
        }
    });
    // The first poll is a continuation like any other: inline, unless coroutines are being
    // created inside coroutines deeper than the work loop lets the stack go.
    work_loop::enter(Work::Resume(driver.clone()));
    if !driver.has_body()
        && let Some(own) = driver.own()
    {
        drop(handle_chain(&driver));
        drop(driver);
        return Ok(own);
    }
    Err(driver)
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
/// The returned Deferred is located at this call (its `Debug`, [`debug::snapshot`]), and the
/// coroutine is named after the `async fn` (or the function around the `async` block): a failure
/// raised in it, or crossing an `.await` in it, carries that name in its trace, and a panic in it
/// is located at this call.
///
/// [`debug::snapshot`]: crate::debug::snapshot
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
#[track_caller]
pub fn ensure_deferred<T, F>(future: F) -> Deferred<T>
where
    T: 'static,
    F: Future<Output = Result<T, Failure>> + 'static,
{
    drive(None, future)
}

/// The future of a [`Deferred`], made by `.await` (through [`IntoFuture`]). Its output is the
/// Deferred's result: `Ok(value)` or `Err(failure)`, so `?` re-raises.
///
/// ```
/// use defer_core::{ensure_deferred, succeed, testing::success_result_of};
/// let d = ensure_deferred(async { Ok(succeed(20).await? + 1) });
/// assert_eq!(success_result_of(d), 21);
/// ```
///
/// # Dropping it cancels
///
/// Dropping the future before it completes — the losing branch of a `select!`, a `timeout`
/// that gave up, an aborted task — [cancels](Deferred::cancel) the Deferred, as cancelling the
/// future of Twisted's `Deferred.asFuture` does: its canceller runs (a coroutine's Deferred is
/// cancelled at the coroutine's suspension point), and the result that follows belongs to the
/// dropped future and is discarded without being reported. A Deferred that already has its
/// result is left alone.
///
/// ```
/// use defer_core::Deferred;
/// use std::{cell::Cell, rc::Rc, time::Duration};
///
/// let cancelled = Rc::new(Cell::new(0));
/// let count = cancelled.clone();
/// let (slow, producer) = Deferred::<u32>::with_canceller(move |_| count.set(count.get() + 1));
///
/// let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
/// let winner = rt.block_on(async {
///     tokio::select! {
///         r = slow => r.map(|_| "slow"),
///         _ = tokio::time::sleep(Duration::from_millis(1)) => Ok("timer"),
///     }
/// });
/// assert_eq!(winner.unwrap(), "timer");
/// assert_eq!(cancelled.get(), 1);      // the canceller ran once
/// assert!(producer.is_cancelled());   // and the producer can tell
/// ```
///
/// # Wakes from other threads
///
/// A coroutine may await any future, also one completed on another thread (a channel, a
/// timer of another runtime): it is resumed on its own thread, when that thread runs one of
///
/// 1. [`react`](crate::react) (the std run loop);
/// 2. a tokio `LocalSet` (or the `tokio` feature's `react`), awaiting a Deferred there;
/// 3. `futures`' `block_on` or `LocalPool`, awaiting a Deferred there.
///
/// ```
/// use defer_core::ensure_deferred;
/// use std::future::IntoFuture;
///
/// let d = ensure_deferred(async {
///     let (tx, rx) = futures::channel::oneshot::channel();
///     std::thread::spawn(move || tx.send(20).unwrap());
///     Ok(rx.await.unwrap() + 1)
/// });
/// // Way 3: futures' block_on runs this thread until the coroutine finishes.
/// assert_eq!(futures::executor::block_on(d.into_future()).unwrap(), 21);
/// ```
///
/// A thread that does none of these (it blocks in a plain `recv`, say) never resumes the
/// coroutine; its Deferred's `Debug` then says that it waits for this thread to run.
#[must_use = "futures do nothing unless polled"]
pub struct DeferredFuture<T> {
    /// The chain awaited; or the value of a Deferred that was a bare value (`succeed`), with no
    /// chain to look at; or neither, once it completed. One word (`engine/raw/one_of.rs`).
    repr: OneOf<CellRc, Box<ValueHolder<T>>>,
    /// The `yield_!` or `.await`: where the frame failures get when they cross it points, and two
    /// flags, [`NAMED`] and [`ATTENDING`], in one word (`engine/raw/tagged_location.rs`; issue
    /// 11: every suspended coroutine holds one of these futures). The frame is made only when a
    /// failure crosses.
    site: TaggedLocation,
    /// Invariant in `T`, like every handle: the chain is type-erased, and variance would let a
    /// value of another type into it.
    _invariant: PhantomData<fn(T) -> T>,
}

impl<T> DeferredFuture<T> {
    /// Takes out what it awaits, leaving neither.
    #[inline(always)]
    fn take(&mut self) -> Pick<CellRc, Box<ValueHolder<T>>> {
        std::mem::replace(&mut self.repr, OneOf::new(Pick::Neither)).into_pick()
    }
}

/// What polling a `DeferredFuture` under a driver did, once the chain's borrow is let go of.
enum Registered {
    /// The driver is the chain's awaiter (what it replaced, to drop).
    Suspended(Option<crate::engine::tail::Tail>),
    /// Not our driver's waker: an ordinary future.
    Foreign,
    /// The coroutine awaits its own Deferred.
    OwnDeferred,
}

/// A [`DeferredFuture`]'s flag: it is a `yield_!`, whose frame is named after the coroutine's
/// function (an `.await` in an `async` block has no name Rust gives us).
const NAMED: u32 = 0;
/// A [`DeferredFuture`]'s flag: polled by an executor and pending, it left its waker with the
/// thread's inbox (`home.rs`), so that mail from other threads gets this thread's Deferreds
/// going.
const ATTENDING: u32 = 1;

impl<T: 'static> DeferredFuture<T> {
    #[inline(always)]
    pub(crate) fn new(d: Deferred<T>, at: &'static Location<'static>, named: bool) -> Self {
        let repr = match d.into_repr() {
            Repr::Chain(c) => Pick::First(c),
            Repr::Ready(h) => Pick::Second(h),
            Repr::Coroutine(_) | Repr::Swapping => {
                unreachable!("never mid-swap, and a coroutine's chain is made by into_repr")
            }
        };
        let mut site = TaggedLocation::new(at);
        site.set_flag(NAMED, named);
        DeferredFuture {
            repr: OneOf::new(repr),
            site,
            _invariant: PhantomData,
        }
    }

    /// The frame a failure crossing this await gets: a `yield_!`'s is named after the coroutine
    /// polling it (a `yield_!` is only ever in an `#[inline_callbacks]` body, polled by its
    /// driver).
    fn frame(&self) -> Frame {
        let function = if self.site.flag(NAMED) {
            current_driver().map_or("", |d| d.function())
        } else {
            ""
        };
        let at = self.site.location();
        Frame::new(function, at.file(), at.line(), at.column())
    }

    fn output(&self, result: Result<Value, Failure>) -> Result<T, Failure> {
        match result {
            Ok(value) => value.take::<T>(),
            Err(f) => {
                // The coroutine sees it: from now on it is reported if lost (`Failure::quiet`).
                f.seen();
                Err(f.with_frame(self.frame()))
            }
        }
    }
}

impl<T: 'static> Future for DeferredFuture<T> {
    type Output = Result<T, Failure>;

    #[inline(always)]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // A Deferred that was a bare value (`yield_!(succeed(x))`): taken here, inlined into the
        // body's state machine.
        if this.repr.kind() == Some(1)
            && let Pick::Second(mut h) = this.take()
        {
            return Poll::Ready(Ok(h.0.take().expect("a ready Deferred holds its value")));
        }
        this.poll_chain(cx)
    }
}

impl<T: 'static> DeferredFuture<T> {
    /// [`poll`](Future::poll) of a chain.
    #[inline]
    fn poll_chain(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, Failure>> {
        let this = self;
        if this.repr.kind() != Some(0) {
            return Poll::Ready(Err(Failure::msg(
                "a DeferredFuture was polled after it completed",
            )));
        }
        // One borrow of the chain: take its result, or register as its awaiter. (The chain is
        // looked at where the future holds it: lent, not taken out and put back.)
        let registration = {
            let cell = this.repr.first().expect("checked: a chain");
            let mut st = cell.borrow_mut();
            if let Some(result) = chain::take_ready_in(&mut st) {
                drop(st);
                if let Pick::First(cell) = this.take()
                    && this.site.flag(ATTENDING)
                {
                    stop_attending(&cell);
                }
                return Poll::Ready(this.output(result));
            }
            // Our own driver (only our code runs meanwhile): register it under the same borrow.
            match current_driver().map(|d| d.awaiter_for(cx.waker(), &cell, this.site.location())) {
                Some(Registration::Driver(awaiter)) => {
                    let old = st.set_awaiter(awaiter);
                    drop(st);
                    Registered::Suspended(old)
                }
                Some(Registration::OwnDeferred) => Registered::OwnDeferred,
                Some(Registration::Foreign) | None => Registered::Foreign,
            }
        };
        match registration {
            Registered::Suspended(old) => {
                if let Some(old) = old {
                    user_code::drop_value(old);
                }
                Poll::Pending
            }
            Registered::Foreign => this.poll_foreign(cx),
            Registered::OwnDeferred => {
                drop(this.take());
                Poll::Ready(Err(
                    Failure::new(CircularChainError).with_frame(this.frame())
                ))
            }
        }
    }
}

impl<T: 'static> DeferredFuture<T> {
    /// [`poll`](Future::poll) under a foreign waker (an executor's): out of line, so that the
    /// coroutine's own path stays small enough to inline.
    #[inline(never)]
    fn poll_foreign(&mut self, cx: &mut Context<'_>) -> Poll<Result<T, Failure>> {
        // (The future keeps its own reference while user code runs below: an executor's waker
        // clone.)
        let cell = CellRc::clone(&self.repr.first().expect("poll checked the chain"));
        // The thread's inbox gets the waker and is drained: a result or a wake that another
        // thread sent may be what this chain waits for.
        self.site.set_flag(ATTENDING, true);
        home::attend(CellRc::as_ptr(&cell) as usize, cx.waker());
        // The waker's clone is user code (its executor's vtable), made with no borrow held; it
        // (and the drain) may have run anything, this chain's firing included, so look again.
        let awaiter = Awaiter::Waker(cx.waker().clone());
        let mut st = cell.borrow_mut();
        if let Some(result) = chain::take_ready_in(&mut st) {
            drop(st);
            user_code::drop_value(awaiter);
            drop(self.take());
            self.site.set_flag(ATTENDING, false);
            stop_attending(&cell);
            return Poll::Ready(self.output(result));
        }
        let old = st.set_awaiter(awaiter);
        drop(st);
        if old.is_some() {
            user_code::drop_value(old);
        }
        Poll::Pending
    }
}

/// A future that left its waker with the inbox (`home::attend`) has completed or gone.
#[cold]
#[inline(never)]
fn stop_attending(cell: &CellRc) {
    home::leave(CellRc::as_ptr(cell) as usize);
}

/// A `DeferredFuture` dropped before it completed: it stops awaiting, and cancels (see
/// [`DeferredFuture`]'s docs). Out of line and not generic: dropping a completed future (the
/// common case) is one test.
#[inline(never)]
fn abandon(cell: CellRc, attending: bool) {
    if attending {
        stop_attending(&cell);
    }
    let (old, unfinished) = match cell.try_borrow_mut() {
        Ok(mut st) => (st.take_awaiter(), !st.is_ready()),
        Err(_) => (None, false),
    };
    user_code::drop_value(old);
    let by_engine = ENGINE_DROP.try_with(StdCell::get).unwrap_or(true);
    if unfinished && !by_engine {
        // Dropping an unfinished await cancels what it awaits, as cancelling the future of
        // Twisted's `asFuture` does; the result that follows (`CancelledError`, or what the
        // canceller gave) is this future's, and is consumed with it.
        chain::cancel(&cell);
        if let Some(result) = chain::take_ready(&cell) {
            user_code::drop_value(result);
        }
    }
    chain::reclaim::release(cell);
}

impl<T> Drop for DeferredFuture<T> {
    #[inline(always)]
    fn drop(&mut self) {
        // A completed future (the common case) holds nothing: one test. A bare value it never
        // took is dropped with the field.
        if self.repr.kind() != Some(0) {
            return;
        }
        self.abandon_chain();
    }
}

impl<T> DeferredFuture<T> {
    /// Dropped before it completed, holding a chain: out of line.
    #[inline(never)]
    fn abandon_chain(&mut self) {
        // An abandoned await must not keep resuming (or keep alive) whoever awaited it.
        if let Pick::First(cell) = self.take() {
            abandon(cell, self.site.flag(ATTENDING));
        }
    }
}

/// `d.await` (and `d` in `select!`, `timeout`, `join!`): a [`DeferredFuture`]. Dropping that
/// future before it completes cancels the Deferred (see [`DeferredFuture`], with a
/// `tokio::select!` example).
impl<T: 'static> IntoFuture for Deferred<T> {
    type Output = Result<T, Failure>;
    type IntoFuture = DeferredFuture<T>;

    /// `d.await`: records the `.await`'s location for the failure's trace.
    #[track_caller]
    #[inline(always)]
    fn into_future(self) -> DeferredFuture<T> {
        DeferredFuture::new(self, Location::caller(), false)
    }
}

/// `yield_!(d)`: `at` is the user's `yield_`, from a `static` the macro wrote there.
pub(crate) fn yield_point<T: 'static>(
    d: Deferred<T>,
    at: &'static Location<'static>,
) -> DeferredFuture<T> {
    DeferredFuture::new(d, at, true)
}
