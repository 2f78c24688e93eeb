//! Validation: every rule about what `#[inline_callbacks]` accepts, and the
//! wording of every error it reports.
//!
//! Each error is spanned on the user's own token (`Error::new_spanned`) and all
//! of them are collected, so that one compile shows everything that is wrong.
//! Nothing here generates code.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::visit::Visit;
use syn::{
    Error, FnArg, GenericArgument, ItemFn, Lifetime, Pat, Path, PathArguments, ReturnType,
    Signature, Type,
};

use crate::parse::{RawArg, RawArgs, RawValue};

/// Collects errors and combines them into one `syn::Error`, which renders as
/// one `compile_error!` per message, each at its own span.
#[derive(Default)]
pub(crate) struct Errors(Option<Error>);

impl Errors {
    /// Adds one error (which may itself hold several).
    pub(crate) fn push(&mut self, error: Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Adds every error of `other`.
    pub(crate) fn extend(&mut self, other: Errors) {
        if let Some(e) = other.0 {
            self.push(e);
        }
    }

    /// Whether no error was reported.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The `compile_error!` invocations, or nothing.
    pub(crate) fn to_compile_errors(&self) -> TokenStream {
        match &self.0 {
            Some(e) => e.to_compile_error(),
            None => TokenStream::new(),
        }
    }
}

/// The validated attribute arguments.
pub(crate) struct Config {
    /// The path to the runtime crate: `::defer_core` unless overridden with
    /// `crate = path` (for users who renamed the dependency or re-export it).
    pub(crate) krate: Path,
    /// Whether `krate` is right as far as we can tell: false when a `crate`
    /// argument was given but is malformed (the user then renamed the crate,
    /// and the default path would not resolve either).
    pub(crate) krate_ok: bool,
}

/// Validates `#[inline_callbacks(...)]`'s arguments: only `crate = path`.
pub(crate) fn check_args(args: &RawArgs, errors: &mut Errors) -> Config {
    let mut krate: Option<Path> = None;
    let mut krate_ok = true;
    for arg in &args.0 {
        if arg.key.is_ident("crate") {
            match crate_path(arg) {
                Ok(_) if krate.is_some() => {
                    errors.push(Error::new_spanned(
                        &arg.tokens,
                        "`crate` is given more than once",
                    ));
                }
                Ok(path) => krate = Some(path),
                Err(e) => {
                    krate_ok = false;
                    errors.push(e);
                }
            }
        } else {
            errors.push(Error::new_spanned(
                &arg.tokens,
                format!(
                    "unknown `#[inline_callbacks]` argument `{}`: the only argument is \
                     `crate = path` (the path to `defer_core`, for a renamed dependency)",
                    arg.key.to_token_stream().to_string().replace(' ', "")
                ),
            ));
        }
    }
    Config {
        krate: krate.unwrap_or_else(|| syn::parse_quote!(::defer_core)),
        krate_ok,
    }
}

/// The path in `crate = path`.
fn crate_path(arg: &RawArg) -> syn::Result<Path> {
    let usage = "expected `crate = path`, the path to the `defer_core` crate, e.g. \
                 `#[inline_callbacks(crate = my_defer)]`";
    match &arg.value {
        RawValue::Eq(tokens) if !tokens.is_empty() => {
            syn::parse2::<Path>(tokens.clone()).map_err(|_| Error::new_spanned(tokens, usage))
        }
        _ => Err(Error::new_spanned(&arg.tokens, usage)),
    }
}

/// The error for the attribute put on something that is not a function.
pub(crate) fn not_a_function(item: &TokenStream) -> Error {
    // Span only the first few tokens (`struct Name`, `impl Trait for`...): a
    // whole struct underlined in red reads like the struct itself is wrong.
    let head: TokenStream = item
        .clone()
        .into_iter()
        .skip_while(is_outer_attribute_or_visibility_token)
        .take(2)
        .collect();
    let spanned = if head.is_empty() { item.clone() } else { head };
    Error::new_spanned(
        spanned,
        "`#[inline_callbacks]` applies to functions with a body: \
         `#[inline_callbacks] fn name(..) -> Deferred<T> { .. }`",
    )
}

/// Attributes (`#` and `[..]`) and `pub`/`(crate)` before an item's keyword.
fn is_outer_attribute_or_visibility_token(tt: &proc_macro2::TokenTree) -> bool {
    match tt {
        proc_macro2::TokenTree::Punct(p) => p.as_char() == '#',
        proc_macro2::TokenTree::Group(g) => g.delimiter() != proc_macro2::Delimiter::Brace,
        proc_macro2::TokenTree::Ident(i) => i == "pub",
        proc_macro2::TokenTree::Literal(_) => false,
    }
}

/// Validates the function's signature and returns `T` of its `Deferred<T>`
/// return type, if that is what it returns.
pub(crate) fn check_fn(f: &ItemFn, errors: &mut Errors) -> Option<Type> {
    let sig = &f.sig;
    if let Some(asyncness) = &sig.asyncness {
        errors.push(Error::new_spanned(
            asyncness,
            "`#[inline_callbacks]` functions are not `async`: remove `async`. The function \
             returns a `Deferred` at once, and its body waits with `yield_!(deferred)`",
        ));
    }
    if let Some(constness) = &sig.constness {
        errors.push(Error::new_spanned(
            constness,
            "`#[inline_callbacks]` functions cannot be `const`: calling one starts its body",
        ));
    }
    check_receiver_and_arguments(sig, errors);
    deferred_output(sig, errors)
}

/// `&self`, `&mut self` and any argument that borrows are rejected: the
/// Deferred (and the body suspended inside it) outlives the call, so it can
/// only hold owned, `'static` data. Without this check the user would get a
/// lifetime error pointing into generated code.
fn check_receiver_and_arguments(sig: &Signature, errors: &mut Errors) {
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                if receiver.reference.is_some() {
                    let which = if receiver.mutability.is_some() {
                        "&mut self"
                    } else {
                        "&self"
                    };
                    errors.push(Error::new_spanned(
                        receiver,
                        format!(
                            "`#[inline_callbacks]` methods cannot take `{which}`: the returned \
                             `Deferred` outlives the call, so it cannot keep a borrow of `self`; \
                             take `self`, `self: Rc<Self>`, or clone what you need before \
                             calling"
                        ),
                    ));
                } else if receiver.colon_token.is_some()
                    && let Some(borrow) = first_borrow(&receiver.ty)
                {
                    errors.push(Error::new_spanned(
                        borrow,
                        "`#[inline_callbacks]` methods cannot borrow `self`: the returned \
                         `Deferred` outlives the call; take `self`, `self: Rc<Self>`, or clone \
                         what you need before calling",
                    ));
                }
            }
            FnArg::Typed(arg) => {
                if let Some(borrow) = first_borrow(&arg.ty) {
                    let name = match &*arg.pat {
                        Pat::Ident(p) => format!("argument `{}`", p.ident),
                        _ => "this argument".to_owned(),
                    };
                    errors.push(Error::new_spanned(
                        borrow,
                        format!(
                            "{name} of an `#[inline_callbacks]` function cannot borrow: the \
                             returned `Deferred` outlives the call, so it may only hold owned, \
                             `'static` data; take an owned value (e.g. `String` for `&str`, \
                             `Vec<T>` for `&[T]`), an `Rc<_>`, or a `&'static` reference"
                        ),
                    ));
                }
            }
        }
    }
}

