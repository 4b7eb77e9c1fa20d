//! The garbage collector: removes what finished instances no longer need.
//!
//! One pass, per registered function:
//!
//! 1. picks the done intents that finished more than [`GcConfig::window`] ago **and** that
//!    [`may_collect`] allows;
//! 2. deletes their records in the function's log;
//! 3. removes their entries from every DAAL row of the function's data tables (one
//!    conditional update per row: the entries must still be there, so two collectors never
//!    count a removal twice), adding the number removed to the row's `GN`;
//! 4. unlinks full rows whose entries are all collected — never the head, never the tail —
//!    with a two-item transaction that moves the predecessor's `NX` past the row and stamps
//!    the row, both conditional on the links being as seen, so concurrent collectors cannot
//!    link a row that another one is unlinking;
//! 5. deletes rows unlinked more than [`GcConfig::unlink_window`] ago (until then a
//!    traversal that reached the row can still follow its `NX`);
//! 6. deletes what is left in the function's shadow table of transactions whose part in
//!    it finished more than the window ago (a lagging copy of a participant may buffer a
//!    write again after the finish; nothing reads it);
//! 7. deletes the intents last, so a crashed pass is simply run again.
//!
//! Entry ids are `"<instance>#<step>"`; instance ids cannot contain `#`, so the instance is
//! everything before the last `#`, whatever its length.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use crate::daal::{Row, row_id};
use crate::error::BeldiError;
use crate::intent::{self, Intent, now_ms};
use crate::invocation::PlatformHandle;
use crate::log;
use crate::schema::ids::instance_of_entry;
use crate::schema::names::{DAAL_KEY, DAAL_ROW, GC_COUNT, LOG_COUNT, LOGS, NEXT, UNLINKED_AT};
use crate::store::{
    AttrValue, Condition, Delete, Key, Path, StoreError, StoreExt, TransactOp, TransactWrite,
    Update, UpdateAction,
};

/// Options of the garbage collector.
#[derive(Clone, Debug, PartialEq)]
pub struct GcConfig {
    /// Collect an instance this long after it finished. Must be at least twice the longest
    /// execution time plus the longest queue age of an async start: a duplicate execution
    /// can begin just before the instance is marked done and then run for a whole timeout.
    pub window: Duration,
    /// Delete an unlinked row this long after it was unlinked.
    pub unlink_window: Duration,
}

impl GcConfig {
    /// The smallest safe configuration for executions of at most `max_execution` and async
    /// starts queued at most `max_queue_age`.
    pub fn safe(max_execution: Duration, max_queue_age: Duration) -> GcConfig {
        GcConfig {
            window: max_execution * 2 + max_queue_age,
            unlink_window: max_execution * 2 + max_queue_age,
        }
    }

