//! The list of logged `Ctx` methods ([`symbol::LOGGED`]) cannot drift from the runtime or
//! from the compile-pass case that calls them all.
//!
//! - The runtime: every `pub fn` of an inherent `impl Ctx` block anywhere under
//!   `runtime/src` (so also after `Ctx` is split over several files) is either logged
//!   ([`symbol::LOGGED`]) or listed in [`NOT_LOGGED`]; a logged one returns a future, and
//!   one that returns a future is logged. A new public method must be classified.
//! - The pass case `ui-tests/tests/ui/pass/every_logged_method.rs` calls exactly the logged
//!   methods on its context, and the macro gives each of those calls a site.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use quote::ToTokens;
use syn::visit::Visit;

use crate::symbol::{self, LOGGED};

/// The public methods of `Ctx` that are not logged operations.
const NOT_LOGGED: &[&str] = &[
    "instance_id",
    "function",
    "steps",
    "in_transaction",
    "callee_id",
    "abort",
    // Used by generated code.
    "__site",
    "__txn_block",
];

/// The compile-pass case that calls every logged method.
const PASS_CASE: &str = "ui-tests/tests/ui/pass/every_logged_method.rs";

/// The function in [`PASS_CASE`] whose body makes the calls.
const PASS_FUNCTION: &str = "every_logged_method";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn logged() -> BTreeSet<String> {
    LOGGED.iter().map(|s| s.as_str().to_owned()).collect()
}

/// A public method of `Ctx`.
struct Method {
    name: String,
    returns_future: bool,
    file: PathBuf,
}

/// Collects the `pub fn`s of inherent `impl Ctx` blocks.
struct CtxMethods<'a> {
    file: &'a Path,
    out: &'a mut Vec<Method>,
}

impl<'ast> Visit<'ast> for CtxMethods<'_> {
    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        let is_ctx = match &*i.self_ty {
            syn::Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Ctx"),
            _ => false,
        };
        if is_ctx && i.trait_.is_none() {
            for item in &i.items {
                if let syn::ImplItem::Fn(f) = item
                    && matches!(f.vis, syn::Visibility::Public(_))
                {
                    let output = f.sig.output.to_token_stream().to_string();
                    self.out.push(Method {
                        name: f.sig.ident.to_string(),
                        returns_future: f.sig.asyncness.is_some() || output.contains("Future"),
                        file: self.file.to_owned(),
                    });
                }
            }
        }
        syn::visit::visit_item_impl(self, i);
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// Every public method of `Ctx` in the runtime's sources.
fn runtime_ctx_methods() -> Vec<Method> {
    let mut files = Vec::new();
    rust_files(&workspace().join("runtime/src"), &mut files);
    files.sort();
    let mut methods = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        if !text.contains("Ctx") {
            continue;
        }
        let ast =
            syn::parse_file(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", file.display()));
        CtxMethods {
            file,
            out: &mut methods,
        }
        .visit_file(&ast);
    }
    methods
}

#[test]
fn every_public_ctx_method_is_classified() {
    let methods = runtime_ctx_methods();
    let public: BTreeSet<String> = methods.iter().map(|m| m.name.clone()).collect();
    assert!(
        public.contains("read") && public.contains("__site"),
        "found no `impl Ctx` block under runtime/src: {public:?}"
    );
    let logged = logged();
    let not_logged: BTreeSet<String> = NOT_LOGGED.iter().map(|s| (*s).to_owned()).collect();
    assert!(
        logged.is_disjoint(&not_logged),
        "listed as logged and as not logged: {:?}",
        logged.intersection(&not_logged).collect::<Vec<_>>()
    );
    let classified: BTreeSet<String> = logged.union(&not_logged).cloned().collect();
    let unclassified: Vec<&String> = public.difference(&classified).collect();
    assert!(
        unclassified.is_empty(),
        "public `Ctx` methods neither in beldi-macros' `symbol::LOGGED` nor in `NOT_LOGGED` \
         (src/tests.rs): {unclassified:?}. A logged operation goes in `LOGGED` and is called \
         in {PASS_CASE}; any other method in `NOT_LOGGED`."
    );
    let gone: Vec<&String> = classified.difference(&public).collect();
    assert!(
        gone.is_empty(),
        "classified but no longer a public `Ctx` method: {gone:?}"
    );
    for m in &methods {
        let is_logged = logged.contains(&m.name);
        assert_eq!(
            is_logged,
            m.returns_future,
            "`Ctx::{}` ({}): {}",
            m.name,
            m.file.display(),
            if is_logged {
                "listed as logged, but returns no future"
            } else {
                "returns a future, so it is an operation: add it to `symbol::LOGGED` (and to the pass case) unless it really is not logged"
            }
        );
    }
}

