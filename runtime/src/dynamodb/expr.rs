//! Typed conditions and update actions rendered into DynamoDB expression strings in which
//! every name and value is a placeholder (`#n0`, `:v0`), so names of any characters work.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue as Av, ReturnValuesOnConditionCheckFailure as OnFail,
};

use super::convert::to_av;
use crate::store::{AttrValue, Condition, Path, PathElem, UpdateAction};

/// Renders typed conditions and actions into an expression with placeholders.
#[derive(Default)]
pub(super) struct Expr {
    names: HashMap<String, String>,
    by_name: HashMap<String, String>,
    values: HashMap<String, Av>,
}

impl Expr {
    pub(super) fn name(&mut self, n: &str) -> String {
        if let Some(p) = self.by_name.get(n) {
            return p.clone();
        }
        let p = format!("#n{}", self.by_name.len());
        self.by_name.insert(n.to_owned(), p.clone());
        self.names.insert(p.clone(), n.to_owned());
        p
    }
    pub(super) fn value(&mut self, v: Av) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v);
        p
    }
    fn path(&mut self, path: &Path) -> String {
        let mut out = self.name(path.attr_name());
        for e in path.elems() {
            match e {
                PathElem::Key(k) => {
                    out.push('.');
                    out += &self.name(k);
                }
                PathElem::Index(i) => out += &format!("[{i}]"),
            }
        }
        out
    }
    pub(super) fn cond(&mut self, c: &Condition) -> String {
        let mut cmp = |p: &Path, op: &str, v: &AttrValue| {
            let p = self.path(p);
            let v = self.value(to_av(v));
            format!("{p} {op} {v}")
        };
        match c {
            Condition::Exists(p) => format!("attribute_exists({})", self.path(p)),
            Condition::NotExists(p) => format!("attribute_not_exists({})", self.path(p)),
            Condition::Eq(p, v) => cmp(p, "=", v),
            Condition::Ne(p, v) => {
                let path = self.path(p);
                let v = self.value(to_av(v));
                format!("(attribute_exists({path}) AND {path} <> {v})")
            }
            Condition::Lt(p, v) => cmp(p, "<", v),
            Condition::Le(p, v) => cmp(p, "<=", v),
            Condition::Gt(p, v) => cmp(p, ">", v),
            Condition::Ge(p, v) => cmp(p, ">=", v),
            Condition::And(cs) => format!(
                "({})",
                cs.iter()
                    .map(|c| self.cond(c))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            ),
            Condition::Or(cs) => format!(
                "({})",
                cs.iter()
                    .map(|c| self.cond(c))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            ),
            Condition::Not(c) => format!("(NOT {})", self.cond(c)),
        }
    }
    pub(super) fn update(&mut self, actions: &[UpdateAction]) -> String {
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        for a in actions {
            match a {
                UpdateAction::Set(p, v) => {
                    let (p, v) = (self.path(p), self.value(to_av(v)));
                    sets.push(format!("{p} = {v}"));
                }
                UpdateAction::SetIfNotExists(p, v) => {
                    let (p, v) = (self.path(p), self.value(to_av(v)));
                    sets.push(format!("{p} = if_not_exists({p}, {v})"));
                }
                UpdateAction::Add(p, n) => {
                    let p = self.path(p);
                    let zero = self.value(Av::N("0".into()));
                    let n = self.value(Av::N(n.to_string()));
                    sets.push(format!("{p} = if_not_exists({p}, {zero}) + {n}"));
                }
                UpdateAction::Append(p, vs) => {
                    let p = self.path(p);
                    let empty = self.value(Av::L(Vec::new()));
                    let vs = self.value(Av::L(vs.iter().map(to_av).collect()));
                    sets.push(format!(
                        "{p} = list_append(if_not_exists({p}, {empty}), {vs})"
                    ));
                }
                UpdateAction::Remove(p) => removes.push(self.path(p)),
            }
        }
        let mut out = String::new();
        if !sets.is_empty() {
            out += &format!("SET {}", sets.join(", "));
        }
        if !removes.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out += &format!("REMOVE {}", removes.join(", "));
        }
        out
    }
    /// A `ProjectionExpression` of `paths` and the key attributes `keys`.
    pub(super) fn projection(&mut self, paths: &[Path], keys: &[&str]) -> String {
        let mut parts: Vec<String> = keys.iter().map(|k| self.name(k)).collect();
        for p in paths {
            let rendered = self.path(p);
            if !parts.contains(&rendered) {
                parts.push(rendered);
            }
        }
        parts.join(", ")
    }
    pub(super) fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }
    pub(super) fn values(&self) -> Option<HashMap<String, Av>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

pub(super) fn on_fail(want: bool) -> Option<OnFail> {
    want.then_some(OnFail::AllOld)
}
