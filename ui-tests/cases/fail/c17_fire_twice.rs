// C17: firing twice is a compile error: Trigger::callback takes the trigger by value.
// Twisted raises AlreadyCalledError at run time for the second callback/errback (CC, CE, EE, EC);
// here the second call is a use of a moved value, whichever of callback/errback comes first.
use defer_core::Deferred;

fn main() {
    let (d, trigger) = Deferred::<&str>::new();
    let _d = d.add_callback(|v| Ok(v.len()));
    trigger.callback("hello");
    trigger.errback(std::fmt::Error);
}