    /// Checks the windows against the longest execution timeout of the registered
    /// functions and the longest async queue age.
    pub fn validate(
        &self,
        longest: &crate::collector::Longest,
        max_queue_age: Duration,
    ) -> Result<(), BeldiError> {
        let max_execution = longest.timeout;
        let min = max_execution * 2 + max_queue_age;
        for (what, v) in [
            ("gc window", self.window),
            ("gc unlink_window", self.unlink_window),
        ] {
            if v < min {
                return Err(BeldiError::InvalidConfig {
                    setting: what,
                    value: format!("{v:?}"),
                    message: format!(
                        "must be at least 2 × the longest execution timeout ({longest}) + the longest async queue age ({max_queue_age:?}) = {min:?}"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GcReport {
    /// Instances collected (intent deleted).
    pub instances: usize,
    /// Done instances kept because their caller may still ask for the result.
    pub kept_for_caller: usize,
    /// Log records deleted.
    pub log_records: usize,
    /// DAAL entries removed.
    pub entries: usize,
    /// Rows unlinked.
    pub rows_unlinked: usize,
    /// Unlinked rows deleted.
    pub rows_deleted: usize,
    /// Rows an appender created but never linked (it crashed in between), linked.
    pub rows_linked: usize,
    /// Shadow items of transactions whose part finished before the window, deleted.
    pub shadow_items: usize,
}

/// **The rule** for collecting a done instance's records (its stored result above all):
/// they may go only when nothing can ask for them again.
///
/// - A root instance: its client's retries are bounded by the window.
/// - An asynchronously started instance: only once its caller can no longer replay the
///   spawn, that is, the caller's instance has been done for the window too (a duplicate
///   of the caller that began before it was done ends within the window) or is collected.
///   Until then a replay of the caller's spawn step would find no intent and create the
///   callee again, running its writes a second time. (The caller never waits for the
///   result, but it may re-execute for much longer than the window: the intent collector
///   restarts it for up to `max_restarts × restart_after`.)
/// - A sync callee: only once its caller has logged the result, or the caller's instance is
///   itself done (or already collected). Until then a late re-execution of the caller would
///   invoke the callee again, and must get the stored result, not a second run.
///
/// `done_before` is the end of the window (ms since the epoch): instances done before it
/// are past it. The check reads (never writes) the caller's log and intent.
pub(crate) async fn may_collect(
    rt: &PlatformHandle,
    it: &Intent,
    done_before: i64,
) -> Result<bool, BeldiError> {
    let Some(caller) = &it.caller else {
        return Ok(true);
    };
    let tables = rt.tables(&caller.function)?;
    let store = &**rt.store();
    if caller.is_async {
        return Ok(
            match intent::get(store, &tables.intent(), &caller.instance).await? {
                None => true,
                Some(c) => c.done && c.done_ms.is_some_and(|t| t <= done_before),
            },
        );
    }
    if let Some(rec) = log::get(store, &tables.log(), &caller.instance, caller.step).await?
        && crate::invoke::logged_result(&rec).is_some()
    {
        return Ok(true);
    }
    match intent::get(store, &tables.intent(), &caller.instance).await? {
        None => Ok(true),
        Some(c) => Ok(c.done),
    }
}

/// Runs one pass over every registered function.
pub(crate) async fn run_pass(rt: &PlatformHandle, cfg: &GcConfig) -> Result<GcReport, BeldiError> {
    let mut report = GcReport::default();
    for name in rt.function_names() {
        collect_function(rt, cfg, &name, &mut report).await?;
    }
    Ok(report)
}

async fn collect_function(
    rt: &PlatformHandle,
    cfg: &GcConfig,
    name: &str,
    report: &mut GcReport,
) -> Result<(), BeldiError> {
    let tables = rt.tables(name)?;
    let store = &**rt.store();
    let now = now_ms();
    let done_before = now - cfg.window.as_millis() as i64;
    let mut victims = HashSet::new();
    for it in intent::all(store, &tables.intent()).await? {
        if !it.done || it.done_ms.is_none_or(|t| t > done_before) {
            continue;
        }
        if may_collect(rt, &it, done_before).await? {
            victims.insert(it.instance.clone());
        } else {
            report.kept_for_caller += 1;
        }
    }
    for id in &victims {
        report.log_records += log::delete_instance(store, &tables.log(), id).await?;
    }
    let unlinked_before = now - cfg.unlink_window.as_millis() as i64;
    for data in tables.data_tables() {
        let table = tables.data(data)?;
        let mut chains: BTreeMap<String, Vec<Row>> = BTreeMap::new();
        for item in store.scan_all(&table).await? {
            let row = Row(item);
            if let Some(k) = row.0.get(DAAL_KEY).and_then(AttrValue::as_s) {
                chains.entry(k.to_owned()).or_default().push(row);
            }
        }
        for (key, mut rows) in chains {
            rows.sort_by(|a, b| a.id().cmp(b.id()));
            for row in &mut rows {
                report.entries += remove_entries(store, &table, &key, row, &victims).await?;
            }
            report.rows_linked += link_orphans(store, &table, &key, &mut rows).await?;
            report.rows_unlinked += unlink_collected(store, &table, &key, &rows, now).await?;
            for row in &rows {
                let at = row.0.get(UNLINKED_AT).and_then(AttrValue::as_i64);
                if at.is_some_and(|t| t <= unlinked_before) {
                    let del = Delete::new(&table, Key::with_sort(key.as_str(), row.id()))
                        .condition(Condition::exists(UNLINKED_AT));
                    match store.delete(del).await {
                        Ok(_) => report.rows_deleted += 1,
                        Err(e) if e.is_condition_failed() => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }
    report.shadow_items +=
        crate::txn::shadow::collect_shadow(store, &tables.shadow(), done_before).await?;
    for id in &victims {
        intent::delete_done(store, &tables.intent(), id).await?;
        report.instances += 1;
    }
    Ok(())
}

/// Removes the entries of `victims` from one row, at most 50 per update; updates `row` to
/// what was written. Returns how many were removed.
async fn remove_entries(
    store: &dyn crate::store::Store,
    table: &str,
    key: &str,
    row: &mut Row,
    victims: &HashSet<String>,
) -> Result<usize, BeldiError> {
    let mut removed = 0;
    for _attempt in 0..20 {
        let cids: Vec<String> = row
            .0
            .get(LOGS)
            .and_then(AttrValue::as_m)
            .map(|m| {
                m.keys()
                    .filter(|c| victims.contains(instance_of_entry(c)))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if cids.is_empty() {
            return Ok(removed);
        }
        let batch = &cids[..cids.len().min(50)];
        let mut req = Update::new(table, Key::with_sort(key, row.id()))
            .action(UpdateAction::add(GC_COUNT, batch.len() as i64))
            .returning(crate::store::ReturnValues::AllNew)
            .return_item_on_failure();
        let mut cond = Condition::exists(DAAL_ROW);
        for c in batch {
            let p = Path::attr(LOGS).key(c.as_str());
            req = req.action(UpdateAction::remove(p.clone()));
            cond = cond.and(Condition::exists(p));
        }
        match store.update(req.condition(cond)).await {
            Ok(Some(new)) => {
                removed += batch.len();
                row.0 = new;
            }
            Ok(None) => return Ok(removed),
            // Another collector removed some of them: look again at the row as it is.
            Err(StoreError::ConditionFailed {
                item: Some(cur), ..
            }) => row.0 = *cur,
            Err(StoreError::ConditionFailed { item: None, .. }) => return Ok(removed), // row gone
            Err(e) => return Err(e.into()),
        }
    }
    Ok(removed)
}

/// Links each row that has a successor but no `NX` to it: an appender that crashed between
/// putting the next row and linking it leaves the chain so (writers go on in the new row,
/// the highest id), and an unlinked full row would never be collected. The link is the
/// conditional write the appender would have made. Updates `rows` to what was written.
async fn link_orphans(
    store: &dyn crate::store::Store,
    table: &str,
    key: &str,
    rows: &mut [Row],
) -> Result<usize, BeldiError> {
    let mut linked = 0;
    for i in 0..rows.len().saturating_sub(1) {
        if rows[i].next().is_some() || rows[i].0.contains_key(UNLINKED_AT) {
            continue;
        }
        let Ok(expected) = crate::daal::next_row_id(rows[i].id()) else {
            continue;
        };
        if rows[i + 1].id() != expected {
            continue;
        }
        let link = Update::new(table, Key::with_sort(key, rows[i].id()))
            .action(UpdateAction::set(NEXT, expected.as_str()))
            .condition(Condition::not_exists(NEXT).and(Condition::exists(DAAL_ROW)));
        match store.update(link).await {
            Ok(_) => {
                rows[i]
                    .0
                    .insert(NEXT.to_owned(), AttrValue::S(expected.clone()));
                linked += 1;
            }
            Err(e) if e.is_condition_failed() => {} // linked (or gone) meanwhile
            Err(e) => return Err(e.into()),
        }
    }
    Ok(linked)
}

/// Unlinks fully collected full rows of one chain (never the head or the tail).
async fn unlink_collected(
    store: &dyn crate::store::Store,
    table: &str,
    key: &str,
    rows: &[Row],
    now: i64,
) -> Result<usize, BeldiError> {
    let linked: Vec<&Row> = rows
        .iter()
        .filter(|r| !r.0.contains_key(UNLINKED_AT))
        .collect();
    let mut unlinked = 0;
    // Walk the linked rows in order; `pred` is the last row kept in the chain.
    let mut pred: Option<(String, String)> = None; // (pred id, its current NX)
    for (i, row) in linked.iter().enumerate() {
        let is_head = row.id() == row_id(0);
        let is_tail = i + 1 == linked.len() || row.next().is_none();
        let collected = row.0.get(GC_COUNT).and_then(AttrValue::as_i64).unwrap_or(0) as u64;
        let full_and_clean = row.entries() > 0
            && collected >= row.entries()
            && row
                .0
                .get(LOGS)
                .and_then(AttrValue::as_m)
                .is_none_or(|m| m.is_empty());
        if !is_head
            && !is_tail
            && full_and_clean
            && let (Some((pid, pnx)), Some(next)) = (&pred, row.next())
            && pnx == row.id()
        {
            let tx = TransactWrite::new()
                .op(TransactOp::Update(
                    Update::new(table, Key::with_sort(key, pid.as_str()))
                        .action(UpdateAction::set(NEXT, next))
                        // The predecessor must itself still be linked: a collector that saw
                        // it linked may race one that just unlinked it.
                        .condition(
                            Condition::eq(NEXT, row.id()).and(Condition::not_exists(UNLINKED_AT)),
                        ),
                ))
                .op(TransactOp::Update(
                    Update::new(table, Key::with_sort(key, row.id()))
                        .action(UpdateAction::set(UNLINKED_AT, now))
                        .condition(
                            Condition::eq(NEXT, next)
                                .and(Condition::not_exists(UNLINKED_AT))
                                .and(Condition::Ge(
                                    Path::attr(GC_COUNT),
                                    AttrValue::from(row.entries() as i64),
                                ))
                                .and(Condition::Ge(
                                    Path::attr(LOG_COUNT),
                                    AttrValue::from(row.entries() as i64),
                                )),
                        ),
                ));
            match store.transact_write(tx).await {
                Ok(()) => {
                    unlinked += 1;
                    pred = Some((pid.clone(), next.to_owned()));
                    continue;
                }
                Err(StoreError::TransactionCancelled { .. }) => {} // links changed: skip this row
                Err(e) => return Err(e.into()),
            }
        }
        pred = Some((row.id().to_owned(), row.next().unwrap_or("").to_owned()));
    }
    Ok(unlinked)
}
