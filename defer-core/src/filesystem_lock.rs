//! [`FilesystemLock`]: Twisted's `twisted.python.lockfile`, a mutex between processes made of one
//! entry in the filesystem. [`DeferredFilesystemLock`](crate::DeferredFilesystemLock) waits for it
//! with a Deferred.
//!
//! **The lock file.** On unix the lock is a symbolic link whose target is the owner's process id
//! (the target need not exist): creating a symlink is atomic and fails if the name exists, and so
//! is removing it. Elsewhere it is a file created with `create_new` and holding the owner's pid;
//! while it is being written it reads empty, which counts as held.
//!
//! **Stale locks.** A lock whose owner has died is broken (removed) and taken, and
//! [`clean`](FilesystemLock::clean) then says `Some(false)`. Liveness has `kill(pid, 0)`'s
//! meaning: on Linux (and any system with a `/proc` file system) a process is alive while
//! `/proc/<pid>` exists, zombies included. Where there is no `/proc`, liveness cannot be checked
//! with the standard library alone, and a held lock is never taken as stale: this is what
//! Twisted does on Windows without pywin32 (`kill = None`). As in Twisted, there is a window
//! between reading a stale owner and removing its link in which another process may break and
//! take the same lock; two processes breaking one stale lock at the same moment can both win.
//!
//! **Dropping** a `FilesystemLock` does not unlock it, as in Twisted: the entry stays until
//! [`unlock`](FilesystemLock::unlock), and once this process has exited another one breaks it as
//! stale.
//!
//! ```
//! use defer_core::filesystem_lock::{FilesystemLock, is_locked};
//!
//! let name = std::env::temp_dir().join(format!("defer-doc-fslock-{}", std::process::id()));
//! let mut lock = FilesystemLock::new(&name);
//! assert!(lock.lock().unwrap());               // taken
//! assert!(lock.is_locked());
//! assert_eq!(lock.clean(), Some(true));        // nobody had left it behind
//! assert!(is_locked(&name).unwrap());          // seen from another FilesystemLock
//! assert!(!FilesystemLock::new(&name).lock().unwrap()); // this process holds it: not taken
//! lock.unlock().unwrap();
//! assert!(!is_locked(&name).unwrap());
//! ```

use std::error::Error;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A mutex between processes, held through one entry in the filesystem: Twisted's
/// `FilesystemLock`. See the [module docs](self) for what the entry is and how stale locks are
/// broken.
///
/// [`lock`](FilesystemLock::lock) never waits: it takes the lock or says it is held.
/// [`DeferredFilesystemLock::defer_until_locked`](crate::DeferredFilesystemLock::defer_until_locked)
/// retries on a scheduler.
///
/// ```
/// use defer_core::filesystem_lock::FilesystemLock;
/// let name = std::env::temp_dir().join(format!("defer-doc-fslock-type-{}", std::process::id()));
/// let mut lock = FilesystemLock::new(&name);
/// assert_eq!(lock.clean(), None);              // meaningful once lock() has returned true
/// assert!(lock.lock().unwrap());
/// lock.unlock().unwrap();
/// assert!(!lock.is_locked());
/// ```
#[derive(Debug)]
pub struct FilesystemLock {
    name: PathBuf,
    locked: bool,
    clean: Option<bool>,
}

impl FilesystemLock {
    /// A lock on the entry `name` (not touched until [`lock`](FilesystemLock::lock)).
    ///
    /// ```
    /// let lock = defer_core::filesystem_lock::FilesystemLock::new("/tmp/some.lock");
    /// assert_eq!(lock.name(), std::path::Path::new("/tmp/some.lock"));
    /// assert!(!lock.is_locked());
    /// ```
    pub fn new(name: impl Into<PathBuf>) -> Self {
        FilesystemLock {
            name: name.into(),
            locked: false,
            clean: None,
        }
    }

