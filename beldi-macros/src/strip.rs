//! The rewrite of a function emitted without generated code (after an error, or by
//! `#[beldi::deterministic]`): its `#[beldi::txn]` and `#[beldi::allow]` attributes removed,
//! so the compiler does not reject them in turn.

use syn::ItemFn;
use syn::visit_mut::VisitMut;

use crate::attr;

/// `f` without the Beldi attributes on it and in its body.
pub fn beldi_attributes(mut f: ItemFn) -> ItemFn {
    f.attrs.retain(|a| !attr::is_txn(a));
    Stripper.visit_block_mut(&mut f.block);
    f
}

/// Removes `#[beldi::txn]` and `#[beldi::allow]` attributes where the body rewrite would
/// consume them: statements and blocks.
struct Stripper;

impl VisitMut for Stripper {
    fn visit_stmt_mut(&mut self, s: &mut syn::Stmt) {
        match s {
            syn::Stmt::Local(l) => l.attrs.retain(|a| !attr::is_allow(a)),
            syn::Stmt::Macro(m) => m.attrs.retain(|a| !attr::is_allow(a)),
            _ => {}
        }
        syn::visit_mut::visit_stmt_mut(self, s);
    }

    fn visit_expr_block_mut(&mut self, b: &mut syn::ExprBlock) {
        b.attrs.retain(|a| !attr::is_allow(a) && !attr::is_txn(a));
        syn::visit_mut::visit_expr_block_mut(self, b);
    }
}