/// Checks `-> Deferred<T>` and returns `T`.
fn deferred_output(sig: &Signature, errors: &mut Errors) -> Option<Type> {
    let usage = "`#[inline_callbacks]` functions return `Deferred<T>` (with one type argument), \
                 and their body evaluates to `Result<T, Failure>`";
    let ty = match &sig.output {
        ReturnType::Default => {
            errors.push(Error::new_spanned(
                &sig.ident,
                format!("{usage}: add `-> Deferred<T>` to the signature"),
            ));
            return None;
        }
        ReturnType::Type(_, ty) => ty,
    };
    match deferred_argument(ty) {
        Some(t) => {
            if let Some(borrow) = first_borrow(t) {
                errors.push(Error::new_spanned(
                    borrow,
                    "the value of the `Deferred` returned by an `#[inline_callbacks]` function \
                     cannot borrow: it is delivered after the call returns; use an owned, \
                     `'static` type",
                ));
            }
            Some(t.clone())
        }
        None => {
            let hint = if last_segment_is(ty, "Result") {
                ": write `-> Deferred<T>` where you wrote `-> Result<T, Failure>`; the body \
                 keeps evaluating to the `Result`"
            } else if matches!(strip_parens(ty), Type::ImplTrait(_)) {
                ": an `#[inline_callbacks]` function is not a future; for an `impl Future`, \
                 write an `async fn` and use `.await` instead"
            } else {
                ""
            };
            errors.push(Error::new_spanned(ty, format!("{usage}{hint}")));
            None
        }
    }
}