    /// The path of the lock's entry (Twisted's `name`).
    ///
    /// ```
    /// let lock = defer_core::filesystem_lock::FilesystemLock::new("x.lock");
    /// assert_eq!(lock.name().to_str(), Some("x.lock"));
    /// ```
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// Whether this object holds the lock (Twisted's `locked`).
    ///
    /// ```
    /// let lock = defer_core::filesystem_lock::FilesystemLock::new("never-taken.lock");
    /// assert!(!lock.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.locked
    }

    /// Whether the last owner had released the lock cleanly: `Some(false)` if [`lock`] had to
    /// break a stale lock left by a dead process. `None` until `lock` has returned `true`.
    ///
    /// [`lock`]: FilesystemLock::lock
    ///
    /// ```
    /// let lock = defer_core::filesystem_lock::FilesystemLock::new("never-taken.lock");
    /// assert_eq!(lock.clean(), None);
    /// ```
    pub fn clean(&self) -> Option<bool> {
        self.clean
    }

    /// Tries to take the lock, without waiting: `Ok(true)` if it is now this object's,
    /// `Ok(false)` if a live process (this one included) holds it. A lock held by a process that
    /// has died is broken and taken. Any other filesystem error is returned, as is an entry that
    /// does not hold a process id (`InvalidData`).
    ///
    /// ```
    /// use defer_core::filesystem_lock::FilesystemLock;
    /// let name = std::env::temp_dir().join(format!("defer-doc-fslock-lock-{}", std::process::id()));
    /// let mut a = FilesystemLock::new(&name);
    /// let mut b = FilesystemLock::new(&name);
    /// assert!(a.lock().unwrap());
    /// assert!(!b.lock().unwrap());
    /// a.unlock().unwrap();
    /// assert!(b.lock().unwrap());
    /// b.unlock().unwrap();
    /// ```
    pub fn lock(&mut self) -> io::Result<bool> {
        let mut clean = true;
        loop {
            match entry::create(&self.name, &std::process::id().to_string()) {
                Ok(()) => {
                    self.locked = true;
                    self.clean = Some(clean);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            let owner = match entry::read(&self.name) {
                Ok(owner) => owner,
                // The lock vanished in between: try to claim it again.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let Some(owner) = owner else {
                // Being written by its new owner: held.
                return Ok(false);
            };
            let pid = parse_pid(&owner).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("lock {:?} holds {owner:?}, not a process id", self.name),
                )
            })?;
            if process_alive(pid) != Some(false) {
                return Ok(false);
            }
            // The owner has died: break the lock, and race for it on the next turn.
            match entry::remove(&self.name) {
                Ok(()) => clean = false,
                // Another process broke it first.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Releases the lock: removes the entry. Fails with [`UnlockError::NotOwned`] if the entry
    /// names another process, and with [`UnlockError::Io`] if it cannot be read or removed (it
    /// does not exist, say). As in Twisted, any `FilesystemLock` of the owning process may
    /// unlock it.
    ///
    /// ```
    /// use defer_core::filesystem_lock::{FilesystemLock, UnlockError};
    /// let name = std::env::temp_dir().join(format!("defer-doc-fslock-unlock-{}", std::process::id()));
    /// let mut lock = FilesystemLock::new(&name);
    /// assert!(matches!(lock.unlock(), Err(UnlockError::Io(_))));   // nothing to unlock
    /// assert!(lock.lock().unwrap());
    /// lock.unlock().unwrap();
    /// ```
    pub fn unlock(&mut self) -> Result<(), UnlockError> {
        let owner = entry::read(&self.name)?.unwrap_or_default();
        if parse_pid(&owner) != Some(std::process::id()) {
            return Err(UnlockError::NotOwned {
                name: self.name.clone(),
                owner,
            });
        }
        entry::remove(&self.name)?;
        self.locked = false;
        Ok(())
    }
}

/// Whether the lock `name` is held by a live process (this one included): Twisted's
/// `isLocked`. It takes the lock and releases it at once if it was free (breaking it if stale).
///
/// ```
/// use defer_core::filesystem_lock::is_locked;
/// let name = std::env::temp_dir().join(format!("defer-doc-is-locked-{}", std::process::id()));
/// assert!(!is_locked(&name).unwrap());
/// assert!(!name.exists());                     // left as it was found
/// ```
pub fn is_locked(name: impl AsRef<Path>) -> io::Result<bool> {
    let mut lock = FilesystemLock::new(name.as_ref());
    if lock.lock()? {
        lock.unlock().map_err(io::Error::other)?;
        Ok(false)
    } else {
        Ok(true)
    }
}

fn parse_pid(owner: &str) -> Option<u32> {
    owner.trim().parse().ok()
}

/// Whether process `pid` exists, as `kill(pid, 0)` would say; `None` where that cannot be known
/// (no `/proc`).
fn process_alive(pid: u32) -> Option<bool> {
    if !cfg!(unix) || !Path::new("/proc/self").exists() {
        return None;
    }
    Some(Path::new("/proc").join(pid.to_string()).exists())
}

/// The lock's entry: a symlink to the pid on unix, a file holding it elsewhere.
mod entry {
    use std::io;
    use std::path::Path;

    /// Creates the entry holding `owner`; `AlreadyExists` if there is one.
    #[cfg(unix)]
    pub(super) fn create(name: &Path, owner: &str) -> io::Result<()> {
        std::os::unix::fs::symlink(owner, name)
    }

    /// The owner the entry names; `None` if it is still being written.
    #[cfg(unix)]
    pub(super) fn read(name: &Path) -> io::Result<Option<String>> {
        let target = std::fs::read_link(name)?;
        Ok(Some(target.to_string_lossy().into_owned()))
    }

    #[cfg(not(unix))]
    pub(super) fn create(name: &Path, owner: &str) -> io::Result<()> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(name)?;
        file.write_all(owner.as_bytes())?;
        file.sync_all()
    }

    #[cfg(not(unix))]
    pub(super) fn read(name: &Path) -> io::Result<Option<String>> {
        let owner = std::fs::read_to_string(name)?;
        Ok(if owner.is_empty() { None } else { Some(owner) })
    }

    pub(super) fn remove(name: &Path) -> io::Result<()> {
        std::fs::remove_file(name)
    }
}

