//! The typed model of an annotated function: what `parse` produces from a
//! `#[beldi::function]` item and what `expand` reads to generate code.

use syn::{Ident, ItemFn, LitStr, Type};

/// A well-formed `#[beldi::function]`: its signature has the required shape, so code can be
/// generated for it (its arguments may still have had errors, which are reported beside).
pub struct Function {
    /// The function as written, without the Beldi attributes on it; its block is the body.
    pub item: ItemFn,
    /// The Rust name, which becomes the name of the function's handle.
    pub ident: Ident,
    /// The name it is registered and dispatched under: `name = "..."`, else the Rust name.
    pub name: LitStr,
    /// The data tables it owns: `tables = ["a", "b"]`.
    pub tables: Vec<LitStr>,
    /// Its timeout in milliseconds: `timeout = "30s"`.
    pub timeout_ms: Option<u64>,
    /// Whether its whole body is one transaction (`#[beldi::txn]` on the function), and how.
    pub txn: Option<TxnOptions>,
    /// The context parameter.
    pub ctx: CtxArg,
    /// The input type (the second parameter).
    pub input: Type,
    /// The output type: the `Ok` type of the returned `Result`.
    pub output: Type,
    /// The error type: the `Err` type of the returned `Result`.
    pub error: Type,
}

/// The context parameter of a function: `ctx: &Ctx` or `ctx: Ctx`.
pub struct CtxArg {
    /// Its name, which the body uses for logged operations.
    pub ident: Ident,
    /// Whether it is taken by reference (`&Ctx`) rather than by value (`Ctx`).
    pub by_ref: bool,
}

/// The arguments of a `#[beldi::txn]`, on a block or a function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TxnOptions {
    /// How many times a transaction that died under wait-die runs again (`retries = N`;
    /// 0 when absent).
    pub retries: u32,
}
