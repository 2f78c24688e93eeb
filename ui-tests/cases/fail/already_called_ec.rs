// AlreadyCalledTests.testAlreadyCalled_EC, testAlreadyCalledDebug_EC: in Twisted the second fire
// (`call_2`) raises AlreadyCalledError, whose debug text names where the Deferred was created
// and its first invoker (`err_1`), not the second. Here the second fire does not compile:
// callback and errback take the Trigger by value. The error is at the second fire, and names the
// same two places: where the trigger was made and the first fire, which moved it.
use defer_core::{Deferred, Failure, Trigger};

fn err_1(d: Trigger<&'static str>) {
    d.errback(Failure::msg("RuntimeError"));
}

fn call_2(d: Trigger<&'static str>) {
    d.callback("twice");
}

fn main() {
    let (d, trigger) = Deferred::<&'static str>::new();
    let _d = d.add_callbacks(|_| Ok(()), |_| Ok(()));
    err_1(trigger);
    call_2(trigger);
}
