//! `FilesystemLock` and `DeferredFilesystemLock` between two real processes: this test binary
//! re-runs itself as the other process (`support/child_process.rs`), and the two coordinate
//! through marker files next to the lock.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use defer_core::clock::Clock;
use defer_core::filesystem_lock::{FilesystemLock, UnlockError, is_locked};
use defer_core::testing::{assert_no_result, failure_result_of};
use defer_core::{DeferredFilesystemLock, errors::TimeoutError};

#[path = "support/child_process.rs"]
mod child_process;
use child_process::{CHILD_ENV, DONE_MARKER, is_child_for};

/// Where the parent tells the child which lock to use.
const LOCK_ENV: &str = "DEFER_FSLOCK_PATH";

fn fresh_lock_path(tag: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "defer-fslock-{tag}-{}-{:?}",
        std::process::id(),
        Instant::now()
    ));
    for p in [
        path.clone(),
        with_suffix(&path, "held"),
        with_suffix(&path, "go"),
    ] {
        let _ = std::fs::remove_file(p);
    }
    path
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

/// Waits (for real) until `cond` holds, at most 30 s.
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

fn lock_path_in_child() -> PathBuf {
    PathBuf::from(std::env::var(LOCK_ENV).expect("the parent names the lock"))
}

#[test]
fn a_lock_held_by_a_live_process_is_not_taken_until_that_process_unlocks_it() {
    const NAME: &str = "a_lock_held_by_a_live_process_is_not_taken_until_that_process_unlocks_it";
    if is_child_for(NAME) {
        // The other process: take the lock, say so, hold it until told, unlock.
        let path = lock_path_in_child();
        let mut lock = FilesystemLock::new(&path);
        assert!(lock.lock().unwrap(), "the child takes the free lock");
        std::fs::write(with_suffix(&path, "held"), "").unwrap();
        wait_for("the parent's go", || with_suffix(&path, "go").exists());
        lock.unlock().unwrap();
        eprintln!("{DONE_MARKER}");
        return;
    }
    let path = fresh_lock_path("live");
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, NAME)
        .env(LOCK_ENV, &path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the child to hold the lock", || {
        with_suffix(&path, "held").exists()
    });

    // Held by a live process: not taken, not broken, and not ours to unlock.
    let mut mine = FilesystemLock::new(&path);
    assert!(!mine.lock().unwrap());
    assert!(!mine.is_locked());
    assert!(is_locked(&path).unwrap());
    assert!(matches!(mine.unlock(), Err(UnlockError::NotOwned { .. })));
    assert!(
        path.symlink_metadata().is_ok(),
        "the child's lock is still there"
    );

    // A timeout runs out while the child holds it.
    let clock = Clock::new();
    let deferred_lock = DeferredFilesystemLock::new(&path, clock.clone());
    let d = deferred_lock.defer_until_locked(Some(Duration::from_secs(2)));
    clock.pump([Duration::from_secs(1); 2]);
    assert!(failure_result_of(d).check::<TimeoutError>());

    // Then it waits, retrying, until the child unlocks.
    let d = deferred_lock.defer_until_locked(None);
    assert_no_result(&d);
    std::fs::write(with_suffix(&path, "go"), "").unwrap();
    let fired = std::rc::Rc::new(std::cell::Cell::new(false));
    let f = fired.clone();
    let d = d.add_callback(move |()| {
        f.set(true);
        Ok(())
    });
    wait_for("the lock to be taken", || {
        clock.advance(Duration::from_secs(1));
        fired.get()
    });
    drop(d);
    assert!(deferred_lock.is_locked());
    assert_eq!(
        deferred_lock.clean(),
        Some(true),
        "the child unlocked it cleanly"
    );

    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains(DONE_MARKER),
        "child: {stderr}"
    );
    deferred_lock.unlock().unwrap();
    assert!(!is_locked(&path).unwrap());
    for p in [with_suffix(&path, "held"), with_suffix(&path, "go")] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn a_lock_left_by_a_process_that_died_is_broken_and_not_clean() {
    const NAME: &str = "a_lock_left_by_a_process_that_died_is_broken_and_not_clean";
    if is_child_for(NAME) {
        // Take the lock and exit without unlocking it.
        let mut lock = FilesystemLock::new(lock_path_in_child());
        assert!(lock.lock().unwrap());
        eprintln!("{DONE_MARKER}");
        return;
    }
    let path = fresh_lock_path("stale");
    let path_str = path.to_str().unwrap().to_owned();
    let out = child_process::spawn_child(NAME, Duration::from_secs(60), &[(LOCK_ENV, &path_str)])
        .expect("the child ends");
    assert!(out.succeeded(), "child: {}", out.diagnosis());
    assert!(
        path.symlink_metadata().is_ok(),
        "the dead child's lock is left behind"
    );
    if !Path::new("/proc/self").exists() {
        // Liveness cannot be checked here: the lock is never taken as stale.
        assert!(!FilesystemLock::new(&path).lock().unwrap());
        std::fs::remove_file(&path).unwrap();
        return;
    }
    let clock = Clock::new();
    let lock = DeferredFilesystemLock::new(&path, clock);
    defer_core::testing::success_result_of(lock.defer_until_locked(None));
    assert!(lock.is_locked());
    assert_eq!(lock.clean(), Some(false), "broken, not released cleanly");
    lock.unlock().unwrap();
}

