//! The side-effect checker: rejects, inside function bodies, calls whose effect or result
//! would not be logged, and names the logged replacement.
//!
//! It sees the body's own tokens only: a helper function called from the body is not
//! checked unless it carries `#[beldi::deterministic]`. Paths are matched after resolving
//! `use` items written inside the body; a path imported at module level is caught by its
//! last segments (`SystemTime::now`, `Uuid::new_v4`, …) or not at all (a bare `random()`
//! imported at module level is indistinguishable from a user function).
//!
//! Escape hatches: the closure passed to `ctx.side_effect(...)` is not checked (its value
//! is logged), and a statement marked `#[beldi::allow(side_effect)]` is skipped.

use std::collections::{HashMap, HashSet};

use quote::ToTokens;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Expr, ExprMacro, ExprMethodCall, ExprPath, Local, Pat, Stmt, UseTree};

use crate::attr;
use crate::model::Function;
use crate::symbol::{SELECT, SIDE_EFFECT};

/// A rejected path: what it matches, what it does, and the logged way to do it.
struct Rule {
    /// Whether the path (its segments, `use` items resolved) is rejected.
    matches: fn(&[String]) -> bool,
    /// What it does, for the message.
    what: &'static str,
    /// What to do instead.
    help: &'static str,
}

/// Whether `p` ends with `tail`.
fn ends(p: &[String], tail: &[&str]) -> bool {
    p.len() >= tail.len()
        && p[p.len() - tail.len()..]
            .iter()
            .zip(tail)
            .all(|(a, b)| a == b)
}
/// Whether `p` starts with `head`.
fn starts(p: &[String], head: &[&str]) -> bool {
    p.len() >= head.len() && p.iter().zip(head).all(|(a, b)| a == b)
}

/// The rejected paths.
const RULES: &[Rule] = &[
    Rule {
        matches: |p| ends(p, &["SystemTime", "now"]),
        what: "reads the wall clock",
        help: "use `ctx.now().await?`, which is logged",
    },
    Rule {
        matches: |p| ends(p, &["Instant", "now"]),
        what: "reads a clock",
        help: "use `ctx.now().await?`, which is logged",
    },
    Rule {
        matches: |p| ends(p, &["Utc", "now"]) || ends(p, &["Local", "now"]),
        what: "reads the wall clock",
        help: "use `ctx.now().await?`, which is logged",
    },
    Rule {
        matches: |p| {
            starts(p, &["rand"])
                && p.len() == 2
                && matches!(
                    p[1].as_str(),
                    "random" | "rng" | "thread_rng" | "random_range" | "random_bool"
                )
        },
        what: "draws a random value",
        help: "use `ctx.random::<T>().await?`, which is logged",
    },
    Rule {
        matches: |p| p.last().is_some_and(|l| l == "thread_rng"),
        what: "draws a random value",
        help: "use `ctx.random::<T>().await?`, which is logged",
    },
    Rule {
        matches: |p| {
            ends(p, &["Uuid", "new_v4"])
                || ends(p, &["Uuid", "now_v7"])
                || ends(p, &["Uuid", "now_v1"])
        },
        what: "makes a random or time-based UUID",
        help: "use `ctx.uuid().await?`, which is logged",
    },
    Rule {
        matches: |p| starts(p, &["std", "fs"]) || starts(p, &["tokio", "fs"]),
        what: "does file I/O",
        help: "do it in `ctx.side_effect(|| ...)`, which runs once and logs its value, or outside the function",
    },
    Rule {
        matches: |p| starts(p, &["std", "net"]) || starts(p, &["tokio", "net"]),
        what: "does network I/O",
        help: "call another function with `.call(ctx, ...)`, or wrap it in `ctx.side_effect(|| ...)`",
    },
    Rule {
        matches: |p| starts(p, &["reqwest"]) || starts(p, &["hyper"]),
        what: "makes an HTTP request",
        help: "wrap the request in `ctx.side_effect(|| ...)`, or make it a function of its own and `.call(ctx, ...)` it",
    },
    Rule {
        matches: |p| starts(p, &["std", "env"]) && p.last().is_some_and(|l| l.starts_with("var")),
        what: "reads the environment",
        help: "read it once with `ctx.side_effect(|| std::env::var(...).ok())`, or pass it in the input",
    },
    Rule {
        matches: |p| ends(p, &["tokio", "spawn"]) || ends(p, &["task", "spawn"]),
        what: "starts a task",
        help: "start another function exactly once with `handle.spawn(ctx, &input)`",
    },
    Rule {
        matches: |p| ends(p, &["thread", "spawn"]),
        what: "starts a thread",
        help: "start another function exactly once with `handle.spawn(ctx, &input)`",
    },
    Rule {
        matches: |p| starts(p, &["std", "process"]),
        what: "runs a process",
        help: "wrap it in `ctx.side_effect(|| ...)`",
    },
    Rule {
        matches: |p| {
            ends(p, &["time", "timeout"])
                || ends(p, &["time", "timeout_at"])
                || ends(p, &["tokio", "time", "Timeout"])
        },
        what: "races an operation against the clock",
        help: "a timeout's outcome depends on the clock, so a re-execution can decide otherwise, and the abandoned call goes on; give the callee a `#[beldi::function(timeout = \"…\")]` instead",
    },
    Rule {
        matches: |p| ends(p, &["tokio", "time", "sleep"]) || ends(p, &["std", "thread", "sleep"]),
        what: "sleeps",
        help: "use `ctx.sleep(duration).await?`, which a re-execution resumes",
    },
];

