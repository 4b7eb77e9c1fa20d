//! Every name the macros look for in the user's code, in one place: the attribute paths,
//! their arguments, the types the signature check recognises, and the context methods that
//! are logged operations (after serde_derive's `symbol.rs`).
//!
//! Names that only appear in generated code (`__site`, `__txn_block`, `__beldi_…`) are not
//! here: they are written where the code is generated.

use std::fmt;

use syn::{Ident, Path};

/// A name matched against user tokens.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Symbol(&'static str);

impl Symbol {
    /// The name as written in the source.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

/// The crate the attributes are named through: `#[beldi::…]`.
pub const BELDI: Symbol = Symbol("beldi");
/// `#[beldi::function]`.
pub const FUNCTION: Symbol = Symbol("function");
/// `#[beldi::txn]`, on a block or a function; also the flag `#[beldi::function(txn)]`.
pub const TXN: Symbol = Symbol("txn");
/// `#[beldi::allow(side_effect)]`.
pub const ALLOW: Symbol = Symbol("allow");
/// `#[beldi::deterministic]`.
pub const DETERMINISTIC: Symbol = Symbol("deterministic");
/// The doc attribute, moved from the function to its handle.
pub const DOC: Symbol = Symbol("doc");

/// `#[beldi::function(name = "...")]`: the name the function is registered under.
pub const NAME: Symbol = Symbol("name");
/// `#[beldi::function(tables = [...])]`: the data tables it owns.
pub const TABLES: Symbol = Symbol("tables");
/// `#[beldi::function(timeout = "30s")]`.
pub const TIMEOUT: Symbol = Symbol("timeout");
/// `#[beldi::txn(retries = N)]`: how many times a transaction that died under wait-die
/// runs again.
pub const RETRIES: Symbol = Symbol("retries");
/// The argument of `#[beldi::allow(side_effect)]`, and the logged context method whose
/// closure the checker does not look into.
pub const SIDE_EFFECT: Symbol = Symbol("side_effect");

/// The context type: the first argument of a function is a `Ctx` or a `&Ctx`.
pub const CTX: Symbol = Symbol("Ctx");
/// The return type of a function: `Result<Output, Error>`.
pub const RESULT: Symbol = Symbol("Result");
/// `select!`, whose arguments are branches, not expressions.
pub const SELECT: Symbol = Symbol("select");

/// The methods of `Ctx` that are logged operations: each call of one is given a stable
/// call-site id. The tests in `tests.rs` keep this list equal to the public `Ctx` methods
/// of the runtime that return a future, and to the methods the compile-pass case
/// `ui-tests/tests/ui/pass/every_logged_method.rs` calls.
pub const LOGGED: &[Symbol] = &[
    Symbol("read"),
    Symbol("read_as"),
    Symbol("write"),
    Symbol("write_as"),
    Symbol("update"),
    Symbol("cond_write"),
    Symbol("delete"),
    Symbol("scan"),
    Symbol("call"),
    Symbol("spawn"),
    Symbol("now"),
    Symbol("random"),
    Symbol("uuid"),
    Symbol("sleep"),
    SIDE_EFFECT,
];

/// The methods of a function's handle that take the caller's context as their first
/// argument (`handle.call(ctx, &input)`): logged operations too.
pub const HANDLE_LOGGED: &[Symbol] = &[Symbol("call"), Symbol("spawn")];

impl PartialEq<Symbol> for Ident {
    fn eq(&self, word: &Symbol) -> bool {
        self == word.0
    }
}

impl PartialEq<Symbol> for &Ident {
    fn eq(&self, word: &Symbol) -> bool {
        *self == word.0
    }
}

impl PartialEq<Symbol> for Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Whether `path` is exactly the segments `words` (`beldi::txn` against `[BELDI, TXN]`).
pub fn path_is(path: &Path, words: &[Symbol]) -> bool {
    path.segments.len() == words.len()
        && path.segments.iter().zip(words).all(|(s, w)| s.ident == *w)
}

/// Whether `ident` is one of `words`.
pub fn is_one_of(ident: &Ident, words: &[Symbol]) -> bool {
    words.iter().any(|w| ident == w)
}
