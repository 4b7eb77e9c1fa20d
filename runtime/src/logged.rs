//! The logged data path: what a `read`, `write`, `cond_write`, `delete`, `scan` or logged
//! value does outside a transaction, exactly once across executions.
//!
//! - `read` / `scan`: the value is read from the DAAL tail (one query, projected to the value
//!   and this step's entry); its log record is deferred ([`crate::deferred`]) and goes to
//!   the log table with the next durable effect; a re-execution gets the logged value back.
//! - `write` / `cond_write` / `delete`: one conditional update of the DAAL tail (where this
//!   process last saw it, [`crate::daal::TailHints`]) applies the change and adds the entry
//!   `"<instance>#<step>"`, in one transaction with the put-if-absent of the step's log
//!   record and of every deferred record: one round trip. The step's record proves the
//!   write applied (they are durable together), so a re-execution, or a twin, that finds it
//!   does nothing again (a `cond_write` returns its logged boolean).
//! - logged values (`side_effect`, `now`, `random`, `uuid`, `sleep`): computed once and
//!   logged; a re-execution gets the logged value.
//!
//! A log record says which operation and target it was for; a replay that asks for another
//! at that step fails with [`BeldiError::NonDeterminism`].

use std::collections::BTreeMap;

use crate::daal::{Change, Daal, Entry, WriteResult};
use crate::deferred::{self, DeferredLog};
use crate::engine::{Engine, WriteOp};
use crate::error::BeldiError;
use crate::log;
use crate::schema::names::{LOGS, READ_VALUE, VALUE, WRITE_ENTRY};
use crate::schema::{LogRecord, StepKind, step_key};
use crate::store::{AttrValue, Condition, Path, StoreError, UpdateAction};

/// `table/key`, the target a data operation logs.
pub(crate) fn target(table: &str, key: &str) -> String {
    format!("{table}/{key}")
}

/// The logged form of a read value (`{"v": value}`, `{}` for none).
pub(crate) fn read_record(value: Option<AttrValue>) -> AttrValue {
    let mut m = BTreeMap::new();
    if let Some(v) = value {
        m.insert(READ_VALUE.to_owned(), v);
    }
    AttrValue::M(m)
}

/// The value a logged read returns.
pub(crate) fn read_value(rec: &LogRecord) -> Option<AttrValue> {
    rec.field(READ_VALUE).cloned()
}

/// A logged read of `key` in the function's table `table`.
pub(crate) async fn read(
    e: &Engine,
    step: u64,
    table: &str,
    key: &str,
) -> Result<Option<AttrValue>, BeldiError> {
    let t = e.tables.data(table)?;
    let want = target(table, key);
    if let Some(rec) = e.prefetched(step) {
        e.check_log(step, rec, StepKind::Read, &want)?;
        return Ok(read_value(rec));
    }
    let cid = e.cid(step);
    let tail = Daal::new(&*e.store, &t, e.row_capacity)
        .tail_of(key, &[Path::attr(VALUE), Path::attr(LOGS).key(&cid)])
        .await?;
    if let Some(row) = &tail {
        // A later write of the key goes straight to this row.
        e.platform.tail_hints().set(&t, key, row.id());
    }
    if let Some(Some(Ok(entry))) = tail.as_ref().map(|r| r.entry(&cid)) {
        // A write was logged at this step: the replay diverged.
        return Err(e.diverged(
            step,
            format!("{} of `{want}`", entry.kind()),
            StepKind::Read,
            &want,
        ));
    }
    let value = read_record(tail.as_ref().and_then(|r| r.value()).cloned());
    // Logged later, with the next durable effect ([`crate::deferred`]).
    let got = e.defer_step(step, StepKind::Read, &want, Some(value))?;
    Ok(read_value(&got))
}

/// Rebases update actions and a condition given relative to the value onto the DAAL row.
pub(crate) fn rebase(
    actions: &[UpdateAction],
    cond: Option<&Condition>,
) -> (Vec<UpdateAction>, Option<Condition>) {
    let base = Path::attr(VALUE);
    let rebase = |p: &Path| p.under(&base);
    let actions = actions.iter().map(|a| a.map_path(&rebase)).collect();
    (actions, cond.map(|c| c.map_paths(&rebase)))
}

