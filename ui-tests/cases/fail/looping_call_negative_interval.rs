// Twisted's LoopTests.testBadDelay: `lc.start(-1)` raises ValueError at run time. A LoopingCall's
// interval is a `Duration`, which cannot be negative: neither a negative number of seconds nor a
// negative Duration can be written.
use defer_core::task::{Clock, LoopingCall};
use std::time::Duration;

fn main() {
    let lc = LoopingCall::new(Clock::new(), || Ok(()));
    let _ = lc.start(-1, true);
    let _ = lc.start(-Duration::from_secs(1), true);
}
