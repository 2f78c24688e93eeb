//! The cost model: a minimal `Rc<RefCell>` Deferred with an iterative chain, about a hundred
//! lines and no features (no typed steps, no pause API, no cancellation, no panics caught, no
//! unhandled-error reports). Its chain runs Twisted's `_runCallbacks`: a step that returns a
//! pending `MiniDeferred` pauses the chain and appends a `_CONTINUE` to the inner one, and the loop
//! keeps an explicit chain stack instead of recursing.
//!
//! ```
//! use defer_bench::rc_minimal::{MiniDeferred, Out};
//! let d = MiniDeferred::<u64>::new();
//! d.add_callback(|x| Out::Done(Ok(x + 1)));
//! d.callback(1);
//! assert_eq!(d.take_result().unwrap().unwrap(), 2);
//! ```

use std::cell::RefCell;
use std::collections::VecDeque;
use std::error::Error;
use std::rc::Rc;

/// A result travelling down the chain: the value or a boxed error.
pub type Res<T> = Result<T, Box<dyn Error>>;

/// What a step returns: a result now, or a Deferred to wait for.
pub enum Out<T> {
    /// The step's result.
    Done(Res<T>),
    /// The chain continues with this Deferred's result.
    Wait(MiniDeferred<T>),
}

enum Step<T> {
    Call(Box<dyn FnOnce(Res<T>) -> Out<T>>),
    /// Twisted's `_CONTINUE`: hand the result to the chain that waits on this one.
    Continue(Rc<RefCell<Inner<T>>>),
}

struct Inner<T> {
    result: Option<Res<T>>,
    called: bool,
    paused: u32,
    running: bool,
    steps: VecDeque<Step<T>>,
}

/// A minimal Deferred; clones share one chain. A step that returns a pending one waits for it.
///
/// ```
/// use defer_bench::rc_minimal::{MiniDeferred, Out};
/// let (outer, inner) = (MiniDeferred::<u64>::new(), MiniDeferred::new());
/// let i = inner.clone();
/// outer.add_callback(move |_| Out::Wait(i));
/// outer.callback(0);
/// assert!(outer.take_result().is_none()); // waiting on `inner`
/// inner.callback(7);
/// assert_eq!(outer.take_result().unwrap().unwrap(), 7);
/// ```
pub struct MiniDeferred<T>(Rc<RefCell<Inner<T>>>);

impl<T> Clone for MiniDeferred<T> {
    fn clone(&self) -> Self {
        MiniDeferred(self.0.clone())
    }
}

impl<T: 'static> MiniDeferred<T> {
    /// A pending Deferred.
    pub fn new() -> Self {
        MiniDeferred(Rc::new(RefCell::new(Inner {
            result: None,
            called: false,
            paused: 0,
            running: false,
            steps: VecDeque::new(),
        })))
    }

    /// A Deferred that has already succeeded.
    pub fn succeed(v: T) -> Self {
        let d = Self::new();
        d.callback(v);
        d
    }

    /// Adds a step that sees the result, success or error.
    pub fn add_both(&self, f: impl FnOnce(Res<T>) -> Out<T> + 'static) {
        let runnable = {
            let mut st = self.0.borrow_mut();
            st.steps.push_back(Step::Call(Box::new(f)));
            st.called
        };
        if runnable {
            run(self.0.clone());
        }
    }

    /// Adds a step that runs on success only.
    pub fn add_callback(&self, f: impl FnOnce(T) -> Out<T> + 'static) {
        self.add_both(move |r| match r {
            Ok(v) => f(v),
            Err(e) => Out::Done(Err(e)),
        })
    }

    /// Adds a step that runs on error only.
    pub fn add_errback(&self, g: impl FnOnce(Box<dyn Error>) -> Out<T> + 'static) {
        self.add_both(move |r| match r {
            Ok(v) => Out::Done(Ok(v)),
            Err(e) => g(e),
        })
    }

    /// Fires the Deferred with a value.
    pub fn callback(&self, v: T) {
        {
            let mut st = self.0.borrow_mut();
            assert!(!st.called, "already called");
            st.called = true;
            st.result = Some(Ok(v));
        }
        run(self.0.clone());
    }

    /// Takes the final result, if the chain has one.
    pub fn take_result(&self) -> Option<Res<T>> {
        let mut st = self.0.borrow_mut();
        if st.paused > 0 || st.running {
            None
        } else {
            st.result.take()
        }
    }
}

impl<T: 'static> Default for MiniDeferred<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn run<T: 'static>(start: Rc<RefCell<Inner<T>>>) {
    // Twisted's chain stack, less its top (`cur`): chains whose last step handed their result on.
    let mut below = Vec::new();
    let mut cur = start;
    'chain: loop {
        loop {
            let mut st = cur.borrow_mut();
            if st.paused > 0 || st.running {
                return;
            }
            let Some(step) = st.steps.pop_front() else {
                break;
            };
            let res = st.result.take().expect("a fired chain has a result");
            match step {
                Step::Continue(next) => {
                    drop(st);
                    let mut n = next.borrow_mut();
                    n.result = Some(res);
                    n.paused -= 1;
                    drop(n);
                    below.push(std::mem::replace(&mut cur, next));
                    continue 'chain;
                }
                Step::Call(f) => {
                    st.running = true;
                    drop(st);
                    let out = f(res);
                    let mut st = cur.borrow_mut();
                    st.running = false;
                    match out {
                        Out::Done(r) => st.result = Some(r),
                        Out::Wait(inner) => {
                            let mut ist = inner.0.borrow_mut();
                            if ist.called && ist.paused == 0 && !ist.running && ist.result.is_some()
                            {
                                st.result = ist.result.take();
                            } else {
                                // Paused until `inner` hands its result over.
                                st.paused += 1;
                                ist.steps.push_back(Step::Continue(cur.clone()));
                                break;
                            }
                        }
                    }
                }
            }
        }
        match below.pop() {
            Some(c) => cur = c,
            None => return,
        }
    }
}
