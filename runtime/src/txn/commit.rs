//! Commit and abort: a function's part of a transaction finished exactly once, and
//! propagated to its participants.
//!
//! Commit: per written key, a DAAL update applies the buffered value and releases the lock
//! atomically; every other lock is released. Abort releases every lock (read locks too).
//! Then every participant is invoked with the same instruction, which does the same in its
//! own tables, recursively. Each update carries an entry of the logged step the decision
//! was taken under. A first decision is one transaction with its own record ([`end`]); a
//! re-execution (or a first decision that could not be one transaction) finishes key by
//! key, idempotently ([`finish`]), so a crash anywhere is finished by a re-execution.

use std::collections::HashSet;

use super::TxnCtx;
use super::shadow;
use crate::daal::{Attempt, Daal, Entry, busy_backoff, transact};
use crate::deferred::{self, DeferredLog};
use crate::engine::Engine;
use crate::error::BeldiError;
use crate::invocation::Invocation;
use crate::log;
use crate::schema::names::{HOLDER, HOLDER_COORDINATOR, HOLDER_TS, LOG_COUNT, LOGS, VALUE};
use crate::schema::{CallerRef, Instruction, LogRecord, ShadowEntry, StepKind, ids, step_key};
use crate::store::{
    AttrValue, Condition, Item, Key, MAX_TRANSACTION_ITEMS, Path, StoreError, TransactOp, Update,
    UpdateAction,
};

/// Decides the transaction's fate in this function at `step` (commit or abort) and
/// finishes it: the function's part and its participants'.
///
/// A first decision is, when it can be, **one** transaction: the decision's log record
/// (put-if-absent), every key's DAAL write (the buffered value applied and the lock
/// released, or the lock released, each with its entry, at the row where this process saw
/// the key's tail, under "still held by this transaction"), the deferred log records and,
/// with no participant to finish after it, the finish marker. Atomic, so a twin that finds
/// the decision logged knows it was applied whole; then the participants are finished.
/// Otherwise (a twin decided, a row is not where it was seen, too many keys), the
/// decision is logged alone and every key is finished by an idempotent logged write
/// ([`finish`]), as a re-execution that finds the decision logged does.
pub(crate) async fn end(
    e: &Engine,
    txn: &TxnCtx,
    step: u64,
    commit: bool,
) -> Result<(), BeldiError> {
    let kind = if commit {
        StepKind::Commit
    } else {
        StepKind::Abort
    };
    let decided = match e.prefetched(step) {
        Some(rec) => {
            e.check_log(step, rec, kind, &txn.id)?;
            true
        }
        None => false,
    };
    if !decided {
        let entries = shadow::entries(e, txn).await?;
        if at_once(e, txn, step, commit, &entries).await? {
            let participants = participants(&entries);
            if !participants.is_empty() {
                propagate(e, txn, step, commit, &participants).await?;
                shadow::finish_marker(e, txn, crate::intent::now_ms(), &entries).await?;
            }
            return Ok(());
        }
        // The decision alone, after what this execution deferred.
        let log_table = e.tables.log();
        deferred::flush(&*e.store, &log_table, &e.instance, &e.deferred).await?;
        e.log_step(step, kind, &txn.id, None).await?;
    }
    finish(e, txn, step, commit).await
}

/// The participants recorded among `entries`.
fn participants(entries: &[(ShadowEntry, Item)]) -> Vec<&str> {
    entries
        .iter()
        .filter_map(|(entry, _)| match entry {
            ShadowEntry::Participant { function } => Some(function.as_str()),
            _ => None,
        })
        .collect()
}

