//! Parsing: the attribute arguments and the shape of the annotated function.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{
    Expr, ExprArray, ExprLit, FnArg, Ident, ItemFn, Lit, LitStr, Meta, Pat, ReturnType, Token, Type,
};

/// The arguments of `#[beldi::function(...)]`.
pub struct FunctionArgs {
    pub name: Option<LitStr>,
    pub tables: Vec<LitStr>,
    pub timeout_ms: Option<u64>,
    pub txn: bool,
}

fn parse_duration(lit: &LitStr) -> Result<u64, syn::Error> {
    let text = lit.value();
    let (num, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = num.parse().map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!(
                "invalid timeout `{text}`: expected a number with a unit, like \"30s\" or \"500ms\""
            ),
        )
    })?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000,
        "m" => n * 60_000,
        _ => {
            return Err(syn::Error::new(
                lit.span(),
                format!("invalid timeout unit in `{text}`: use `ms`, `s` or `m`"),
            ));
        }
    };
    if ms == 0 {
        return Err(syn::Error::new(
            lit.span(),
            "the timeout must be more than zero",
        ));
    }
    Ok(ms)
}

fn string_lit(e: &Expr, what: &str) -> Result<LitStr, syn::Error> {
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

/// Parses the attribute arguments, collecting every problem into `errors`.
pub fn function_args(args: TokenStream, errors: &mut Vec<syn::Error>) -> FunctionArgs {
    let mut out = FunctionArgs {
        name: None,
        tables: Vec::new(),
        timeout_ms: None,
        txn: false,
    };
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
        match (key.as_str(), &meta) {
            ("name", Meta::NameValue(nv)) => match string_lit(&nv.value, "name") {
                Ok(s) => {
                    errors.extend(bad_name(&s, "function"));
                    out.name = Some(s);
                }
                Err(e) => errors.push(e),
            },
            ("timeout", Meta::NameValue(nv)) => {
                match string_lit(&nv.value, "timeout").and_then(|s| parse_duration(&s)) {
                    Ok(ms) => out.timeout_ms = Some(ms),
                    Err(e) => errors.push(e),
                }
            }
            ("tables", Meta::NameValue(nv)) => match &nv.value {
                Expr::Array(ExprArray { elems, .. }) => {
                    for e in elems {
                        match string_lit(e, "tables") {
                            Ok(s) => {
                                let v = s.value();
                                if let Some(e) = bad_name(&s, "table") {
                                    errors.push(e);
                                } else if out.tables.iter().any(|t| t.value() == v) {
                                    errors.push(syn::Error::new(
                                        s.span(),
                                        format!("table `{v}` is listed twice"),
                                    ));
                                }
                                out.tables.push(s);
                            }
                            Err(e) => errors.push(e),
                        }
                    }
                }
                other => errors.push(syn::Error::new(
                    other.span(),
                    "`tables` takes a list of string literals, like `tables = [\"rooms\"]`",
                )),
            },
            ("txn", Meta::Path(_)) => out.txn = true,
            ("name" | "timeout" | "tables", other) => {
                errors.push(syn::Error::new(
                    other.span(),
                    format!("`{key}` takes a value: `{key} = ...`"),
                ));
            }
            (_, other) => errors.push(syn::Error::new(
                other.path().span(),
                format!(
                    "unknown argument `{}`: expected `name`, `tables` or `timeout`",
                    quote::ToTokens::to_token_stream(other.path())
                ),
            )),
        }
    }
    out
}

/// The parts of a well-formed function signature.
pub struct Signature {
    pub ctx: Ident,
    pub ctx_by_ref: bool,
    pub input: Type,
    pub output: Type,
    pub error: Type,
}

fn is_ctx_type(ty: &Type) -> Option<bool> {
    match ty {
        Type::Reference(r) if r.mutability.is_none() => {
            is_ctx_type(&r.elem).filter(|by_ref| !by_ref).map(|_| true)
        }
        Type::Path(p) => (p.path.segments.last()?.ident == "Ctx").then_some(false),
        _ => None,
    }
}

