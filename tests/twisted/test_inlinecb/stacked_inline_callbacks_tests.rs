//! Ports of Twisted's `test_inlinecb.py` `StackedInlineCallbacksTests`: chains of
//! `#[inline_callbacks]` functions (and `async` functions, in the `…Coro` tests) that yield each
//! other and block on Deferreds fired later, in the order Twisted records.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use defer_core::testing::{success_result_of, unhandled_during};
use defer_core::{Deferred, Failure, Trigger, ensure_deferred, inline_callbacks, succeed, yield_};

error_kind!(MyException);

/// What a pending Deferred of the test is to be fired with: `d.callback(x)` or `d.errback(x)`.
enum Fire {
    Value(i32),
    Error(MyException),
}

/// Pending Deferreds with what to fire them with, in order.
type DeferredList = Rc<RefCell<VecDeque<(Trigger<i32>, Fire)>>>;

/// The test's `expectations` and `deferredList`, shared with the functions under test.
#[derive(Clone, Default)]
struct Ctx {
    expectations: Rc<RefCell<Vec<(&'static str, i32)>>>,
    deferred_list: DeferredList,
}

impl Ctx {
    fn expect(&self, what: &'static str, x: i32) {
        self.expectations.borrow_mut().push((what, x));
    }

    /// A pending Deferred, to be fired with `fire` by [`run_callbacks_on_deferreds`](Self::run_callbacks_on_deferreds).
    fn pending(&self, fire: Fire) -> Deferred<i32> {
        let (d, t) = Deferred::new();
        self.deferred_list.borrow_mut().push_back((t, fire));
        d
    }

    /// Twisted's `runCallbacksOnDeferreds`: fires every Deferred of the list in order, including
    /// those appended while it runs (Python's `for` over a list that grows).
    fn run_callbacks_on_deferreds(&self) {
        loop {
            let next = self.deferred_list.borrow_mut().pop_front();
            match next {
                Some((t, Fire::Value(x))) => assert!(t.callback(x)),
                Some((t, Fire::Error(e))) => assert!(t.errback(e)),
                None => break,
            }
        }
    }

