//! In-memory semantics of conditions and update actions, exactly as DynamoDB evaluates them.
//! Backends that do not speak DynamoDB's expression language (the embedded store) use this.

use std::cmp::Ordering;

use super::error::StoreError;
use super::expr::{Condition, Path, PathElem, UpdateAction};
use super::value::{AttrValue, Item};

/// The value at `path` in `item`, if present.
pub fn resolve<'a>(item: &'a Item, path: &Path) -> Option<&'a AttrValue> {
    let mut cur = item.get(path.attr_name())?;
    for e in path.elems() {
        cur = match (e, cur) {
            (PathElem::Key(k), AttrValue::M(m)) => m.get(k)?,
            (PathElem::Index(i), AttrValue::L(l)) => l.get(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// The parts of `item` that `paths` name, plus the attributes `keep` (its key attributes),
/// as DynamoDB's `ProjectionExpression` returns them: absent parts are left out, nested
/// ones come back inside their enclosing maps and lists (a list keeps the elements named,
/// in index order). The paths must not overlap ([`super::validate::projection`]).
pub fn project(item: &Item, paths: &[Path], keep: &[&str]) -> Item {
    /// What is asked of one value: all of it, or some of its entries / elements.
    #[derive(Default)]
    struct Want {
        all: bool,
        keys: std::collections::BTreeMap<String, Want>,
        indices: std::collections::BTreeMap<usize, Want>,
    }
    fn pick(v: &AttrValue, want: &Want) -> Option<AttrValue> {
        if want.all {
            return Some(v.clone());
        }
        match v {
            AttrValue::M(m) if !want.keys.is_empty() => {
                let out: std::collections::BTreeMap<String, AttrValue> = want
                    .keys
                    .iter()
                    .filter_map(|(k, w)| Some((k.clone(), pick(m.get(k)?, w)?)))
                    .collect();
                (!out.is_empty()).then_some(AttrValue::M(out))
            }
            AttrValue::L(l) if !want.indices.is_empty() => {
                let out: Vec<AttrValue> = want
                    .indices
                    .iter()
                    .filter_map(|(i, w)| pick(l.get(*i)?, w))
                    .collect();
                (!out.is_empty()).then_some(AttrValue::L(out))
            }
            _ => None,
        }
    }
    let mut wants: std::collections::BTreeMap<&str, Want> = Default::default();
    for p in paths {
        let mut w = wants.entry(p.attr_name()).or_default();
        for e in p.elems() {
            w = match e {
                PathElem::Key(k) => w.keys.entry(k.clone()).or_default(),
                PathElem::Index(i) => w.indices.entry(*i).or_default(),
            };
        }
        w.all = true;
    }
    let mut out = Item::new();
    for (name, want) in &wants {
        if let Some(v) = item.get(*name).and_then(|v| pick(v, want)) {
            out.insert((*name).to_owned(), v);
        }
    }
    for k in keep {
        if let Some(v) = item.get(*k) {
            out.insert((*k).to_owned(), v.clone());
        }
    }
    out
}

fn compare(a: &AttrValue, b: &AttrValue) -> Option<Ordering> {
    match (a, b) {
        (AttrValue::N(x), AttrValue::N(y)) => Some(x.cmp(y)),
        (AttrValue::S(x), AttrValue::S(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (AttrValue::B(x), AttrValue::B(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Evaluates `cond` against `item` (`None`: the item does not exist).
pub fn eval_condition(item: Option<&Item>, cond: &Condition) -> bool {
    let empty = Item::new();
    let item = item.unwrap_or(&empty);
    let ord = |p: &Path, v: &AttrValue, ok: fn(Ordering) -> bool| {
        resolve(item, p).and_then(|a| compare(a, v)).is_some_and(ok)
    };
    match cond {
        Condition::Exists(p) => resolve(item, p).is_some(),
        Condition::NotExists(p) => resolve(item, p).is_none(),
        Condition::Eq(p, v) => resolve(item, p) == Some(v),
        Condition::Ne(p, v) => resolve(item, p) != Some(v),
        Condition::Lt(p, v) => ord(p, v, Ordering::is_lt),
        Condition::Le(p, v) => ord(p, v, Ordering::is_le),
        Condition::Gt(p, v) => ord(p, v, Ordering::is_gt),
        Condition::Ge(p, v) => ord(p, v, Ordering::is_ge),
        Condition::And(cs) => cs.iter().all(|c| eval_condition(Some(item), c)),
        Condition::Or(cs) => cs.iter().any(|c| eval_condition(Some(item), c)),
        Condition::Not(c) => !eval_condition(Some(item), c),
    }
}

fn invalid_path(path: &Path) -> StoreError {
    StoreError::validation(
        path.to_string(),
        "the document path provided in the update expression is invalid for update",
    )
}

fn wrong_type(path: &Path, expected: &str, found: &AttrValue) -> StoreError {
    StoreError::validation(
        path.to_string(),
        format!(
            "an operand in the update expression has an incorrect data type: expected {expected}, found {}",
            found.type_name()
        ),
    )
}

/// Where a path's last element lives: the parent container, reached mutably.
enum Slot<'a> {
    Top(&'a mut Item, &'a str),
    MapEntry(
        &'a mut std::collections::BTreeMap<String, AttrValue>,
        &'a str,
    ),
    ListElem(&'a mut Vec<AttrValue>, usize),
}

/// Finds the parent of `path`'s last element. `Ok(None)`: the parent does not exist or is
/// not a container of the right kind.
fn slot<'a>(item: &'a mut Item, path: &'a Path) -> Option<Slot<'a>> {
    let elems = path.elems();
    let Some((last, parents)) = elems.split_last() else {
        return Some(Slot::Top(item, path.attr_name()));
    };
    let mut cur = item.get_mut(path.attr_name())?;
    for e in parents {
        cur = match (e, cur) {
            (PathElem::Key(k), AttrValue::M(m)) => m.get_mut(k)?,
            (PathElem::Index(i), AttrValue::L(l)) => l.get_mut(*i)?,
            _ => return None,
        };
    }
    match (last, cur) {
        (PathElem::Key(k), AttrValue::M(m)) => Some(Slot::MapEntry(m, k)),
        (PathElem::Index(i), AttrValue::L(l)) => Some(Slot::ListElem(l, *i)),
        _ => None,
    }
}

fn set_at(item: &mut Item, path: &Path, value: AttrValue) -> Result<(), StoreError> {
    match slot(item, path).ok_or_else(|| invalid_path(path))? {
        Slot::Top(m, k) => {
            m.insert(k.to_owned(), value);
        }
        Slot::MapEntry(m, k) => {
            m.insert(k.to_owned(), value);
        }
        Slot::ListElem(l, i) => {
            // Beyond the end, DynamoDB appends.
            if i < l.len() {
                l[i] = value;
            } else {
                l.push(value);
            }
        }
    }
    Ok(())
}

fn remove_at(item: &mut Item, path: &Path) -> Result<(), StoreError> {
    match slot(item, path) {
        // Removing below a missing parent is a no-op for a top-level parent that is missing,
        // and an invalid path when a parent exists but is not a container.
        None => {
            if item.contains_key(path.attr_name()) {
                Err(invalid_path(path))
            } else {
                Ok(())
            }
        }
        Some(Slot::Top(m, k)) => {
            m.remove(k);
            Ok(())
        }
        Some(Slot::MapEntry(m, k)) => {
            m.remove(k);
            Ok(())
        }
        Some(Slot::ListElem(l, i)) => {
            if i < l.len() {
                l.remove(i);
            }
            Ok(())
        }
    }
}

/// Applies `actions` to `item` in place with DynamoDB's semantics: operands are read from the
/// item as it was before the update; removals of list elements use the original indices.
/// The caller has checked that no two actions touch overlapping paths.
pub fn apply_actions(item: &mut Item, actions: &[UpdateAction]) -> Result<(), StoreError> {
    let before = item.clone();
    let mut removals: Vec<&Path> = Vec::new();
    for action in actions {
        match action {
            UpdateAction::Set(p, v) => set_at(item, p, v.clone())?,
            UpdateAction::SetIfNotExists(p, v) => {
                if resolve(&before, p).is_none() {
                    set_at(item, p, v.clone())?;
                }
            }
            UpdateAction::Add(p, n) => {
                let sum = match resolve(&before, p) {
                    None => *n,
                    Some(AttrValue::N(cur)) => cur.checked_add(n)?,
                    Some(other) => return Err(wrong_type(p, "N", other)),
                };
                set_at(item, p, AttrValue::N(sum))?;
            }
            UpdateAction::Append(p, vs) => {
                let list = match resolve(&before, p) {
                    None => vs.clone(),
                    Some(AttrValue::L(cur)) => cur.iter().chain(vs.iter()).cloned().collect(),
                    Some(other) => return Err(wrong_type(p, "L", other)),
                };
                set_at(item, p, AttrValue::L(list))?;
            }
            UpdateAction::Remove(p) => removals.push(p),
        }
    }
    // Highest list index first, so earlier removals do not shift later ones.
    removals.sort_by(|a, b| {
        b.elems()
            .len()
            .cmp(&a.elems().len())
            .then_with(|| index_of(b).cmp(&index_of(a)))
    });
    for p in removals {
        remove_at(item, p)?;
    }
    Ok(())
}

fn index_of(p: &Path) -> usize {
    match p.elems().last() {
        Some(PathElem::Index(i)) => *i,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Number;

    fn item(pairs: &[(&str, AttrValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn conditions_follow_dynamodb() {
        let it = item(&[
            ("n", 5.into()),
            ("s", "b".into()),
            ("m", AttrValue::M(item(&[("k", true.into())]))),
        ]);
        assert!(eval_condition(Some(&it), &Condition::lt("n", 6)));
        assert!(!eval_condition(Some(&it), &Condition::lt("n", 5)));
        assert!(
            !eval_condition(Some(&it), &Condition::lt("s", 6)),
            "type mismatch is false"
        );
        assert!(eval_condition(
            Some(&it),
            &Condition::map_entry_exists("m", "k")
        ));
        assert!(eval_condition(
            Some(&it),
            &Condition::map_entry_not_exists("m", "x")
        ));
        assert!(!eval_condition(None, &Condition::eq("n", 5)));
        assert!(eval_condition(None, &Condition::not_exists("n")));
        assert!(eval_condition(
            Some(&it),
            &Condition::eq("n", 5)
                .and(Condition::exists("s"))
                .not()
                .not()
        ));
    }

    #[test]
    fn actions_follow_dynamodb() {
        let mut it = item(&[("l", AttrValue::L(vec![1.into(), 2.into(), 3.into()]))]);
        apply_actions(
            &mut it,
            &[
                UpdateAction::add("c", 2),
                UpdateAction::remove(Path::attr("l").index(0)),
                UpdateAction::remove(Path::attr("l").index(2)),
                UpdateAction::append("a", vec!["x".into()]),
            ],
        )
        .unwrap();
        assert_eq!(it["c"], AttrValue::N(Number::from(2)));
        assert_eq!(it["l"], AttrValue::L(vec![2.into()]));
        assert_eq!(it["a"], AttrValue::L(vec!["x".into()]));
        let err = apply_actions(
            &mut it,
            &[UpdateAction::set(Path::attr("nope").key("k"), 1)],
        )
        .unwrap_err();
        assert!(matches!(err, StoreError::Validation { .. }), "{err}");
        let err = apply_actions(&mut it, &[UpdateAction::add("a", 1)]).unwrap_err();
        assert!(err.to_string().contains("incorrect data type"), "{err}");
    }
}
