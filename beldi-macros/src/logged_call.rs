//! The rewrite of a logged operation's call so that it is made from its call site:
//! `ctx.read(…)` becomes `ctx.__site(ID).read(…)`, and `handle.call(ctx, …)` becomes
//! `handle.call(&ctx.__site(ID), …)` (ids from [`Sites`]).

use quote::{ToTokens, quote};
use syn::{Expr, ExprMethodCall, Ident, parse_quote};

use crate::site::Sites;
use crate::symbol::{self, HANDLE_LOGGED, LOGGED};

/// Rewrites `call` if it is a logged operation on the context `ctx`; its receiver and
/// arguments must be rewritten already (their tokens are part of the site id).
pub fn rewrite(call: &mut ExprMethodCall, ctx: &Ident, sites: &mut Sites) {
    let method = call.method.to_string();
    if is_ident(&call.receiver, ctx) && symbol::is_one_of(&call.method, LOGGED) {
        let tokens = call.args.to_token_stream().to_string();
        let site = sites.next(&method, &tokens);
        *call.receiver = parse_quote!(#ctx.__site(#site));
    } else if symbol::is_one_of(&call.method, HANDLE_LOGGED)
        && call.args.first().is_some_and(|a| is_ident(a, ctx))
    {
        let tokens = quote!(#call).to_string();
        let site = sites.next(&method, &tokens);
        call.args[0] = parse_quote!(&#ctx.__site(#site));
    }
}

/// Whether `e` is `ident`, `&ident` or `(ident)`.
fn is_ident(e: &Expr, ident: &Ident) -> bool {
    match e {
        Expr::Path(p) => p.path.is_ident(ident),
        Expr::Reference(r) => is_ident(&r.expr, ident),
        Expr::Paren(p) => is_ident(&p.expr, ident),
        _ => false,
    }
}
