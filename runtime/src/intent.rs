//! Intents: the durable record that an instance exists, kept in its SSF's own intent table
//! (input, caller, async flag, start time; then the result and the done flag). A
//! re-execution of a done instance returns the stored result without running the body.
//!
//! The start time `ST` is refreshed whenever an execution of the instance starts, so the
//! intent collector restarts only instances whose last execution began more than T ago —
//! never a live one on every pass (the prototype never refreshed it).
//!
//! A sync callee called by a first execution of its caller creates its intent with its
//! first durable effect, or already finished ([`create_finished`]) if it has none (see
//! [`crate::deferred`]); every other instance creates it before it runs ([`begin`]).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::schema::CallerRef;
use crate::schema::names::{
    INSTANCE, INTENT_ASYNC as ASYNC, INTENT_CALLER as CALLER, INTENT_DONE as DONE,
    INTENT_DONE_AT as DONE_AT, INTENT_INPUT as INPUT, INTENT_RESTARTS as RESTARTS,
    INTENT_RESULT as RESULT, INTENT_START as START,
};
use crate::store::{
    AttrValue, Condition, Delete, Item, Key, Put, ReturnValues, Store, StoreError, StoreExt,
    Update, UpdateAction,
};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An instance's intent record.
#[derive(Clone, Debug, PartialEq)]
pub struct Intent {
    /// The instance id.
    pub instance: String,
    /// The instance's input.
    pub input: AttrValue,
    /// The caller (`None` for a root instance).
    pub caller: Option<CallerRef>,
    /// Whether the instance was started asynchronously.
    pub is_async: bool,
    /// Start time of the latest execution (ms since the epoch).
    pub start_ms: i64,
    /// Whether it finished.
    pub done: bool,
    /// When it finished (ms since the epoch).
    pub done_ms: Option<i64>,
    /// Its stored result, once done.
    pub result: Option<AttrValue>,
    /// How many times the intent collector restarted it.
    pub restarts: u32,
}

impl Intent {
    /// Parses a stored intent item.
    pub fn from_item(item: &Item) -> Intent {
        Intent {
            instance: item
                .get(INSTANCE)
                .and_then(AttrValue::as_s)
                .unwrap_or("")
                .to_owned(),
            input: item.get(INPUT).cloned().unwrap_or(AttrValue::Null),
            caller: item.get(CALLER).and_then(CallerRef::from_attr),
            is_async: item
                .get(ASYNC)
                .and_then(AttrValue::as_bool)
                .unwrap_or(false),
            start_ms: item.get(START).and_then(AttrValue::as_i64).unwrap_or(0),
            done: item.get(DONE).and_then(AttrValue::as_bool).unwrap_or(false),
            done_ms: item.get(DONE_AT).and_then(AttrValue::as_i64),
            result: item.get(RESULT).cloned(),
            restarts: item.get(RESTARTS).and_then(AttrValue::as_i64).unwrap_or(0) as u32,
        }
    }
}

/// The intent item of a new instance (not started yet: not done).
pub fn new_item(
    instance: &str,
    input: &AttrValue,
    caller: Option<&CallerRef>,
    is_async: bool,
) -> Item {
    let mut item = Item::new();
    item.insert(INSTANCE.into(), instance.into());
    item.insert(INPUT.into(), input.clone());
    item.insert(
        CALLER.into(),
        caller.map_or(AttrValue::Null, CallerRef::to_attr),
    );
    item.insert(ASYNC.into(), is_async.into());
    item.insert(START.into(), now_ms().into());
    item.insert(DONE.into(), false.into());
    item
}

/// The put that creates intent `item` in `table` unless the instance exists (returning
/// the existing intent when it does).
pub fn create(table: &str, item: Item) -> Put {
    Put::new(table, item)
        .if_absent(INSTANCE)
        .return_item_on_failure()
}

/// Creates the intent unless it exists; returns the intent as stored and whether this call
/// created it (one round trip).
pub async fn begin(
    store: &dyn Store,
    table: &str,
    instance: &str,
    input: &AttrValue,
    caller: Option<&CallerRef>,
    is_async: bool,
) -> Result<(Intent, bool), StoreError> {
    let item = new_item(instance, input, caller, is_async);
    match store.put(create(table, item.clone())).await {
        Ok(_) => Ok((Intent::from_item(&item), true)),
        Err(StoreError::ConditionFailed {
            item: Some(existing),
            ..
        }) => Ok((Intent::from_item(&existing), false)),
        Err(e) => Err(e),
    }
}