/// `T` of a type written `Deferred<T>` (or `some::path::Deferred<T>`).
fn deferred_argument(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = strip_parens(ty) else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Deferred" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let mut args = args.args.iter();
    match (args.next(), args.next()) {
        (Some(GenericArgument::Type(t)), None) => Some(t),
        _ => None,
    }
}

/// `T` of a return type written `Result<T, ..>`: what the user most likely
/// meant by `-> Result<T, Failure>` where `-> Deferred<T>` belongs.
pub(crate) fn result_ok_type(ty: &ReturnType) -> Option<&Type> {
    let ReturnType::Type(_, ty) = ty else {
        return None;
    };
    let Type::Path(path) = strip_parens(ty) else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    }
}

fn last_segment_is(ty: &Type, name: &str) -> bool {
    matches!(strip_parens(ty), Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == name))
}

/// `(T)` and invisible groups (from `macro_rules!` fragments) are `T`.
fn strip_parens(ty: &Type) -> &Type {
    match ty {
        Type::Paren(p) => strip_parens(&p.elem),
        Type::Group(g) => strip_parens(&g.elem),
        other => other,
    }
}

/// The first part of `ty` that borrows: a `&` reference or a lifetime other
/// than `'static`, as tokens to span an error on; `None` if `ty` owns its data
/// as far as its syntax shows.
///
/// Lifetimes that the type binds itself do not count: `fn(&str)`,
/// `impl Fn(&str) -> u32` and `for<'a> fn(&'a str)` are `'static` types.
/// A type that hides a lifetime (`Cow<str>`, a type alias) is left to the
/// compiler's own `'static` check.
pub(crate) fn first_borrow(ty: &Type) -> Option<TokenStream> {
    let mut finder = BorrowFinder {
        found: None,
        bound: Vec::new(),
        elision_is_bound: 0,
    };
    finder.visit_type(ty);
    finder.found
}

struct BorrowFinder {
    found: Option<TokenStream>,
    /// Lifetimes bound by an enclosing `for<..>`.
    bound: Vec<String>,
    /// Inside `fn(..)` or `Fn(..)` sugar, where an elided lifetime is a fresh
    /// higher-ranked one rather than a borrow.
    elision_is_bound: usize,
}

impl BorrowFinder {
    fn lifetime_borrows(&self, lifetime: &Lifetime) -> bool {
        let name = lifetime.ident.to_string();
        if name == "static" {
            return false;
        }
        if name == "_" {
            return self.elision_is_bound == 0;
        }
        !self.bound.contains(&name)
    }

    fn found(&mut self, tokens: TokenStream) {
        if self.found.is_none() {
            self.found = Some(tokens);
        }
    }
}

impl<'ast> Visit<'ast> for BorrowFinder {
    fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
        let borrows = match &r.lifetime {
            Some(lifetime) => self.lifetime_borrows(lifetime),
            None => self.elision_is_bound == 0,
        };
        if borrows {
            self.found(r.to_token_stream());
        } else {
            self.visit_type(&r.elem);
        }
    }

    fn visit_lifetime(&mut self, lifetime: &'ast Lifetime) {
        if self.lifetime_borrows(lifetime) {
            self.found(lifetime.to_token_stream());
        }
    }

    fn visit_type_bare_fn(&mut self, f: &'ast syn::TypeBareFn) {
        let bound = self.bound.len();
        if let Some(lifetimes) = &f.lifetimes {
            self.bound
                .extend(lifetimes.lifetimes.iter().filter_map(|p| match p {
                    syn::GenericParam::Lifetime(l) => Some(l.lifetime.ident.to_string()),
                    _ => None,
                }));
        }
        self.elision_is_bound += 1;
        for input in &f.inputs {
            self.visit_type(&input.ty);
        }
        self.visit_return_type(&f.output);
        self.elision_is_bound -= 1;
        self.bound.truncate(bound);
    }

    fn visit_parenthesized_generic_arguments(
        &mut self,
        args: &'ast syn::ParenthesizedGenericArguments,
    ) {
        self.elision_is_bound += 1;
        syn::visit::visit_parenthesized_generic_arguments(self, args);
        self.elision_is_bound -= 1;
    }

    fn visit_trait_bound(&mut self, bound: &'ast syn::TraitBound) {
        let len = self.bound.len();
        if let Some(lifetimes) = &bound.lifetimes {
            self.bound
                .extend(lifetimes.lifetimes.iter().filter_map(|p| match p {
                    syn::GenericParam::Lifetime(l) => Some(l.lifetime.ident.to_string()),
                    _ => None,
                }));
        }
        self.visit_path(&bound.path);
        self.bound.truncate(len);
    }
}

