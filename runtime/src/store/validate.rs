//! Request validation shared by every backend, with DynamoDB's limits, and item sizes
//! counted the way DynamoDB counts them.

use std::collections::HashSet;

use super::error::StoreError;
use super::expr::{Path, UpdateAction};
use super::value::{AttrValue, Item, Key, KeyType, KeyValue};
use super::{
    BatchGet, BatchWrite, BatchWriteOp, Condition, MAX_BATCH_GET, MAX_BATCH_WRITE, MAX_ITEM_SIZE,
    MAX_TRANSACTION_ITEMS, Put, TableSpec, TransactOp, TransactWrite, Update,
};

/// Maximum size of a partition key value, in bytes.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
/// Maximum size of a sort key value, in bytes.
pub const MAX_SORT_KEY_BYTES: usize = 1024;
/// Maximum length of an attribute name, in bytes.
pub const MAX_ATTRIBUTE_NAME_BYTES: usize = 65535;

/// Checks a table name: 3–255 characters of `a-z A-Z 0-9 _ . -`.
pub fn table_name(name: &str) -> Result<(), StoreError> {
    if !(3..=255).contains(&name.len()) {
        return Err(StoreError::validation(
            name,
            "table names are 3 to 255 characters long",
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(StoreError::validation(
            name,
            format!("table names may contain only a-z, A-Z, 0-9, `_`, `.` and `-`, found {c:?}"),
        ));
    }
    Ok(())
}

/// Checks a table schema.
pub fn table_spec(spec: &TableSpec) -> Result<(), StoreError> {
    table_name(&spec.name)?;
    let mut names = vec![&spec.partition_key.name];
    if let Some(sk) = &spec.sort_key {
        names.push(&sk.name);
        if sk.name == spec.partition_key.name {
            return Err(StoreError::validation(
                &sk.name,
                "the sort key must differ from the partition key",
            ));
        }
    }
    for n in names {
        if n.is_empty() || n.len() > 255 {
            return Err(StoreError::validation(
                n,
                "key attribute names are 1 to 255 bytes long",
            ));
        }
    }
    Ok(())
}

fn key_value(
    table: &str,
    attr: &str,
    expected: KeyType,
    v: &KeyValue,
    max: usize,
) -> Result<(), StoreError> {
    if v.key_type() != expected {
        return Err(StoreError::validation(
            attr,
            format!(
                "key attribute of table `{table}` has type {expected:?}, the request gave {:?}",
                v.key_type()
            ),
        ));
    }
    let len = v.as_bytes().len();
    if len == 0 {
        return Err(StoreError::validation(
            attr,
            format!("key attribute of table `{table}` must not be empty"),
        ));
    }
    if len > max {
        return Err(StoreError::validation(
            attr,
            format!("key attribute of table `{table}` is {len} bytes, the limit is {max}"),
        ));
    }
    Ok(())
}

/// Checks that `key` matches the table's schema, is non-empty and within size limits.
pub fn key(spec: &TableSpec, key: &Key) -> Result<(), StoreError> {
    let pk = &spec.partition_key;
    key_value(
        &spec.name,
        &pk.name,
        pk.key_type,
        &key.partition,
        MAX_PARTITION_KEY_BYTES,
    )?;
    match (&spec.sort_key, &key.sort) {
        (Some(sk), Some(v)) => key_value(&spec.name, &sk.name, sk.key_type, v, MAX_SORT_KEY_BYTES),
        (Some(sk), None) => Err(StoreError::validation(
            &sk.name,
            format!("table `{}` has a sort key and the key gave none", spec.name),
        )),
        (None, Some(_)) => Err(StoreError::validation(
            &spec.name,
            "the table has no sort key and the key gave one",
        )),
        (None, None) => Ok(()),
    }
}

/// Checks a partition key value alone (for queries).
pub fn partition(spec: &TableSpec, v: &KeyValue) -> Result<(), StoreError> {
    let pk = &spec.partition_key;
    key_value(
        &spec.name,
        &pk.name,
        pk.key_type,
        v,
        MAX_PARTITION_KEY_BYTES,
    )
}

/// The key of an item under `spec`.
pub fn key_of_item(spec: &TableSpec, item: &Item) -> Result<Key, StoreError> {
    let get = |name: &str| -> Result<KeyValue, StoreError> {
        let v = item.get(name).ok_or_else(|| {
            StoreError::validation(
                name,
                format!("the item lacks the key attribute of table `{}`", spec.name),
            )
        })?;
        KeyValue::from_attr(v).ok_or_else(|| {
            StoreError::validation(
                name,
                format!("key attribute has type {}, expected S or B", v.type_name()),
            )
        })
    };
    let k = Key {
        partition: get(&spec.partition_key.name)?,
        sort: match &spec.sort_key {
            Some(sk) => Some(get(&sk.name)?),
            None => None,
        },
    };
    key(spec, &k)?;
    Ok(k)
}

/// Size of a value as DynamoDB counts it.
pub fn value_size(v: &AttrValue) -> usize {
    match v {
        AttrValue::S(s) => s.len(),
        AttrValue::B(b) => b.len(),
        // One byte per two significant digits, plus one.
        AttrValue::N(n) => {
            let digits = n
                .to_string()
                .bytes()
                .filter(u8::is_ascii_digit)
                .collect::<Vec<_>>();
            let s = std::str::from_utf8(&digits).unwrap_or("0");
            let significant = s.trim_start_matches('0').trim_end_matches('0').len().max(1);
            significant.div_ceil(2) + 1
        }
        AttrValue::Bool(_) | AttrValue::Null => 1,
        AttrValue::L(l) => 3 + l.iter().map(|e| value_size(e) + 1).sum::<usize>(),
        AttrValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, e)| k.len() + value_size(e) + 1)
                .sum::<usize>()
        }
    }
}

