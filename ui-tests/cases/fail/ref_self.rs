// Pins: `&self` is rejected at the receiver: the Deferred outlives the call.
use defer_core::{Deferred, inline_callbacks, yield_};

struct Client {
    base: u32,
}

impl Client {
    #[inline_callbacks]
    fn get(&self, d: Deferred<u32>) -> Deferred<u32> {
        Ok(self.base + yield_!(d)?)
    }
}

fn main() {
    let _ = Client { base: 1 }.get(defer_core::succeed(1));
}
