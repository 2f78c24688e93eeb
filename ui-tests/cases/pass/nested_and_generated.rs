// Pins: an `#[inline_callbacks]` fn nested in another one's body keeps its
// own `yield_!`s; `macro_rules!` can generate `#[inline_callbacks]`
// functions; `yield_!` can be invoked by its full path without an import;
// raw identifiers as names; `let else` around a `yield_!`; and `yield_!` in
// a nested item's own `#[inline_callbacks]` method.
#![deny(warnings)]
use defer_core::testing::success_result_of;
use defer_core::{Deferred, inline_callbacks, succeed};

#[inline_callbacks]
fn outer(d: Deferred<u32>) -> Deferred<u32> {
    #[inline_callbacks]
    fn inner(d: Deferred<u32>) -> Deferred<u32> {
        Ok(defer_core::yield_!(d)? * 10)
    }

    struct Local;
    impl Local {
        #[inline_callbacks]
        fn get(self, d: Deferred<u32>) -> Deferred<u32> {
            Ok(defer_core::yield_!(d)? + 1)
        }
    }

    let a = defer_core::yield_!(inner(d))?;
    let b = defer_core::yield_!(Local.get(succeed(a)))?;
    Ok(b)
}

macro_rules! getter {
    ($name:ident, $add:expr) => {
        #[inline_callbacks]
        fn $name(d: Deferred<u32>) -> Deferred<u32> {
            Ok(defer_core::yield_!(d)? + $add)
        }
    };
}

getter!(add_two, 2);

#[inline_callbacks]
fn r#match(d: Deferred<Option<u32>>) -> Deferred<u32> {
    let Some(v) = defer_core::yield_!(d)? else {
        return Ok(0);
    };
    Ok(v)
}

fn main() {
    assert_eq!(success_result_of(outer(succeed(4))), 41);
    assert_eq!(success_result_of(add_two(succeed(1))), 3);
    assert_eq!(success_result_of(r#match(succeed(Some(7)))), 7);
    assert_eq!(success_result_of(r#match(succeed(None))), 0);
}