/// Size of an item as DynamoDB counts it: attribute name lengths plus value sizes.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

/// Checks an item's size against the 400 KB limit.
pub fn item_within_limit(table: &str, item: &Item) -> Result<(), StoreError> {
    let size = item_size(item);
    if size > MAX_ITEM_SIZE {
        return Err(StoreError::ItemTooLarge {
            table: table.to_owned(),
            size: Some(size),
            limit: MAX_ITEM_SIZE,
        });
    }
    Ok(())
}

fn attribute_names(item: &Item) -> Result<(), StoreError> {
    fn check(v: &AttrValue) -> Result<(), StoreError> {
        match v {
            AttrValue::M(m) => m.values().try_for_each(check),
            AttrValue::L(l) => l.iter().try_for_each(check),
            _ => Ok(()),
        }
    }
    for (name, v) in item {
        if name.is_empty() || name.len() > MAX_ATTRIBUTE_NAME_BYTES {
            return Err(StoreError::validation(
                name,
                "attribute names are 1 to 65535 bytes long",
            ));
        }
        check(v)?;
    }
    Ok(())
}

/// Checks a put against the table's schema; returns the item's key.
pub fn put(spec: &TableSpec, req: &Put) -> Result<Key, StoreError> {
    let k = key_of_item(spec, &req.item)?;
    attribute_names(&req.item)?;
    item_within_limit(&spec.name, &req.item)?;
    if let Some(c) = &req.condition {
        c.validate()?;
    }
    Ok(k)
}

/// Checks an update's key, actions and condition.
pub fn update(spec: &TableSpec, req: &Update) -> Result<(), StoreError> {
    key(spec, &req.key)?;
    actions(spec, &req.actions)?;
    if let Some(c) = &req.condition {
        c.validate()?;
    }
    Ok(())
}

/// Checks update actions: at least one, none on a key attribute, no overlapping paths.
pub fn actions(spec: &TableSpec, actions: &[UpdateAction]) -> Result<(), StoreError> {
    if actions.is_empty() {
        return Err(StoreError::validation(
            &spec.name,
            "an update needs at least one action",
        ));
    }
    let key_names: Vec<&str> = std::iter::once(spec.partition_key.name.as_str())
        .chain(spec.sort_key.as_ref().map(|k| k.name.as_str()))
        .collect();
    let mut seen: Vec<&Path> = Vec::new();
    for a in actions {
        let p = a.path();
        p.validate()?;
        if key_names.contains(&p.attr_name()) {
            return Err(StoreError::validation(
                p.to_string(),
                format!("cannot update a key attribute of table `{}`", spec.name),
            ));
        }
        if let Some(other) = seen.iter().find(|o| o.overlaps(p)) {
            return Err(StoreError::validation(
                p.to_string(),
                format!("two update actions on overlapping paths `{other}` and `{p}`"),
            ));
        }
        seen.push(p);
        if let UpdateAction::Set(_, v) | UpdateAction::SetIfNotExists(_, v) = a {
            let mut tmp = Item::new();
            tmp.insert("v".to_owned(), v.clone());
            attribute_names(&tmp)?;
        }
    }
    Ok(())
}