/// What finishing the function's part does to each key: the key and its DAAL actions.
fn key_actions(
    entries: &[(ShadowEntry, Item)],
    commit: bool,
) -> Vec<(&str, &str, Vec<UpdateAction>)> {
    let release = [
        UpdateAction::remove(HOLDER),
        UpdateAction::remove(HOLDER_TS),
        UpdateAction::remove(HOLDER_COORDINATOR),
    ];
    let written: HashSet<(&str, &str)> = entries
        .iter()
        .filter_map(|(entry, _)| match entry {
            ShadowEntry::Write { table, key } => Some((table.as_str(), key.as_str())),
            _ => None,
        })
        .collect();
    let mut out = Vec::new();
    for (entry, item) in entries {
        let (table, key, actions) = match (entry, commit) {
            (ShadowEntry::Participant { .. }, _) => continue,
            // Commit: apply the buffered value and release the lock, atomically.
            (ShadowEntry::Write { table, key }, true) => {
                let mut actions: Vec<UpdateAction> = release.to_vec();
                actions.push(match item.get(VALUE) {
                    Some(v) => UpdateAction::Set(Path::attr(VALUE), v.clone()),
                    None => UpdateAction::remove(VALUE),
                });
                (table, key, actions)
            }
            // A written key's lock goes with its write (commit) or its lock entry (abort).
            (ShadowEntry::Lock { table, key }, true)
                if written.contains(&(table.as_str(), key.as_str())) =>
            {
                continue;
            }
            (ShadowEntry::Write { .. }, false) | (ShadowEntry::Finished, _) => continue,
            // Every other lock, read locks included, is released.
            (ShadowEntry::Lock { table, key }, _) => (table, key, release.to_vec()),
        };
        out.push((table.as_str(), key.as_str(), actions));
    }
    out
}

/// The first decision as one transaction (see [`end`]); `false` if it cannot be (nothing
/// was written then but deferred records).
async fn at_once(
    e: &Engine,
    txn: &TxnCtx,
    step: u64,
    commit: bool,
    entries: &[(ShadowEntry, Item)],
) -> Result<bool, BeldiError> {
    let kind = if commit {
        StepKind::Commit
    } else {
        StepKind::Abort
    };
    let keys = key_actions(entries, commit);
    let with_marker = participants(entries).is_empty();
    let hints = e.platform.tail_hints();
    let mine = Condition::eq(HOLDER, txn.id.as_str());
    let mut writes = Vec::new();
    let mut first_table = String::new();
    for (table, key, actions) in keys {
        let data = e.tables.data(table)?;
        let Some(row) = hints.get(&data, key) else {
            return Ok(false);
        };
        let cid = ids::finish_entry_id(&e.instance, step, commit, table, key);
        let entry = Path::attr(LOGS).key(&cid);
        let update = Update::new(data.as_str(), Key::with_sort(key, row.as_str()))
            .actions(actions)
            .action(UpdateAction::Set(
                entry.clone(),
                Entry::CondWrite(true).code().into(),
            ))
            .action(UpdateAction::add(LOG_COUNT, 1))
            .condition(
                mine.clone()
                    .and(Condition::not_exists(entry))
                    .and(Daal::room_in(e.row_capacity)),
            );
        if first_table.is_empty() {
            first_table = data;
        }
        writes.push(TransactOp::Update(update));
    }
    // The values written, beside what is deferred (at most 1 MB): well within DynamoDB's
    // 4 MB per transaction, or the careful way.
    let written: usize = writes.iter().map(update_size).sum();
    if written > MAX_AT_ONCE_BYTES {
        return Ok(false);
    }
    let log_table = e.tables.log();
    let decision = LogRecord::new(kind, &txn.id, None);
    let mut busy = 0u32;
    loop {
        e.deferred.check(&e.instance)?;
        let (carried, all) = e.deferred.carried();
        let mut puts = vec![log::put_if_absent(
            &log_table,
            &e.instance,
            &step_key(step),
            &decision,
        )];
        if with_marker {
            puts.push(shadow::marker_put(e, txn, crate::intent::now_ms(), entries));
        }
        let fixed = puts.len();
        if !all || fixed + carried.len() + writes.len() > MAX_TRANSACTION_ITEMS {
            return Ok(false);
        }
        puts.extend(DeferredLog::puts(&log_table, &e.instance, &carried));
        let attempt = match transact(&*e.store, &first_table, &puts, writes.clone()).await {
            // Refused whole (too large, say): nothing was written; key by key may fit.
            Err(StoreError::Validation { .. }) => return Ok(false),
            out => out?,
        };
        match attempt {
            Attempt::Written => {
                e.deferred.settled(&carried);
                return Ok(true);
            }
            Attempt::CompanionFailed(i, item) if i >= fixed => {
                let d = &carried[i - fixed];
                let found =
                    deferred::found(&*e.store, &log_table, &e.instance, d.step, item.as_deref())
                        .await?;
                e.deferred.refused(&e.instance, d, &found)?;
            }
            // Decided by a twin, or a row is not where it was seen: the careful way.
            Attempt::CompanionFailed(..) | Attempt::Refused(..) => return Ok(false),
            Attempt::Busy => busy_backoff(&mut busy).await,
        }
    }
}

