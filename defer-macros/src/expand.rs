//! Code generation: parse, check, then either the expansion or, when anything
//! is wrong, the errors beside an inert copy of the function.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote};
use syn::ext::IdentExt;
use syn::visit_mut::VisitMut;
use syn::{AttrStyle, Ident, ItemFn, LitStr, Type};

use crate::check::{self, Errors};
use crate::parse::{self, RawArgs, Target};
use crate::yield_rewrite::{self, BODY_LABEL, Site};

/// `#[inline_callbacks]`: the whole attribute, from tokens to tokens.
pub(crate) fn inline_callbacks(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let config = match syn::parse2::<RawArgs>(args) {
        Ok(raw) => check::check_args(&raw, &mut errors),
        Err(e) => {
            errors.push(e);
            check::Config {
                krate: syn::parse_quote!(::defer_core),
                krate_ok: false,
            }
        }
    };

    let f = match parse::parse_target(item) {
        Target::Fn(f) => f,
        Target::Other(item) => {
            // The struct, impl, ... itself is fine: keep it, so that the only
            // error is ours.
            errors.push(check::not_a_function(&item));
            let errors = errors.to_compile_errors();
            return quote!(#errors #item);
        }
    };

    let output = check::check_fn(&f, &mut errors);

    let fn_name = LitStr::new(&f.sig.ident.unraw().to_string(), f.sig.ident.span());
    let mut block = (*f.block).clone();
    // The value type, for checking `return v` where it is written: from
    // `-> Deferred<T>`, or (already reported) `-> Result<T, Failure>`.
    let value = output
        .as_ref()
        .or_else(|| check::result_ok_type(&f.sig.output))
        .map(infer_impl_trait);
    let site = Site {
        krate: &config.krate,
        value: value.as_ref(),
    };
    let rewritten = yield_rewrite::rewrite_body(&mut block, &site, &mut errors);

    let parts = Parts {
        f: &f,
        krate: &config.krate,
        fn_name: &fn_name,
        block,
        labeled: rewritten.awaits > 0,
    };
    match output {
        Some(t) if errors.is_empty() => parts.expansion(&t),
        _ => {
            // The body can be kept (see `Parts::inert`) when its value type
            // is known: from `-> Deferred<T>`, or, for the common slip of
            // keeping `-> Result<T, Failure>`, from that. Not when the path to
            // the runtime is in doubt, nor in a `const fn` (no async blocks).
            let t = output.or_else(|| check::result_ok_type(&f.sig.output).cloned());
            let keep_body = config.krate_ok && f.sig.constness.is_none();
            let errors = errors.to_compile_errors();
            let inert = match t {
                Some(t) if keep_body => parts.inert(&t),
                _ => parts.without_body(rewritten.mark_used),
            };
            quote!(#errors #inert)
        }
    }
}

struct Parts<'a> {
    f: &'a ItemFn,
    krate: &'a syn::Path,
    /// The function's name, for the Failure's trace.
    fn_name: &'a LitStr,
    /// The body, with its `yield_!`s rewritten.
    block: syn::Block,
    /// Whether the body needs its label (only `yield_!` guards use it; an
    /// unused label would be a warning).
    labeled: bool,
}

impl Parts<'_> {
    /// The function as written, whose body starts the coroutine:
    ///
    /// ```text
    /// fn f(args) -> Deferred<T> {
    ///     PATH::__private::inline_callbacks::<T, _>(|| "f", async move {
    ///         let __defer_result: Result<T, PATH::Failure> = 'body: { BODY };
    ///         __defer_result
    ///     })
    /// }
    /// ```
    fn expansion(&self, t: &Type) -> TokenStream {
        let krate = self.krate;
        let fn_name = self.fn_name;
        let future = self.future(t);
        let t = infer_impl_trait(t);
        // The call is located at the return type: the compiler's errors about
        // it ("the parameter type `T` may not live long enough" for a generic
        // without a `'static` bound) then point at `-> Deferred<..>`, the
        // reason the arguments must be `'static`, instead of at the attribute.
        let location = match &self.f.sig.output {
            syn::ReturnType::Type(_, ty) => ty
                .to_token_stream()
                .into_iter()
                .next()
                .map_or_else(Span::call_site, |tt| tt.span()),
            syn::ReturnType::Default => self.f.sig.ident.span(),
        };
        let function = yield_rewrite::located_at(
            quote!(#krate::__private::inline_callbacks::<#t, _>),
            location,
        );
        let mut call = proc_macro2::Group::new(
            proc_macro2::Delimiter::Parenthesis,
            // The name as a function: a word in every suspended coroutine, where a
            // `&str` is two (issue 11).
            quote!(|| #fn_name, #future),
        );
        call.set_span(Span::call_site().located_at(location));
        self.with_body(quote!(#function #call))
    }

    /// The `async move` block that is the body. `async move`, so that the
    /// arguments move into it, as into an `async fn`'s future.
    fn future(&self, t: &Type) -> TokenStream {
        let krate = self.krate;
        // Hygienic: invisible to the body, cannot shadow or be shadowed.
        let result = Ident::new("__defer_result", Span::mixed_site());
        let block = &self.block;
        let body = if self.labeled {
            let label = syn::Lifetime::new(BODY_LABEL, Span::mixed_site());
            quote!(#label: #block)
        } else {
            block.to_token_stream()
        };
        // The annotation is what lets `Ok(x)`, `?` and `return Ok(x)` in the
        // body infer with no help, as in a function returning this `Result`.
        let t = infer_impl_trait(t);
        let captures = self.captures();
        quote! {
            async move {
                #captures
                let #result: ::core::result::Result<#t, #krate::Failure> = #body;
                #result
            }
        }
    }

    /// `let _ = &arg;` for `self` and every argument bound to a plain name: mentioning an argument
    /// moves it into the `async move` block, so every argument lives until the coroutine finishes
    /// (as in an `async fn`, and as in Twisted, whose generator frame holds its arguments), even
    /// one the body never uses, such as a guard.
    fn captures(&self) -> TokenStream {
        let names = self.f.sig.inputs.iter().filter_map(|arg| match arg {
            syn::FnArg::Receiver(r) => Some(r.self_token.to_token_stream()),
            syn::FnArg::Typed(t) => match &*t.pat {
                syn::Pat::Ident(i) => Some(i.ident.to_token_stream()),
                _ => None,
            },
        });
        quote!(#(let _ = &#names;)*)
    }

    /// The function as written, beside the errors. The signature is
    /// unchanged, so that callers type-check against it and produce no
    /// errors of their own. The rewritten body is kept in a future that is
    /// never run, so that the user's other mistakes in it are reported in
    /// this same compile and rust-analyzer keeps seeing it. The future is not
    /// handed to the runtime: its `'static` requirement would repeat a
    /// `&self` or borrowed-argument error as lifetime errors in generated
    /// code. The original body is not emitted as it was: it evaluates to a
    /// `Result` where the signature says `Deferred`, one more confusing
    /// error.
    fn inert(&self, t: &Type) -> TokenStream {
        let future = self.future(t);
        self.with_body(quote! {
            // `yield_!()` with no argument (reported) stands for a diverging
            // placeholder; its "unreachable" warnings would only add noise.
            #[allow(unreachable_code)]
            let _ = #future;
            loop {}
        })
    }

    /// The function as written, beside the errors, with no body: when the
    /// body's value type is unknown, type-checking the body would add
    /// inference errors that are not the user's. `mark_used` keeps the
    /// user's import of `yield_` used, and the arguments are allowed to be
    /// unused, so that no warning adds to the error.
    fn without_body(&self, mark_used: TokenStream) -> TokenStream {
        let allow = quote!(#[allow(unused_variables)]);
        let item = self.with_body(quote!(#mark_used loop {}));
        quote!(#allow #item)
    }

    /// `attrs vis sig { inner_attrs body }`.
    fn with_body(&self, body: TokenStream) -> TokenStream {
        let (outer, inner): (Vec<_>, Vec<_>) = self
            .f
            .attrs
            .iter()
            .partition(|a| matches!(a.style, AttrStyle::Outer));
        let vis = &self.f.vis;
        let sig = &self.f.sig;
        // The original braces, so that "expected `Deferred`, found `()`"
        // style errors point at the user's body.
        let mut out = TokenStream::new();
        syn::token::Brace {
            span: self.f.block.brace_token.span,
        }
        .surround(&mut out, |out| {
            out.extend(quote!(#(#inner)* #body));
        });
        quote!(#(#outer)* #vis #sig #out)
    }
}

/// `T` with every `impl Trait` in it replaced by `_`: `-> Deferred<impl
/// Display>` is a valid return type, but `impl Trait` is not allowed in a
/// `let` type or a turbofish, where `_` infers the same thing.
fn infer_impl_trait(t: &Type) -> Type {
    struct Replace;
    impl VisitMut for Replace {
        fn visit_type_mut(&mut self, ty: &mut Type) {
            if let Type::ImplTrait(i) = ty {
                *ty = Type::Infer(syn::TypeInfer {
                    underscore_token: syn::Token![_](i.impl_token.span),
                });
            } else {
                syn::visit_mut::visit_type_mut(self, ty);
            }
        }
    }
    let mut t = t.clone();
    Replace.visit_type_mut(&mut t);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(args: TokenStream, item: TokenStream) -> String {
        inline_callbacks(args, item).to_string()
    }

    #[test]
    fn expansion_shape() {
        let out = expand(
            quote!(),
            quote! {
                /// Docs.
                #[must_use]
                pub(crate) fn get<T: Clone + 'static>(self, d: Deferred<T>) -> Deferred<T>
                where T: Default
                {
                    #![allow(unused)]
                    let v = yield_!(d)?;
                    Ok(v)
                }
            },
        );
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.starts_with("# [doc = r\" Docs.\"] # [must_use] pub (crate) fn get < T : Clone + 'static > (self , d : Deferred < T >) -> Deferred < T > where T : Default { # ! [allow (unused)] :: defer_core :: __private :: inline_callbacks :: < T , _ > (|| \"get\" , async move { let _ = & self ; let _ = & d ; let __defer_result : :: core :: result :: Result < T , :: defer_core :: Failure > = 'yield_must_be_directly_in_the_inline_callbacks_body : {"), "{out}");
        assert!(out.ends_with("Ok (v) } ; __defer_result }) }"), "{out}");
        assert!(out.contains("let v = yield_ ! (@ __inline_callbacks_await yield_ 'yield_must_be_directly_in_the_inline_callbacks_body (:: defer_core) (d)) ? ;"), "{out}");
    }

    #[test]
    fn no_label_without_yield() {
        let out = expand(
            quote!(),
            quote!(
                fn f() -> Deferred<u8> {
                    Ok(1)
                }
            ),
        );
        assert!(!out.contains("compile_error"), "{out}");
        assert!(
            !out.contains("'yield_must_be_directly_in_the_inline_callbacks_body"),
            "{out}"
        );
        assert!(out.contains("= { Ok (1) } ;"), "{out}");
    }

    #[test]
    fn crate_path_is_used_everywhere() {
        let out = expand(
            quote!(crate = my_defer),
            quote!(
                fn f(d: Deferred<u8>) -> Deferred<u8> {
                    yield_!(d)
                }
            ),
        );
        assert!(!out.contains("defer_core"), "{out}");
        assert!(out.contains("my_defer :: __private :: inline_callbacks"));
        assert!(out.contains("my_defer :: Failure"));
        assert!(
            out.contains("'yield_must_be_directly_in_the_inline_callbacks_body (my_defer)"),
            "{out}"
        );
    }

    #[test]
    fn impl_trait_in_output_is_inferred() {
        let out = expand(
            quote!(),
            quote!(
                fn f() -> Deferred<Box<impl Display>> {
                    Ok(Box::new(1))
                }
            ),
        );
        assert!(
            out.contains("-> Deferred < Box < impl Display > >"),
            "{out}"
        );
        assert!(
            out.contains("inline_callbacks :: < Box < _ > , _ >"),
            "{out}"
        );
        assert!(
            out.contains("Result < Box < _ > , :: defer_core :: Failure >"),
            "{out}"
        );
    }

    #[test]
    fn errors_keep_the_function_inert() {
        let out = expand(
            quote!(),
            quote!(
                fn f(&self, d: Deferred<u8>) -> Deferred<u8> {
                    yield_!(d)
                }
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(
            out.contains("fn f (& self , d : Deferred < u8 >) -> Deferred < u8 >"),
            "{out}"
        );
        assert!(out.contains("let _ = async move"), "{out}");
        assert!(out.contains("loop { }"), "{out}");
        assert!(!out.contains("__private :: inline_callbacks"), "{out}");

        let out = expand(
            quote!(),
            quote!(
                fn f(d: Deferred<u8>) -> u8 {
                    yield_!(d)
                }
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.ends_with("# [allow (unused_variables)] fn f (d : Deferred < u8 >) -> u8 { yield_ ! (@ __inline_callbacks_used yield_) ; loop { } }"), "{out}");

        let out = expand(
            quote!(),
            quote!(
                fn f(d: Deferred<u8>) -> Result<u8, Failure> {
                    yield_!(d)
                }
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(out.contains("let _ = async move { let _ = & d ; let __defer_result : :: core :: result :: Result < u8 , :: defer_core :: Failure >"), "{out}");

        let out = expand(
            quote!(bogus),
            quote!(
                fn f() -> Deferred<u8> {
                    Ok(1)
                }
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(
            out.contains("let _ = async move"),
            "an unknown argument leaves the crate path alone: {out}"
        );

        let out = expand(
            quote!(crate = "x"),
            quote!(
                fn f() -> Deferred<u8> {
                    Ok(1)
                }
            ),
        );
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(
            out.ends_with("fn f () -> Deferred < u8 > { loop { } }"),
            "{out}"
        );
    }

    #[test]
    fn not_a_function_is_kept() {
        let out = expand(
            quote!(),
            quote!(
                struct S {
                    a: u8,
                }
            ),
        );
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.ends_with("struct S { a : u8 , }"), "{out}");
    }
}
