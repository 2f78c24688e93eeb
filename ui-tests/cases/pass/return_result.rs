// Pins: every `return` of a `Result` still compiles and infers as in a
// function returning that `Result`: `return Ok(v)`, `return Err(e.into())`,
// `return r` of a `Result` variable, `return yield_!(d)`, and a closure's own
// `return` of something else.
#![deny(warnings)]
use defer_core::testing::{failure_result_of, success_result_of};
use defer_core::{Deferred, Failure, inline_callbacks, succeed, yield_};

#[inline_callbacks]
fn pick(which: u8, d: Deferred<u32>) -> Deferred<u32> {
    let double = |x: u32| -> u32 {
        return x * 2;
    };
    match which {
        0 => return Ok(double(1)),
        1 => return Err(std::fmt::Error.into()),
        2 => {
            let r: Result<u32, Failure> = Ok(3);
            return r;
        }
        3 => return yield_!(d),
        _ => {}
    }
    Ok(Default::default())
}

fn main() {
    assert_eq!(success_result_of(pick(0, succeed(0))), 2);
    assert!(failure_result_of(pick(1, succeed(0))).check::<std::fmt::Error>());
    assert_eq!(success_result_of(pick(2, succeed(0))), 3);
    assert_eq!(success_result_of(pick(3, succeed(4))), 4);
    assert_eq!(success_result_of(pick(4, succeed(0))), 0);
}
