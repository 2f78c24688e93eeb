//! Rewrites every `yield_!(d)` of an `#[inline_callbacks]` body into an await
//! point, and reports the ones that cannot become one.
//!
//! A `yield_!` is found wherever it is written in the body: as an expression,
//! as a statement, and inside the input of other macro invocations
//! (`println!("{}", yield_!(d)?)`, `vec![yield_!(a)?; 2]`), whose tokens the
//! compiler has not expanded yet.
//!
//! The invocation is kept, with the path the user wrote, and only its input
//! is replaced by an internal form that carries what the await point needs
//! (see [`expand_internal`]). Keeping the user's invocation means that
//! `use defer_core::yield_;` counts as used and that the path resolves as
//! written. The `yield_!` macro then expands the internal form into
//!
//! ```text
//! {
//!     if false { let e = Err(PATH::__private::unreachable_failure()); break 'body e; }
//!     PATH::Yieldable::__yield_point(d, { static AT: &Location = Location::caller(); AT }).await
//! }
//! ```
//!
//! The `break 'body` never runs. It is there because a label cannot be reached
//! through a closure, a `fn` or an `async` block: if the `yield_!` ends up
//! inside one that this walk cannot see (a `macro_rules!` macro that wraps
//! its input in `async { .. }`), compilation fails at the user's `yield_!`
//! instead of silently awaiting inside a future that nobody drives. The ones
//! that the walk *can* see get a precise error here instead. The label token
//! is made here, in the attribute's expansion, and handed to `yield_!` inside
//! the internal form: labels are hygienic, and only a token from the
//! attribute's own expansion can name the label the attribute defined.

use proc_macro2::{Group, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::visit_mut::{self, VisitMut};
use syn::{Attribute, Expr, Ident, Item, Macro, Path, Stmt, Token};

use crate::check::{self, Errors, Forbidden};

/// The internal form of an await point: `yield_!(@__inline_callbacks_await
/// ..)`.
const AWAIT: &str = "__inline_callbacks_await";
/// The internal form of a `yield_!` that the attribute reported as an error.
const INERT: &str = "__inline_callbacks_inert";
/// The internal form that expands to nothing: emitted once per `yield_!`
/// path when the body is dropped, so that the user's import of `yield_` is
/// still used and no "unused import" warning adds to the error.
const USED: &str = "__inline_callbacks_used";

/// The name of a body's labeled block. Hygienic (`Span::mixed_site()`), so
/// it cannot clash with the user's labels. It is the name the compiler
/// prints when a `yield_!` ends up inside a closure or `async` block that
/// another macro generated ("use of unreachable label ..."), so it says
/// what went wrong.
pub(crate) const BODY_LABEL: &str = "'yield_must_be_directly_in_the_inline_callbacks_body";

/// What the rewrite needs to know about the function.
pub(crate) struct Site<'a> {
    /// The path to `defer_core`.
    pub(crate) krate: &'a Path,
    /// `T` of the function's `Deferred<T>` (with `impl Trait` as `_`), when
    /// known: each `return v` of the body is checked against
    /// `Result<T, Failure>` where it is written (see [`typed_return`]).
    pub(crate) value: Option<&'a syn::Type>,
}

/// What the rewrite of a body found.
pub(crate) struct Rewritten {
    /// How many `yield_!`s became await points (which use the body's label).
    pub(crate) awaits: usize,
    /// `yield_!(@USED)` for each distinct path under which `yield_!` was
    /// invoked (see [`USED`]).
    pub(crate) mark_used: TokenStream,
}

/// Rewrites the `yield_!`s of `block`. Errors go to `errors`; a `yield_!`
/// that is in error gets the inert internal form, so that it produces no
/// second error.
pub(crate) fn rewrite_body(block: &mut syn::Block, site: &Site, errors: &mut Errors) -> Rewritten {
    let mut rewriter = Rewriter {
        site,
        forbidden: Vec::new(),
        errors: Errors::default(),
        awaits: 0,
        paths: Vec::new(),
    };
    rewriter.visit_block_mut(block);
    errors.extend(rewriter.errors);
    let used = Ident::new(USED, Span::mixed_site());
    let mark_used = rewriter
        .paths
        .iter()
        .map(|path| {
            let yield_token = &path
                .segments
                .last()
                .expect("a path has a last segment")
                .ident;
            quote!(#path!(@#used #yield_token);)
        })
        .collect();
    Rewritten {
        awaits: rewriter.awaits,
        mark_used,
    }
}

/// Whether `path` names the `yield_!` macro: `yield_`, or any path ending in
/// it (`defer_core::yield_`).
pub(crate) fn is_yield(path: &Path) -> bool {
    path.segments
        .last()
        .is_some_and(|s| s.ident == "yield_" && s.arguments.is_none())
}

/// Whether `attrs` holds `#[inline_callbacks]` (under any path): such a
/// nested function rewrites its own `yield_!`s.
fn has_inline_callbacks(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "inline_callbacks")
    })
}