/// A logged write of `op.key`: applies its actions if its condition holds; returns whether
/// it held.
pub(crate) async fn write(e: &Engine, step: u64, op: WriteOp<'_>) -> Result<bool, BeldiError> {
    let WriteOp {
        table,
        key,
        entry,
        actions,
        cond,
    } = op;
    let t = e.tables.data(table)?;
    if key.is_empty() {
        return Err(StoreError::validation(table, "a key must not be empty").into());
    }
    let want = target(table, key);
    if let Some(rec) = e.prefetched(step) {
        e.check_log(step, rec, entry.kind(), &want)?;
        // Logged with its entry: applied (the record and the entry are one transaction).
        if let Some(done) = rec.field(WRITE_ENTRY).and_then(Entry::parse) {
            return Ok(outcome(done));
        }
    }
    let (actions, cond) = rebase(actions, cond);
    let daal = Daal::new(&*e.store, &t, e.row_capacity);
    let cid = e.cid(step);
    let (log_table, sort) = (e.tables.log(), step_key(step));
    // The step's record says which operation and target it is, in one transaction with the
    // write's effect: a replay that writes elsewhere at this step (or writes where a read
    // or a call was logged) finds the record and fails before any effect.
    let record = |applied: Entry| {
        let value = BTreeMap::from([(
            WRITE_ENTRY.to_owned(),
            AttrValue::S(applied.code().to_owned()),
        )]);
        let record = LogRecord::new(entry.kind(), &want, Some(AttrValue::M(value)));
        log::put_if_absent(&log_table, &e.instance, &sort, &record)
    };
    let change = Change {
        entry,
        actions: &actions,
        cond: cond.as_ref(),
    };
    let hints = e.platform.tail_hints();
    let got = loop {
        e.deferred.check(&e.instance)?;
        // The deferred intent and records ride along (put-if-absent each): durable exactly
        // when the write is. More than one transaction holds go first, on their own.
        let (carried, all) = e.deferred.carried_records();
        if !all {
            deferred::flush(&*e.store, &log_table, &e.instance, &e.deferred).await?;
            continue;
        }
        // Companion 0 is the step's record, then the intent if deferred, then the records.
        let gate = e.deferred.intent_gate().await;
        let intent = e.deferred.intent();
        let first = 1 + usize::from(intent.is_some());
        let mut riding: Vec<_> = intent.iter().cloned().collect();
        riding.extend(DeferredLog::puts(&log_table, &e.instance, &carried));
        let companions = |applied: Entry| {
            let mut puts = vec![record(applied)];
            puts.extend(riding.iter().cloned());
            puts
        };
        let tail = hints.get(&t, key);
        let (out, row) = daal
            .write_at(tail.as_deref(), key, &cid, change, Some(&companions))
            .await?;
        hints.set(&t, key, &row);
        // The intent, if carried, is durable or found another execution's before the next
        // operation may carry it.
        match &out {
            WriteResult::Fresh(_) if intent.is_some() => {
                e.deferred.take_intent();
            }
            WriteResult::CompanionFailed { index, .. } if *index > 0 && *index < first => {
                return Err(e.deferred.superseded(&e.instance));
            }
            _ => {}
        }
        drop(gate);
        match out {
            WriteResult::Fresh(x) => {
                e.deferred.settled(&carried);
                break x;
            }
            WriteResult::CompanionFailed { index: 0, item } => {
                // The step is logged already: by a twin that wrote it, in the transaction
                // that applied it. What this execution deferred must agree with what the
                // twin logged before going on from the twin's outcome.
                deferred::flush(&*e.store, &log_table, &e.instance, &e.deferred).await?;
                let logged =
                    deferred::found(&*e.store, &log_table, &e.instance, step, item.as_deref())
                        .await?;
                e.check_log(step, &logged, entry.kind(), &want)?;
                e.note_found_logged(step);
                break logged
                    .field(WRITE_ENTRY)
                    .and_then(Entry::parse)
                    .ok_or_else(|| BeldiError::Corrupt {
                        what: format!("log of write step {step}"),
                        message: "no DAAL entry code".into(),
                    })?;
            }
            WriteResult::CompanionFailed { index, item } => {
                // A deferred record is there already: the same one (then it is no longer
                // deferred; write again without it) or another (this execution diverged).
                let d = carried
                    .get(index - first)
                    .ok_or_else(|| BeldiError::Corrupt {
                        what: format!("write of step {step}"),
                        message: format!("companion {index} of {} failed", carried.len() + first),
                    })?;
                let found =
                    deferred::found(&*e.store, &log_table, &e.instance, d.step, item.as_deref())
                        .await?;
                e.deferred.refused(&e.instance, d, &found)?;
            }
            WriteResult::Logged(x) => {
                // The row holds the entry, written without a record (not by this runtime's
                // logged path); the deferred records were not written with it.
                deferred::flush(&*e.store, &log_table, &e.instance, &e.deferred).await?;
                e.note_found_logged(step);
                break x;
            }
        }
    };
    if got.kind() != entry.kind() {
        return Err(e.diverged(
            step,
            format!("{} of `{want}`", got.kind()),
            entry.kind(),
            &want,
        ));
    }
    Ok(outcome(got))
}

