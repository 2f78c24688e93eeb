// Every handle is invariant in `T`: a `Trigger` for a value that needs a `'static` argument must
// not pass for one that takes any lifetime, or the producer could fire it with a function that
// only accepts `&'static u8`, and the consumer would call it with a shorter borrow.
use defer_core::Trigger;

fn coerce(t: Trigger<fn(&'static u8) -> u8>) -> Trigger<for<'a> fn(&'a u8) -> u8> {
    t
}

fn main() {
    let (_d, t) = defer_core::Deferred::<fn(&'static u8) -> u8>::new();
    drop(coerce(t));
}
