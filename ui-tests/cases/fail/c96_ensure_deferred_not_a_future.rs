// C96: Twisted's `ensureDeferred("something")` raises NotACoroutineError at run time; here a value
// that is not a future is a compile error at the argument.
use defer_core::ensure_deferred;

fn main() {
    let _d = ensure_deferred(5);
}