/// What a write step returns for its entry: a conditional write's boolean, else `true`.
fn outcome(entry: Entry) -> bool {
    match entry {
        Entry::CondWrite(b) => b,
        _ => true,
    }
}

/// A logged scan of the function's table `table`: every key's value, ordered by key.
pub(crate) async fn scan(
    e: &Engine,
    step: u64,
    table: &str,
) -> Result<Vec<(String, AttrValue)>, BeldiError> {
    let t = e.tables.data(table)?;
    let got = match e.prefetched(step) {
        Some(rec) => {
            e.check_log(step, rec, StepKind::Scan, table)?;
            rec.clone()
        }
        None => {
            let values = Daal::new(&*e.store, &t, e.row_capacity)
                .scan_values()
                .await?;
            let list = AttrValue::L(
                values
                    .into_iter()
                    .map(|(k, v)| AttrValue::L(vec![AttrValue::S(k), v]))
                    .collect(),
            );
            e.defer_step(step, StepKind::Scan, table, Some(list))?
        }
    };
    let corrupt = || BeldiError::Corrupt {
        what: format!("scan log of step {step}"),
        message: "not a list of pairs".into(),
    };
    let mut out = Vec::new();
    for pair in got
        .value
        .as_ref()
        .and_then(AttrValue::as_l)
        .ok_or_else(corrupt)?
    {
        match pair.as_l() {
            Some([AttrValue::S(k), v]) => out.push((k.clone(), v.clone())),
            _ => return Err(corrupt()),
        }
    }
    Ok(out)
}

/// A logged value labelled `label` at `step`: the logged one, or `make()`'s, logged.
pub(crate) async fn value(
    e: &Engine,
    step: u64,
    label: &str,
    make: impl FnOnce() -> Result<AttrValue, BeldiError>,
) -> Result<AttrValue, BeldiError> {
    let table = e.tables.log();
    let what = || format!("{label} value of step {step}");
    let found = match e.prefetched(step) {
        Some(rec) => Some(rec.clone()),
        // A first execution has nothing logged (a twin that got ahead of it may have: then
        // both ran `make`, as two executions at the very same time may, and the put below
        // returns the twin's value).
        None if e.is_first_execution() => None,
        // A clock, random value or wake-up time is made and put-if-absent, which returns
        // the earlier one if there is one: no need to look first.
        None if label != "side_effect" => None,
        // Logged since the re-execution read ahead, perhaps: look before running the side
        // effect.
        None => log::get(&*e.store, &table, &e.instance, step).await?,
    };
    let logged = match found {
        Some(rec) => rec,
        None => {
            let rec = LogRecord::new(StepKind::SideEffect, label, Some(make()?));
            log::record(&*e.store, &table, &e.instance, step, rec).await?
        }
    };
    e.check_log(step, &logged, StepKind::SideEffect, label)?;
    logged.value.ok_or_else(|| BeldiError::Corrupt {
        what: what(),
        message: "no value".into(),
    })
}
