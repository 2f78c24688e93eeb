// Every handle is invariant in `T`: the future of a `Deferred` of a function that takes any
// lifetime must not pass for the future of one that needs `'static` (nor the other way).
use defer_core::DeferredFuture;

fn coerce(f: DeferredFuture<for<'a> fn(&'a u8) -> u8>) -> DeferredFuture<fn(&'static u8) -> u8> {
    f
}

fn main() {
    let (d, _t) = defer_core::Deferred::<for<'a> fn(&'a u8) -> u8>::new();
    drop(coerce(std::future::IntoFuture::into_future(d)));
}