/// Collects `use` items written anywhere in the body: alias → full path.
fn collect_uses(tree: &UseTree, prefix: &mut Vec<String>, out: &mut HashMap<String, Vec<String>>) {
    match tree {
        UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            collect_uses(&p.tree, prefix, out);
            prefix.pop();
        }
        UseTree::Name(n) => {
            let mut full = prefix.clone();
            let name = n.ident.to_string();
            if name != "self" {
                full.push(name.clone());
                out.insert(name, full);
            } else if let Some(last) = prefix.last() {
                out.insert(last.clone(), prefix.clone());
            }
        }
        UseTree::Rename(r) => {
            let mut full = prefix.clone();
            full.push(r.ident.to_string());
            out.insert(r.rename.to_string(), full);
        }
        UseTree::Glob(_) => {
            // `use std::fs::*;` makes every name of the module suspicious; record the module.
            out.insert(format!("*{}", prefix.join("::")), prefix.clone());
        }
        UseTree::Group(g) => g.items.iter().for_each(|t| collect_uses(t, prefix, out)),
    }
}

/// The `use` items of a body: alias → full path (`*module` for a glob import).
struct UseCollector(HashMap<String, Vec<String>>);

impl<'ast> Visit<'ast> for UseCollector {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        collect_uses(&u.tree, &mut Vec::new(), &mut self.0);
    }
}

/// The state of the check of one body.
struct Checker<'e> {
    /// The context parameter's name, if the body has one.
    ctx: Option<String>,
    /// The body's `use` items.
    uses: HashMap<String, Vec<String>>,
    /// Local bindings of a `HashMap` or `HashSet`, whose iteration order is not stable.
    hashed: HashSet<String>,
    /// The problems found.
    errors: &'e mut Vec<syn::Error>,
}

/// Whether the tokens name `HashMap` or `HashSet`.
fn mentions_hash_type(tokens: &proc_macro2::TokenStream) -> bool {
    tokens.clone().into_iter().any(|t| match t {
        proc_macro2::TokenTree::Ident(i) => i == "HashMap" || i == "HashSet",
        proc_macro2::TokenTree::Group(g) => mentions_hash_type(&g.stream()),
        _ => false,
    })
}

/// The name `e` is, through `&` and parentheses.
fn ident_of(e: &Expr) -> Option<String> {
    match e {
        Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
        Expr::Reference(r) => ident_of(&r.expr),
        Expr::Paren(p) => ident_of(&p.expr),
        _ => None,
    }
}

impl Checker<'_> {
    /// The path's segments with a `use` item of the body resolved.
    fn resolve(&self, path: &syn::Path) -> Vec<String> {
        let segs: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if let Some(first) = segs.first()
            && let Some(full) = self.uses.get(first)
        {
            return full
                .iter()
                .cloned()
                .chain(segs[1..].iter().cloned())
                .collect();
        }
        // A name brought in by a glob import of a checked module.
        if segs.len() == 1 {
            for (k, module) in &self.uses {
                if k.starts_with('*') {
                    let full: Vec<String> =
                        module.iter().cloned().chain(segs.iter().cloned()).collect();
                    if RULES.iter().any(|r| (r.matches)(&full)) {
                        return full;
                    }
                }
            }
        }
        segs
    }

    /// Reports `path` if a rule rejects it.
    fn check_path(&mut self, path: &syn::Path) {
        let full = self.resolve(path);
        if let Some(rule) = RULES.iter().find(|r| (r.matches)(&full)) {
            let shown = path.to_token_stream().to_string().replace(' ', "");
            self.errors.push(syn::Error::new_spanned(
                path,
                format!(
                    "`{shown}` {}, which is not logged: a re-execution would not see the same value or effect\n\n= help: {}\n= note: if you know better, mark the statement `#[beldi::allow(side_effect)]`",
                    rule.what, rule.help
                ),
            ));
        }
    }

    /// Whether `e` is the context parameter.
    fn is_ctx(&self, e: &Expr) -> bool {
        self.ctx.is_some() && ident_of(e) == self.ctx
    }
}

