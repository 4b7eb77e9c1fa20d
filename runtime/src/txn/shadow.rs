//! The shadow table of a function: per transaction (partition key: its id), one item per
//! [`ShadowEntry`] — the buffered writes (the value each written key will have), the locks
//! held, the participants called, and the finish marker; and its garbage collection.

use std::collections::BTreeMap;

use super::TxnCtx;
use crate::engine::Engine;
use crate::error::BeldiError;
use crate::schema::ShadowEntry;
use crate::schema::names::{
    DAAL_KEY, DAAL_ROW, FINISHED_AT, FINISHED_ENTRIES, SHADOW_VERSION, VALUE,
};
use crate::store::{
    AttrValue, Condition, Delete, Item, Key, Put, Query, Store, StoreError, StoreExt,
};

/// The shadow item of `entry` of `txn`, holding `value`.
fn item(txn: &TxnCtx, entry: &ShadowEntry, value: Option<AttrValue>) -> Item {
    let mut item = Item::new();
    item.insert(DAAL_KEY.into(), AttrValue::S(txn.id.clone()));
    item.insert(DAAL_ROW.into(), AttrValue::S(entry.sort_key()));
    if let Some(v) = value {
        item.insert(VALUE.into(), v);
    }
    item
}

/// The entry a shadow item records (`None`: not one of ours).
pub(crate) fn entry_of(item: &Item) -> Option<ShadowEntry> {
    ShadowEntry::parse(item.get(DAAL_ROW)?.as_s()?)
}

/// The put recording `entry` (a lock or a participant) for `txn` (idempotent).
pub(super) fn entry_put(e: &Engine, txn: &TxnCtx, entry: ShadowEntry) -> Put {
    Put::new(e.tables.shadow(), item(txn, &entry, None))
}

/// The put recording that `txn` holds the lock of `table/key`.
pub(super) fn lock_put(e: &Engine, txn: &TxnCtx, table: &str, key: &str) -> Put {
    let entry = ShadowEntry::Lock {
        table: table.to_owned(),
        key: key.to_owned(),
    };
    entry_put(e, txn, entry)
}

/// The put buffering version `version` of the write of `table/key` (no value: deleted),
/// made from the buffered version before it: it fails if another version is buffered by
/// now (another instance of the transaction in this function wrote the key since). A
/// first execution of a write step puts it in one transaction with the step's record, so
/// only the execution that logs the step buffers it.
pub(super) fn write_put(
    e: &Engine,
    txn: &TxnCtx,
    (table, key): (&str, &str),
    value: Option<AttrValue>,
    version: i64,
) -> Put {
    let entry = ShadowEntry::Write {
        table: table.to_owned(),
        key: key.to_owned(),
    };
    let mut item = item(txn, &entry, value);
    item.insert(SHADOW_VERSION.into(), AttrValue::from(version));
    let made_from = if version <= 1 {
        Condition::not_exists(SHADOW_VERSION)
    } else {
        Condition::eq(SHADOW_VERSION, version - 1)
    };
    Put::new(e.tables.shadow(), item).condition(made_from)
}

/// The buffered write of `table/key`, if any.
pub(super) async fn shadow_get(
    e: &Engine,
    txn: &TxnCtx,
    table: &str,
    key: &str,
) -> Result<Option<Item>, BeldiError> {
    let entry = ShadowEntry::Write {
        table: table.to_owned(),
        key: key.to_owned(),
    };
    let key = Key::with_sort(txn.id.as_str(), entry.sort_key());
    Ok(e.store.get(&e.tables.shadow(), &key).await?)
}

/// Records `function` as a participant of the transaction (idempotent).
pub(crate) async fn add_participant(
    e: &Engine,
    txn: &TxnCtx,
    function: &str,
) -> Result<(), BeldiError> {
    e.store.put(participant_put(e, txn, function)).await?;
    Ok(())
}

/// The put recording that `function` is a participant of `txn` (idempotent).
pub(crate) fn participant_put(e: &Engine, txn: &TxnCtx, function: &str) -> Put {
    let entry = ShadowEntry::Participant {
        function: function.to_owned(),
    };
    entry_put(e, txn, entry)
}

/// Every shadow item of `txn` in this function, with its entry, in sort-key order.
pub(super) async fn entries(
    e: &Engine,
    txn: &TxnCtx,
) -> Result<Vec<(ShadowEntry, Item)>, BeldiError> {
    let shadow = e.tables.shadow();
    let mut items = e
        .store
        .query_all(Query::new(shadow.as_str(), txn.id.as_str()))
        .await?;
    items.sort_by(|a, b| {
        let sort = |i: &Item| i.get(DAAL_ROW).and_then(AttrValue::as_s).map(str::to_owned);
        sort(a).cmp(&sort(b))
    });
    Ok(items
        .into_iter()
        .filter_map(|i| Some((entry_of(&i)?, i)))
        .collect())
}

