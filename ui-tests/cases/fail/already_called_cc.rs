// AlreadyCalledTests.testAlreadyCalled_CC, testAlreadyCalledDebug_CC: in Twisted the second fire
// (`call_2`) raises AlreadyCalledError, whose debug text names where the Deferred was created
// and its first invoker (`call_1`), not the second. Here the second fire does not compile:
// callback and errback take the Trigger by value. The error is at the second fire, and names the
// same two places: where the trigger was made and the first fire, which moved it.
use defer_core::{Deferred, Trigger};

fn call_1(d: Trigger<&'static str>) {
    d.callback("hello");
}

fn call_2(d: Trigger<&'static str>) {
    d.callback("twice");
}

fn main() {
    let (d, trigger) = Deferred::<&'static str>::new();
    let _d = d.add_callbacks(|_| Ok(()), |_| Ok(()));
    call_1(trigger);
    call_2(trigger);
}
