//! The stored format's version. Every namespace a runtime provisions holds one marker item,
//! in the table `<ns>beldi.meta` (no function can own that name: `beldi.meta` is not one of
//! a function's tables), saying which version of the stored format its data is in. A
//! runtime refuses, before writing anything, a namespace marked with another version — a
//! newer runtime's data read by an older one, or the reverse, would be misread silently.
//! A namespace without the marker (provisioned before it existed, or not yet) is taken to
//! be in the current format, which it is.

use crate::error::BeldiError;
use crate::schema::names::{DAAL_KEY, VALUE};
use crate::store::{AttrValue, Item, Key, Put, Store, StoreError, TableSpec};
use crate::tables::SEPARATOR;

/// The version of the stored format this runtime reads and writes. Bumped by any change
/// to a stored name, id or record form that an older runtime would misread.
pub const FORMAT_VERSION: i64 = 1;

/// The key of the marker item.
const MARKER: &str = "format";

/// The meta table of namespace `ns`.
pub fn meta_table(ns: &str) -> String {
    format!("{ns}beldi{SEPARATOR}meta")
}

fn mismatch(ns: &str, found: &AttrValue) -> BeldiError {
    BeldiError::FormatVersion {
        namespace: ns.to_owned(),
        found: found
            .as_i64()
            .map_or_else(|| format!("{found:?}"), |v| v.to_string()),
        supported: FORMAT_VERSION,
    }
}

/// Marks namespace `ns` with this runtime's format unless it is marked, and checks the mark
/// (what provisioning does).
pub async fn ensure(store: &dyn Store, ns: &str) -> Result<(), BeldiError> {
    let table = meta_table(ns);
    store
        .create_table(&TableSpec::new(&table, DAAL_KEY))
        .await?;
    let mut item = Item::new();
    item.insert(DAAL_KEY.into(), MARKER.into());
    item.insert(VALUE.into(), AttrValue::from(FORMAT_VERSION));
    match store
        .put(
            Put::new(&table, item)
                .if_absent(DAAL_KEY)
                .return_item_on_failure(),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(StoreError::ConditionFailed {
            item: Some(found), ..
        }) => match found.get(VALUE) {
            Some(v) if v.as_i64() == Some(FORMAT_VERSION) => Ok(()),
            Some(v) => Err(mismatch(ns, v)),
            None => Err(mismatch(ns, &AttrValue::Null)),
        },
        Err(StoreError::ConditionFailed { item: None, .. }) => check(store, ns).await,
        Err(e) => Err(e.into()),
    }
}

/// Checks the mark of namespace `ns`, if it has one (one read).
pub async fn check(store: &dyn Store, ns: &str) -> Result<(), BeldiError> {
    match store.get(&meta_table(ns), &Key::new(MARKER)).await {
        Ok(Some(item)) => match item.get(VALUE) {
            Some(v) if v.as_i64() == Some(FORMAT_VERSION) => Ok(()),
            Some(v) => Err(mismatch(ns, v)),
            None => Err(mismatch(ns, &AttrValue::Null)),
        },
        Ok(None) | Err(StoreError::TableNotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
