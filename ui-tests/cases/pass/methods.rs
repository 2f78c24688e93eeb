// Pins: methods taking `self`, `mut self`, `self: Rc<Self>` and
// `self: Box<Self>`, in inherent and trait impls, with `pub` and doc
// comments, compile and run.
#![deny(warnings)]
use std::rc::Rc;

use defer_core::testing::success_result_of;
use defer_core::{Deferred, inline_callbacks, succeed, yield_};

struct Counter {
    start: u32,
}

impl Counter {
    /// Consumes the counter.
    #[inline_callbacks]
    pub fn by_value(self, d: Deferred<u32>) -> Deferred<u32> {
        Ok(self.start + yield_!(d)?)
    }

    #[inline_callbacks]
    fn by_mut_value(mut self) -> Deferred<u32> {
        self.start += yield_!(succeed(1))?;
        Ok(self.start)
    }

    #[inline_callbacks]
    pub(crate) fn shared(self: Rc<Self>) -> Deferred<u32> {
        let v = yield_!(succeed(2))?;
        Ok(self.start * v)
    }

    #[inline_callbacks]
    fn boxed(self: Box<Self>) -> Deferred<u32> {
        Ok(yield_!(succeed(self.start))?)
    }
}

trait Fetch {
    fn fetch(self: Rc<Self>) -> Deferred<String>;
}

impl Fetch for Counter {
    #[inline_callbacks]
    fn fetch(self: Rc<Self>) -> Deferred<String> {
        Ok(format!("{}", yield_!(succeed(self.start))?))
    }
}

fn main() {
    assert_eq!(
        success_result_of(Counter { start: 1 }.by_value(succeed(2))),
        3
    );
    assert_eq!(success_result_of(Counter { start: 1 }.by_mut_value()), 2);
    let shared = Rc::new(Counter { start: 5 });
    assert_eq!(success_result_of(shared.clone().shared()), 10);
    assert_eq!(success_result_of(shared.fetch()), "5");
    assert_eq!(success_result_of(Box::new(Counter { start: 7 }).boxed()), 7);
}
