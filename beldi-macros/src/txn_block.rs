//! The rewrite of a `#[beldi::txn]` block into the transaction it runs as, and that
//! transaction loop itself, which the body of a `#[beldi::txn]` function runs in too.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{Block, Expr, ExprBlock, Ident};

use crate::attr;
use crate::model::TxnOptions;

/// Takes the (first) `#[beldi::txn]` attribute off a block, if it has one.
pub fn take_attr(b: &mut ExprBlock) -> Option<syn::Attribute> {
    let pos = b.attrs.iter().position(attr::is_txn)?;
    Some(b.attrs.remove(pos))
}

/// The expression a `#[beldi::txn]` block becomes: the transaction loop around its
/// statements (already rewritten), inside which `ctx` names the transaction's context.
pub fn expression(
    ctx: &Ident,
    scope: u32,
    options: TxnOptions,
    block: &Block,
    errors: &mut Vec<syn::Error>,
) -> Expr {
    let stmts = &block.stmts;
    // Begun, committed if the block returns `Ok`, aborted otherwise; inside it the context
    // is the transaction's.
    let body = quote!(let #ctx = &__beldi_tctx; #(#stmts)*);
    let tokens = txn_loop(ctx, scope, options.retries, body);
    match syn::parse2(tokens.clone()) {
        Ok(e) => e,
        Err(e) => {
            errors.push(e);
            Expr::Verbatim(tokens)
        }
    }
}

/// The expression a transaction runs as: begin, the body (its value a `Result`; `?` inside
/// stays inside), then commit or abort, retrying up to `retries` times a transaction that
/// died under wait-die. `ctx` is the context outside the transaction, `scope` the site of
/// its steps; the body sees the transaction's context as `__beldi_tctx`.
pub fn txn_loop(ctx: &Ident, scope: u32, retries: u32, body: TokenStream) -> TokenStream {
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
