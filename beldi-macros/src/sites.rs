//! Call-site identity: rewrites every logged operation in a body so its step comes from a
//! stable site id, and turns `#[beldi::txn]` blocks into expressions.
//!
//! A site id is a hash of the function's name, the operation's method name and the tokens of
//! the call (receiver and arguments), plus the number of identical calls before it in the
//! body. Editing unrelated code — adding a statement, another call, a comment, moving lines —
//! leaves every other site's id unchanged; at run time the id is combined with the number
//! of operations the site already made in this execution (loops, `join!`).

use std::collections::HashMap;

use quote::{ToTokens, quote};
use syn::visit_mut::VisitMut;
use syn::{Expr, Ident, parse_quote};

use crate::check::{is_allow_attr, is_txn_attr};

/// Methods of the context that are logged operations.
const LOGGED: &[&str] = &[
    "read",
    "read_as",
    "write",
    "write_as",
    "update",
    "cond_write",
    "delete",
    "scan",
    "call",
    "spawn",
    "now",
    "random",
    "uuid",
    "sleep",
    "side_effect",
];

fn fnv32(parts: &[&str]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= b as u32;
            h = h.wrapping_mul(0x01000193);
        }
    }
    h
}

pub struct Rewriter<'e> {
    pub ctx: Ident,
    pub function: String,
    pub seen: HashMap<u32, u32>,
    pub txn_depth: usize,
    pub errors: &'e mut Vec<syn::Error>,
}

fn is_ident(e: &Expr, ident: &Ident) -> bool {
    match e {
        Expr::Path(p) => p.path.is_ident(ident),
        Expr::Reference(r) => is_ident(&r.expr, ident),
        Expr::Paren(p) => is_ident(&p.expr, ident),
        _ => false,
    }
}

impl Rewriter<'_> {
    fn site(&mut self, method: &str, tokens: &str) -> u32 {
        let base = fnv32(&[&self.function, method, tokens]);
        let n = self.seen.entry(base).or_insert(0);
        let id = if *n == 0 {
            base
        } else {
            fnv32(&[&base.to_string(), &n.to_string()])
        };
        *n += 1;
        id.max(1)
    }

    fn rewrite_macro_args(&mut self, mac: &mut syn::Macro) {
        let is_select = mac
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "select");
        if is_select {
            return;
        }
        if let Ok(mut args) = mac
            .parse_body_with(syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated)
        {
            for a in args.iter_mut() {
                self.visit_expr_mut(a);
            }
            mac.tokens = args.to_token_stream();
        }
    }

    fn strip_allow(&mut self, attrs: &mut Vec<syn::Attribute>) {
        attrs.retain(|a| {
            if !is_allow_attr(a) {
                return true;
            }
            let ok = a.parse_args::<Ident>().is_ok_and(|i| i == "side_effect");
            if !ok {
                self.errors.push(syn::Error::new_spanned(
                    a,
                    "expected `#[beldi::allow(side_effect)]`",
                ));
            }
            false
        });
    }
}

impl VisitMut for Rewriter<'_> {
    fn visit_stmt_mut(&mut self, s: &mut syn::Stmt) {
        match s {
            syn::Stmt::Local(l) => self.strip_allow(&mut l.attrs),
            syn::Stmt::Macro(m) => {
                self.strip_allow(&mut m.attrs);
                self.rewrite_macro_args(&mut m.mac);
            }
            _ => {}
        }
        syn::visit_mut::visit_stmt_mut(self, s);
    }

    fn visit_item_mut(&mut self, _i: &mut syn::Item) {
        // Items nested in the body are not part of its execution.
    }

    fn visit_expr_mut(&mut self, e: &mut Expr) {
        if let Expr::Block(b) = e {
            self.strip_allow(&mut b.attrs);
            if let Some(pos) = b.attrs.iter().position(is_txn_attr) {
                let attr = b.attrs.remove(pos);
                if self.txn_depth > 0 {
                    self.errors.push(syn::Error::new_spanned(&attr, "nested #[beldi::txn] blocks are not supported: a transaction already encloses this block"));
                }
                let retries = txn_retries(&attr, self.errors);
                self.txn_depth += 1;
                syn::visit_mut::visit_expr_block_mut(self, b);
                self.txn_depth -= 1;
                let scope = self.site("txn", &b.block.to_token_stream().to_string());
                let stmts = &b.block.stmts;
                let ctx = &self.ctx;
                // The block runs as a transaction: begun, committed if it returns `Ok`,
                // aborted otherwise; inside it the context is the transaction's.
                let body = quote!(let #ctx = &__beldi_tctx; #(#stmts)*);
                *e = syn::parse2(crate::expand::txn_loop(ctx, scope, retries, body))
                    .expect("a transaction block expands to an expression");
                return;
            }
        }
        if let Expr::Macro(m) = e {
            self.rewrite_macro_args(&mut m.mac);
        }
        syn::visit_mut::visit_expr_mut(self, e);
        if let Expr::MethodCall(m) = e {
            let method = m.method.to_string();
            let ctx = self.ctx.clone();
            if is_ident(&m.receiver, &ctx) && LOGGED.contains(&method.as_str()) {
                let tokens = m.args.to_token_stream().to_string();
                let site = self.site(&method, &tokens);
                *m.receiver = parse_quote!(#ctx.__site(#site));
            } else if matches!(method.as_str(), "call" | "spawn")
                && m.args.first().is_some_and(|a| is_ident(a, &ctx))
            {
                let tokens = quote!(#m).to_string();
                let site = self.site(&method, &tokens);
                m.args[0] = parse_quote!(&#ctx.__site(#site));
            }
        }
    }
}

/// The `retries = N` argument of a `#[beldi::txn]` attribute (0 when absent).
pub fn txn_retries(attr: &syn::Attribute, errors: &mut Vec<syn::Error>) -> u32 {
    match &attr.meta {
        syn::Meta::Path(_) => 0,
        syn::Meta::List(l) => match l.parse_args::<syn::MetaNameValue>() {
            Ok(nv) if nv.path.is_ident("retries") => match &nv.value {
                Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Int(i),
                    ..
                }) => i.base10_parse::<u32>().unwrap_or_else(|e| {
                    errors.push(e);
                    0
                }),
                other => {
                    errors.push(syn::Error::new_spanned(
                        other,
                        "`retries` takes a number, like `retries = 3`",
                    ));
                    0
                }
            },
            _ => {
                errors.push(syn::Error::new_spanned(
                    &l.tokens,
                    "#[beldi::txn] takes only `retries = N`",
                ));
                0
            }
        },
        syn::Meta::NameValue(nv) => {
            errors.push(syn::Error::new_spanned(
                nv,
                "#[beldi::txn] takes only `retries = N`, in parentheses",
            ));
            0
        }
    }
}

/// Removes `#[beldi::txn]` and `#[beldi::allow]` attributes from a body that is emitted
/// unchanged (after an error), so the compiler does not reject them in turn.
pub struct Stripper;

impl VisitMut for Stripper {
    fn visit_stmt_mut(&mut self, s: &mut syn::Stmt) {
        match s {
            syn::Stmt::Local(l) => l.attrs.retain(|a| !is_allow_attr(a)),
            syn::Stmt::Macro(m) => m.attrs.retain(|a| !is_allow_attr(a)),
            _ => {}
        }
        syn::visit_mut::visit_stmt_mut(self, s);
    }
    fn visit_expr_block_mut(&mut self, b: &mut syn::ExprBlock) {
        b.attrs.retain(|a| !is_allow_attr(a) && !is_txn_attr(a));
        syn::visit_mut::visit_expr_block_mut(self, b);
    }
}
