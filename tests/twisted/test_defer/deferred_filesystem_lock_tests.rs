//! Ports of Twisted's `test_defer.py` `DeferredFilesystemLockTests`.
//!
//! Trial waits for the Deferred a test returns; here the clock is pumped and the result taken
//! with `success_result_of` / `failure_result_of`. The lock across two real processes is tested in
//! `tests/tests/filesystem_lock.rs`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use defer_core::clock::Clock;
use defer_core::errors::{AlreadyTryingToLockError, CancelledError, TimeoutError};
use defer_core::testing::{failure_result_of, success_result_of};
use defer_core::{DeferredFilesystemLock, Failure};

/// Twisted's `setUp`: a clock, and a lock on a fresh path (`self.mktemp()`). Unlocks on drop.
struct Fixture {
    clock: Clock,
    lock: DeferredFilesystemLock,
}

fn mktemp() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "defer-twisted-dfslock-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    path
}

fn set_up() -> Fixture {
    let clock = Clock::new();
    let lock = DeferredFilesystemLock::new(mktemp(), clock.clone());
    Fixture { clock, lock }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if self.lock.is_locked() {
            let _ = self.lock.unlock();
        }
    }
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn test_wait_until_locked_with_no_lock() {
    let f = set_up();
    success_result_of(f.lock.defer_until_locked(Some(secs(1.0))));
    assert!(f.lock.is_locked());
}

#[test]
fn test_wait_until_locked_with_timeout_locked() {
    let f = set_up();
    assert!(f.lock.lock().unwrap());
    let d = f.lock.defer_until_locked(Some(secs(5.5)));
    f.clock.pump([secs(1.0); 10]);
    assert!(failure_result_of(d).check::<TimeoutError>());
}

#[test]
fn test_wait_until_locked_with_timeout_unlocked() {
    let f = set_up();
    assert!(f.lock.lock().unwrap());
    let l = f.lock.clone();
    f.clock.call_later(secs(1.0), move || l.unlock().unwrap());
    let d = f.lock.defer_until_locked(Some(secs(10.0)));
    let d = d.add_errback(|f: Failure| -> Result<(), Failure> {
        f.trap::<TimeoutError>()?;
        panic!("Should not have timed out");
    });
    f.clock.pump([secs(1.0); 10]);
    success_result_of(d);
    assert!(f.lock.is_locked());
}

#[test]
fn test_concurrent_usage() {
    let f = set_up();
    assert!(f.lock.lock().unwrap());
    let l = f.lock.clone();
    f.clock.call_later(secs(1.0), move || l.unlock().unwrap());
    let d1 = f.lock.defer_until_locked(None);
    let d2 = f.lock.defer_until_locked(None);
    assert!(failure_result_of(d2).check::<AlreadyTryingToLockError>());
    f.clock.advance(secs(1.0));
    success_result_of(d1);
}

#[test]
fn test_multiple_usages() {
    let f = set_up();
    assert!(f.lock.lock().unwrap());
    let l = f.lock.clone();
    f.clock.call_later(secs(1.0), move || l.unlock().unwrap());
    let l = f.lock.clone();
    let d = f.lock.defer_until_locked(None).add_callback(move |()| {
        // lockAquired: unlock, and wait for the lock again.
        match l.unlock() {
            Ok(()) => l.defer_until_locked(None),
            Err(e) => defer_core::fail(e),
        }
    });
    f.clock.advance(secs(1.0));
    success_result_of(d);
    assert!(f.lock.is_locked());
}

#[test]
fn test_cancel_defer_until_locked() {
    let f = set_up();
    assert!(f.lock.lock().unwrap());
    let deferred = f.lock.defer_until_locked(None);
    let try_lock_call = f.lock.try_lock_call().expect("retrying");
    deferred.cancel();
    assert!(!try_lock_call.active());
    assert!(f.lock.try_lock_call().is_none());
    assert!(failure_result_of(deferred).check::<CancelledError>());
}

#[test]
fn test_cancel_defer_until_locked_with_timeout() {
    let f = set_up();
    assert!(f.lock.lock().unwrap());
    let deferred = f.lock.defer_until_locked(Some(secs(1.0)));
    let timeout_call = f.lock.timeout_call().expect("a timeout is set");
    deferred.cancel();
    assert!(!timeout_call.active());
    assert!(f.lock.timeout_call().is_none());
    assert!(failure_result_of(deferred).check::<CancelledError>());
}