#[test]
fn a_lock_held_by_this_process_is_not_taken_by_another() {
    const NAME: &str = "a_lock_held_by_this_process_is_not_taken_by_another";
    if is_child_for(NAME) {
        let path = lock_path_in_child();
        let mut lock = FilesystemLock::new(&path);
        assert!(!lock.lock().unwrap(), "the parent holds it");
        assert!(is_locked(&path).unwrap());
        assert!(matches!(lock.unlock(), Err(UnlockError::NotOwned { .. })));
        eprintln!("{DONE_MARKER}");
        return;
    }
    let path = fresh_lock_path("parent");
    let mut lock = FilesystemLock::new(&path);
    assert!(lock.lock().unwrap());
    let path_str = path.to_str().unwrap().to_owned();
    let out = child_process::spawn_child(NAME, Duration::from_secs(60), &[(LOCK_ENV, &path_str)])
        .expect("the child ends");
    assert!(
        out.succeeded(),
        "child: {}\n{}",
        out.diagnosis(),
        out.stderr
    );
    assert!(lock.is_locked());
    lock.unlock().unwrap();
}

// ---- one process: how an attempt ends --------------------------------------------------------

#[test]
fn retries_stop_without_taking_the_lock_once_the_deferred_is_dropped() {
    let path = fresh_lock_path("dropped");
    let clock = Clock::new();
    let holder = DeferredFilesystemLock::new(&path, clock.clone());
    assert!(holder.lock().unwrap());
    let waiter = DeferredFilesystemLock::new(&path, clock.clone());
    drop(waiter.defer_until_locked(None));
    holder.unlock().unwrap();
    clock.advance(Duration::from_secs(1));
    assert!(
        !waiter.is_locked(),
        "nobody listened: the lock was not taken"
    );
    assert!(waiter.try_lock_call().is_none());
    assert!(!is_locked(&path).unwrap());
}

#[test]
fn dropping_the_last_handle_stops_the_attempt_and_fails_its_deferred() {
    let path = fresh_lock_path("handle");
    let clock = Clock::new();
    let holder = DeferredFilesystemLock::new(&path, clock.clone());
    assert!(holder.lock().unwrap());
    let waiter = DeferredFilesystemLock::new(&path, clock.clone());
    let d = waiter.defer_until_locked(Some(Duration::from_secs(5)));
    drop(waiter);
    assert!(failure_result_of(d).check::<defer_core::errors::TriggerDropped>());
    assert!(
        clock.pending_calls().is_empty(),
        "the retry and the timeout were cancelled"
    );
    holder.unlock().unwrap();
}

#[test]
fn a_filesystem_error_fails_the_attempt() {
    let dir = fresh_lock_path("missing-dir");
    let lock = DeferredFilesystemLock::new(dir.join("lock"), Clock::new());
    let f = failure_result_of(lock.defer_until_locked(None));
    let e = f.downcast_ref::<std::io::Error>().expect("an io::Error");
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    assert!(lock.try_lock_call().is_none(), "no retry after an error");
}

#[test]
fn a_cancel_whose_last_try_takes_the_lock_succeeds() {
    let path = fresh_lock_path("cancel-wins");
    let clock = Clock::new();
    let holder = DeferredFilesystemLock::new(&path, clock.clone());
    assert!(holder.lock().unwrap());
    let waiter = DeferredFilesystemLock::new(&path, clock.clone());
    let d = waiter.defer_until_locked(None);
    holder.unlock().unwrap();
    d.cancel(); // Twisted's _cancelLock tries once more, and the lock is free
    defer_core::testing::success_result_of(d);
    assert!(waiter.is_locked());
    waiter.unlock().unwrap();
}

#[test]
fn a_timeout_whose_last_try_takes_the_lock_succeeds() {
    let path = fresh_lock_path("timeout-wins");
    let clock = Clock::new();
    let holder = DeferredFilesystemLock::new(&path, clock.clone());
    assert!(holder.lock().unwrap());
    let waiter = DeferredFilesystemLock::new(&path, clock.clone());
    waiter.set_interval(Duration::from_secs(10));
    let d = waiter.defer_until_locked(Some(Duration::from_secs(2)));
    let h = holder.clone();
    clock.call_later(Duration::from_secs(1), move || h.unlock().unwrap());
    clock.advance(Duration::from_secs(1));
    assert_no_result(&d);
    clock.advance(Duration::from_secs(1)); // the timeout's last try
    defer_core::testing::success_result_of(d);
    assert!(waiter.is_locked());
    assert!(clock.pending_calls().is_empty(), "the retry was cancelled");
    waiter.unlock().unwrap();
}
