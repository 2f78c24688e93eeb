//! Ports of Twisted's `test_defer.py` `InlineCallbackTests`.
//!
//! `Deferred.fromCoroutine` is `ensure_deferred`; passing it something that is not a coroutine
//! (Twisted's `NotACoroutineError`) does not compile: ui `c96_ensure_deferred_not_a_future.rs`.

use std::collections::HashSet;
use std::rc::Rc;

use defer_core::ensure_deferred;
use defer_core::testing::success_result_of;

#[test]
fn test_coroutine_no_circular_reference() {
    // An object, and a weak reference to see whether it was freed.
    let obj: Rc<HashSet<u32>> = Rc::default();
    let obj_weak_ref = Rc::downgrade(&obj);

    async fn func<A>(a: A) -> Result<A, defer_core::Failure> {
        Ok(a)
    }

    // Run the function.
    let func_d = ensure_deferred(func(obj.clone()));
    // A weak handle to the coroutine's chain: `is_called` is false once the chain is gone.
    let func_d_weak_ref = func_d.control();
    assert!(func_d_weak_ref.is_called());
    let result = success_result_of(func_d);
    assert!(Rc::ptr_eq(&obj, &result));

    // Drop the local references to obj and to the result.
    drop(obj);
    drop(result);

    // Freed at once: nothing of the coroutine's machinery holds them.
    assert!(obj_weak_ref.upgrade().is_none());
    assert!(
        !func_d_weak_ref.is_called(),
        "the coroutine's chain was freed"
    );
}