struct Rewriter<'a> {
    site: &'a Site<'a>,
    /// The closures, async blocks and nested items we are inside, innermost
    /// last.
    forbidden: Vec<Forbidden>,
    errors: Errors,
    awaits: usize,
    /// The distinct paths `yield_!` was invoked under.
    paths: Vec<Path>,
}

impl Rewriter<'_> {
    fn within(&mut self, context: Forbidden, f: impl FnOnce(&mut Self)) {
        self.forbidden.push(context);
        f(self);
        self.forbidden.pop();
    }

    /// The input that replaces a `yield_!` invocation's input (see
    /// [`expand_internal`]). The invocation itself, with the user's own path,
    /// stays: so the user's `use defer_core::yield_;` is used, and the path
    /// the user wrote is the one that resolves.
    fn yield_input(&mut self, mac: &Macro) -> TokenStream {
        let path = &mac.path;
        let bang = &mac.bang_token;
        let written = quote!(#path #bang);
        if !self
            .paths
            .iter()
            .any(|p| p.to_token_stream().to_string() == path.to_token_stream().to_string())
        {
            self.paths.push(path.clone());
        }
        // The user's `yield_` token: errors of the generated code point
        // there, and the Failure's trace records its location.
        let yield_token = path.segments.last().map_or_else(
            || Ident::new("yield_", Span::call_site()),
            |s| s.ident.clone(),
        );

        let mut deferred = match syn::parse2::<Expr>(mac.tokens.clone()) {
            Ok(e) => e,
            Err(_) => {
                self.errors.push(check::yield_argument(written));
                let inert = Ident::new(INERT, Span::mixed_site());
                let krate = self.site.krate;
                return quote!(@#inert #yield_token (#krate) ());
            }
        };
        // `yield_!(f(yield_!(a)?))`: the inner one first.
        self.visit_expr_mut(&mut deferred);

        if let Some(&context) = self.forbidden.last() {
            self.errors.push(check::yield_in(context, written));
            let inert = Ident::new(INERT, Span::mixed_site());
            let krate = self.site.krate;
            return quote!(@#inert #yield_token (#krate) (#deferred));
        }

        self.awaits += 1;
        let krate = self.site.krate;
        let yield_span = yield_token.span();
        // The body's label, hygienic to this attribute's expansion: the
        // `yield_!` expansion can name it only through this token.
        let label = syn::Lifetime::new(BODY_LABEL, Span::mixed_site().located_at(yield_span));
        let kind = Ident::new(AWAIT, Span::mixed_site());
        quote!(@#kind #yield_token #label (#krate) (#deferred))
    }

    /// A `return` of the body: `return;` is an error (the body's value is a
    /// `Result`), and `return v` is checked against the body's `Result` type
    /// at the `return` (see [`typed_return`]).
    fn body_return(&mut self, r: &mut syn::ExprReturn) {
        let krate = self.site.krate;
        match &mut r.expr {
            None => {
                self.errors.push(check::bare_return(r.return_token));
                // So that the inert body adds no second error of its own.
                let never: Expr = syn::parse_quote_spanned! {r.return_token.span=>
                    ::core::result::Result::Err(#krate::__private::unreachable_failure())
                };
                r.expr = Some(Box::new(never));
            }
            Some(value) => {
                if let Some(t) = self.site.value {
                    let typed = typed_return(krate, t, r.return_token.span, value);
                    **value = typed;
                }
            }
        }
    }

    /// Rewrites the `yield_!`s inside another macro's input.
    fn rewrite_foreign_macro(&mut self, mac: &mut Macro) {
        if !contains_yield(mac.tokens.clone()) {
            return;
        }
        // Most macros that take expressions (`println!`, `assert_eq!`,
        // `format!`, `vec![a, b]`) take a comma-separated list of them. Parsed
        // as such, closures and async blocks in them are seen and reported
        // like anywhere else in the body.
        let parser = Punctuated::<Expr, Token![,]>::parse_terminated;
        if let Ok(mut exprs) = syn::parse::Parser::parse2(parser, mac.tokens.clone()) {
            for expr in exprs.iter_mut() {
                self.visit_expr_mut(expr);
            }
            mac.tokens = exprs.into_token_stream();
        } else {
            // Anything else (`vec![x; n]`, custom syntax) is rewritten token
            // by token; the label guard still catches a closure or async
            // block there.
            mac.tokens = self.rewrite_tokens(mac.tokens.clone());
        }
    }

    /// Replaces each `[path::]yield_ ! (..)` in a token stream, at any depth.
    fn rewrite_tokens(&mut self, tokens: TokenStream) -> TokenStream {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut out: Vec<TokenTree> = Vec::with_capacity(tokens.len());
        let mut i = 0;
        while i < tokens.len() {
            match (&tokens[i], tokens.get(i + 1), tokens.get(i + 2)) {
                (
                    TokenTree::Ident(ident),
                    Some(TokenTree::Punct(bang)),
                    Some(TokenTree::Group(args)),
                ) if ident == "yield_" && bang.as_char() == '!' => {
                    let mut path = take_path_prefix(&mut out);
                    path.extend([tokens[i].clone()]);
                    let mac = Macro {
                        path: syn::parse2(path.clone()).expect("a path prefix and an identifier"),
                        bang_token: Token![!](bang.span()),
                        delimiter: syn::MacroDelimiter::Paren(Default::default()),
                        tokens: args.stream(),
                    };
                    let input = self.yield_input(&mac);
                    let mut group = Group::new(args.delimiter(), input);
                    group.set_span(args.span());
                    out.extend(path);
                    out.push(tokens[i + 1].clone());
                    out.push(TokenTree::Group(group));
                    i += 3;
                }
                (TokenTree::Group(group), _, _) => {
                    let mut new =
                        Group::new(group.delimiter(), self.rewrite_tokens(group.stream()));
                    new.set_span(group.span());
                    out.push(TokenTree::Group(new));
                    i += 1;
                }
                (other, _, _) => {
                    out.push(other.clone());
                    i += 1;
                }
            }
        }
        out.into_iter().collect()
    }
}

/// `return v` becomes `return { let r: Result<T, Failure> = v; r }`, with
/// the type written at the user's `return`. Without it, a `return v;` (the
/// natural translation of Twisted's `returnValue(v)`) would make `v`'s type
/// the type of the whole body, and the compiler would report three errors
/// elsewhere (at `?`, and twice at the attribute), none at the `return`. With
/// it, there is one: "expected `Result<T, Failure>`, found ..." at `v`,
/// "expected due to this" at the `return`, and the compiler's own "try
/// wrapping the expression in `Ok`". A `return` that is already a `Result`
/// is unchanged in meaning, and `return Err(e.into())` still infers.
fn typed_return(krate: &Path, t: &syn::Type, at: Span, value: &Expr) -> Expr {
    let ty = located_at(quote!(::core::result::Result<#t, #krate::Failure>), at);
    let name = Ident::new("__defer_return", Span::mixed_site());
    syn::parse_quote!({
        let #name: #ty = #value;
        #name
    })
}

/// Removes a trailing `a::b::` (or `::a::`, `$crate::`) from `out` and
/// returns it: the path before a `yield_` found in a token stream.
fn take_path_prefix(out: &mut Vec<TokenTree>) -> TokenStream {
    let mut prefix: Vec<TokenTree> = Vec::new();
    loop {
        let n = out.len();
        let ends_with_colons = n >= 2
            && matches!(&out[n - 1], TokenTree::Punct(p) if p.as_char() == ':')
            && matches!(&out[n - 2], TokenTree::Punct(p) if p.as_char() == ':' && p.spacing() == proc_macro2::Spacing::Joint);
        if !ends_with_colons {
            break;
        }
        let colon2 = out.pop().unwrap();
        let colon1 = out.pop().unwrap();
        prefix.splice(0..0, [colon1, colon2]);
        match out.last() {
            Some(TokenTree::Ident(_)) => {
                let ident = out.pop().unwrap();
                prefix.insert(0, ident);
            }
            // `::yield_` with a leading `::`
            _ => break,
        }
    }
    prefix.into_iter().collect()
}

/// Whether a `yield_` identifier occurs anywhere in `tokens`.
fn contains_yield(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|tt| match tt {
        TokenTree::Ident(i) => i == "yield_",
        TokenTree::Group(g) => contains_yield(g.stream()),
        _ => false,
    })
}

impl VisitMut for Rewriter<'_> {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            Expr::Macro(m) if is_yield(&m.mac.path) => {
                m.mac.tokens = self.yield_input(&m.mac);
            }
            // A `return` of the body itself (not of a closure or nested fn in it).
            Expr::Return(r) if self.forbidden.is_empty() => {
                visit_mut::visit_expr_return_mut(self, r);
                self.body_return(r);
            }
            Expr::Closure(_) => {
                self.within(Forbidden::Closure, |s| visit_mut::visit_expr_mut(s, expr));
            }
            Expr::Async(_) => {
                self.within(Forbidden::AsyncBlock, |s| {
                    visit_mut::visit_expr_mut(s, expr)
                });
            }
            Expr::Const(_) => {
                self.within(Forbidden::ConstBlock, |s| {
                    visit_mut::visit_expr_mut(s, expr)
                });
            }
            _ => visit_mut::visit_expr_mut(self, expr),
        }
    }

    fn visit_stmt_mut(&mut self, stmt: &mut Stmt) {
        match stmt {
            // `yield_!(d);` and `yield_! { d }` in statement position.
            Stmt::Macro(m) if is_yield(&m.mac.path) => {
                m.mac.tokens = self.yield_input(&m.mac);
            }
            _ => visit_mut::visit_stmt_mut(self, stmt),
        }
    }

    fn visit_macro_mut(&mut self, mac: &mut Macro) {
        // A `macro_rules!` defined in the body is left alone: the labels in
        // its expansion are hygienic and could not reach the body's label, so
        // a `yield_!` in it gets `yield_!`'s own "outside" error instead.
        // A `yield_!` in pattern or type position is left to that error too.
        if mac.path.is_ident("macro_rules") || is_yield(&mac.path) {
            return;
        }
        self.rewrite_foreign_macro(mac);
    }

    fn visit_item_mut(&mut self, item: &mut Item) {
        let attrs: &[Attribute] = match &*item {
            Item::Fn(f) => &f.attrs,
            Item::Impl(i) => &i.attrs,
            Item::Trait(t) => &t.attrs,
            Item::Mod(m) => &m.attrs,
            _ => &[],
        };
        if has_inline_callbacks(attrs) {
            return;
        }
        let context = if matches!(item, Item::Fn(_)) {
            Forbidden::NestedFn
        } else {
            Forbidden::NestedItem
        };
        self.within(context, |s| visit_mut::visit_item_mut(s, item));
    }

    fn visit_impl_item_fn_mut(&mut self, f: &mut syn::ImplItemFn) {
        if !has_inline_callbacks(&f.attrs) {
            self.within(Forbidden::NestedFn, |s| {
                visit_mut::visit_impl_item_fn_mut(s, f)
            });
        }
    }

    fn visit_trait_item_fn_mut(&mut self, f: &mut syn::TraitItemFn) {
        if !has_inline_callbacks(&f.attrs) {
            self.within(Forbidden::NestedFn, |s| {
                visit_mut::visit_trait_item_fn_mut(s, f)
            });
        }
    }
}

/// The internal input of `yield_!`, made by the attribute.
enum Internal {
    /// `@AWAIT yield_ 'label (krate) (deferred)`
    Await {
        yield_token: Ident,
        label: syn::Lifetime,
        krate: Path,
        deferred: TokenStream,
    },
    /// `@INERT yield_ (krate) (deferred)`
    Inert {
        yield_token: Ident,
        krate: Path,
        deferred: TokenStream,
    },
    /// `@USED yield_`
    Used,
}

impl Parse for Internal {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        input.parse::<Token![@]>()?;
        let kind: Ident = input.parse()?;
        let yield_token: Ident = input.parse()?;
        let parenthesized = |input: ParseStream| -> syn::Result<TokenStream> {
            let content;
            syn::parenthesized!(content in input);
            content.parse()
        };
        if kind == AWAIT {
            let label = input.parse()?;
            let krate = syn::parse2(parenthesized(input)?)?;
            Ok(Internal::Await {
                yield_token,
                label,
                krate,
                deferred: parenthesized(input)?,
            })
        } else if kind == INERT {
            let krate = syn::parse2(parenthesized(input)?)?;
            Ok(Internal::Inert {
                yield_token,
                krate,
                deferred: parenthesized(input)?,
            })
        } else if kind == USED {
            Ok(Internal::Used)
        } else {
            Err(syn::Error::new(kind.span(), "not an internal form"))
        }
    }
}