/// Where a `yield_!` was found that the attribute cannot turn into a
/// suspension point of the function's own body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Forbidden {
    Closure,
    AsyncBlock,
    ConstBlock,
    NestedFn,
    NestedItem,
}

/// The error for a `yield_!` in a closure, nested fn or nested async block.
/// `mac` is the macro's path and `!`, which the error underlines.
pub(crate) fn yield_in(context: Forbidden, mac: TokenStream) -> Error {
    let message = match context {
        Forbidden::Closure => {
            "`yield_!` cannot be used inside a closure: the closure is a separate function, \
             so it cannot suspend the `#[inline_callbacks]` body. Wait for the Deferred \
             before the closure (`let v = yield_!(d)?;`) and use `v` inside it, or chain \
             it with `add_callback`"
        }
        Forbidden::AsyncBlock => {
            "`yield_!` cannot be used inside an `async` block: the block is a separate future \
             that the `#[inline_callbacks]` body does not drive. Inside `async` code use \
             `deferred.await`, or move the `yield_!` out of the block"
        }
        Forbidden::ConstBlock => "`yield_!` cannot be used inside a `const` block",
        Forbidden::NestedFn => {
            "`yield_!` cannot be used inside a nested `fn`: only the body of the \
             `#[inline_callbacks]` function itself can suspend. Mark the nested `fn` \
             `#[inline_callbacks]` too (it then returns a `Deferred` you can `yield_!`), \
             or move the `yield_!` out of it"
        }
        Forbidden::NestedItem => {
            "`yield_!` cannot be used inside a nested item (`impl`, `mod`, `const`, \
             `static`, ...): only the body of the `#[inline_callbacks]` function itself can \
             suspend"
        }
    };
    Error::new_spanned(mac, message)
}

/// The error for `return;` in an `#[inline_callbacks]` body, whose value is a
/// `Result`. (A `return v` whose `v` is not a `Result` can only be told from
/// its type: the expansion checks it at the `return`, see
/// `yield_rewrite::typed_return`.)
pub(crate) fn bare_return(return_token: syn::Token![return]) -> Error {
    Error::new_spanned(
        return_token,
        "`return;` in an `#[inline_callbacks]` body: the body's value is a \
         `Result<T, Failure>`, so write `return Ok(());` (Twisted's `returnValue(v)` is \
         `return Ok(v)`, and raising is `return Err(failure)` or `?`)",
    )
}

/// The error for `yield_!` whose input is not one expression.
pub(crate) fn yield_argument(mac: TokenStream) -> Error {
    Error::new_spanned(
        mac,
        "`yield_!` takes one expression, the `Deferred` to wait for: `yield_!(deferred)`",
    )
}

/// The message of `yield_!` used outside of any `#[inline_callbacks]`
/// function; its standalone expansion is this `compile_error!`.
pub(crate) const YIELD_OUTSIDE: &str = "`yield_!` can only be used directly inside the body \
    of an `#[inline_callbacks]` function (not in a closure, a nested fn or a nested async \
    block); inside `async` code use `.await`";

