//! The four macros, each as parse → validate → generate (after thiserror's `expand.rs`),
//! and the code `#[beldi::function]` generates for a [`Function`]. Generated code names
//! only `::beldi::__private::…` paths.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{AttrStyle, Attribute, ItemFn, MacroDelimiter, Meta, MetaList};

use crate::model::Function;
use crate::parse::{self, Parsed};
use crate::symbol::{BELDI, DETERMINISTIC, DOC, TXN};
use crate::{attr, body, check, strip, txn_block};

/// The site of the steps of a whole-function transaction (the only transaction in its body
/// that the runtime lets begin).
const FUNCTION_TXN_SITE: u32 = 1;

/// `#[beldi::function(args)]` on `item`.
pub fn function(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Vec::new();
    let out = match parse::function(args, item, &mut errors) {
        Parsed::Function(f) => {
            check::function(&f, &mut errors);
            generate(&f, &mut errors)
        }
        Parsed::Invalid(f) => {
            check::body(&f.block, None, &mut errors);
            strip::beldi_attributes(*f).into_token_stream()
        }
        Parsed::NotAFunction(item) => item,
    };
    with_errors(errors, out)
}

/// The errors, then the item: a failed expansion still defines its item, so the rest of
/// the crate type-checks and only the real problems are reported.
fn with_errors(errors: Vec<syn::Error>, out: TokenStream) -> TokenStream {
    let errors = errors.into_iter().map(|e| e.to_compile_error());
    quote!(#(#errors)* #out)
}

/// The code of a `#[beldi::function]`: the handle constant, the body as a hidden function
/// (its logged calls given their sites, its transaction blocks expanded), the type checks
/// of input, output and error, and the registration submitted to the inventory.
fn generate(f: &Function, errors: &mut Vec<syn::Error>) -> TokenStream {
    let Function {
        item,
        ident,
        name,
        tables,
        timeout_ms,
        txn,
        ctx,
        input,
        output,
        error,
    } = f;
    let mut body_fn = item.clone();
    body::rewrite(&mut body_fn.block, &ctx.ident, name.value(), errors);
    let body_ident = format_ident!("__beldi_body_{}", ident);
    let vis = &item.vis;
    let (docs, attrs): (Vec<Attribute>, Vec<Attribute>) =
        body_fn.attrs.into_iter().partition(|a| *a.path() == DOC);
    body_fn.attrs = attrs;
    body_fn.sig.ident = body_ident.clone();
    body_fn.vis = syn::Visibility::Inherited;
    // `ctx` and `input` are the parameters of the closure registered below.
    let call = match txn {
        None => {
            let pass_ctx = if ctx.by_ref {
                quote!(&ctx)
            } else {
                quote!(ctx)
            };
            quote!(#body_ident(#pass_ctx, input).await)
        }
        // A `#[beldi::txn]` function runs its whole body as a transaction, again on a retry.
        Some(options) => {
            let pass = if ctx.by_ref {
                quote!(&__beldi_tctx)
            } else {
                quote!(__beldi_tctx.clone())
            };
            let closure_ctx = syn::Ident::new("ctx", Span::call_site());
            let body = quote!(#body_ident(#pass, input.clone()).await);
            txn_block::txn_loop(&closure_ctx, FUNCTION_TXN_SITE, options.retries, body)
        }
    };
    let timeout = timeout_ms
        .map(|ms| quote!(rt.set_timeout(#name, ::core::time::Duration::from_millis(#ms))?;));
    // Type checks spanned on the types themselves, so a non-serde type is reported there.
    let assert_input = quote_spanned! {input.span()=>
        const _: fn() = || {
            fn input_must_be_deserializable<T: ::beldi::__private::serde::de::DeserializeOwned + ::beldi::__private::serde::Serialize>() {}
            input_must_be_deserializable::<#input>();
        };
    };
    let assert_output = quote_spanned! {output.span()=>
        const _: fn() = || {
            fn output_must_be_serializable<T: ::beldi::__private::serde::de::DeserializeOwned + ::beldi::__private::serde::Serialize>() {}
            output_must_be_serializable::<#output>();
        };
    };
    let assert_error = quote_spanned! {error.span()=>
        const _: fn() = || {
            fn error_must_be_serializable_and_absorb_beldi_errors<T: ::beldi::__private::serde::de::DeserializeOwned + ::beldi::__private::serde::Serialize + ::core::convert::From<::beldi::__private::BeldiError>>() {}
            error_must_be_serializable_and_absorb_beldi_errors::<#error>();
        };
    };
    quote! {
        #assert_input
        #assert_output
        #assert_error
        #(#docs)*
        #[allow(non_upper_case_globals)]
        #vis const #ident: ::beldi::__private::Handle<#input, #output, #error> = ::beldi::__private::Handle::new(#name);

        #[doc(hidden)]
        #[allow(non_snake_case)]
        #body_fn

        const _: () = {
            fn __beldi_register(rt: &::beldi::__private::Runtime) -> ::core::result::Result<(), ::beldi::__private::BeldiError> {
                rt.register(#name, &[#(#tables),*], |ctx: ::beldi::__private::Ctx, input: #input| async move {
                    #call
                })?;
                #timeout
                ::core::result::Result::Ok(())
            }
            ::beldi::__private::inventory::submit! {
                ::beldi::__private::Registration {
                    name: #name,
                    path: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)),
                    input: ::core::stringify!(#input),
                    output: ::core::stringify!(#output),
                    error: ::core::stringify!(#error),
                    register: __beldi_register,
                }
            }
        };
    }
}

/// `#[beldi::txn(args)]` on `item`. On a function that also carries `#[beldi::function]`
/// (written below it), the attribute moves below that one, where the function macro, which
/// runs next, reads it ([`parse::function`]). Anywhere else it is an error: on a block, the
/// enclosing `#[beldi::function]` consumes it before it is expanded.
pub fn txn(args: TokenStream, item: TokenStream) -> TokenStream {
    if let Ok(mut f) = syn::parse2::<ItemFn>(item.clone())
        && let Some(pos) = f.attrs.iter().position(attr::is_function)
    {
        f.attrs.insert(pos + 1, txn_attribute(args));
        return f.into_token_stream();
    }
    let e = syn::Error::new(
        Span::call_site(),
        "#[beldi::txn] can only be used on a block inside a #[beldi::function] body, or on a #[beldi::function]",
    );
    with_errors(vec![e], item)
}

/// The attribute `#[beldi::txn(args)]` (`#[beldi::txn]` without arguments).
fn txn_attribute(args: TokenStream) -> Attribute {
    let span = Span::call_site();
    let path = syn::Path {
        leading_colon: None,
        segments: [BELDI, TXN]
            .iter()
            .map(|s| syn::PathSegment::from(syn::Ident::new(s.as_str(), span)))
            .collect(),
    };
    let meta = if args.is_empty() {
        Meta::Path(path)
    } else {
        Meta::List(MetaList {
            path,
            delimiter: MacroDelimiter::Paren(Default::default()),
            tokens: args,
        })
    };
    Attribute {
        pound_token: Default::default(),
        style: AttrStyle::Outer,
        bracket_token: Default::default(),
        meta,
    }
}

/// `#[beldi::deterministic]` on `item`: the body checked like a function's, the item
/// emitted without its Beldi attributes.
pub fn deterministic(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Vec::new();
    if !args.is_empty() {
        errors.push(syn::Error::new_spanned(
            &args,
            format!("#[{BELDI}::{DETERMINISTIC}] takes no arguments"),
        ));
    }
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let e = syn::Error::new(
                Span::call_site(),
                format!("#[{BELDI}::{DETERMINISTIC}] goes on a function"),
            );
            return with_errors(vec![e], item);
        }
    };
    check::body(&f.block, None, &mut errors);
    with_errors(errors, strip::beldi_attributes(f).into_token_stream())
}

/// `#[beldi::allow(...)]` anywhere its enclosing function macro did not consume it.
pub fn allow(_args: TokenStream, item: TokenStream) -> TokenStream {
    let e = syn::Error::new(
        Span::call_site(),
        "#[beldi::allow(side_effect)] only works on a statement inside a #[beldi::function] or #[beldi::deterministic] body",
    );
    with_errors(vec![e], item)
}