/// [`FilesystemLock::unlock`] failed (Twisted raises `ValueError` or `OSError`).
///
/// ```
/// use defer_core::filesystem_lock::UnlockError;
/// let e = UnlockError::NotOwned { name: "a.lock".into(), owner: "1".into() };
/// assert_eq!(e.to_string(), "lock \"a.lock\" not owned by this process (owner \"1\")");
/// ```
#[derive(Debug)]
pub enum UnlockError {
    /// The lock's entry names another process (Twisted's `ValueError`).
    NotOwned {
        /// The lock's path.
        name: PathBuf,
        /// What the entry holds.
        owner: String,
    },
    /// The entry could not be read or removed.
    Io(io::Error),
}

impl From<io::Error> for UnlockError {
    fn from(e: io::Error) -> Self {
        UnlockError::Io(e)
    }
}

impl fmt::Display for UnlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnlockError::NotOwned { name, owner } => {
                write!(
                    f,
                    "lock {name:?} not owned by this process (owner {owner:?})"
                )
            }
            UnlockError::Io(e) => write!(f, "could not unlock: {e}"),
        }
    }
}

impl Error for UnlockError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            UnlockError::NotOwned { .. } => None,
            UnlockError::Io(e) => Some(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_name(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("defer-unit-fslock-{tag}-{}", std::process::id()))
    }

    #[test]
    fn a_stale_lock_of_a_dead_process_is_broken_and_not_clean() {
        let name = temp_name("stale");
        let _ = std::fs::remove_file(&name);
        // No process has pid u32::MAX - 1 (pids are at most 2^22 on Linux).
        entry::create(&name, &(u32::MAX - 1).to_string()).unwrap();
        let mut lock = FilesystemLock::new(&name);
        assert_eq!(lock.lock().unwrap(), process_alive(u32::MAX - 1).is_some());
        if lock.is_locked() {
            assert_eq!(lock.clean(), Some(false));
            lock.unlock().unwrap();
        } else {
            std::fs::remove_file(&name).unwrap();
        }
    }

    #[test]
    fn an_entry_that_is_not_a_pid_is_invalid_data() {
        let name = temp_name("garbage");
        let _ = std::fs::remove_file(&name);
        entry::create(&name, "not a pid").unwrap();
        let err = FilesystemLock::new(&name).lock().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let unlock = FilesystemLock::new(&name).unlock().unwrap_err();
        assert!(matches!(unlock, UnlockError::NotOwned { ref owner, .. } if owner == "not a pid"));
        std::fs::remove_file(&name).unwrap();
    }

    #[test]
    fn this_process_is_alive() {
        if Path::new("/proc/self").exists() {
            assert_eq!(process_alive(std::process::id()), Some(true));
        }
    }
}
