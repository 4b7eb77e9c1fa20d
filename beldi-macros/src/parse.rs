//! Parsing: builds the [`Function`] model from a `#[beldi::function]` item — its attribute
//! arguments, a `#[beldi::txn]` on it, and the shape of its signature — collecting every
//! problem as a spanned `syn::Error`.

use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitStr, Pat, ReturnType, Type};

use crate::attr;
use crate::model::{CtxArg, Function, TxnOptions};
use crate::symbol::{CTX, RESULT};

/// What parsing a `#[beldi::function]` item gave.
pub enum Parsed {
    /// A function code can be generated for.
    Function(Box<Function>),
    /// A function whose signature is not one a `#[beldi::function]` can have: it is emitted
    /// as written (Beldi attributes removed) after the errors, so the rest of the crate
    /// still type-checks against it.
    Invalid(Box<ItemFn>),
    /// Not a function: emitted unchanged after the error.
    NotAFunction(TokenStream),
}

/// Parses a `#[beldi::function(args)]` item, collecting every problem into `errors`.
pub fn function(args: TokenStream, item: TokenStream, errors: &mut Vec<syn::Error>) -> Parsed {
    let mut item: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            errors.push(syn::Error::new(
                Span::call_site(),
                "#[beldi::function] goes on an `async fn`",
            ));
            return Parsed::NotAFunction(item);
        }
    };
    let args = attr::function_args(args, errors);
    // `#[beldi::txn]` on the function: written above `#[beldi::function]`, the txn macro
    // moved itself below it (see `expand::txn`); written below, it is here already.
    let mut txn = args.txn.then(TxnOptions::default);
    let mut txn_attrs = item.attrs.iter().filter(|a| attr::is_txn(a));
    if let Some(first) = txn_attrs.next() {
        txn = Some(attr::txn_options(first, errors));
    }
    for extra in txn_attrs {
        errors.push(syn::Error::new_spanned(
            extra,
            "#[beldi::txn] is given twice on this function",
        ));
    }
    item.attrs.retain(|a| !attr::is_txn(a));
    let Some(sig) = signature(&item, errors) else {
        return Parsed::Invalid(Box::new(item));
    };
    let ident = item.sig.ident.clone();
    let name = args
        .name
        .unwrap_or_else(|| LitStr::new(&ident.to_string(), ident.span()));
    Parsed::Function(Box::new(Function {
        ident,
        name,
        tables: args.tables,
        timeout_ms: args.timeout_ms,
        txn,
        ctx: sig.ctx,
        input: sig.input,
        output: sig.output,
        error: sig.error,
        item,
    }))
}

/// The parts of a well-formed function signature.
struct Signature {
    ctx: CtxArg,
    input: Type,
    output: Type,
    error: Type,
}

/// Whether `ty` is the context type: `Some(true)` for `&Ctx`, `Some(false)` for `Ctx`.
fn is_ctx_type(ty: &Type) -> Option<bool> {
    match ty {
        Type::Reference(r) if r.mutability.is_none() => {
            is_ctx_type(&r.elem).filter(|by_ref| !by_ref).map(|_| true)
        }
        Type::Path(p) => (p.path.segments.last()?.ident == CTX).then_some(false),
        _ => None,
    }
}

/// Checks the signature, collecting every problem into `errors`; `None` if there was one.
fn signature(f: &ItemFn, errors: &mut Vec<syn::Error>) -> Option<Signature> {
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
            (Pat::Ident(pi), Some(by_ref)) => {
                ctx = Some(CtxArg {
                    ident: pi.ident.clone(),
                    by_ref,
                })
            }
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
        0 | 1 if ctx.is_some() => errors.push(syn::Error::new(
            sig.paren_token.span.join(),
            "a #[beldi::function] takes one input after the context; use `_: ()` for none",
        )),
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
                        format!(
                            "the input cannot be named `{}` like the function: that name is the function's handle; rename the input",
                            pi.ident
                        ),
                    ));
                }
            }
        }
        n if n > 2 => errors.push(syn::Error::new(
            args[2].span(),
            "a #[beldi::function] takes exactly one input after the context; put several values in a struct or a tuple",
        )),
        _ => {}
    }
    let (output, error) = match &sig.output {
        ReturnType::Type(_, ty) => match result_types(ty) {
            Some((o, e)) => (Some(o), Some(e)),
            None => {
                errors.push(syn::Error::new(
                    ty.span(),
                    "a #[beldi::function] returns `Result<Output, Error>`: the error is stored as the result, like the output",
                ));
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
    Some(Signature {
        ctx: ctx?,
        input: input?,
        output: output?,
        error: error?,
    })
}

/// The `Ok` and `Err` types of a `Result<O, E>` type.
fn result_types(ty: &Type) -> Option<(Type, Type)> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != RESULT {
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
