//! Procedural macros of Beldi for Rust: `#[beldi::function]`, `#[beldi::txn]`,
//! `#[beldi::deterministic]` and `#[beldi::allow]`, with the side-effect checker.
//!
//! Built like serde_derive and thiserror: this file only holds the entry points, and each
//! expansion ([`expand`]) is parse ([`parse`], into the typed [`model`]) → validate
//! ([`check`]) → generate. Every problem is a `syn::Error` spanned on the offending tokens,
//! all problems of one item are reported together, and on error the item is still emitted
//! so the rest of the crate type-checks. Generated code names only `::beldi::__private::…`
//! paths; this crate depends on no runtime crate.
//!
//! # Files, in dependency order
//!
//! Each file uses only files above it:
//!
//! 1. [`symbol`] — every name looked for in user code: attributes, arguments, logged
//!    `Ctx` methods.
//! 2. [`model`] — the typed model of an annotated function ([`model::Function`]).
//! 3. [`attr`] — recognising Beldi's attributes and parsing their arguments (symbol, model).
//! 4. [`parse`] — item → [`model::Function`] (symbol, model, attr).
//! 5. [`check`] — the side-effect checker (symbol, model, attr).
//! 6. [`site`] — stable call-site ids (no crate file).
//! 7. [`logged_call`] — rewrites a logged call to be made from its site (symbol, site).
//! 8. [`txn_block`] — rewrites a `#[beldi::txn]` block into a transaction loop (model, attr).
//! 9. [`allow_attr`] — removes `#[beldi::allow]` from the statements it marks (attr).
//! 10. [`strip`] — removes Beldi's attributes from an item emitted without generated code
//!     (attr).
//! 11. [`body`] — the walk over a function body that applies 7–9 in source order (symbol,
//!     attr, site, logged_call, txn_block, allow_attr).
//! 12. [`expand`] — the four macros' pipelines and the generated code (symbol, model, attr,
//!     parse, check, txn_block, strip, body).
//! 13. `lib.rs` — the entry points (expand).
//! 14. `tests.rs` (tests only) — keeps [`symbol::LOGGED`] equal to the runtime's logged
//!     `Ctx` methods and to the compile-pass case that calls them all.

use proc_macro::TokenStream;

mod allow_attr;
mod attr;
mod body;
mod check;
mod expand;
mod logged_call;
mod model;
mod parse;
mod site;
mod strip;
mod symbol;
mod txn_block;

#[cfg(test)]
mod tests;

/// Turns an `async fn(ctx: &Ctx, input: I) -> Result<O, E>` into an exactly-once function:
/// registered for dispatch by name (`Runtime::register_all`), every logged call site given a
/// stable step identity, a typed handle with `.call(ctx, &input)`, `.spawn(ctx, &input)` and
/// `.invoke(&runtime, key, &input)`, and the body checked for side effects that would not be
/// logged.
///
/// Arguments: `tables = ["a", "b"]` (the data tables it owns), `name = "..."` (default: the
/// function's name), `timeout = "30s"` (`ms`, `s` or `m`).
#[proc_macro_attribute]
pub fn function(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::function(args.into(), item.into()).into()
}

/// Marks a transaction: a block inside a `#[beldi::function]` body, or a whole function
/// when written above or below its `#[beldi::function]`. `retries = N` runs a transaction
/// that died under wait-die again, up to N times. The `#[beldi::function]` consumes it;
/// anywhere else it is an error.
#[proc_macro_attribute]
pub fn txn(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::txn(args.into(), item.into()).into()
}

/// Applies the side-effect checks of `#[beldi::function]` to a helper function called from
/// function bodies.
#[proc_macro_attribute]
pub fn deterministic(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::deterministic(args.into(), item.into()).into()
}

/// Allows one statement to use a side effect the checker would reject:
/// `#[beldi::allow(side_effect)]`. Consumed by the enclosing `#[beldi::function]` or
/// `#[beldi::deterministic]`; anywhere else it is an error.
#[proc_macro_attribute]
pub fn allow(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::allow(args.into(), item.into()).into()
}
