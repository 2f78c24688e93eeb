// Pins: the attribute on anything but a function is rejected at the item.
use defer_core::inline_callbacks;

#[inline_callbacks]
struct Client {
    base: u32,
}

#[inline_callbacks]
impl Client {}

fn main() {
    let _ = Client { base: 1 }.base;
}