    fn expectations(&self) -> Vec<(&'static str, i32)> {
        self.expectations.borrow().clone()
    }
}

/// Runs a test body and fails if it left a failure nobody handled, as trial does.
fn trial(body: impl FnOnce()) {
    let lost = unhandled_during(body);
    assert!(lost.is_empty(), "unhandled failures: {lost:?}");
}

/// The `f1` most tests share: blocks on a Deferred fired later with `x`, then adds 1.
#[inline_callbacks]
fn f1(x: i32, ctx: Ctx) -> Deferred<i32> {
    ctx.expect("f1 enter", x);
    let d = ctx.pending(Fire::Value(x));
    let mut x = yield_!(d)?;
    x += 1;
    ctx.expect("f1 exit", x);
    Ok(x)
}

const SINGLE_YIELD: [(&str, i32); 6] = [
    ("f3 enter", 1),
    ("f2 enter", 1),
    ("f1 enter", 1),
    ("f1 exit", 2),
    ("f2 exit", 4),
    ("f3 exit", 8),
];

#[test]
fn test_non_called_deferred_single_yield() {
    trial(|| {
        #[inline_callbacks]
        fn f2(x: i32, ctx: Ctx) -> Deferred<i32> {
            ctx.expect("f2 enter", x);
            let mut x = yield_!(f1(x, ctx.clone()))?;
            x += 2;
            ctx.expect("f2 exit", x);
            Ok(x)
        }
        #[inline_callbacks]
        fn f3(x: i32, ctx: Ctx) -> Deferred<i32> {
            ctx.expect("f3 enter", x);
            let mut x = yield_!(f2(x, ctx.clone()))?;
            x += 4;
            ctx.expect("f3 exit", x);
            Ok(x)
        }
        let ctx = Ctx::default();
        let res = f3(1, ctx.clone());
        ctx.run_callbacks_on_deferreds();
        assert_eq!(success_result_of(res), 8);
        assert_eq!(ctx.expectations(), SINGLE_YIELD);
    });
}

#[test]
fn test_non_called_deferred_single_yield_coro() {
    trial(|| {
        async fn f2(x: i32, ctx: Ctx) -> Result<i32, Failure> {
            ctx.expect("f2 enter", x);
            let mut x = f1(x, ctx.clone()).await?;
            x += 2;
            ctx.expect("f2 exit", x);
            Ok(x)
        }
        #[inline_callbacks]
        fn f3(x: i32, ctx: Ctx) -> Deferred<i32> {
            ctx.expect("f3 enter", x);
            let mut x = yield_!(ensure_deferred(f2(x, ctx.clone())))?;
            x += 4;
            ctx.expect("f3 exit", x);
            // returnValue(x)
            return Ok(x);
        }
        let ctx = Ctx::default();
        let res = f3(1, ctx.clone());
        ctx.run_callbacks_on_deferreds();
        assert_eq!(success_result_of(res), 8);
        assert_eq!(ctx.expectations(), SINGLE_YIELD);
    });
}

const MULTIPLE_YIELDS: [(&str, i32); 26] = [
    ("f3 enter", 1),
    ("f2 enter", 1),
    ("f1 enter", 1),
    ("f1 exit", 2),
    ("f1 enter", 2),
    ("f1 exit", 3),
    ("f1 enter", 3),
    ("f1 exit", 4),
    ("f2 exit", 6),
    ("f2 enter", 6),
    ("f1 enter", 6),
    ("f1 exit", 7),
    ("f1 enter", 7),
    ("f1 exit", 8),
    ("f1 enter", 8),
    ("f1 exit", 9),
    ("f2 exit", 11),
    ("f2 enter", 11),
    ("f1 enter", 11),
    ("f1 exit", 12),
    ("f1 enter", 12),
    ("f1 exit", 13),
    ("f1 enter", 13),
    ("f1 exit", 14),
    ("f2 exit", 16),
    ("f3 exit", 20),
];

#[test]
fn test_non_called_deferred_multiple_yields() {
    trial(|| {
        #[inline_callbacks]
        fn f2(x: i32, ctx: Ctx) -> Deferred<i32> {
            ctx.expect("f2 enter", x);
            let x = yield_!(f1(x, ctx.clone()))?;
            let x = yield_!(f1(x, ctx.clone()))?;
            let mut x = yield_!(f1(x, ctx.clone()))?;
            x += 2;
            ctx.expect("f2 exit", x);
            Ok(x)
        }
        #[inline_callbacks]
        fn f3(x: i32, ctx: Ctx) -> Deferred<i32> {
            ctx.expect("f3 enter", x);
            let x = yield_!(f2(x, ctx.clone()))?;
            let x = yield_!(f2(x, ctx.clone()))?;
            let mut x = yield_!(f2(x, ctx.clone()))?;
            x += 4;
            ctx.expect("f3 exit", x);
            Ok(x)
        }
        let ctx = Ctx::default();
        let res = f3(1, ctx.clone());
        ctx.run_callbacks_on_deferreds();
        assert_eq!(success_result_of(res), 20);
        assert_eq!(ctx.expectations(), MULTIPLE_YIELDS);
    });
}

#[test]
fn test_non_called_deferred_multiple_yields_coro() {
    trial(|| {
        async fn f2(x: i32, ctx: Ctx) -> Result<i32, Failure> {
            ctx.expect("f2 enter", x);
            let x = f1(x, ctx.clone()).await?;
            let x = f1(x, ctx.clone()).await?;
            let mut x = f1(x, ctx.clone()).await?;
            x += 2;
            ctx.expect("f2 exit", x);
            Ok(x)
        }
        #[inline_callbacks]
        fn f3(x: i32, ctx: Ctx) -> Deferred<i32> {
            ctx.expect("f3 enter", x);
            let x = yield_!(ensure_deferred(f2(x, ctx.clone())))?;
            let x = yield_!(ensure_deferred(f2(x, ctx.clone())))?;
            let mut x = yield_!(ensure_deferred(f2(x, ctx.clone())))?;
            x += 4;
            ctx.expect("f3 exit", x);
            return Ok(x);
        }
        let ctx = Ctx::default();
        let res = f3(1, ctx.clone());
        ctx.run_callbacks_on_deferreds();
        assert_eq!(success_result_of(res), 20);
        assert_eq!(ctx.expectations(), MULTIPLE_YIELDS);
    });
}

/// The plain (not inline) `f2` of the `intermediateAddCallbacks` tests, added with `addCallback`.
fn plain_f2(x: i32, ctx: &Ctx) -> i32 {
    ctx.expect("f2 enter", x);
    let x = x + 2;
    ctx.expect("f2 exit", x);
    x
}

#[test]
fn test_intermediate_add_callbacks_and_no_waiting() {
    trial(|| {
        #[inline_callbacks]
        fn f1(x: i32, ctx: Ctx) -> Deferred<i32> {
            ctx.expect("f1 enter", x);
            // `x = yield x`: a plain value.
            let mut x = yield_!(succeed(x))?;
            x += 1;
            ctx.expect("f1 exit", x);
            Ok(x)
        }
        #[inline_callbacks]
        fn f3(x: i32, ctx: Ctx) -> Deferred<i32> {
            ctx.expect("f3 enter", x);
            let c = ctx.clone();
            let d = f1(x, ctx.clone()).add_callback(move |x| Ok(plain_f2(x, &c)));
            let mut x = yield_!(d)?;
            x += 4;
            ctx.expect("f3 exit", x);
            Ok(x)
        }
        let ctx = Ctx::default();
        assert_eq!(success_result_of(f3(1, ctx.clone())), 8);
        assert_eq!(
            ctx.expectations(),
            [
                ("f3 enter", 1),
                ("f1 enter", 1),
                ("f1 exit", 2),
                ("f2 enter", 2),
                ("f2 exit", 4),
                ("f3 exit", 8),
            ]
        );
    });
}

#[test]
fn test_intermediate_add_callbacks_and_with_waiting_first_yield() {
    trial(|| {
        #[inline_callbacks]
        fn f3(x: i32, ctx: Ctx) -> Deferred<i32> {
            ctx.expect("f3 enter", x);
            let c = ctx.clone();
            let d = f1(x, ctx.clone()).add_callback(move |x| Ok(plain_f2(x, &c)));
            let mut x = yield_!(d)?;
            x += 4;
            ctx.expect("f3 exit", x);
            Ok(x)
        }
        let ctx = Ctx::default();
        let res = f3(1, ctx.clone());
        ctx.run_callbacks_on_deferreds();
        assert_eq!(success_result_of(res), 8);
        assert_eq!(
            ctx.expectations(),
            [
                ("f3 enter", 1),
                ("f1 enter", 1),
                ("f1 exit", 2),
                ("f2 enter", 2),
                ("f2 exit", 4),
                ("f3 exit", 8),
            ]
        );
    });
}

#[test]
fn test_intermediate_add_callbacks_and_with_waiting_second_yield() {
    trial(|| {
        #[inline_callbacks]
        fn f3(x: i32, ctx: Ctx) -> Deferred<i32> {
            ctx.expect("f3 enter", x);
            let x = yield_!(f1(x, ctx.clone()))?;
            let c = ctx.clone();
            let d = f1(x, ctx.clone()).add_callback(move |x| Ok(plain_f2(x, &c)));
            let mut x = yield_!(d)?;
            x += 4;
            ctx.expect("f3 exit", x);
            Ok(x)
        }
        let ctx = Ctx::default();
        let res = f3(1, ctx.clone());
        ctx.run_callbacks_on_deferreds();
        assert_eq!(success_result_of(res), 9);
        assert_eq!(
            ctx.expectations(),
            [
                ("f3 enter", 1),
                ("f1 enter", 1),
                ("f1 exit", 2),
                ("f1 enter", 2),
                ("f1 exit", 3),
                ("f2 enter", 3),
                ("f2 exit", 5),
                ("f3 exit", 9),
            ]
        );
    });
}

/// `f2` of the `raisesException…` tests: blocks on a Deferred that will fail with `MyException`.
#[inline_callbacks]
fn failing_f2(x: i32, ctx: Ctx) -> Deferred<i32> {
    ctx.expect("f2 enter", x);
    let d = ctx.pending(Fire::Error(MyException::new("MyException")));
    let x = yield_!(d)?;
    // Not reached: the yield raised.
    ctx.expect("f2 exit", x);
    Ok(x)
}

/// `with self.assertRaises(MyException): x = yield f2(x)`: the yield must raise MyException;
/// anything else fails the coroutine.
fn assert_raises_my_exception(r: Result<i32, Failure>) -> Result<(), Failure> {
    match r {
        Ok(x) => Err(Failure::msg(format!("MyException not raised (got {x})"))),
        Err(f) => f.trap::<MyException>().map(drop),
    }
}

#[test]
fn test_raises_exception_from_deferred_with_waiting_first_callback() {
    trial(|| {
        #[inline_callbacks]
        fn f3(x: i32, ctx: Ctx) -> Deferred<i32> {
            ctx.expect("f3 enter", x);
            assert_raises_my_exception(yield_!(failing_f2(x, ctx.clone())))?;
            let x = x + 4;
            ctx.expect("f3 exit", x);
            Ok(x)
        }
        let ctx = Ctx::default();
        let res = f3(1, ctx.clone());
        ctx.run_callbacks_on_deferreds();
        assert_eq!(success_result_of(res), 5);
        assert_eq!(
            ctx.expectations(),
            [("f3 enter", 1), ("f2 enter", 1), ("f3 exit", 5)]
        );
    });
}

#[test]
fn test_raises_exception_from_deferred_with_waiting_second_callback() {
    trial(|| {
        #[inline_callbacks]
        fn f3(x: i32, ctx: Ctx) -> Deferred<i32> {
            ctx.expect("f3 enter", x);
            let x = yield_!(f1(x, ctx.clone()))?;
            assert_raises_my_exception(yield_!(failing_f2(x, ctx.clone())))?;
            let x = x + 4;
            ctx.expect("f3 exit", x);
            Ok(x)
        }
        let ctx = Ctx::default();
        let res = f3(1, ctx.clone());
        ctx.run_callbacks_on_deferreds();
        assert_eq!(success_result_of(res), 6);
        assert_eq!(
            ctx.expectations(),
            [
                ("f3 enter", 1),
                ("f1 enter", 1),
                ("f1 exit", 2),
                ("f2 enter", 2),
                ("f3 exit", 6),
            ]
        );
    });
}
