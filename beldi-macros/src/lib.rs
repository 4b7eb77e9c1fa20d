//! Procedural macros of Beldi for Rust (`#[beldi::function]`, `#[beldi::txn]` and the
//! side-effect checker). They arrive with the macro DSL; this crate is the place they live,
//! and depends on no runtime crate: expansions name `::beldi::__private::…` paths.
