//! The procedural macros of [`defer-core`](https://docs.rs/defer-core):
//! [`#[inline_callbacks]`](macro@inline_callbacks) and [`yield_!`](yield_).
//!
//! Depend on `defer-core`, which re-exports both; this crate is an
//! implementation detail. Its code is split as parse (`parse.rs`), check
//! (`check.rs`, every rule and error message), and expand (`expand.rs`,
//! `yield_rewrite.rs`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod check;
mod expand;
mod parse;
mod yield_rewrite;

use proc_macro::TokenStream;

/// Writes a function that returns a `Deferred` as straight-line code that
/// waits for other Deferreds with [`yield_!`](yield_!): Twisted's
/// `@inlineCallbacks`.
///
/// ```ignore
/// use defer_core::{Deferred, Failure, inline_callbacks, yield_};
///
/// #[inline_callbacks]
/// fn get_users(client: Client) -> Deferred<Vec<User>> {
///     let body = match yield_!(client.request("GET", "/users")) {
///         Ok(body) => body,
///         Err(f) => {
///             f.trap::<ConnectionError>()?;
///             return Ok(Vec::new());
///         }
///     };
///     Ok(parse_users(&body)?)
/// }
/// ```
///
/// The function is written `fn name(args) -> Deferred<T>`, not `async`, and
/// its body evaluates to `Result<T, Failure>`. Calling it runs the body at
/// once, up to the first `yield_!` of a Deferred that has not fired yet, and
/// returns a `Deferred<T>` that fires with the body's result. `yield_!(d)`
/// evaluates to `d`'s `Result<U, Failure>`; `?` raises the failure out of the
/// function, as Twisted raises at the `yield`. The body is an ordinary Rust
/// body: `return`, `?`, loops, `match`, and borrows of locals across
/// `yield_!` all work.
///
/// # Rules
///
/// Each is a compile error on the offending token:
/// - the function is not `async` (nor `const`), and returns `Deferred<T>`;
/// - it does not take `&self`, `&mut self` or any borrowed argument: the
///   Deferred outlives the call, so everything it keeps must be `'static`
///   (take `self`, `self: Rc<Self>`, owned values). For the same reason
///   generic type parameters and `impl Trait` arguments need a `'static`
///   bound;
/// - `return v` returns a `Result`: Twisted's `returnValue(v)` is
///   `return Ok(v)`. A `return` of anything else is one error at that
///   `return`, and `return;` is `return Ok(());`;
/// - `yield_!` takes a `Deferred`: a future (an `async fn`'s) is one error
///   that says to wrap it in `ensure_deferred(..)` (or
///   `defer_core::tokio::from_future(..)` for a tokio future);
/// - `yield_!` is used directly in the body, not inside a closure, a nested
///   `fn` or a nested `async` block (use `.await` in `async` code). This also
///   holds for a closure or `async` block that another macro generates around
///   a `yield_!`.
///
/// # Arguments
///
/// `#[inline_callbacks(crate = path)]` names the `defer_core` crate when it
/// is not reachable as `::defer_core` (a renamed dependency, a re-export).
#[proc_macro_attribute]
pub fn inline_callbacks(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::inline_callbacks(args.into(), item.into()).into()
}

/// Waits for a `Deferred` inside an
/// [`#[inline_callbacks]`](macro@inline_callbacks) function:
/// `yield_!(d)` evaluates to `d`'s result, a `Result<T, Failure>`.
///
/// ```ignore
/// #[inline_callbacks]
/// fn total(a: Deferred<u32>, b: Deferred<u32>) -> Deferred<u32> {
///     let a = yield_!(a)?;
///     let b = yield_!(b)?;
///     Ok(a + b)
/// }
/// ```
///
/// The attribute rewrites every `yield_!` in its function's body, including
/// those inside other macros' input (`println!("{}", yield_!(d)?)`), and
/// records where each one is in the trace of a `Failure` that passes through
/// it. Used anywhere else, `yield_!` is a compile error that says so; in
/// `async` code, use `.await` instead.
#[proc_macro]
pub fn yield_(input: TokenStream) -> TokenStream {
    // The attribute has replaced the input of every `yield_!` it is
    // responsible for with an internal form; any other input is a misuse.
    match yield_rewrite::expand_internal(input.into()) {
        Some(expansion) => expansion.into(),
        None => check::yield_outside(proc_macro2::Span::call_site()).into(),
    }
}
