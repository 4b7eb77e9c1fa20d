//! Baseline mode: the same functions with no fault tolerance, for measuring what it costs.
//!
//! In [`Mode::Baseline`](crate::platform::Mode::Baseline) a runtime runs every function
//! body as it is, but each [`Ctx`](crate::ctx::Ctx) operation is the plain store operation the paper's
//! baseline used (`TYPE=BASELINE`): a read is one `GetItem`, a write or conditional write
//! one `UpdateItem`, a scan one `Scan`; a call runs the callee directly, a spawn runs it in
//! the background; nothing is logged, no intent is kept, transaction blocks take no locks
//! and are never rolled back, and `side_effect`/`now`/`random`/`uuid` simply run. A crash
//! loses whatever the body had not written, and re-running a request applies it again.
//!
//! Each data table `t` of function `f` is one plain table `f.plain.t` keyed by `K`, the
//! value in attribute `V` (the DAAL's names, so update paths mean the same).

use std::collections::BTreeMap;

use crate::engine::{Engine, WriteOp};
use crate::error::BeldiError;
use crate::invocation::Invocation;
use crate::schema::CallerRef;
use crate::schema::names::{DAAL_KEY, VALUE};
use crate::store::{AttrValue, Key, Path, ReturnValues, Store, StoreError, StoreExt, Update};

fn rebase(p: &Path) -> Path {
    p.under(&Path::attr(VALUE))
}

/// The value of `key` in `table` (one `GetItem`).
pub(crate) async fn read(
    e: &Engine,
    table: &str,
    key: &str,
) -> Result<Option<AttrValue>, BeldiError> {
    let t = e.tables.plain(table)?;
    value(&*e.store, &t, key).await
}

/// The value of `key` in the plain table `table` (one `GetItem`).
pub(crate) async fn value(
    store: &dyn Store,
    table: &str,
    key: &str,
) -> Result<Option<AttrValue>, BeldiError> {
    let item = store.get(table, &Key::new(key)).await?;
    Ok(item.and_then(|mut i| i.remove(VALUE)))
}

/// Applies `op`'s actions to the value of its key if its condition holds (one
/// `UpdateItem`); returns whether it held.
pub(crate) async fn write(e: &Engine, op: WriteOp<'_>) -> Result<bool, BeldiError> {
    let WriteOp {
        table,
        key,
        actions,
        cond,
        ..
    } = op;
    let t = e.tables.plain(table)?;
    if key.is_empty() {
        return Err(StoreError::validation(&t, "a key must not be empty").into());
    }
    let mut req = Update::new(t, Key::new(key))
        .actions(actions.iter().map(|a| a.map_path(&rebase)))
        .returning(ReturnValues::None);
    if let Some(c) = cond {
        req = req.condition(c.map_paths(&rebase));
    }
    match e.store.update(req).await {
        Ok(_) => Ok(true),
        Err(e) if e.is_condition_failed() && cond.is_some() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Every key of `table` that has a value, with the value, ordered by key (one `Scan`,
/// paginated).
pub(crate) async fn scan(e: &Engine, table: &str) -> Result<Vec<(String, AttrValue)>, BeldiError> {
    let t = e.tables.plain(table)?;
    values(&*e.store, &t).await
}

/// The values of a plain table, ordered by key.
pub(crate) async fn values(
    store: &dyn Store,
    table: &str,
) -> Result<Vec<(String, AttrValue)>, BeldiError> {
    let mut out: BTreeMap<String, AttrValue> = BTreeMap::new();
    for mut item in store.scan_all(table).await? {
        if let (Some(AttrValue::S(k)), Some(v)) = (item.remove(DAAL_KEY), item.remove(VALUE)) {
            out.insert(k, v);
        }
    }
    Ok(out.into_iter().collect())
}

/// A call: runs the callee directly (no caller record, no crash injection); its stored
/// result.
pub(crate) async fn call(
    e: &Engine,
    step: u64,
    function: &str,
    input: AttrValue,
) -> Result<AttrValue, BeldiError> {
    let inv = Invocation::root(function, &e.callee_id(step), input);
    Ok(e.platform.call(inv).await?.result)
}

/// A spawn: starts the callee in the background; its instance id.
pub(crate) async fn spawn(
    e: &Engine,
    step: u64,
    function: &str,
    input: AttrValue,
) -> Result<String, BeldiError> {
    let callee = e.callee_id(step);
    let mut inv = Invocation::root(function, &callee, input);
    inv.caller = Some(CallerRef {
        function: e.function().to_owned(),
        instance: e.instance.clone(),
        step,
        is_async: true,
    });
    e.platform.start(inv).await?;
    Ok(callee)
}
