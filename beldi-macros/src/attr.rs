//! Beldi's attributes: recognising them (on the function, on statements, on blocks) and
//! parsing their arguments. Every problem is a spanned `syn::Error` pushed onto `errors`;
//! parsing goes on after one, so all of an item's problems are reported together.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprArray, ExprLit, Ident, Lit, LitStr, Meta, Token};

use crate::model::TxnOptions;
use crate::symbol::{
    self, ALLOW, BELDI, FUNCTION, NAME, RETRIES, SIDE_EFFECT, TABLES, TIMEOUT, TXN,
};

/// Whether an attribute is `#[beldi::allow(...)]`. (Only the full path: a plain
/// `#[allow(...)]` is the compiler's lint attribute.)
pub fn is_allow(a: &Attribute) -> bool {
    symbol::path_is(a.path(), &[BELDI, ALLOW])
}

/// Whether an attribute is `#[beldi::txn]`, or `#[txn]` after a `use beldi::txn`.
pub fn is_txn(a: &Attribute) -> bool {
    symbol::path_is(a.path(), &[BELDI, TXN]) || symbol::path_is(a.path(), &[TXN])
}

/// Whether an attribute is `#[beldi::function]` (recognised by its last segment, so
/// `#[function]` after a `use beldi::function` is one too).
pub fn is_function(a: &Attribute) -> bool {
    a.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == FUNCTION)
}

/// Whether a `#[beldi::allow(...)]` has the one argument it takes, `side_effect`.
pub fn allow_is_well_formed(a: &Attribute) -> bool {
    a.parse_args::<Ident>().is_ok_and(|i| i == SIDE_EFFECT)
}

/// The arguments of `#[beldi::function(...)]`.
#[derive(Default)]
pub struct FunctionArgs {
    /// `name = "..."`.
    pub name: Option<LitStr>,
    /// `tables = ["a", "b"]`, in order (a table listed twice is reported, and kept).
    pub tables: Vec<LitStr>,
    /// `timeout = "30s"`, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// The bare flag `txn`: the whole body is a transaction, with no retries. (A
    /// `#[beldi::txn]` on the function used to hand over this way; it is still accepted.)
    pub txn: bool,
}

/// Parses the arguments of `#[beldi::function(...)]`, collecting every problem into
/// `errors`.
pub fn function_args(args: TokenStream, errors: &mut Vec<syn::Error>) -> FunctionArgs {
    let mut out = FunctionArgs::default();
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args) {
        Ok(m) => m,
        Err(e) => {
            errors.push(e);
            return out;
        }
    };
    for meta in metas {
        let key = meta
            .path()
            .get_ident()
            .map(Ident::to_string)
            .unwrap_or_default();
        match &meta {
            Meta::NameValue(nv) if nv.path == NAME => match string_lit(&nv.value, NAME) {
                Ok(s) => {
                    errors.extend(bad_name(&s, "function"));
                    out.name = Some(s);
                }
                Err(e) => errors.push(e),
            },
            Meta::NameValue(nv) if nv.path == TIMEOUT => {
                match string_lit(&nv.value, TIMEOUT).and_then(|s| parse_duration(&s)) {
                    Ok(ms) => out.timeout_ms = Some(ms),
                    Err(e) => errors.push(e),
                }
            }
            Meta::NameValue(nv) if nv.path == TABLES => tables(&nv.value, &mut out.tables, errors),
            Meta::Path(p) if *p == TXN => out.txn = true,
            other if [NAME, TIMEOUT, TABLES].iter().any(|k| *other.path() == *k) => {
                errors.push(syn::Error::new(
                    other.span(),
                    format!("`{key}` takes a value: `{key} = ...`"),
                ));
            }
            other => errors.push(syn::Error::new(
                other.path().span(),
                format!(
                    "unknown argument `{}`: expected `{NAME}`, `{TABLES}` or `{TIMEOUT}`",
                    quote::ToTokens::to_token_stream(other.path())
                ),
            )),
        }
    }
    out
}

/// Parses `tables = [...]` into `out`: each a valid table name, none twice.
fn tables(value: &Expr, out: &mut Vec<LitStr>, errors: &mut Vec<syn::Error>) {
    let Expr::Array(ExprArray { elems, .. }) = value else {
        errors.push(syn::Error::new(
            value.span(),
            format!("`{TABLES}` takes a list of string literals, like `{TABLES} = [\"rooms\"]`"),
        ));
        return;
    };
    for e in elems {
        match string_lit(e, TABLES) {
            Ok(s) => {
                let v = s.value();
                if let Some(e) = bad_name(&s, "table") {
                    errors.push(e);
                } else if out.iter().any(|t| t.value() == v) {
                    errors.push(syn::Error::new(
                        s.span(),
                        format!("table `{v}` is listed twice"),
                    ));
                }
                out.push(s);
            }
            Err(e) => errors.push(e),
        }
    }
}