/// `tokens` with each token moved to `location` (keeping how it resolves),
/// so that errors about generated code ("arguments to this function are
/// incorrect") point at a token of the user's instead of the attribute.
pub(crate) fn located_at(tokens: TokenStream, location: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut tt| {
            if let TokenTree::Group(g) = &tt {
                let mut group = Group::new(g.delimiter(), located_at(g.stream(), location));
                group.set_span(g.span().located_at(location));
                tt = TokenTree::Group(group);
            } else {
                tt.set_span(tt.span().located_at(location));
            }
            tt
        })
        .collect()
}

/// Expands `yield_!`'s input if it is the internal form that the attribute
/// made; `None` for anything a user wrote.
pub(crate) fn expand_internal(input: TokenStream) -> Option<TokenStream> {
    let internal = syn::parse2::<Internal>(input).ok()?;
    Some(match internal {
        Internal::Await {
            yield_token,
            label,
            krate,
            deferred,
        } => {
            // Hygienic names, located at the user's `yield_` so that errors in
            // this code (the guard's unreachable label; `.await` where it is
            // not allowed) point there.
            let span = Span::mixed_site().located_at(yield_token.span());
            let krate = located_at(krate.to_token_stream(), yield_token.span());
            let never = Ident::new("__defer_never", span);
            // The user's `yield_`, as a `static` `Location` (the constant `caller()`
            // of a static's initializer is where it is written, here spanned at the
            // `yield_`): the awaiting future holds one pointer, not the five words of
            // a `Frame` (issue 11, memory per suspended coroutine).
            let at = Ident::new("__DEFER_YIELD_AT", span);
            quote::quote_spanned! {span=>
                {
                    if false {
                        // (A `let`, because `break 'label ::path` would read
                        // as the label `'label:`.)
                        let #never: ::core::result::Result<_, _> =
                            ::core::result::Result::Err(#krate::__private::unreachable_failure());
                        break #label #never;
                    }
                    #krate::Yieldable::__yield_point(#deferred, {
                        static #at: &::core::panic::Location<'static> =
                            ::core::panic::Location::caller();
                        #at
                    }).await
                }
            }
        }
        Internal::Inert {
            yield_token,
            krate,
            deferred,
        } => {
            // Has the type `yield_!` would have, `Result<T, Failure>` for a
            // `Deferred<T>`, without awaiting: so that it fits wherever the
            // `yield_!` stood (`.unwrap()`, `? + 1`) and adds no error of its
            // own. A diverging placeholder would not: its type is inferred
            // from nothing and falls back to `!`. Never run: the crate does
            // not compile once the attribute reported an error.
            let span = Span::mixed_site().located_at(yield_token.span());
            let krate = located_at(krate.to_token_stream(), yield_token.span());
            if deferred.is_empty() {
                quote::quote_spanned!(span=> loop {})
            } else {
                quote::quote_spanned! {span=>
                    {
                        fn __defer_inert_yield<T: 'static, D: #krate::Yieldable<T>>(
                            _: D,
                        ) -> ::core::result::Result<T, #krate::Failure> {
                            loop {}
                        }
                        __defer_inert_yield(#deferred)
                    }
                }
            }
        }
        Internal::Used => TokenStream::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    fn rewrite(block: syn::Block) -> (String, usize, Vec<String>) {
        let krate: Path = parse_quote!(::defer_core);
        let mut block = block;
        let mut errors = Errors::default();
        let n = rewrite_body(
            &mut block,
            &Site {
                krate: &krate,
                value: None,
            },
            &mut errors,
        )
        .awaits;
        (
            expand_all(block.into_token_stream()).to_string(),
            n,
            check::messages(&errors),
        )
    }

    /// What the compiler does next: expand the `yield_!`s with the internal
    /// form (those with any other input stay).
    fn expand_all(tokens: TokenStream) -> TokenStream {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut out: Vec<TokenTree> = Vec::new();
        let mut i = 0;
        while i < tokens.len() {
            if let (
                TokenTree::Ident(ident),
                Some(TokenTree::Punct(bang)),
                Some(TokenTree::Group(g)),
            ) = (&tokens[i], tokens.get(i + 1), tokens.get(i + 2))
                && ident == "yield_"
                && bang.as_char() == '!'
                && let Some(expansion) = expand_internal(g.stream())
            {
                take_path_prefix(&mut out);
                out.extend(expand_all(expansion));
                i += 3;
                continue;
            }
            match &tokens[i] {
                TokenTree::Group(g) => out.push(TokenTree::Group(Group::new(
                    g.delimiter(),
                    expand_all(g.stream()),
                ))),
                other => out.push(other.clone()),
            }
            i += 1;
        }
        out.into_iter().collect()
    }

    const YIELD_POINT: &str = ":: defer_core :: Yieldable :: __yield_point";

    #[test]
    fn expression_and_statement_yields() {
        let (out, n, errors) = rewrite(parse_quote!({
            let a = yield_!(d1)?;
            yield_!(d2);
            defer_core::yield_!(d3)?;
            yield_! { d4 }
            Ok(yield_![d5]?)
        }));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(n, 5);
        assert!(!out.contains("yield_ !"), "{out}");
        for d in ["d1", "d2", "d3", "d4", "d5"] {
            assert!(
                out.contains(&format!(
                    "{YIELD_POINT} ({d} , {{ static __DEFER_YIELD_AT : & :: core :: panic :: \
                     Location < 'static > = :: core :: panic :: Location :: caller () ;"
                )),
                "{d}: {out}"
            );
        }
        assert!(out.contains(". await"), "{out}");
        assert!(
            out.contains(
                "break 'yield_must_be_directly_in_the_inline_callbacks_body __defer_never"
            )
        );
    }

    #[test]
    fn invocations_keep_the_users_path_and_delimiter() {
        let krate: Path = parse_quote!(::defer_core);
        let mut block: syn::Block = parse_quote!({
            yield_!(d)?;
            defer_core::yield_! { e }
            println!("{}", my::yield_![g]?);
            Ok(())
        });
        let mut errors = Errors::default();
        rewrite_body(
            &mut block,
            &Site {
                krate: &krate,
                value: None,
            },
            &mut errors,
        );
        assert!(
            matches!(&block.stmts[0], Stmt::Expr(Expr::Try(t), Some(_)) if matches!(&*t.expr, Expr::Macro(_)))
        );
        let out = block.into_token_stream().to_string();
        assert!(out.contains("yield_ ! (@ __inline_callbacks_await yield_ 'yield_must_be_directly_in_the_inline_callbacks_body (:: defer_core) (d)) ?"), "{out}");
        assert!(
            out.contains("defer_core :: yield_ ! { @ __inline_callbacks_await"),
            "{out}"
        );
        assert!(
            out.contains("my :: yield_ ! [@ __inline_callbacks_await"),
            "{out}"
        );
    }

    #[test]
    fn user_input_is_not_taken_for_the_internal_form() {
        assert!(expand_internal(quote!(d)).is_none());
        assert!(expand_internal(quote!(@other yield_ (d))).is_none());
        assert!(
            expand_internal(quote!(@__inline_callbacks_inert yield_ (::defer_core) (d))).is_some()
        );
        assert!(
            expand_internal(quote!(@__inline_callbacks_used yield_))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn control_flow_is_untouched() {
        let (out, n, errors) = rewrite(parse_quote!({
            'outer: loop {
                match yield_!(d)? {
                    0 => break 'outer,
                    _ => continue,
                }
            }
            while let Some(x) = it.next() {
                if let Ok(v) = yield_!(x) {
                    return Ok(v);
                }
            }
            for d in ds {
                total += yield_!(d)?;
            }
            Ok(total)
        }));
        assert!(errors.is_empty());
        assert_eq!(n, 3);
        assert!(out.contains("break 'outer"));
        assert!(out.contains("return Ok (v)"));
        assert!(out.contains("continue"));
    }

    /// As [`rewrite`], for a function whose value type is `u32`.
    fn rewrite_u32(block: syn::Block) -> (String, Vec<String>) {
        let krate: Path = parse_quote!(::defer_core);
        let value: syn::Type = parse_quote!(u32);
        let mut block = block;
        let mut errors = Errors::default();
        rewrite_body(
            &mut block,
            &Site {
                krate: &krate,
                value: Some(&value),
            },
            &mut errors,
        );
        (
            block.into_token_stream().to_string(),
            check::messages(&errors),
        )
    }

    #[test]
    fn returns_of_the_body_are_typed_where_written() {
        let (out, errors) = rewrite_u32(parse_quote!({
            if a {
                return v;
            }
            let c = || {
                return 1;
            };
            fn nested() -> u8 {
                return 2;
            }
            Ok(3)
        }));
        assert!(errors.is_empty(), "{errors:?}");
        let typed = "return { let __defer_return : :: core :: result :: Result < u32 , :: defer_core :: Failure > = v ; __defer_return }";
        assert!(out.contains(typed), "{out}");
        // A closure's and a nested fn's own `return`s are theirs: untouched.
        assert!(out.contains("return 1 ;"), "{out}");
        assert!(out.contains("return 2 ;"), "{out}");
    }

    #[test]
    fn bare_return_is_one_error() {
        let (out, errors) = rewrite_u32(parse_quote!({
            if a {
                return;
            }
            Ok(3)
        }));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("write `return Ok(());`"), "{errors:?}");
        // Replaced by a placeholder of the right type, so that the inert body adds no error.
        assert!(out.contains("unreachable_failure"), "{out}");
    }

    #[test]
    fn nested_yields_are_rewritten_inside_out() {
        let (out, n, errors) = rewrite(parse_quote!({ yield_!(g(yield_!(a)?)) }));
        assert!(errors.is_empty());
        assert_eq!(n, 2);
        assert!(!out.contains("yield_ !"), "{out}");
    }

    #[test]
    fn yields_inside_other_macros() {
        let (out, n, errors) = rewrite(parse_quote!({
            println!("{} {}", yield_!(a)?, x);
            let v = vec![yield_!(b)?; 2];
            let w = vec![yield_!(c)?, defer_core::yield_!(d)?];
            assert_eq!(inner!(some tokens [yield_!(e)?]), 1);
            Ok(())
        }));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(n, 5);
        assert!(!out.contains("yield_ !"), "{out}");
        assert!(
            !out.contains("defer_core :: ("),
            "the path prefix was removed: {out}"
        );
        assert!(out.contains("println ! (\"{} {}\" ,"), "{out}");
    }

    #[test]
    fn forbidden_places_are_reported() {
        let (_, n, errors) = rewrite(parse_quote!({
            let c = || yield_!(a);
            let b = async { yield_!(b) };
            fn nested() {
                yield_!(c);
            }
            impl S {
                fn m(self) {
                    yield_!(d);
                }
            }
            const X: u8 = { yield_!(e) };
            let k = const { yield_!(f) };
            let p = vec![|| yield_!(g)];
            Ok(())
        }));
        assert_eq!(n, 0);
        assert_eq!(errors.len(), 7, "{errors:?}");
        assert!(errors[0].contains("inside a closure"));
        assert!(errors[1].contains("inside an `async` block"));
        assert!(errors[2].contains("inside a nested `fn`"));
        assert!(errors[3].contains("inside a nested `fn`"));
        assert!(errors[4].contains("inside a nested item"));
        assert!(errors[5].contains("inside a `const` block"));
        assert!(errors[6].contains("inside a closure"));
    }

    #[test]
    fn nested_inline_callbacks_and_macro_rules_are_left_alone() {
        let (out, n, errors) = rewrite(parse_quote!({
            #[inline_callbacks]
            fn inner(d: Deferred<u8>) -> Deferred<u8> {
                yield_!(d)
            }
            macro_rules! m {
                ($d:expr) => {
                    yield_!($d)
                };
            }
            yield_!(inner(d))
        }));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(n, 1);
        assert_eq!(out.matches("yield_ !").count(), 2, "{out}");
    }

    #[test]
    fn bad_arguments() {
        let (_, _, errors) = rewrite(parse_quote!({
            yield_!();
            yield_!(a, b);
            Ok(())
        }));
        assert_eq!(errors.len(), 2);
        assert!(errors[0].contains("takes one expression"));
    }
}
