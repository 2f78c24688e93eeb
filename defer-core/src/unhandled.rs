//! Reporting failures that nobody handled.
//!
//! When the last handle to a chain whose current result is a [`Failure`] goes away, the failure
//! is reported once (Twisted logs "Unhandled error in Deferred" when the Deferred is garbage
//! collected). A failure that a step handled, that was handed to another chain, or that a
//! coroutine received at a `yield_!` or `.await`, is never reported.
//!
//! The report goes to a hook: a thread-local one installed by [`with_hook`] (for tests), else the
//! process-wide one installed by [`set_hook`], else [`default_report`], which writes one clear
//! report to stderr (or, with the `tracing` feature, emits a `tracing::error!` event). A hook that panics cannot take the program down: the panic is caught and the
//! failure is written to stderr instead.
//!
//! [`log_error`] (Twisted's `defer.logError`, also at `defer_core::log_error`) reports a failure
//! through the same hook on demand, as a pass-through errback.
//!
//! ```
//! use std::{cell::RefCell, rc::Rc};
//! use defer_core::{fail, Failure, unhandled};
//! let reports = Rc::new(RefCell::new(0));
//! let r = reports.clone();
//! unhandled::with_hook(move |_f| *r.borrow_mut() += 1, || {
//!     let d = fail::<()>(Failure::msg("lost"));
//!     let handled = fail::<()>(Failure::msg("caught")).add_errback(|_| Ok(()));
//!     drop((d, handled));
//! });
//! assert_eq!(*reports.borrow(), 1);
//! ```

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::{Arc, RwLock};

use crate::engine::user_code;
use crate::failure::Failure;

type GlobalHook = Arc<dyn Fn(&Failure) + Send + Sync>;
type LocalHook = Rc<dyn Fn(&Failure)>;

static GLOBAL: RwLock<Option<GlobalHook>> = RwLock::new(None);

thread_local! {
    static LOCAL: RefCell<Option<LocalHook>> = const { RefCell::new(None) };
}

/// Installs the process-wide hook for unhandled failures, replacing the previous one (like
/// [`std::panic::set_hook`]).
///
/// ```
/// defer_core::unhandled::set_hook(|f| eprintln!("lost: {}", f.message()));
/// # defer_core::unhandled::take_hook();
/// ```
pub fn set_hook(hook: impl Fn(&Failure) + Send + Sync + 'static) {
    *GLOBAL.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(hook));
}

/// Removes the process-wide hook, going back to [`default_report`]. Returns whether one was set.
///
/// ```
/// defer_core::unhandled::set_hook(|_| {});
/// assert!(defer_core::unhandled::take_hook());
/// assert!(!defer_core::unhandled::take_hook());
/// ```
pub fn take_hook() -> bool {
    GLOBAL
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .is_some()
}

/// Runs `body` with `hook` receiving this thread's unhandled failures, then restores the
/// previous thread-local hook (also if `body` panics). Meant for tests.
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// let seen = Rc::new(RefCell::new(Vec::new()));
/// let s = seen.clone();
/// defer_core::unhandled::with_hook(move |f| s.borrow_mut().push(f.message()), || {
///     drop(defer_core::fail::<()>(defer_core::Failure::msg("nobody caught me")));
/// });
/// assert_eq!(*seen.borrow(), ["nobody caught me"]);
/// ```
pub fn with_hook<R>(hook: impl Fn(&Failure) + 'static, body: impl FnOnce() -> R) -> R {
    struct Restore(Option<LocalHook>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let prev = self.0.take();
            let _ = LOCAL.try_with(|l| *l.borrow_mut() = prev);
        }
    }
    let prev = LOCAL.with(|l| l.borrow_mut().replace(Rc::new(hook)));
    let _restore = Restore(prev);
    body()
}

/// The default report: one block on stderr, `Unhandled error in Deferred (created at
/// FILE:LINE:COL):` (where the Deferred that held it was made) then the failure with its trace.
///
/// With the `tracing` feature, it is instead a `tracing::error!` event, `Unhandled error in
/// Deferred`, with the fields `failure.type` (the error's type name), `failure.message`,
/// `failure.trace` (the `yield_!` / `.await` points, outermost first, then where it was raised)
/// and `deferred.created_at` (where the Deferred that held it was made).
/// When no subscriber is interested in that event (none is installed, or it filters errors out
/// of this crate), the report still goes to stderr, so it is never lost.
///
/// ```
/// defer_core::unhandled::default_report(&defer_core::Failure::msg("shown on stderr"));
/// ```
pub fn default_report(failure: &Failure) {
    #[cfg(feature = "tracing")]
    if tracing::enabled!(tracing::Level::ERROR) {
        let l = failure.location();
        let mut trace: String = failure.frames().map(|f| format!("{f}\n")).collect();
        trace += &format!("raised at {}:{}:{}", l.file(), l.line(), l.column());
        let created_at = failure
            .unhandled_in()
            .map_or_else(String::new, |l| l.to_string());
        tracing::error!(
            failure.r#type = failure.type_name(),
            failure.message = %failure.message(),
            failure.trace = %trace,
            deferred.created_at = %created_at,
            "Unhandled error in Deferred"
        );
        return;
    }
    write_stderr(&match failure.unhandled_in() {
        Some(at) => format!("Unhandled error in Deferred (created at {at}):\n{failure}"),
        None => format!("Unhandled error in Deferred:\n{failure}"),
    });
}

/// A pass-through errback that logs: Twisted's `defer.logError`. It reports `failure` now,
/// through the same hook as an unhandled failure ([`with_hook`], [`set_hook`], else
/// [`default_report`]: stderr, or a `tracing` event with the feature), then returns it as `Err`,
/// so the chain goes on failing and the next errback sees the very same failure.
///
/// As in Twisted, a failure that nothing handles after `log_error` is reported again when its
/// chain goes: `log_error` logs, it does not handle.
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// use defer_core::{fail, log_error, unhandled, Failure, testing::failure_result_of};
///
/// let logged = Rc::new(RefCell::new(Vec::new()));
/// let l = logged.clone();
/// unhandled::with_hook(move |f| l.borrow_mut().push(f.message()), || {
///     let d = fail::<u32>(Failure::msg("disk full")).add_errback(log_error);
///     assert_eq!(failure_result_of(d).message(), "disk full");   // still failing
/// });
/// assert_eq!(*logged.borrow(), ["disk full"]);                    // and logged once
/// ```
pub fn log_error<T>(failure: Failure) -> Result<T, Failure> {
    report(&failure);
    Err(failure)
}

/// Writes a report to stderr; `eprintln!` would panic if stderr is closed, and a report must not.
fn write_stderr(report: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{report}");
}

/// Reports `failure` through the hook. Never panics: the hook, and the failure's `Display`, are
/// user code, called through `engine::user_code`; this works during thread teardown too.
pub(crate) fn report(failure: &Failure) {
    let local = LOCAL
        .try_with(|l| l.try_borrow().ok().and_then(|l| l.clone()))
        .ok()
        .flatten();
    let outcome = user_code::call(|| {
        if let Some(hook) = local {
            hook(failure);
            return;
        }
        let global = GLOBAL.read().ok().and_then(|g| g.clone());
        match global {
            Some(hook) => hook(failure),
            None => default_report(failure),
        }
    });
    if let Err(payload) = outcome {
        user_code::drop_payload(payload);
        write_stderr(&format!(
            "Unhandled error in Deferred (the unhandled-error hook panicked while reporting it):\n{failure}"
        ));
    }
}
