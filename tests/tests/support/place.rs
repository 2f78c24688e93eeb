//! `Place`: at most [`AT_ONCE`] million-level scenarios at a time (one peaks at about 320 MB; the
//! harness would otherwise run one per core).

use std::sync::{Condvar, Mutex};

/// How many scenarios may run at once.
pub const AT_ONCE: usize = 2;

static RUNNING: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// Holds one of the [`AT_ONCE`] places while a scenario runs.
pub struct Place;

impl Place {
    /// Waits for a free place and holds it until dropped.
    pub fn take() -> Place {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        while *running >= AT_ONCE {
            running = FREED.wait(running).unwrap_or_else(|e| e.into_inner());
        }
        *running += 1;
        Place
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        FREED.notify_one();
    }
}
