//! Intents: the durable record that an instance exists, kept in its SSF's own intent table
//! (input, caller, async flag, start time; then the result and the done flag). A
//! re-execution of a done instance returns the stored result without running the body.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::store::{
    AttrValue, Condition, Item, Key, Put, ReturnValues, Store, StoreError, Update, UpdateAction,
};
use crate::tables::INSTANCE;

const INPUT: &str = "IN";
const CALLER: &str = "C";
const ASYNC: &str = "A";
const START: &str = "ST";
const DONE: &str = "D";
const RESULT: &str = "R";
const DONE_AT: &str = "DT";

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An instance's intent record.
#[derive(Clone, Debug, PartialEq)]
pub struct Intent {
    /// The instance's input.
    pub input: AttrValue,
    /// The caller (`None` for a root instance).
    pub caller: Option<AttrValue>,
    /// Whether the instance was started asynchronously.
    pub is_async: bool,
    /// Start time (ms since the epoch).
    pub start_ms: i64,
    /// Whether it finished.
    pub done: bool,
    /// Its stored result, once done.
    pub result: Option<AttrValue>,
}

impl Intent {
    fn from_item(item: &Item) -> Intent {
        Intent {
            input: item.get(INPUT).cloned().unwrap_or(AttrValue::Null),
            caller: item.get(CALLER).filter(|v| **v != AttrValue::Null).cloned(),
            is_async: item
                .get(ASYNC)
                .and_then(AttrValue::as_bool)
                .unwrap_or(false),
            start_ms: item.get(START).and_then(AttrValue::as_i64).unwrap_or(0),
            done: item.get(DONE).and_then(AttrValue::as_bool).unwrap_or(false),
            result: item.get(RESULT).cloned(),
        }
    }
}

/// Creates the intent unless it exists; returns the intent as stored (one round trip).
pub async fn begin(
    store: &dyn Store,
    table: &str,
    instance: &str,
    input: &AttrValue,
    caller: Option<AttrValue>,
    is_async: bool,
) -> Result<Intent, StoreError> {
    let mut item = Item::new();
    item.insert(INSTANCE.into(), instance.into());
    item.insert(INPUT.into(), input.clone());
    item.insert(CALLER.into(), caller.clone().unwrap_or(AttrValue::Null));
    item.insert(ASYNC.into(), is_async.into());
    item.insert(START.into(), now_ms().into());
    item.insert(DONE.into(), false.into());
    match store
        .put(
            Put::new(table, item.clone())
                .if_absent(INSTANCE)
                .return_item_on_failure(),
        )
        .await
    {
        Ok(_) => Ok(Intent::from_item(&item)),
        Err(StoreError::ConditionFailed {
            item: Some(existing),
            ..
        }) => Ok(Intent::from_item(&existing)),
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
        Err(e) => Err(e),
    }
}
