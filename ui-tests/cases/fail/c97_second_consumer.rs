// C97: one chain cannot have a second consumer. In Twisted two steps added to one Deferred are
// two links of one chain, so the second consumer sees the first one's return value (None).
// add_callback takes the Deferred by value and returns the next link, so adding a second
// consumer to the same handle is a use of a moved value.
// The same rule covers C25/C27/C28's "first.cb sees None": a Deferred returned from another
// chain's step was moved into that step and cannot get more steps.
use defer_core::{Deferred, succeed};

fn main() {
    let (shared, trigger) = Deferred::<&str>::new();
    let _first = shared.add_callback(|v| Ok(v.len()));
    let _second = shared.add_callback(|v| Ok(v.len()));
    trigger.callback("v");

    let first = succeed(1);
    let (second, trigger) = Deferred::<()>::new();
    let _second = second.add_callback(move |()| first);
    trigger.callback(());
    let _late = first.add_callback(|v| Ok(v + 1));
}