/// Leaves the finish marker of `txn` (with when, and the entries it finished), unless it is
/// there: the garbage collector then removes whatever a lagging copy of a participant
/// buffers after this point.
pub(super) async fn finish_marker(
    e: &Engine,
    txn: &TxnCtx,
    now_ms: i64,
    covered: &[(ShadowEntry, Item)],
) -> Result<(), BeldiError> {
    let put = marker_put(e, txn, now_ms, covered).if_absent(DAAL_KEY);
    match e.store.put(put).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_condition_failed() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The put of the finish marker of `txn`, finished at `now_ms`, covering `covered`.
pub(super) fn marker_put(
    e: &Engine,
    txn: &TxnCtx,
    now_ms: i64,
    covered: &[(ShadowEntry, Item)],
) -> Put {
    let mut marker = item(txn, &ShadowEntry::Finished, None);
    marker.insert(FINISHED_AT.into(), AttrValue::from(now_ms));
    let sort_keys = covered
        .iter()
        .filter(|(entry, _)| *entry != ShadowEntry::Finished)
        .map(|(entry, _)| AttrValue::S(entry.sort_key()))
        .collect();
    marker.insert(FINISHED_ENTRIES.into(), AttrValue::L(sort_keys));
    Put::new(e.tables.shadow(), marker)
}

/// The entries among `entries` that a finish marker among them does not cover: added by a
/// lagging copy after the finish read them. `None`: no marker (not finished). A marker
/// from before markers listed their entries covers all.
pub(super) fn not_covered(entries: &[(ShadowEntry, Item)]) -> Option<Vec<(ShadowEntry, Item)>> {
    let (_, marker) = entries
        .iter()
        .find(|(entry, _)| *entry == ShadowEntry::Finished)?;
    let Some(AttrValue::L(covered)) = marker.get(FINISHED_ENTRIES) else {
        return Some(Vec::new());
    };
    let covered: std::collections::HashSet<&str> =
        covered.iter().filter_map(AttrValue::as_s).collect();
    Some(
        entries
            .iter()
            .filter(|(entry, _)| {
                *entry != ShadowEntry::Finished && !covered.contains(entry.sort_key().as_str())
            })
            .cloned()
            .collect(),
    )
}

/// Deletes the shadow items of `entries` of `txn` (idempotent), except the finish marker: a
/// replay of a finished commit finds it among the entries, and without it the GC would never
/// remove what a lagging copy buffers afterwards.
pub(super) async fn remove(
    e: &Engine,
    txn: &TxnCtx,
    entries: &[(ShadowEntry, Item)],
) -> Result<(), BeldiError> {
    let shadow = e.tables.shadow();
    for (entry, _) in entries {
        if *entry == ShadowEntry::Finished {
            continue;
        }
        let key = Key::with_sort(txn.id.as_str(), entry.sort_key());
        match e.store.delete(Delete::new(shadow.as_str(), key)).await {
            Ok(_) | Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The shadow items of `shadow` grouped by transaction id.
async fn shadow_by_txn(
    store: &dyn Store,
    shadow: &str,
) -> Result<BTreeMap<String, Vec<Item>>, StoreError> {
    let mut by_txn: BTreeMap<String, Vec<Item>> = Default::default();
    for item in store.scan_all(shadow).await? {
        if let Some(t) = item.get(DAAL_KEY).and_then(AttrValue::as_s) {
            by_txn.entry(t.to_owned()).or_default().push(item);
        }
    }
    Ok(by_txn)
}

fn is_marker(item: &Item) -> bool {
    entry_of(item) == Some(ShadowEntry::Finished)
}

/// The shadow items of transactions whose part in `shadow` has not finished.
pub(crate) async fn unfinished_shadow(
    store: &dyn Store,
    shadow: &str,
) -> Result<Vec<Item>, StoreError> {
    Ok(shadow_by_txn(store, shadow)
        .await?
        .into_values()
        .filter(|items| !items.iter().any(is_marker))
        .flatten()
        .collect())
}

/// Removes the shadow items of every transaction whose part in this shadow table finished
/// before `finished_before` (ms since the epoch): the finish marker goes last, so a pass
/// that crashes is simply run again. Returns how many items it removed. (Items of a
/// transaction that has not finished stay: they are its locks and buffered writes.)
pub(crate) async fn collect_shadow(
    store: &dyn Store,
    shadow: &str,
    finished_before: i64,
) -> Result<usize, StoreError> {
    let mut removed = 0;
    let marker = ShadowEntry::Finished.sort_key();
    for (txn, items) in shadow_by_txn(store, shadow).await? {
        let finished = items.iter().any(|i| {
            is_marker(i)
                && i.get(FINISHED_AT)
                    .and_then(AttrValue::as_i64)
                    .is_some_and(|t| t <= finished_before)
        });
        if !finished {
            continue;
        }
        // Every item but the marker in batches, then the marker last: a pass that crashes
        // in between finds the transaction again.
        let keys: Vec<Key> = items
            .iter()
            .filter_map(|i| i.get(DAAL_ROW).and_then(AttrValue::as_s))
            .filter(|s| *s != marker)
            .map(|s| Key::with_sort(txn.as_str(), s))
            .collect();
        removed += store.delete_all(shadow, keys).await?;
        store
            .delete(Delete::new(
                shadow,
                Key::with_sort(txn.as_str(), marker.as_str()),
            ))
            .await?;
        removed += 1;
    }
    Ok(removed)
}