/// Checks the shape of a transaction (size, one operation per item); the caller checks
/// each operation against its table's schema with [`transact_op`].
pub fn transaction(req: &TransactWrite) -> Result<(), StoreError> {
    let n = req.ops.len();
    if n == 0 || n > MAX_TRANSACTION_ITEMS {
        return Err(StoreError::validation(
            format!("{n} items"),
            format!("a transaction has 1 to {MAX_TRANSACTION_ITEMS} items"),
        ));
    }
    if let Some(t) = &req.client_token
        && (t.is_empty() || t.len() > 36)
    {
        return Err(StoreError::validation(
            t,
            "a client token is 1 to 36 characters long",
        ));
    }
    Ok(())
}

/// Checks one transaction item against its table's schema and returns its key.
pub fn transact_op(spec: &TableSpec, op: &TransactOp) -> Result<Key, StoreError> {
    match op {
        TransactOp::Put(p) => put(spec, p),
        TransactOp::Update(u) => {
            update(spec, u)?;
            Ok(u.key.clone())
        }
        TransactOp::Delete(d) => {
            key(spec, &d.key)?;
            d.condition.as_ref().map_or(Ok(()), Condition::validate)?;
            Ok(d.key.clone())
        }
        TransactOp::ConditionCheck(c) => {
            key(spec, &c.key)?;
            c.condition.validate()?;
            Ok(c.key.clone())
        }
    }
}

/// Checks that no two operations of a transaction touch the same item.
pub fn distinct_items(keys: &[(String, Key)]) -> Result<(), StoreError> {
    let mut seen = HashSet::new();
    for (table, k) in keys {
        if !seen.insert((table, k)) {
            return Err(StoreError::validation(
                format!("{table} {k}"),
                "a transaction cannot include more than one operation on one item",
            ));
        }
    }
    Ok(())
}

/// Checks a projection: 1 to 100 valid paths, no two overlapping (DynamoDB refuses a path
/// inside another one).
pub fn projection(paths: &[Path]) -> Result<(), StoreError> {
    if paths.is_empty() || paths.len() > 100 {
        return Err(StoreError::validation(
            format!("{} paths", paths.len()),
            "a projection names 1 to 100 paths",
        ));
    }
    for (i, p) in paths.iter().enumerate() {
        p.validate()?;
        if let Some(q) = paths[..i].iter().find(|q| q.overlaps(p)) {
            return Err(StoreError::validation(
                format!("{q} and {p}"),
                "two paths of a projection overlap",
            ));
        }
    }
    Ok(())
}

/// Checks a batch read: 1 to [`MAX_BATCH_GET`] distinct keys of the table, and its
/// projection.
pub fn batch_get(spec: &TableSpec, req: &BatchGet) -> Result<(), StoreError> {
    let n = req.keys.len();
    if n == 0 || n > MAX_BATCH_GET {
        return Err(StoreError::validation(
            format!("{n} keys"),
            format!("a batch get reads 1 to {MAX_BATCH_GET} items"),
        ));
    }
    let mut seen = HashSet::new();
    for k in &req.keys {
        key(spec, k)?;
        if !seen.insert(k) {
            return Err(StoreError::validation(
                format!("{} {k}", req.table),
                "a batch get cannot read one item twice",
            ));
        }
    }
    req.projection.as_deref().map_or(Ok(()), projection)
}

/// Checks the shape of a batch write (1 to [`MAX_BATCH_WRITE`] operations); the caller
/// checks each against its table with [`batch_op`] and that items are distinct with
/// [`distinct_items`].
pub fn batch_write(req: &BatchWrite) -> Result<(), StoreError> {
    let n = req.ops.len();
    if n == 0 || n > MAX_BATCH_WRITE {
        return Err(StoreError::validation(
            format!("{n} operations"),
            format!("a batch write has 1 to {MAX_BATCH_WRITE} operations"),
        ));
    }
    Ok(())
}

/// Checks one batch-write operation against its table's schema and returns its key.
pub fn batch_op(spec: &TableSpec, op: &BatchWriteOp) -> Result<Key, StoreError> {
    match op {
        BatchWriteOp::Put { table, item } => put(spec, &Put::new(table.clone(), item.clone())),
        BatchWriteOp::Delete { key: k, .. } => {
            key(spec, k)?;
            Ok(k.clone())
        }
    }
}