/// The `ctx.method(…)` calls in a block (not inside macro calls).
struct CtxCalls {
    /// The method calls on `ctx` itself (but `ctx.__site(…)`).
    direct: BTreeSet<String>,
    /// The method calls on `ctx.__site(…)`: the ones the macro rewrote.
    sited: BTreeSet<String>,
}

impl<'ast> Visit<'ast> for CtxCalls {
    fn visit_expr_method_call(&mut self, m: &'ast syn::ExprMethodCall) {
        let method = m.method.to_string();
        match &*m.receiver {
            syn::Expr::Path(p) if p.path.is_ident("ctx") && method != "__site" => {
                self.direct.insert(method);
            }
            syn::Expr::MethodCall(inner)
                if inner.method == "__site"
                    && matches!(&*inner.receiver, syn::Expr::Path(p) if p.path.is_ident("ctx")) =>
            {
                self.sited.insert(method);
            }
            _ => {}
        }
        syn::visit::visit_expr_method_call(self, m);
    }
}

fn calls_in(f: &syn::ItemFn) -> CtxCalls {
    let mut calls = CtxCalls {
        direct: BTreeSet::new(),
        sited: BTreeSet::new(),
    };
    calls.visit_block(&f.block);
    calls
}

#[test]
fn the_pass_case_calls_every_logged_method_and_each_gets_a_site() {
    let path = workspace().join(PASS_CASE);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {PASS_CASE}: {e}"));
    let file = syn::parse_file(&text).unwrap_or_else(|e| panic!("parsing {PASS_CASE}: {e}"));
    let mut item = file
        .items
        .into_iter()
        .find_map(|i| match i {
            syn::Item::Fn(f) if f.sig.ident == PASS_FUNCTION => Some(f),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no fn `{PASS_FUNCTION}` in {PASS_CASE}"));
    let called = calls_in(&item).direct;
    assert_eq!(
        called,
        logged(),
        "the methods {PASS_CASE} calls on `ctx` differ from `symbol::LOGGED`"
    );

    // Expanded, every one of those calls is made from its site.
    let attr = item
        .attrs
        .iter()
        .position(crate::attr::is_function)
        .map(|p| item.attrs.remove(p))
        .expect("the pass case's function has #[beldi::function]");
    let args = match attr.meta {
        syn::Meta::List(l) => l.tokens,
        _ => proc_macro2::TokenStream::new(),
    };
    let out = crate::expand::function(args, item.into_token_stream());
    let expanded = syn::parse2::<syn::File>(out).expect("the expansion parses as items");
    let body_fn = format!("__beldi_body_{PASS_FUNCTION}");
    let body = expanded
        .items
        .iter()
        .find_map(|i| match i {
            syn::Item::Fn(f) if f.sig.ident == body_fn => Some(f),
            _ => None,
        })
        .expect("the expansion has the body function");
    let calls = calls_in(body);
    assert!(
        calls.direct.is_empty(),
        "calls the macro left without a site: {:?}",
        calls.direct
    );
    assert_eq!(calls.sited, logged(), "the calls the macro gave a site");
    assert!(
        symbol::LOGGED.len() == logged().len(),
        "a method listed twice"
    );
}