/// `yield_!` outside of the attribute: a `compile_error!` at the invocation.
pub(crate) fn yield_outside(span: proc_macro2::Span) -> TokenStream {
    quote::quote_spanned!(span=> ::core::compile_error!(#YIELD_OUTSIDE))
}

/// Used by the tests of other modules to render errors.
#[cfg(test)]
pub(crate) fn messages(errors: &Errors) -> Vec<String> {
    match &errors.0 {
        Some(e) => e.clone().into_iter().map(|e| e.to_string()).collect(),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;
    use syn::parse_quote;

    fn fn_errors(f: ItemFn) -> (Option<Type>, Vec<String>) {
        let mut errors = Errors::default();
        let t = check_fn(&f, &mut errors);
        (t, messages(&errors))
    }

    fn args_errors(tokens: TokenStream) -> (Config, Vec<String>) {
        let mut errors = Errors::default();
        let raw = syn::parse2::<RawArgs>(tokens).unwrap();
        let config = check_args(&raw, &mut errors);
        (config, messages(&errors))
    }

    #[test]
    fn accepted_signatures() {
        let ok: Vec<ItemFn> = vec![
            parse_quote!(
                fn f() -> Deferred<u32> {}
            ),
            parse_quote!(
                pub(crate) fn f(x: u32, s: String) -> defer_core::Deferred<Vec<u8>> {}
            ),
            parse_quote!(
                fn f(self) -> Deferred<()> {}
            ),
            parse_quote!(
                fn f(mut self) -> Deferred<()> {}
            ),
            parse_quote!(
                fn f(self: Rc<Self>) -> Deferred<()> {}
            ),
            parse_quote!(
                fn f(self: Box<Self>) -> Deferred<()> {}
            ),
            parse_quote!(
                fn f<T: Clone + 'static>(x: T) -> Deferred<T>
                where
                    T: Default,
                {
                }
            ),
            parse_quote!(
                fn f(g: impl Fn(&str) -> &str + 'static) -> Deferred<()> {}
            ),
            parse_quote!(
                fn f(g: fn(&u8) -> u8, h: Box<dyn for<'a> Fn(&'a u8)>) -> Deferred<()> {}
            ),
            parse_quote!(
                fn f(s: &'static str, (a, b): (u32, u32), mut x: u8) -> Deferred<()> {}
            ),
            parse_quote!(
                unsafe fn f() -> (Deferred<u8>) {}
            ),
        ];
        for f in ok {
            let (t, errors) = fn_errors(f.clone());
            assert!(errors.is_empty(), "{}: {errors:?}", f.to_token_stream());
            assert!(t.is_some());
        }
    }

    #[test]
    fn output_type_is_extracted() {
        let (t, _) = fn_errors(parse_quote!(
            fn f() -> a::Deferred<Vec<(u8, String)>> {}
        ));
        assert_eq!(
            t.unwrap().to_token_stream().to_string(),
            "Vec < (u8 , String) >"
        );
    }

    #[test]
    fn async_and_const_are_rejected() {
        let (_, e) = fn_errors(parse_quote!(
            async fn f() -> Deferred<u8> {}
        ));
        assert_eq!(e.len(), 1);
        assert!(e[0].contains("are not `async`"), "{e:?}");
        let (_, e) = fn_errors(parse_quote!(
            const fn f() -> Deferred<u8> {}
        ));
        assert!(e[0].contains("cannot be `const`"), "{e:?}");
    }

    #[test]
    fn return_types_are_checked() {
        let (t, e) = fn_errors(parse_quote!(
            fn f() {}
        ));
        assert!(t.is_none());
        assert!(e[0].contains("add `-> Deferred<T>`"), "{e:?}");
        let (_, e) = fn_errors(parse_quote!(
            fn f() -> Result<u8, Failure> {}
        ));
        assert!(
            e[0].contains("where you wrote `-> Result<T, Failure>`"),
            "{e:?}"
        );
        let (_, e) = fn_errors(parse_quote!(
            fn f() -> impl Future<Output = u8> {}
        ));
        assert!(e[0].contains("write an `async fn`"), "{e:?}");
        for f in [
            parse_quote!(
                fn f() -> Deferred {}
            ),
            parse_quote!(
                fn f() -> Deferred<u8, u8> {}
            ),
            parse_quote!(
                fn f() -> Deferred<'static> {}
            ),
            parse_quote!(
                fn f() -> <X as Y>::Deferred<u8> {}
            ),
            parse_quote!(
                fn f() -> Vec<u8> {}
            ),
        ] {
            let (t, e) = fn_errors(f);
            assert!(t.is_none());
            assert!(
                e[0].contains("return `Deferred<T>` (with one type argument)"),
                "{e:?}"
            );
        }
        let (_, e) = fn_errors(parse_quote!(
            fn f() -> Deferred<&str> {}
        ));
        assert!(e[0].contains("cannot borrow"), "{e:?}");
    }

    #[test]
    fn borrowing_receivers_and_arguments_are_rejected() {
        let (_, e) = fn_errors(parse_quote!(
            fn f(&self) -> Deferred<u8> {}
        ));
        assert!(e[0].contains("cannot take `&self`"), "{e:?}");
        let (_, e) = fn_errors(parse_quote!(
            fn f(&'a mut self) -> Deferred<u8> {}
        ));
        assert!(e[0].contains("cannot take `&mut self`"), "{e:?}");
        let (_, e) = fn_errors(parse_quote!(
            fn f(self: Pin<&mut Self>) -> Deferred<u8> {}
        ));
        assert!(e[0].contains("cannot borrow `self`"), "{e:?}");
        let borrowing: Vec<ItemFn> = vec![
            parse_quote!(
                fn f(s: &str) -> Deferred<u8> {}
            ),
            parse_quote!(
                fn f(s: Vec<&'a str>) -> Deferred<u8> {}
            ),
            parse_quote!(
                fn f(s: Cow<'_, str>) -> Deferred<u8> {}
            ),
            parse_quote!(
                fn f(s: Box<dyn Display + 'a>) -> Deferred<u8> {}
            ),
            parse_quote!(
                fn f(s: impl Iterator<Item = &'a u8>) -> Deferred<u8> {}
            ),
            parse_quote!(
                fn f(s: fn(&'a u8)) -> Deferred<u8> {}
            ),
            parse_quote!(
                fn f((a, b): (&u8, u8)) -> Deferred<u8> {}
            ),
        ];
        for f in borrowing {
            let (_, e) = fn_errors(f.clone());
            assert_eq!(e.len(), 1, "{}: {e:?}", f.to_token_stream());
            assert!(e[0].contains("cannot borrow"), "{e:?}");
        }
        let (_, e) = fn_errors(parse_quote!(
            fn f(s: &str) -> Deferred<u8> {}
        ));
        assert!(e[0].starts_with("argument `s`"), "{e:?}");
    }

    #[test]
    fn all_errors_are_reported_together() {
        let (_, e) = fn_errors(parse_quote!(
            async fn f(&self, s: &str) -> u8 {}
        ));
        assert_eq!(e.len(), 4, "{e:?}");
    }

    #[test]
    fn borrow_is_spanned_on_the_borrowing_part() {
        let ty: Type = parse_quote!(Vec<(u8, &'a str)>);
        assert_eq!(first_borrow(&ty).unwrap().to_string(), "& 'a str");
        let ty: Type = parse_quote!(Foo<'a, u8>);
        assert_eq!(first_borrow(&ty).unwrap().to_string(), "'a");
    }

    #[test]
    fn arguments() {
        let (c, e) = args_errors(quote!());
        assert!(e.is_empty());
        assert_eq!(c.krate.to_token_stream().to_string(), ":: defer_core");
        let (c, e) = args_errors(quote!(crate = my_defer));
        assert!(e.is_empty());
        assert_eq!(c.krate.to_token_stream().to_string(), "my_defer");
        let (c, e) = args_errors(quote!(crate = crate::reexport::defer));
        assert!(e.is_empty());
        assert_eq!(
            c.krate.to_token_stream().to_string(),
            "crate :: reexport :: defer"
        );
        let (_, e) = args_errors(quote!(foo = 1, crate = a, bar, crate = b));
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(
            e[0].starts_with("unknown `#[inline_callbacks]` argument `foo`"),
            "{e:?}"
        );
        assert!(e[1].contains("argument `bar`"), "{e:?}");
        assert!(e[2].contains("more than once"), "{e:?}");
        for bad in [
            quote!(crate),
            quote!(crate = "x"),
            quote!(crate(x)),
            quote!(crate = 1 + 2),
        ] {
            let (_, e) = args_errors(bad);
            assert!(e[0].starts_with("expected `crate = path`"), "{e:?}");
        }
    }

    #[test]
    fn not_a_function_spans_the_head() {
        let e = not_a_function(&quote!(
            #[derive(Debug)]
            pub(crate) struct S {
                a: u8,
            }
        ));
        assert!(e.to_string().contains("applies to functions"));
    }
}
