// C34: a step cannot return the Deferred it is attached to (Twisted warns "Callback returned the
// Deferred it was attached to" and the chain hangs): add_callback takes the handle by value, so
// the step cannot also capture it. (Smuggled in through a RefCell, it fails at run time with
// errors::CircularChainError: see tests/tests/core_chaining.rs.)
use defer_core::Deferred;

fn main() {
    let (d, trigger) = Deferred::<i32>::new();
    let _d = d.add_callback(move |_| d);
    trigger.callback(1);
}
