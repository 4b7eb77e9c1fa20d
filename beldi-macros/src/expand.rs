//! Expansion: the code each macro generates. Generated code names only
//! `::beldi::__private::…` paths.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::visit_mut::VisitMut;
use syn::{ItemFn, LitStr};

use crate::check::{self, is_txn_attr};
use crate::parse;
use crate::sites::{Rewriter, Stripper};

fn errors_to_tokens(errors: Vec<syn::Error>) -> TokenStream {
    errors.into_iter().map(|e| e.to_compile_error()).collect()
}

/// The item with every inner Beldi attribute removed, for emission after an error.
fn stripped(mut f: ItemFn) -> ItemFn {
    f.attrs.retain(|a| !is_txn_attr(a));
    Stripper.visit_block_mut(&mut f.block);
    f
}

pub fn function(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Vec::new();
    let args = parse::function_args(args, &mut errors);
    let mut f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let e = syn::Error::new(
                parse::call_site(),
                "#[beldi::function] goes on an `async fn`",
            )
            .to_compile_error();
            return quote!(#e #item);
        }
    };
    let _ = f
        .attrs
        .iter()
        .position(is_txn_attr)
        .map(|p| f.attrs.remove(p));
    let sig = parse::signature(&f, &mut errors);
    check::body(&f.block, sig.as_ref().map(|s| &s.ctx), &mut errors);
    let Some(sig) = sig else {
        let f = stripped(f);
        let errs = errors_to_tokens(errors);
        return quote!(#errs #f);
    };

    let ident = f.sig.ident.clone();
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&ident.to_string(), ident.span()));
    let mut rewriter = Rewriter {
        ctx: sig.ctx.clone(),
        function: name.value(),
        seen: Default::default(),
        txn_depth: 0,
        errors: &mut errors,
    };
    rewriter.visit_block_mut(&mut f.block);

    let body_ident = format_ident!("__beldi_body_{}", ident);
    let vis = f.vis.clone();
    let docs: Vec<_> = f
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .cloned()
        .collect();
    f.attrs.retain(|a| !a.path().is_ident("doc"));
    f.sig.ident = body_ident.clone();
    f.vis = syn::Visibility::Inherited;
    let (input, output, error) = (&sig.input, &sig.output, &sig.error);
    let tables = &args.tables;
    let pass_ctx = if sig.ctx_by_ref {
        quote!(&ctx)
    } else {
        quote!(ctx)
    };
    // A `#[beldi::txn]` function runs its whole body as a transaction.
    let call = if args.txn {
        let pass = if sig.ctx_by_ref {
            quote!(&__beldi_tctx)
        } else {
            quote!(__beldi_tctx.clone())
        };
        let ctx_ident = syn::Ident::new("ctx", proc_macro2::Span::call_site());
        let body = quote!(#body_ident(#pass, input.clone()).await);
        let lp = txn_loop(&ctx_ident, 1, 0, body);
        quote!(#lp)
    } else {
        quote!(#body_ident(#pass_ctx, input).await)
    };
    let timeout = args
        .timeout_ms
        .map(|ms| quote!(rt.set_timeout(#name, ::core::time::Duration::from_millis(#ms))?;));
    // Type checks spanned on the types themselves, so a non-serde type is reported there.
    let assert_input = quote::quote_spanned! {syn::spanned::Spanned::span(input)=>
        const _: fn() = || {
            fn input_must_be_deserializable<T: ::beldi::__private::serde::de::DeserializeOwned + ::beldi::__private::serde::Serialize>() {}
            input_must_be_deserializable::<#input>();
        };
    };
    let assert_output = quote::quote_spanned! {syn::spanned::Spanned::span(output)=>
        const _: fn() = || {
            fn output_must_be_serializable<T: ::beldi::__private::serde::de::DeserializeOwned + ::beldi::__private::serde::Serialize>() {}
            output_must_be_serializable::<#output>();
        };
    };
    let assert_error = quote::quote_spanned! {syn::spanned::Spanned::span(error)=>
        const _: fn() = || {
            fn error_must_be_serializable_and_absorb_beldi_errors<T: ::beldi::__private::serde::de::DeserializeOwned + ::beldi::__private::serde::Serialize + ::core::convert::From<::beldi::__private::BeldiError>>() {}
            error_must_be_serializable_and_absorb_beldi_errors::<#error>();
        };
    };
    let expansion = quote! {
        #assert_input
        #assert_output
        #assert_error
        #(#docs)*
        #[allow(non_upper_case_globals)]
        #vis const #ident: ::beldi::__private::Handle<#input, #output, #error> = ::beldi::__private::Handle::new(#name);

        #[doc(hidden)]
        #[allow(non_snake_case)]
        #f

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
    };
    let errs = errors_to_tokens(errors);
    quote!(#errs #expansion)
}

/// The expression a transaction runs as: begin, the body (its value a `Result`; `?` inside
/// stays inside), then commit or abort, retrying a transaction that died under wait-die.
pub fn txn_loop(ctx: &syn::Ident, scope: u32, retries: u32, body: TokenStream) -> TokenStream {
    quote! {{
        let mut __beldi_txn = #ctx.__txn_block(#scope, #retries);
        loop {
            let __beldi_tctx = match __beldi_txn.begin().await {
                ::core::result::Result::Ok(c) => c,
                ::core::result::Result::Err(e) => break ::core::result::Result::Err(::core::convert::From::from(e)),
            };
            let __beldi_out = (async { #body }).await;
            match __beldi_txn.end(&__beldi_tctx, ::beldi::__private::txn_is_ok(&__beldi_out)).await {
                ::beldi::__private::TxnEnd::Done => break __beldi_out,
                ::beldi::__private::TxnEnd::Retry => continue,
                ::beldi::__private::TxnEnd::Failed(e) => break ::core::result::Result::Err(::core::convert::From::from(e)),
            }
        }
    }}
}

pub fn txn_outside(args: TokenStream, item: TokenStream) -> TokenStream {
    // `#[beldi::txn] #[beldi::function] async fn …`: hand the flag to the function macro.
    if let Ok(mut f) = syn::parse2::<ItemFn>(item.clone())
        && let Some(pos) = f.attrs.iter().position(|a| {
            a.path()
                .segments
                .last()
                .is_some_and(|s| s.ident == "function")
        })
    {
        if !args.is_empty() {
            let e = syn::Error::new_spanned(&args, "#[beldi::txn] takes no arguments yet")
                .to_compile_error();
            return quote!(#e #f);
        }
        let attr = &f.attrs[pos];
        let path = attr.path().clone();
        let inner = match &attr.meta {
            syn::Meta::List(l) => {
                let t = &l.tokens;
                quote!(#t, txn)
            }
            _ => quote!(txn),
        };
        f.attrs[pos] = syn::parse_quote!(#[#path(#inner)]);
        return quote!(#f);
    }
    let e = syn::Error::new(
        parse::call_site(),
        "#[beldi::txn] can only be used on a block inside a #[beldi::function] body, or on a #[beldi::function]",
    ).to_compile_error();
    quote!(#e #item)
}

pub fn deterministic(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Vec::new();
    if !args.is_empty() {
        errors.push(syn::Error::new_spanned(
            &args,
            "#[beldi::deterministic] takes no arguments",
        ));
    }
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let e = syn::Error::new(
                parse::call_site(),
                "#[beldi::deterministic] goes on a function",
            )
            .to_compile_error();
            return quote!(#e #item);
        }
    };
    check::body(&f.block, None, &mut errors);
    let f = stripped(f);
    let errs = errors_to_tokens(errors);
    quote!(#errs #f)
}

pub fn allow_outside(_args: TokenStream, item: TokenStream) -> TokenStream {
    let e = syn::Error::new(
        parse::call_site(),
        "#[beldi::allow(side_effect)] only works on a statement inside a #[beldi::function] or #[beldi::deterministic] body",
    ).to_compile_error();
    quote!(#e #item)
}
