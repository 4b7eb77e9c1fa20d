//! Procedural macros of Beldi for Rust: `#[beldi::function]`, `#[beldi::txn]` and
//! `#[beldi::deterministic]`, with the side-effect checker.
//!
//! Built like tokio-macros and serde_derive: this file only holds the entry points; each
//! expansion is parse ([`parse`]) → validate ([`check`]) → expand ([`expand`]). Every problem
//! is a `syn::Error` spanned on the offending tokens, all problems of one item are reported
//! together, and on error the item is still emitted so the rest of the crate type-checks.
//! Generated code names only `::beldi::__private::…` paths; this crate depends on no
//! runtime crate.

use proc_macro::TokenStream;

mod check;
mod expand;
mod parse;
mod sites;

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

/// Marks a block inside a `#[beldi::function]` body as a transaction. The enclosing
/// `#[beldi::function]` rewrites it; used anywhere else it is an error.
#[proc_macro_attribute]
pub fn txn(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::txn_outside(args.into(), item.into()).into()
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
    expand::allow_outside(args.into(), item.into()).into()
}
