//! A function's data outside its instances: loading an initial data set, and reading the
//! current values for invariant checks. Neither is logged; both follow the runtime's
//! [`Mode`] (DAAL tables in beldi mode, plain tables in baseline mode).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use beldi_runtime::{Runtime, UserError, data, embedded::EmbeddedStore, store::AttrValue};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let rt = Runtime::new(Arc::new(EmbeddedStore::open(dir.path()).unwrap()));
//! rt.register("price", &["prices"], |ctx, item: String| async move {
//!     Ok::<_, UserError>(ctx.read_as::<i64>("prices", &item).await?)
//! }).unwrap();
//! rt.provision().await.unwrap();
//! let loaded = data::load(&rt, "price", "prices", vec![("tea".into(), AttrValue::from(3))])
//!     .await
//!     .unwrap();
//! assert_eq!(loaded, 1);
//! let got = rt.invoke::<_, Option<i64>, UserError>("price", "r1", "tea").await.unwrap();
//! assert_eq!(got, Ok(Some(3)));
//! # });
//! ```

use crate::daal::{Daal, row_id};
use crate::error::BeldiError;
use crate::platform::{Mode, Runtime};
use crate::schema::names::{DAAL_KEY, VALUE};
use crate::store::{AttrValue, Item, Put, Store};

/// Loads initial values into data table `table` of `function`: each key that has no value
/// yet gets its value (a key already present keeps its own, so loading again — after a
/// crash, say — changes nothing). Returns how many keys this call created. Meant for data
/// sets loaded before requests run, like the prototype's init programs.
pub async fn load(
    rt: &Runtime,
    function: &str,
    table: &str,
    items: Vec<(String, AttrValue)>,
) -> Result<usize, BeldiError> {
    let tables = rt.tables(function)?;
    let (name, with_row) = match rt.config().mode {
        Mode::Beldi => (tables.data(table)?, true),
        Mode::Baseline => (tables.plain(table)?, false),
    };
    let mut created = 0;
    for (key, value) in items {
        // In beldi mode, the head row of a fresh chain, holding the value and no log entry.
        let mut item = if with_row {
            Daal::new(&**rt.store(), &name, rt.config().row_capacity).empty_row(&key, &row_id(0))
        } else {
            Item::from([(DAAL_KEY.to_owned(), AttrValue::from(key.as_str()))])
        };
        item.insert(VALUE.into(), value);
        match rt
            .store()
            .put(Put::new(name.as_str(), item).if_absent(DAAL_KEY))
            .await
        {
            Ok(_) => created += 1,
            Err(e) if e.is_condition_failed() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(created)
}

/// The current value of `key` in data table `table` of function `function`, read directly
/// from the store (for invariant checks; not logged).
pub async fn current_value(
    rt: &Runtime,
    function: &str,
    table: &str,
    key: &str,
) -> Result<Option<AttrValue>, BeldiError> {
    let tables = rt.tables(function)?;
    if rt.config().mode == Mode::Baseline {
        return crate::baseline::value(&**rt.store(), &tables.plain(table)?, key).await;
    }
    let t = tables.data(table)?;
    let tail = Daal::new(&**rt.store(), &t, rt.config().row_capacity)
        .tail(key)
        .await?;
    Ok(tail.and_then(|r| r.value().cloned()))
}

/// Every current value of data table `table` of `function`, ordered by key (not logged).
pub async fn current_values(
    rt: &Runtime,
    function: &str,
    table: &str,
) -> Result<Vec<(String, AttrValue)>, BeldiError> {
    let tables = rt.tables(function)?;
    let store: &dyn Store = &**rt.store();
    if rt.config().mode == Mode::Baseline {
        return crate::baseline::values(store, &tables.plain(table)?).await;
    }
    let t = tables.data(table)?;
    Ok(Daal::new(store, &t, rt.config().row_capacity)
        .scan_values()
        .await?)
}

/// The items `function` holds in its shadow table for transactions that have not finished
/// their part there (buffered writes, lock records, participants). After quiescence an
/// invariant check expects none; finished transactions leave only a marker, which the
/// garbage collector removes with anything a lagging copy buffered after the finish.
pub async fn open_transaction_items(rt: &Runtime, function: &str) -> Result<Vec<Item>, BeldiError> {
    let shadow = rt.tables(function)?.shadow();
    Ok(crate::txn::shadow::unfinished_shadow(&**rt.store(), &shadow).await?)
}
