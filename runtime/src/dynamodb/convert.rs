//! Conversion of the store's values, items and keys to and from the SDK's
//! `AttributeValue`s. DynamoDB's set types have no counterpart here and are refused.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue as Av;

use crate::store::{AttrValue, Item, Key, Number, Page, StoreError, TableSpec};

pub(super) fn to_av(v: &AttrValue) -> Av {
    match v {
        AttrValue::S(s) => Av::S(s.clone()),
        AttrValue::N(n) => Av::N(n.to_string()),
        AttrValue::B(b) => Av::B(Blob::new(b.clone())),
        AttrValue::Bool(b) => Av::Bool(*b),
        AttrValue::Null => Av::Null(true),
        AttrValue::L(l) => Av::L(l.iter().map(to_av).collect()),
        AttrValue::M(m) => Av::M(m.iter().map(|(k, v)| (k.clone(), to_av(v))).collect()),
    }
}

fn from_av(v: &Av) -> Result<AttrValue, StoreError> {
    Ok(match v {
        Av::S(s) => AttrValue::S(s.clone()),
        Av::N(n) => AttrValue::N(Number::parse(n)?),
        Av::B(b) => AttrValue::B(b.as_ref().to_vec()),
        Av::Bool(b) => AttrValue::Bool(*b),
        Av::Null(_) => AttrValue::Null,
        Av::L(l) => AttrValue::L(l.iter().map(from_av).collect::<Result<_, _>>()?),
        Av::M(m) => AttrValue::M(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), from_av(v)?)))
                .collect::<Result<_, StoreError>>()?,
        ),
        other => {
            return Err(StoreError::validation(
                format!("{other:?}"),
                "DynamoDB returned a set type, which this store does not support",
            ));
        }
    })
}

pub(super) fn to_item(item: &Item) -> HashMap<String, Av> {
    item.iter().map(|(k, v)| (k.clone(), to_av(v))).collect()
}

pub(super) fn from_item(m: &HashMap<String, Av>) -> Result<Item, StoreError> {
    m.iter()
        .map(|(k, v)| Ok((k.clone(), from_av(v)?)))
        .collect()
}

pub(super) fn key_map(spec: &TableSpec, key: &Key) -> HashMap<String, Av> {
    to_item(&spec.key_item(key))
}

/// A page of a query or scan: its items, and the key it stopped after (read as `spec`'s).
pub(super) fn page(
    spec: &TableSpec,
    items: &[HashMap<String, Av>],
    last: Option<&HashMap<String, Av>>,
) -> Result<Page, StoreError> {
    Ok(Page {
        items: items.iter().map(from_item).collect::<Result<_, _>>()?,
        last_key: last
            .map(|k| from_item(k).and_then(|i| spec.key_of(&i)))
            .transpose()?,
    })
}
