// Pins: `&mut self` (and `self: &mut Self`) is rejected at the receiver.
use defer_core::{Deferred, inline_callbacks, yield_};

struct Client {
    count: u32,
}

impl Client {
    #[inline_callbacks]
    fn bump(&mut self, d: Deferred<u32>) -> Deferred<u32> {
        self.count += yield_!(d)?;
        Ok(self.count)
    }

    #[inline_callbacks]
    fn bump_typed(self: &mut Self) -> Deferred<u32> {
        Ok(self.count)
    }
}

fn main() {}
