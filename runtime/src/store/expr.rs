//! Typed document paths, conditions and update actions.
//!
//! These replace DynamoDB's expression strings: every name is carried as data, so names may
//! contain any character (`-`, `.`, spaces…) and there is no injection or escaping problem.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::value::{AttrValue, Number};

/// One element of a document path after its top-level attribute.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PathElem {
    /// An entry of a map.
    Key(String),
    /// An element of a list.
    Index(usize),
}

/// A document path: a top-level attribute name followed by map keys and list indices,
/// like DynamoDB's `attr.key[3]`.
///
/// ```
/// use beldi_runtime::store::Path;
/// let p = Path::attr("logs").key("inst-1#3");
/// assert_eq!(p.to_string(), "logs.\"inst-1#3\"");
/// assert_eq!(Path::parse("a.b[2]").unwrap(), Path::attr("a").key("b").index(2));
/// assert!(Path::parse("a..b").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Path {
    attr: String,
    elems: Vec<PathElem>,
}

/// DynamoDB's maximum nesting depth of a document path.
pub const MAX_PATH_DEPTH: usize = 32;

impl Path {
    /// The top-level attribute `name`.
    pub fn attr(name: impl Into<String>) -> Path {
        Path {
            attr: name.into(),
            elems: Vec::new(),
        }
    }
    /// The empty path. Invalid in a store request; the protocol layer
    /// ([`crate::ctx::Ctx`]) uses it for "the whole value" of a key.
    pub fn root() -> Path {
        Path::attr("")
    }
    /// Whether this is [`Path::root`] followed by nothing.
    pub fn is_root(&self) -> bool {
        self.attr.is_empty() && self.elems.is_empty()
    }
    /// `self` placed under `base`: `base.attr.elems…` (the root path maps to `base`).
    pub fn under(&self, base: &Path) -> Path {
        let mut out = base.clone();
        if !self.attr.is_empty() {
            out.elems.push(PathElem::Key(self.attr.clone()));
        }
        out.elems.extend(self.elems.iter().cloned());
        out
    }
    /// This path followed by the map entry `key`.
    pub fn key(mut self, key: impl Into<String>) -> Path {
        self.elems.push(PathElem::Key(key.into()));
        self
    }
    /// This path followed by the list element `index`.
    pub fn index(mut self, index: usize) -> Path {
        self.elems.push(PathElem::Index(index));
        self
    }
    /// The top-level attribute name.
    pub fn attr_name(&self) -> &str {
        &self.attr
    }
    /// The elements after the top-level attribute.
    pub fn elems(&self) -> &[PathElem] {
        &self.elems
    }

