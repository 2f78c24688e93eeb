//! Runs one test's scenario in a child process, so that a stack overflow, an abort or a hang
//! fails that test alone instead of taking the whole test binary down (or stalling it).
//!
//! The parent re-executes the test binary (`std::env::current_exe()`) with
//! `--exact <name> --nocapture --test-threads=1` and the environment variable [`CHILD_ENV`] set
//! to the test's name. In the child, the same test function calls [`run_in_child`] again, which
//! sees the variable and runs the scenario directly. After the scenario returns, the child prints
//! [`DONE_MARKER`] on stderr; the parent requires it, so a misspelt test name (which would make
//! the child run no test at all and still exit successfully) fails instead of passing.
//!
//! ```ignore
//! #[test]
//! fn deep_thing() {
//!     child_process::assert_child_succeeds("deep_thing", Duration::from_secs(60), || {
//!         /* the scenario */
//!     });
//! }
//! ```

#![allow(dead_code)]

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Set in the child to the name of the test it runs.
pub const CHILD_ENV: &str = "DEFER_CHILD_TEST";

/// Printed on the child's stderr once its scenario is done (by [`run_in_child`] after the body
/// returns, or by [`exit_process`]).
pub const DONE_MARKER: &str = "defer-child-process: scenario finished";

/// Whether this process is the child running test `name`.
pub fn is_child_for(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// What a child process did.
#[derive(Debug)]
pub struct ChildOutput {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote on stdout (the test harness's lines).
    pub stdout: String,
    /// Everything it wrote on stderr (panic messages, the scenario's own lines).
    pub stderr: String,
    /// How long it ran.
    pub elapsed: Duration,
}

impl ChildOutput {
    /// Whether the scenario ran to its end and the process exited successfully.
    pub fn succeeded(&self) -> bool {
        self.status.success() && self.stderr.contains(DONE_MARKER)
    }

    /// A one-line diagnosis of a failed child: stack overflow, abort, panic, signal.
    pub fn diagnosis(&self) -> String {
        let signal = {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                self.status.signal()
            }
            #[cfg(not(unix))]
            {
                None::<i32>
            }
        };
        let mut why = Vec::new();
        if self.stderr.contains("has overflowed its stack") {
            why.push("STACK OVERFLOW".to_owned());
        }
        if self.stderr.contains("aborting") || self.stderr.contains("fatal runtime error") {
            why.push("abort".to_owned());
        }
        if self.stderr.contains("panicked") {
            why.push("panic".to_owned());
        }
        if let Some(s) = signal {
            why.push(format!("killed by signal {s}"));
        }
        if self.status.success() && !self.stderr.contains(DONE_MARKER) {
            why.push(
                "exited successfully without finishing the scenario (wrong test name?)".into(),
            );
        }
        if why.is_empty() {
            why.push(format!("exit status {}", self.status));
        }
        why.join(", ")
    }
}

/// The child was killed after running longer than the timeout.
#[derive(Debug)]
pub struct Hung {
    /// What it had written by then.
    pub stdout: String,
    /// What it had written on stderr by then.
    pub stderr: String,
    /// The timeout.
    pub timeout: Duration,
}

/// The last `max` bytes of `s` (on a char boundary), to keep failure messages readable.
pub fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

fn drain(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// Runs test `name` of this binary in a child process, with `extra_env` set there, and waits for
/// it at most `timeout` (then kills it).
pub fn spawn_child(
    name: &str,
    timeout: Duration,
    extra_env: &[(&str, &str)],
) -> Result<ChildOutput, Hung> {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn the child test process");
    let out = drain(child.stdout.take().expect("piped stdout"));
    let err = drain(child.stderr.take().expect("piped stderr"));
    let mut pause = Duration::from_millis(1);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break Some(status);
        }
        if start.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    };
    let elapsed = start.elapsed();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    match status {
        Some(status) => Ok(ChildOutput {
            status,
            stdout,
            stderr,
            elapsed,
        }),
        None => Err(Hung {
            stdout,
            stderr,
            timeout,
        }),
    }
}

/// In the child for `name`: runs `body`, prints [`DONE_MARKER`] and returns `None`. In the
/// parent: runs `name` in a child process (see [`spawn_child`]) and returns what it did.
pub fn run_in_child(
    name: &str,
    timeout: Duration,
    body: impl FnOnce(),
) -> Option<Result<ChildOutput, Hung>> {
    if is_child_for(name) {
        body();
        eprintln!("{DONE_MARKER}");
        return None;
    }
    Some(spawn_child(name, timeout, &[]))
}

/// [`run_in_child`], failing the test unless the child finished its scenario and exited
/// successfully: the failure message says whether it overflowed its stack, aborted, panicked or
/// hung, with the end of its stderr. Returns the child's output in the parent, `None` in the
/// child.
pub fn assert_child_succeeds(
    name: &str,
    timeout: Duration,
    body: impl FnOnce(),
) -> Option<ChildOutput> {
    let out = run_in_child(name, timeout, body)?;
    match out {
        Err(hung) => panic!(
            "{name}: HUNG: killed after {:?}\n--- child stderr (end) ---\n{}",
            hung.timeout,
            tail(&hung.stderr, 4000)
        ),
        Ok(out) if !out.succeeded() => panic!(
            "{name}: child process failed: {} (after {:.2?})\n--- child stderr (end) ---\n{}\n--- child stdout (end) ---\n{}",
            out.diagnosis(),
            out.elapsed,
            tail(&out.stderr, 4000),
            tail(&out.stdout, 2000),
        ),
        Ok(out) => Some(out),
    }
}

/// For scenarios about process exit: prints [`DONE_MARKER`] and exits the process with `code`
/// from the calling thread, without returning to the test harness. `exit` runs the calling
/// thread's thread-local destructors (glibc's `exit` runs them before the `atexit` handlers), as
/// returning from `main` does for the main thread.
pub fn exit_process(code: i32) -> ! {
    eprintln!("{DONE_MARKER}");
    std::process::exit(code)
}