/// Creates the intent of `create` (an instance's put from [`create`], never made durable)
/// already finished with `result`, in one round trip. Returns the result stored
/// afterwards: `result`, or the one of an execution that finished the instance first;
/// `None` if the instance exists unfinished (another execution created it).
pub async fn create_finished(
    store: &dyn Store,
    mut create: Put,
    result: &AttrValue,
) -> Result<Option<AttrValue>, StoreError> {
    create.item.insert(RESULT.into(), result.clone());
    create.item.insert(DONE.into(), true.into());
    create.item.insert(DONE_AT.into(), now_ms().into());
    match store.put(create).await {
        Ok(_) => Ok(Some(result.clone())),
        Err(StoreError::ConditionFailed {
            item: Some(existing),
            ..
        }) => {
            let found = Intent::from_item(&existing);
            Ok(found
                .done
                .then(|| found.result.unwrap_or_else(|| result.clone())))
        }
        Err(StoreError::ConditionFailed { item: None, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Marks the start of another execution of an unfinished instance (refreshes `ST`).
pub async fn touch(store: &dyn Store, table: &str, instance: &str) -> Result<(), StoreError> {
    let req = Update::new(table, Key::new(instance))
        .action(UpdateAction::set(START, now_ms()))
        .condition(Condition::eq(DONE, false));
    match store.update(req).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_condition_failed() => Ok(()), // finished meanwhile
        Err(e) => Err(e),
    }
}

/// Claims a restart of an unfinished instance whose execution started at `seen_start`:
/// refreshes `ST` and counts the restart, unless the instance finished or another execution
/// started meanwhile. Returns whether this caller won the claim.
pub async fn claim_restart(
    store: &dyn Store,
    table: &str,
    instance: &str,
    seen_start: i64,
) -> Result<bool, StoreError> {
    let req = Update::new(table, Key::new(instance))
        .action(UpdateAction::set(START, now_ms()))
        .action(UpdateAction::add(RESTARTS, 1))
        .condition(Condition::eq(DONE, false).and(Condition::eq(START, seen_start)));
    match store.update(req).await {
        Ok(_) => Ok(true),
        Err(e) if e.is_condition_failed() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Stores `result` and marks the instance done, unless a duplicate did first; returns the
/// result that is stored afterwards (one round trip).
pub async fn finish(
    store: &dyn Store,
    table: &str,
    instance: &str,
    result: &AttrValue,
) -> Result<AttrValue, StoreError> {
    let req = Update::new(table, Key::new(instance))
        .action(UpdateAction::set(RESULT, result.clone()))
        .action(UpdateAction::set(DONE, true))
        .action(UpdateAction::set(DONE_AT, now_ms()))
        .condition(Condition::eq(DONE, false))
        .returning(ReturnValues::None)
        .return_item_on_failure();
    match store.update(req).await {
        Ok(_) => Ok(result.clone()),
        Err(StoreError::ConditionFailed {
            item: Some(existing),
            ..
        }) => Ok(Intent::from_item(&existing)
            .result
            .unwrap_or_else(|| result.clone())),
        // The intent is gone: a duplicate finished it and it was collected meanwhile.
        Err(StoreError::ConditionFailed { item: None, .. }) => Ok(result.clone()),
        Err(e) => Err(e),
    }
}

/// One intent.
pub async fn get(
    store: &dyn Store,
    table: &str,
    instance: &str,
) -> Result<Option<Intent>, StoreError> {
    Ok(store
        .get(table, &Key::new(instance))
        .await?
        .map(|i| Intent::from_item(&i)))
}

/// Every intent of a table.
pub async fn all(store: &dyn Store, table: &str) -> Result<Vec<Intent>, StoreError> {
    Ok(store
        .scan_all(table)
        .await?
        .iter()
        .map(Intent::from_item)
        .collect())
}

/// One page of at most `limit` intents of a table, after `start_after`; returns them and
/// where the next page starts (`None`: this was the last).
pub async fn page(
    store: &dyn Store,
    table: &str,
    start_after: Option<Key>,
    limit: usize,
) -> Result<(Vec<Intent>, Option<Key>), StoreError> {
    let page = store
        .scan(
            crate::store::Scan::new(table)
                .limit(limit)
                .start_after(start_after),
        )
        .await?;
    Ok((
        page.items.iter().map(Intent::from_item).collect(),
        page.last_key,
    ))
}

/// Deletes a done intent (the last step of collecting an instance).
pub async fn delete_done(store: &dyn Store, table: &str, instance: &str) -> Result<(), StoreError> {
    let req = Delete::new(table, Key::new(instance)).condition(Condition::eq(DONE, true));
    match store.delete(req).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_condition_failed() => Ok(()), // already gone
        Err(e) => Err(e),
    }
}
