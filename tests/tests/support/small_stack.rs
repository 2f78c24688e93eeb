//! `on_small_stack`: runs a scenario on a thread with a 2 MiB stack, Rust's default for spawned
//! threads and a quarter of the main thread's, so that a test proves the scenario does not
//! recurse as deep as its structure.

/// Runs `f` on a new thread named `name` with a 2 MiB stack, and re-raises its panic here, so the
/// test fails with the scenario's own message. A stack overflow aborts the test binary, which
/// fails the test run too.
pub fn on_small_stack_named(name: &str, f: impl FnOnce() + Send + 'static) {
    let joined = std::thread::Builder::new()
        .name(name.into())
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn a thread with a 2 MiB stack")
        .join();
    if let Err(payload) = joined {
        std::panic::resume_unwind(payload);
    }
}

/// [`on_small_stack_named`] with a generic thread name.
#[allow(dead_code)]
pub fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    on_small_stack_named("small-stack", f)
}
