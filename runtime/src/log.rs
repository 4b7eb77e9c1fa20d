//! The read/scan log of an SSF: one item per `(instance, step)` in the SSF's log table,
//! recording the operation's kind, its target and its result. The first execution to log a
//! step wins; every later execution gets the logged record back (one round trip either way:
//! a put-if-absent that returns the existing item when it fails).

use crate::schema::LogRecord;
use crate::schema::names::{CALL_RESULT, INSTANCE, LOG_KIND, LOG_TARGET, LOG_VALUE, STEP};
use crate::schema::step_key;
use crate::store::{AttrValue, Item, Put, Store, StoreError};

/// Logs `record` under the sort key `sort` of `instance` (sub-steps of a step) unless that
/// is logged already; returns the record in the log afterwards.
pub async fn record_at(
    store: &dyn Store,
    table: &str,
    instance: &str,
    sort: &str,
    record: LogRecord,
) -> Result<LogRecord, StoreError> {
    match store
        .put(put_if_absent(table, instance, sort, &record))
        .await
    {
        Ok(_) => Ok(record),
        Err(StoreError::ConditionFailed {
            item: Some(existing),
            ..
        }) => Ok(LogRecord::from_item(&existing)),
        Err(e) => Err(e),
    }
}

/// The put-if-absent of `record` under sort key `sort` of `instance` (returning the
/// existing item on failure), for use inside a transaction.
pub(crate) fn put_if_absent(table: &str, instance: &str, sort: &str, record: &LogRecord) -> Put {
    let mut item = Item::new();
    item.insert(INSTANCE.into(), instance.into());
    item.insert(STEP.into(), sort.into());
    item.insert(LOG_KIND.into(), record.kind.clone().into());
    item.insert(LOG_TARGET.into(), record.target.clone().into());
    if let Some(v) = &record.value {
        item.insert(LOG_VALUE.into(), v.clone());
    }
    Put::new(table, item)
        .if_absent(INSTANCE)
        .return_item_on_failure()
}

/// Logs `record` at `(instance, step)` unless the step is logged already; returns the
/// record that is in the log afterwards (ours, or the earlier one).
pub async fn record(
    store: &dyn Store,
    table: &str,
    instance: &str,
    step: u64,
    record: LogRecord,
) -> Result<LogRecord, StoreError> {
    record_at(store, table, instance, &step_key(step), record).await
}

/// Adds `result` to the call record at `(instance, step)` unless one is there already;
/// returns the result that is logged afterwards (one round trip).
pub async fn set_call_result(
    store: &dyn Store,
    table: &str,
    instance: &str,
    step: u64,
    result: &AttrValue,
) -> Result<AttrValue, StoreError> {
    use crate::store::{Condition, Key, Path, Update, UpdateAction};
    let path = Path::attr(LOG_VALUE).key(CALL_RESULT);
    let req = Update::new(table, Key::with_sort(instance, step_key(step)))
        .action(UpdateAction::Set(path.clone(), result.clone()))
        .condition(Condition::exists(INSTANCE).and(Condition::NotExists(path)))
        .return_item_on_failure();
    match store.update(req).await {
        Ok(_) => Ok(result.clone()),
        Err(StoreError::ConditionFailed {
            item: Some(existing),
            ..
        }) => {
            let rec = LogRecord::from_item(&existing);
            Ok(rec
                .field(CALL_RESULT)
                .cloned()
                .unwrap_or_else(|| result.clone()))
        }
        Err(e) => Err(e),
    }
}

/// The record at `(instance, step)`, if logged.
pub async fn get(
    store: &dyn Store,
    table: &str,
    instance: &str,
    step: u64,
) -> Result<Option<LogRecord>, StoreError> {
    use crate::store::Key;
    Ok(store
        .get(table, &Key::with_sort(instance, step_key(step)))
        .await?
        .map(|i| LogRecord::from_item(&i)))
}

/// The record under sort key `sort` of `instance`, if logged.
pub async fn get_at(
    store: &dyn Store,
    table: &str,
    instance: &str,
    sort: &str,
) -> Result<Option<LogRecord>, StoreError> {
    use crate::store::Key;
    Ok(store
        .get(table, &Key::with_sort(instance, sort))
        .await?
        .map(|i| LogRecord::from_item(&i)))
}

/// Deletes every record of `instance` (one projected query for their keys, then batches of
/// deletes); returns how many.
pub async fn delete_instance(
    store: &dyn Store,
    table: &str,
    instance: &str,
) -> Result<usize, StoreError> {
    use crate::store::{Key, Query, StoreExt};
    let query = Query::new(table, instance).project([crate::store::Path::attr(STEP)]);
    let keys: Vec<Key> = store
        .query_all(query)
        .await?
        .iter()
        .filter_map(|item| item.get(STEP).and_then(AttrValue::as_s))
        .map(|step| Key::with_sort(instance, step))
        .collect();
    store.delete_all(table, keys).await
}

/// Every record of `instance`, by sort key (one query, paged): what a re-execution
/// prefetches, so its replayed steps need no round trip.
pub async fn all(
    store: &dyn Store,
    table: &str,
    instance: &str,
) -> Result<std::collections::HashMap<String, LogRecord>, StoreError> {
    use crate::store::{Query, StoreExt};
    let items = store.query_all(Query::new(table, instance)).await?;
    Ok(items
        .iter()
        .filter_map(|item| {
            let sort = item.get(STEP).and_then(AttrValue::as_s)?;
            Some((sort.to_owned(), LogRecord::from_item(item)))
        })
        .collect())
}