/// Parses the arguments of a `#[beldi::txn]` attribute (on a block or a function),
/// collecting every problem into `errors`; what is wrong counts as absent.
pub fn txn_options(attr: &Attribute, errors: &mut Vec<syn::Error>) -> TxnOptions {
    let retries = match &attr.meta {
        Meta::Path(_) => 0,
        Meta::List(l) => match l.parse_args::<syn::MetaNameValue>() {
            Ok(nv) if nv.path == RETRIES => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Int(i), ..
                }) => i.base10_parse::<u32>().unwrap_or_else(|e| {
                    errors.push(e);
                    0
                }),
                other => {
                    errors.push(syn::Error::new_spanned(
                        other,
                        format!("`{RETRIES}` takes a number, like `{RETRIES} = 3`"),
                    ));
                    0
                }
            },
            _ => {
                errors.push(syn::Error::new_spanned(
                    &l.tokens,
                    format!("#[{BELDI}::{TXN}] takes only `{RETRIES} = N`"),
                ));
                0
            }
        },
        Meta::NameValue(nv) => {
            errors.push(syn::Error::new_spanned(
                nv,
                format!("#[{BELDI}::{TXN}] takes only `{RETRIES} = N`, in parentheses"),
            ));
            0
        }
    };
    TxnOptions { retries }
}

/// Parses a duration like `"30s"` (`ms`, `s` or `m`) into milliseconds; more than zero.
fn parse_duration(lit: &LitStr) -> Result<u64, syn::Error> {
    let text = lit.value();
    let (num, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let invalid = || {
        syn::Error::new(
            lit.span(),
            format!(
                "invalid timeout `{text}`: expected a number with a unit, like \"30s\" or \"500ms\""
            ),
        )
    };
    let n: u64 = num.parse().map_err(|_| invalid())?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        _ => {
            return Err(syn::Error::new(
                lit.span(),
                format!("invalid timeout unit in `{text}`: use `ms`, `s` or `m`"),
            ));
        }
    };
    match ms {
        None => Err(invalid()),
        Some(0) => Err(syn::Error::new(
            lit.span(),
            "the timeout must be more than zero",
        )),
        Some(ms) => Ok(ms),
    }
}

/// The string literal an argument takes.
fn string_lit(e: &Expr, what: symbol::Symbol) -> Result<LitStr, syn::Error> {
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{what}` takes a string literal"),
        )),
    }
}

/// The error for a function or table name the runtime would refuse (the rule of
/// `beldi_runtime::tables::validate_name`), spanned on the literal.
fn bad_name(s: &LitStr, what: &str) -> Option<syn::Error> {
    let v = s.value();
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (!ok).then(|| {
        syn::Error::new(
            s.span(),
            format!("invalid {what} name `{v}`: 1 to 64 characters of A-Z, a-z, 0-9, `_` and `-`"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(tokens: TokenStream) -> Attribute {
        syn::parse_quote!(#tokens)
    }

    #[test]
    fn durations() {
        let ms = |s: &str| parse_duration(&LitStr::new(s, proc_macro2::Span::call_site()));
        assert_eq!(ms("500ms").ok(), Some(500));
        assert_eq!(ms("30s").ok(), Some(30_000));
        assert_eq!(ms("2m").ok(), Some(120_000));
        for bad in ["0s", "s", "3h", "18446744073709552s", "307445734561825861m"] {
            assert!(ms(bad).is_err(), "{bad} is refused");
        }
    }

    #[test]
    fn txn_retries() {
        let mut errors = Vec::new();
        let retries =
            |t: TokenStream, errors: &mut Vec<syn::Error>| txn_options(&attr(t), errors).retries;
        assert_eq!(retries(quote::quote!(#[beldi::txn]), &mut errors), 0);
        assert_eq!(
            retries(quote::quote!(#[beldi::txn(retries = 4)]), &mut errors),
            4
        );
        assert!(errors.is_empty());
        for bad in [
            quote::quote!(#[beldi::txn(retries = "4")]),
            quote::quote!(#[beldi::txn(retries = -1)]),
            quote::quote!(#[beldi::txn(tries = 4)]),
            quote::quote!(#[beldi::txn = 4]),
        ] {
            assert_eq!(retries(bad, &mut errors), 0);
        }
        assert_eq!(errors.len(), 4);
    }
}