/// Checks the signature, collecting every problem into `errors`.
pub fn signature(f: &ItemFn, errors: &mut Vec<syn::Error>) -> Option<Signature> {
    let sig = &f.sig;
    let before = errors.len();
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span,
            "a #[beldi::function] must be `async fn`",
        ));
    }
    if !sig.generics.params.is_empty() {
        errors.push(syn::Error::new(
            sig.generics.span(),
            "a #[beldi::function] cannot be generic: it is registered by name with one input type",
        ));
    }
    if let Some(c) = &sig.constness {
        errors.push(syn::Error::new(
            c.span,
            "a #[beldi::function] cannot be `const`",
        ));
    }
    if let Some(u) = &sig.unsafety {
        errors.push(syn::Error::new(
            u.span,
            "a #[beldi::function] cannot be `unsafe`",
        ));
    }
    let args: Vec<&FnArg> = sig.inputs.iter().collect();
    let mut ctx = None;
    let mut input = None;
    match args.first() {
        Some(FnArg::Typed(pt)) => match (&*pt.pat, is_ctx_type(&pt.ty)) {
            (Pat::Ident(pi), Some(by_ref)) => ctx = Some((pi.ident.clone(), by_ref)),
            (_, Some(_)) => errors.push(syn::Error::new(
                pt.pat.span(),
                "bind the context to a name, like `ctx: &Ctx`",
            )),
            (_, None) => errors.push(syn::Error::new(
                pt.ty.span(),
                "the first argument of a #[beldi::function] is its context: `ctx: &Ctx`",
            )),
        },
        Some(FnArg::Receiver(r)) => errors.push(syn::Error::new(
            r.span(),
            "a #[beldi::function] cannot take `self`",
        )),
        None => errors.push(syn::Error::new(
            sig.paren_token.span.join(),
            "a #[beldi::function] takes a context and one input: `(ctx: &Ctx, input: T)`",
        )),
    }
    match args.len() {
        0 | 1 if ctx.is_some() => errors.push(syn::Error::new(sig.paren_token.span.join(), "a #[beldi::function] takes one input after the context; use `_: ()` for none")),
        2 => {
            if let FnArg::Typed(pt) = args[1] {
                input = Some((*pt.ty).clone());
                // The function's name becomes its handle (a constant), so a binding of the
                // same name would be read as a pattern against that constant.
                if let Pat::Ident(pi) = &*pt.pat
                    && pi.ident == sig.ident
                {
                    errors.push(syn::Error::new(
                        pi.ident.span(),
                        format!("the input cannot be named `{}` like the function: that name is the function's handle; rename the input", pi.ident),
                    ));
                }
            }
        }
        n if n > 2 => errors.push(syn::Error::new(args[2].span(), "a #[beldi::function] takes exactly one input after the context; put several values in a struct or a tuple")),
        _ => {}
    }
    let (output, error) = match &sig.output {
        ReturnType::Type(_, ty) => match result_types(ty) {
            Some(pair) => (Some(pair.0), Some(pair.1)),
            None => {
                errors.push(syn::Error::new(ty.span(), "a #[beldi::function] returns `Result<Output, Error>`: the error is stored as the result, like the output"));
                (None, None)
            }
        },
        ReturnType::Default => {
            errors.push(syn::Error::new(
                sig.ident.span(),
                "a #[beldi::function] returns `Result<Output, Error>`",
            ));
            (None, None)
        }
    };
    if errors.len() > before {
        return None;
    }
    let (ctx, ctx_by_ref) = ctx?;
    Some(Signature {
        ctx,
        ctx_by_ref,
        input: input?,
        output: output?,
        error: error?,
    })
}

fn result_types(ty: &Type) -> Option<(Type, Type)> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let tys: Vec<Type> = args
        .args
        .iter()
        .filter_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    match tys.as_slice() {
        [o, e] => Some((o.clone(), e.clone())),
        _ => None,
    }
}

/// A span to report "the whole attribute" problems at.
pub fn call_site() -> Span {
    Span::call_site()
}
