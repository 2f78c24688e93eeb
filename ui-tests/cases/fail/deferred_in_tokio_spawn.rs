// Pins: a Deferred moved into `tokio::spawn` does not compile (a Deferred is
// `!Send`); the error is at the `tokio::spawn` call and names the Deferred held
// across the await. The rustdoc of `Deferred` and the README say what to use
// instead: `spawn_local` in a `LocalSet`, or `defer_core::tokio::react`.
use defer_core::Deferred;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let (d, trigger) = Deferred::<u32>::new();
        let task = tokio::spawn(async move { d.await.is_ok() });
        trigger.callback(1);
        let _ = task.await;
    });
}
