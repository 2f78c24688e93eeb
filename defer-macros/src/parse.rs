//! Parsing: turns the attribute's arguments and the annotated item into syntax
//! trees, and nothing more.
//!
//! Parsing here is deliberately lenient: anything that is *syntactically* an
//! argument list or an item is accepted, and every rule about what is allowed
//! lives in `check.rs`. That way a user who got three things wrong sees three
//! errors at once instead of fixing them one compile at a time.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Ident, Item, ItemFn, Path, PathSegment, Token};

/// One argument of `#[inline_callbacks(...)]`, not yet validated.
pub(crate) struct RawArg {
    /// The argument's name, e.g. `crate` in `crate = my_defer`.
    pub(crate) key: Path,
    /// What follows the name.
    pub(crate) value: RawValue,
    /// The whole argument as written, for spanning errors on it.
    pub(crate) tokens: TokenStream,
}

/// What follows an argument's name.
pub(crate) enum RawValue {
    /// Nothing: `name`.
    None,
    /// `name = tokens`: everything up to the next top-level comma.
    Eq(TokenStream),
    /// `name(...)`: a parenthesised list (never valid; its content is not
    /// kept).
    List,
}

/// The attribute's argument list.
pub(crate) struct RawArgs(pub(crate) Vec<RawArg>);

impl Parse for RawArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let list = Punctuated::<RawArg, Token![,]>::parse_terminated(input)?;
        Ok(RawArgs(list.into_iter().collect()))
    }
}

impl Parse for RawArg {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        // Keep the raw tokens of the whole argument so that an "unknown
        // argument" error underlines exactly what the user wrote.
        let fork = input.fork();
        let key = parse_key(input)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            let mut value = TokenStream::new();
            while !input.is_empty() && !input.peek(Token![,]) {
                value.extend(std::iter::once(input.parse::<proc_macro2::TokenTree>()?));
            }
            RawValue::Eq(value)
        } else if input.peek(syn::token::Paren) {
            let content;
            syn::parenthesized!(content in input);
            content.parse::<TokenStream>()?;
            RawValue::List
        } else {
            RawValue::None
        };
        let consumed = consumed_tokens(&fork, input);
        Ok(RawArg {
            key,
            value,
            tokens: consumed,
        })
    }
}

/// An argument name is a path whose segments may be keywords: `crate` is one.
fn parse_key(input: ParseStream) -> syn::Result<Path> {
    let leading_colon: Option<Token![::]> = input.parse()?;
    let mut segments = Punctuated::<PathSegment, Token![::]>::new();
    segments.push_value(PathSegment::from(input.call(Ident::parse_any)?));
    while input.peek(Token![::]) {
        segments.push_punct(input.parse()?);
        segments.push_value(PathSegment::from(input.call(Ident::parse_any)?));
    }
    Ok(Path {
        leading_colon,
        segments,
    })
}

/// The tokens `input` consumed since `fork` was taken.
fn consumed_tokens(fork: ParseStream, input: ParseStream) -> TokenStream {
    let mut tokens = TokenStream::new();
    // `fork` still sits at the start of the argument; step it forward until
    // it reaches where `input` is now.
    let end = input.cursor();
    let _ = fork.step(|cursor| {
        let mut rest = *cursor;
        while rest != end {
            match rest.token_tree() {
                Some((tt, next)) => {
                    tokens.extend(std::iter::once(tt));
                    rest = next;
                }
                None => break,
            }
        }
        Ok(((), rest))
    });
    tokens
}

/// What the attribute was put on.
pub(crate) enum Target {
    /// A function with a body: free fn, method, or trait method with a default
    /// body (all three parse as an `ItemFn`; a method's `self` is a receiver).
    Fn(Box<ItemFn>),
    /// Anything else; kept so that it can be re-emitted unchanged beside the
    /// error.
    Other(TokenStream),
}

/// Parses the annotated item.
pub(crate) fn parse_target(item: TokenStream) -> Target {
    match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(f)) => Target::Fn(Box::new(f)),
        // `fn f();` in a trait (no body) parses as `Item::Verbatim`, and is
        // rejected with everything else that is not a function with a body.
        _ => Target::Other(item),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn args(tokens: TokenStream) -> Vec<RawArg> {
        syn::parse2::<RawArgs>(tokens).unwrap().0
    }

    #[test]
    fn empty_arguments() {
        assert!(args(quote!()).is_empty());
    }

    #[test]
    fn crate_argument_keeps_its_path() {
        let a = args(quote!(crate = ::my::defer));
        assert_eq!(a.len(), 1);
        assert!(a[0].key.is_ident("crate"));
        match &a[0].value {
            RawValue::Eq(v) => assert_eq!(v.to_string(), ":: my :: defer"),
            _ => panic!("expected `= value`"),
        }
        assert_eq!(a[0].tokens.to_string(), "crate = :: my :: defer");
    }

    #[test]
    fn unknown_arguments_of_every_shape_parse() {
        let a = args(quote!(foo, bar = 1 + 2, baz(x, y), crate = c,));
        assert_eq!(a.len(), 4);
        assert_eq!(a[0].tokens.to_string(), "foo");
        assert!(matches!(a[0].value, RawValue::None));
        assert_eq!(a[1].tokens.to_string(), "bar = 1 + 2");
        assert_eq!(a[2].tokens.to_string(), "baz (x , y)");
        assert!(matches!(a[2].value, RawValue::List));
        assert_eq!(a[3].tokens.to_string(), "crate = c");
    }

    #[test]
    fn targets() {
        assert!(matches!(
            parse_target(quote!(
                fn f() {}
            )),
            Target::Fn(_)
        ));
        assert!(matches!(
            parse_target(quote!(
                fn f(&self) {}
            )),
            Target::Fn(_)
        ));
        assert!(matches!(
            parse_target(quote!(
                struct S;
            )),
            Target::Other(_)
        ));
        assert!(matches!(
            parse_target(quote!(
                fn f();
            )),
            Target::Other(_)
        ));
        assert!(matches!(parse_target(quote!(impl S {})), Target::Other(_)));
    }
}