/// The most bytes of values a one-transaction decision writes.
const MAX_AT_ONCE_BYTES: usize = 2 * 1024 * 1024;

/// The bytes of the values `op` sets.
fn update_size(op: &TransactOp) -> usize {
    match op {
        TransactOp::Update(u) => u
            .actions
            .iter()
            .map(|a| match a {
                UpdateAction::Set(_, v) => crate::store::validate::value_size(v),
                _ => 0,
            })
            .sum(),
        _ => 0,
    }
}

/// Finishes each participant (`commit` or abort), one sync call each.
async fn propagate(
    e: &Engine,
    txn: &TxnCtx,
    step: u64,
    commit: bool,
    participants: &[&str],
) -> Result<(), BeldiError> {
    let instruction = if commit {
        Instruction::Commit
    } else {
        Instruction::Abort
    };
    for function in participants {
        let inv = Invocation {
            function: (*function).to_owned(),
            instance: ids::finish_id(e.function(), function, &e.instance, step),
            input: AttrValue::S(format!("{instruction:?} {}", txn.id)),
            caller: Some(CallerRef {
                function: e.function().to_owned(),
                instance: e.instance.clone(),
                step,
                is_async: false,
            }),
            txn: Some(txn.with(instruction)),
            fresh: false,
            plan: e.plan.clone(),
            attempt: e.attempt,
            trace: Some(crate::telemetry::outgoing(&e.trace)),
        };
        e.platform.call(inv).await?;
    }
    Ok(())
}

/// Finishes the function's part of a transaction (commit or abort) whose decision is logged
/// at `step`, idempotently, and propagates it to its participants.
pub(crate) async fn finish(
    e: &Engine,
    txn: &TxnCtx,
    step: u64,
    commit: bool,
) -> Result<(), BeldiError> {
    let entries = shadow::entries(e, txn).await?;
    // Finished already: only what a lagging copy of this instance added after the finish
    // read the entries is left (a lock it took, a participant it called, each after the
    // decision and so never part of a commit): released, and told the decision.
    if let Some(late) = shadow::not_covered(&entries) {
        return finish_keys(e, txn, step, false, &late).await;
    }
    finish_keys(e, txn, step, commit, &entries).await?;
    // This function's part is finished: say so (with when, and what it covered), so the
    // garbage collector can remove whatever a lagging copy of a participant buffers after
    // this point.
    shadow::finish_marker(e, txn, crate::intent::now_ms(), &entries).await?;
    // The shadow entries are no longer needed (deleting them is idempotent).
    shadow::remove(e, txn, &entries).await
}

/// Applies (`commit`: the buffered values and releases, else the releases) `entries` to
/// their keys, one idempotent logged write each, and finishes their participants.
async fn finish_keys(
    e: &Engine,
    txn: &TxnCtx,
    step: u64,
    commit: bool,
    entries: &[(ShadowEntry, Item)],
) -> Result<(), BeldiError> {
    let mine = Condition::eq(HOLDER, txn.id.as_str());
    for (table, key, actions) in key_actions(entries, commit) {
        let cid = ids::finish_entry_id(&e.instance, step, commit, table, key);
        Daal::new(&*e.store, &e.tables.data(table)?, e.row_capacity)
            .write(key, &cid, Entry::CondWrite(true), &actions, Some(&mine))
            .await?;
    }
    propagate(e, txn, step, commit, &participants(entries)).await
}
