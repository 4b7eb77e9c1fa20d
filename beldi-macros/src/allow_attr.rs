//! The rewrite that removes `#[beldi::allow(side_effect)]` from the statements and blocks it
//! marks (the checker has skipped them already), reporting one with another argument.

use syn::Attribute;

use crate::attr;

/// Removes every `#[beldi::allow(...)]` from `attrs`, pushing an error for each one that is
/// not `#[beldi::allow(side_effect)]`.
pub fn take(attrs: &mut Vec<Attribute>, errors: &mut Vec<syn::Error>) {
    attrs.retain(|a| {
        if !attr::is_allow(a) {
            return true;
        }
        if !attr::allow_is_well_formed(a) {
            errors.push(syn::Error::new_spanned(
                a,
                "expected `#[beldi::allow(side_effect)]`",
            ));
        }
        false
    });
}
