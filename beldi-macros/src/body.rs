//! The rewrite of a `#[beldi::function]` body: one walk over it, in source order, that
//! gives every logged call its site ([`logged_call`]), turns `#[beldi::txn]` blocks into
//! transactions ([`txn_block`]) and removes `#[beldi::allow]` attributes ([`allow_attr`]).
//!
//! The walk's order decides which of several identical calls gets which site id, so it must
//! stay as it is: statements' attributes and macro arguments first, then the children, then
//! the call itself; a transaction block's site comes after the sites inside it, from its
//! rewritten tokens.

use quote::ToTokens;
use syn::visit_mut::VisitMut;
use syn::{Block, Expr, Ident};

use crate::site::{self, Sites};
use crate::symbol::SELECT;
use crate::{allow_attr, attr, logged_call, txn_block};

/// Rewrites `block`, the body of the function registered as `function` whose context
/// parameter is `ctx`, collecting problems (a malformed `#[beldi::allow]` or
/// `#[beldi::txn]`, a nested transaction) into `errors`.
pub fn rewrite(block: &mut Block, ctx: &Ident, function: String, errors: &mut Vec<syn::Error>) {
    Rewriter {
        ctx,
        sites: Sites::new(function),
        txn_depth: 0,
        errors,
    }
    .visit_block_mut(block);
}

/// The state of the walk.
struct Rewriter<'a> {
    /// The context parameter's name.
    ctx: &'a Ident,
    /// The site ids handed out so far.
    sites: Sites,
    /// How many `#[beldi::txn]` blocks enclose the current node.
    txn_depth: usize,
    /// The problems found.
    errors: &'a mut Vec<syn::Error>,
}

impl Rewriter<'_> {
    /// Rewrites the arguments of a macro call that parse as expressions (`join!`,
    /// `println!`, …); not those of `select!`, whose branches are no expressions.
    fn rewrite_macro_args(&mut self, mac: &mut syn::Macro) {
        if mac.path.segments.last().is_some_and(|s| s.ident == SELECT) {
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

    /// Turns the block `e` into a transaction if it is marked `#[beldi::txn]`; returns
    /// whether it was.
    fn rewrite_txn_block(&mut self, e: &mut Expr) -> bool {
        let Expr::Block(b) = e else { return false };
        allow_attr::take(&mut b.attrs, self.errors);
        let Some(attr) = txn_block::take_attr(b) else {
            return false;
        };
        if self.txn_depth > 0 {
            self.errors.push(syn::Error::new_spanned(
                &attr,
                "nested #[beldi::txn] blocks are not supported: a transaction already encloses this block",
            ));
        }
        let options = attr::txn_options(&attr, self.errors);
        self.txn_depth += 1;
        syn::visit_mut::visit_expr_block_mut(self, b);
        self.txn_depth -= 1;
        let scope = self
            .sites
            .next(site::TXN_BLOCK, &b.block.to_token_stream().to_string());
        *e = txn_block::expression(self.ctx, scope, options, &b.block, self.errors);
        true
    }
}

impl VisitMut for Rewriter<'_> {
    fn visit_stmt_mut(&mut self, s: &mut syn::Stmt) {
        match s {
            syn::Stmt::Local(l) => allow_attr::take(&mut l.attrs, self.errors),
            syn::Stmt::Macro(m) => {
                allow_attr::take(&mut m.attrs, self.errors);
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
        if self.rewrite_txn_block(e) {
            return;
        }
        if let Expr::Macro(m) = e {
            self.rewrite_macro_args(&mut m.mac);
        }
        syn::visit_mut::visit_expr_mut(self, e);
        if let Expr::MethodCall(m) = e {
            logged_call::rewrite(m, self.ctx, &mut self.sites);
        }
    }
}