impl<'ast> Visit<'ast> for Checker<'_> {
    fn visit_stmt(&mut self, s: &'ast Stmt) {
        let attrs: &[syn::Attribute] = match s {
            Stmt::Local(l) => &l.attrs,
            Stmt::Expr(e, _) => expr_attrs(e),
            Stmt::Macro(m) => &m.attrs,
            Stmt::Item(_) => &[],
        };
        if attrs.iter().any(attr::is_allow) {
            return;
        }
        syn::visit::visit_stmt(self, s);
    }

    fn visit_local(&mut self, l: &'ast Local) {
        let typed = match &l.pat {
            Pat::Type(pt) => mentions_hash_type(&pt.ty.to_token_stream()),
            _ => false,
        };
        let init = l
            .init
            .as_ref()
            .is_some_and(|i| mentions_hash_type(&i.expr.to_token_stream()));
        if typed || init {
            let ident = match &l.pat {
                Pat::Ident(pi) => Some(pi.ident.to_string()),
                Pat::Type(pt) => match &*pt.pat {
                    Pat::Ident(pi) => Some(pi.ident.to_string()),
                    _ => None,
                },
                _ => None,
            };
            if let Some(i) = ident {
                self.hashed.insert(i);
            }
        }
        syn::visit::visit_local(self, l);
    }

    fn visit_expr_path(&mut self, p: &'ast ExprPath) {
        self.check_path(&p.path);
        syn::visit::visit_expr_path(self, p);
    }

    fn visit_expr_for_loop(&mut self, f: &'ast syn::ExprForLoop) {
        if let Some(i) = ident_of(&f.expr).filter(|i| self.hashed.contains(i)) {
            self.errors.push(syn::Error::new(
                f.expr.span(),
                format!("iterating over the hash map or set `{i}` in a #[beldi::function] body: its order differs between processes, so a re-execution may take other steps\n\n= help: use a `BTreeMap` or `BTreeSet`, or sort the items first"),
            ));
        }
        syn::visit::visit_expr_for_loop(self, f);
    }

    fn visit_expr_method_call(&mut self, m: &'ast ExprMethodCall) {
        let method = m.method.to_string();
        if self.is_ctx(&m.receiver) && m.method == SIDE_EFFECT {
            return; // the closure's value is logged
        }
        if matches!(
            method.as_str(),
            "iter"
                | "iter_mut"
                | "keys"
                | "values"
                | "values_mut"
                | "into_iter"
                | "drain"
                | "into_keys"
                | "into_values"
        ) && let Some(i) = ident_of(&m.receiver).filter(|i| self.hashed.contains(i))
        {
            self.errors.push(syn::Error::new(
                m.method.span(),
                format!("iterating over the hash map or set `{i}` in a #[beldi::function] body: its order differs between processes, so a re-execution may take other steps\n\n= help: use a `BTreeMap` or `BTreeSet`, or sort the items first"),
            ));
        }
        syn::visit::visit_expr_method_call(self, m);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let full = self.resolve(&mac.path);
        if full.last().is_some_and(|l| l == SELECT.as_str())
            && (full.len() == 1 || full[0] == "tokio")
        {
            let first = mac.tokens.clone().into_iter().next().map(|t| t.to_string());
            if first.as_deref() != Some("biased") {
                self.errors.push(syn::Error::new(
                    mac.path.span(),
                    "`select!` polls its branches in random order in a #[beldi::function] body: a re-execution may take another branch\n\n= help: write `biased;` as its first line, so branches are polled in order",
                ));
            }
        }
        // Check the paths inside macro arguments that parse as expressions (e.g. println!).
        if let Ok(args) = mac
            .parse_body_with(syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated)
        {
            for a in &args {
                self.visit_expr(a);
            }
        }
        syn::visit::visit_macro(self, mac);
    }

    fn visit_expr_macro(&mut self, m: &'ast ExprMacro) {
        self.visit_macro(&m.mac);
    }

    fn visit_item(&mut self, _i: &'ast syn::Item) {
        // Items inside the body (helper fns, uses) are not part of the body's execution.
    }
}

/// The attributes of an expression statement that `#[beldi::allow]` may be on.
fn expr_attrs(e: &Expr) -> &[syn::Attribute] {
    match e {
        Expr::Block(b) => &b.attrs,
        Expr::Call(c) => &c.attrs,
        Expr::MethodCall(m) => &m.attrs,
        Expr::Await(a) => &a.attrs,
        Expr::Assign(a) => &a.attrs,
        Expr::Macro(m) => &m.attrs,
        Expr::Path(p) => &p.attrs,
        Expr::Try(t) => &t.attrs,
        Expr::If(i) => &i.attrs,
        Expr::ForLoop(f) => &f.attrs,
        _ => &[],
    }
}

/// Checks the body of a well-formed function.
pub fn function(f: &Function, errors: &mut Vec<syn::Error>) {
    body(&f.item.block, Some(&f.ctx.ident), errors);
}

/// Checks a body; `ctx` is the name of the context parameter, if any.
pub fn body(block: &syn::Block, ctx: Option<&syn::Ident>, errors: &mut Vec<syn::Error>) {
    let mut uses = UseCollector(HashMap::new());
    for stmt in &block.stmts {
        uses.visit_stmt(stmt);
    }
    // Nested blocks may also hold `use` items.
    uses.visit_block(block);
    let mut c = Checker {
        ctx: ctx.map(|i| i.to_string()),
        uses: uses.0,
        hashed: HashSet::new(),
        errors,
    };
    c.visit_block(block);
}