    /// Parses `name(.key|[index])*`, where names and keys are non-empty runs of characters
    /// other than `.`, `[` and `]`. Use the builder methods for names containing those.
    pub fn parse(text: &str) -> Result<Path, StoreError> {
        let bad =
            |why: &str| StoreError::validation(text, format!("malformed attribute path: {why}"));
        let mut rest = text;
        let name_end = |s: &str| s.find(['.', '[', ']']).unwrap_or(s.len());
        let end = name_end(rest);
        if end == 0 {
            return Err(bad("expected an attribute name at the start"));
        }
        let mut path = Path::attr(&rest[..end]);
        rest = &rest[end..];
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = name_end(r);
                if end == 0 {
                    return Err(bad("expected a name after `.`"));
                }
                path = path.key(&r[..end]);
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let close = r.find(']').ok_or_else(|| bad("unclosed `[`"))?;
                let index: usize = r[..close]
                    .parse()
                    .map_err(|_| bad("list index must be a non-negative integer"))?;
                path = path.index(index);
                rest = &r[close + 1..];
            } else {
                return Err(bad("unexpected `]`"));
            }
        }
        path.validate()?;
        Ok(path)
    }

    /// Checks the path's names and depth.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.attr.is_empty() {
            return Err(StoreError::validation(
                self.to_string(),
                "malformed attribute path: empty attribute name",
            ));
        }
        if self
            .elems
            .iter()
            .any(|e| matches!(e, PathElem::Key(k) if k.is_empty()))
        {
            return Err(StoreError::validation(
                self.to_string(),
                "malformed attribute path: empty map key",
            ));
        }
        if self.elems.len() + 1 > MAX_PATH_DEPTH {
            return Err(StoreError::validation(
                self.to_string(),
                format!("malformed attribute path: deeper than {MAX_PATH_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    /// Whether `self` is `other` or one of its ancestors or descendants (DynamoDB rejects
    /// two update actions on overlapping paths).
    pub fn overlaps(&self, other: &Path) -> bool {
        self.attr == other.attr
            && self
                .elems
                .iter()
                .zip(other.elems.iter())
                .all(|(a, b)| a == b)
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = |s: &str| !s.is_empty() && !s.contains(['.', '[', ']', '"', ' ', '#', '-']);
        if plain(&self.attr) {
            write!(f, "{}", self.attr)?;
        } else {
            write!(f, "{:?}", self.attr)?;
        }
        for e in &self.elems {
            match e {
                PathElem::Key(k) if plain(k) => write!(f, ".{k}")?,
                PathElem::Key(k) => write!(f, ".{k:?}")?,
                PathElem::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

impl From<&str> for Path {
    /// A top-level attribute. (Use [`Path::parse`] for dotted paths.)
    fn from(name: &str) -> Path {
        Path::attr(name)
    }
}

/// A typed condition on an item, evaluated atomically with the write it guards.
/// A missing item behaves like an item with no attributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Condition {
    /// The path exists.
    Exists(Path),
    /// The path does not exist.
    NotExists(Path),
    /// The value at the path equals the operand (false when missing).
    Eq(Path, AttrValue),
    /// The value at the path exists and differs from the operand.
    Ne(Path, AttrValue),
    /// The value at the path is less than the operand (numbers, strings or bytes of the
    /// same type; false otherwise).
    Lt(Path, AttrValue),
    /// Less than or equal.
    Le(Path, AttrValue),
    /// Greater than.
    Gt(Path, AttrValue),
    /// Greater than or equal.
    Ge(Path, AttrValue),
    /// All hold (an empty list is rejected).
    And(Vec<Condition>),
    /// At least one holds (an empty list is rejected).
    Or(Vec<Condition>),
    /// Negation.
    Not(Box<Condition>),
}

impl Condition {
    /// The attribute exists.
    pub fn exists(path: impl Into<Path>) -> Condition {
        Condition::Exists(path.into())
    }
    /// The attribute does not exist.
    pub fn not_exists(path: impl Into<Path>) -> Condition {
        Condition::NotExists(path.into())
    }
    /// The map attribute `attr` has an entry `key`.
    pub fn map_entry_exists(attr: impl Into<String>, key: impl Into<String>) -> Condition {
        Condition::Exists(Path::attr(attr).key(key))
    }
    /// The map attribute `attr` has no entry `key`.
    pub fn map_entry_not_exists(attr: impl Into<String>, key: impl Into<String>) -> Condition {
        Condition::NotExists(Path::attr(attr).key(key))
    }
    /// The value at `path` equals `value`.
    pub fn eq(path: impl Into<Path>, value: impl Into<AttrValue>) -> Condition {
        Condition::Eq(path.into(), value.into())
    }
    /// The value at `path` is less than `value`.
    pub fn lt(path: impl Into<Path>, value: impl Into<AttrValue>) -> Condition {
        Condition::Lt(path.into(), value.into())
    }
    /// Both conditions hold.
    pub fn and(self, other: Condition) -> Condition {
        match self {
            Condition::And(mut v) => {
                v.push(other);
                Condition::And(v)
            }
            c => Condition::And(vec![c, other]),
        }
    }
    /// Either condition holds.
    pub fn or(self, other: Condition) -> Condition {
        match self {
            Condition::Or(mut v) => {
                v.push(other);
                Condition::Or(v)
            }
            c => Condition::Or(vec![c, other]),
        }
    }
    /// The negation of this condition.
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Condition {
        Condition::Not(Box::new(self))
    }

    /// The same condition with every path mapped by `f`.
    pub fn map_paths(&self, f: &impl Fn(&Path) -> Path) -> Condition {
        match self {
            Condition::Exists(p) => Condition::Exists(f(p)),
            Condition::NotExists(p) => Condition::NotExists(f(p)),
            Condition::Eq(p, v) => Condition::Eq(f(p), v.clone()),
            Condition::Ne(p, v) => Condition::Ne(f(p), v.clone()),
            Condition::Lt(p, v) => Condition::Lt(f(p), v.clone()),
            Condition::Le(p, v) => Condition::Le(f(p), v.clone()),
            Condition::Gt(p, v) => Condition::Gt(f(p), v.clone()),
            Condition::Ge(p, v) => Condition::Ge(f(p), v.clone()),
            Condition::And(cs) => Condition::And(cs.iter().map(|c| c.map_paths(f)).collect()),
            Condition::Or(cs) => Condition::Or(cs.iter().map(|c| c.map_paths(f)).collect()),
            Condition::Not(c) => Condition::Not(Box::new(c.map_paths(f))),
        }
    }

    /// Checks every path and operand.
    pub fn validate(&self) -> Result<(), StoreError> {
        match self {
            Condition::Exists(p) | Condition::NotExists(p) => p.validate(),
            Condition::Eq(p, _) | Condition::Ne(p, _) => p.validate(),
            Condition::Lt(p, v)
            | Condition::Le(p, v)
            | Condition::Gt(p, v)
            | Condition::Ge(p, v) => {
                p.validate()?;
                match v {
                    AttrValue::S(_) | AttrValue::N(_) | AttrValue::B(_) => Ok(()),
                    other => Err(StoreError::validation(
                        p.to_string(),
                        format!(
                            "an ordering comparison needs a string, number or binary operand, got {}",
                            other.type_name()
                        ),
                    )),
                }
            }
            Condition::And(v) | Condition::Or(v) => {
                if v.is_empty() {
                    return Err(StoreError::validation("condition", "empty and/or list"));
                }
                v.iter().try_for_each(Condition::validate)
            }
            Condition::Not(c) => c.validate(),
        }
    }
}

/// One action of an update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum UpdateAction {
    /// Set the path to the value. The parent of a nested path must exist.
    Set(Path, AttrValue),
    /// Set the path to the value only if it does not exist yet.
    SetIfNotExists(Path, AttrValue),
    /// Add to the number at the path (a missing value counts as zero).
    Add(Path, Number),
    /// Remove the path (no effect if missing).
    Remove(Path),
    /// Append to the list at the path (a missing list counts as empty).
    Append(Path, Vec<AttrValue>),
}

impl UpdateAction {
    /// Set `path` to `value`.
    pub fn set(path: impl Into<Path>, value: impl Into<AttrValue>) -> UpdateAction {
        UpdateAction::Set(path.into(), value.into())
    }
    /// Set the entry `key` of the map attribute `attr` to `value`.
    pub fn set_map_entry(
        attr: impl Into<String>,
        key: impl Into<String>,
        value: impl Into<AttrValue>,
    ) -> UpdateAction {
        UpdateAction::Set(Path::attr(attr).key(key), value.into())
    }
    /// Add `n` to the number at `path`.
    pub fn add(path: impl Into<Path>, n: impl Into<Number>) -> UpdateAction {
        UpdateAction::Add(path.into(), n.into())
    }
    /// Remove `path`.
    pub fn remove(path: impl Into<Path>) -> UpdateAction {
        UpdateAction::Remove(path.into())
    }
    /// Append `values` to the list at `path`.
    pub fn append(path: impl Into<Path>, values: Vec<AttrValue>) -> UpdateAction {
        UpdateAction::Append(path.into(), values)
    }
    /// The same action with its path mapped by `f`.
    pub fn map_path(&self, f: &impl Fn(&Path) -> Path) -> UpdateAction {
        match self {
            UpdateAction::Set(p, v) => UpdateAction::Set(f(p), v.clone()),
            UpdateAction::SetIfNotExists(p, v) => UpdateAction::SetIfNotExists(f(p), v.clone()),
            UpdateAction::Add(p, n) => UpdateAction::Add(f(p), *n),
            UpdateAction::Remove(p) => UpdateAction::Remove(f(p)),
            UpdateAction::Append(p, v) => UpdateAction::Append(f(p), v.clone()),
        }
    }
    /// The path this action changes.
    pub fn path(&self) -> &Path {
        match self {
            UpdateAction::Set(p, _)
            | UpdateAction::SetIfNotExists(p, _)
            | UpdateAction::Add(p, _)
            | UpdateAction::Remove(p)
            | UpdateAction::Append(p, _) => p,
        }
    }
}
