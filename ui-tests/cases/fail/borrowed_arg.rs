// Pins: arguments that borrow (`&str`, `Vec<&T>`, a named non-'static
// lifetime) are rejected at the borrowing part of their type, each one.
use defer_core::{Deferred, inline_callbacks, yield_};

struct Parser<'a> {
    text: &'a str,
}

#[inline_callbacks]
fn greet(name: &str, d: Deferred<u32>) -> Deferred<String> {
    Ok(format!("{name}{}", yield_!(d)?))
}

#[inline_callbacks]
fn count<'a>(words: Vec<&'a str>, parser: Parser<'a>) -> Deferred<usize> {
    Ok(words.len() + parser.text.len())
}

fn main() {}
