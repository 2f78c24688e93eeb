//! Ports of Twisted's `test_defer.py` `DeferredListEmptyTests`.

use std::cell::Cell;
use std::rc::Rc;

use defer_core::{Deferred, DeferredList};

#[test]
fn test_deferred_list_empty() {
    let callback_ran = Rc::new(Cell::new(false));
    let ran = callback_ran.clone();
    let dl = DeferredList::new(Vec::<Deferred<()>>::new()).build();
    let _d = dl.add_callback(move |res| {
        ran.set(true);
        assert!(res.is_empty());
        Ok(())
    });
    // tearDown: "Callback was never run."
    assert!(callback_ran.get(), "Callback was never run.");
}
