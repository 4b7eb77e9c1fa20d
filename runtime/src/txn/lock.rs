//! The wait-die rule: how a transaction takes the lock of a key, waits for an older holder
//! or dies for a younger one, and how every copy of an instance takes the same decision.

use std::time::Duration;

use super::shadow::shadow_put;
use super::{TxnState, died};
use crate::daal::Daal;
use crate::engine::Engine;
use crate::error::BeldiError;
use crate::schema::names::{HOLDER, HOLDER_COORDINATOR, HOLDER_TS};
use crate::schema::{Coordinator, LogRecord, ShadowEntry, StepKind, ids};
use crate::store::{
    AttrValue, CancellationReason, Condition, Key, StoreError, TransactOp, TransactWrite, Update,
    UpdateAction,
};

/// Takes the lock of `key` for the transaction, waiting if older, dying if younger.
///
/// The outcome is **one** record at a fixed address, `<step>.LK` in the function's log,
/// written with put-if-absent: taking the lock writes it (`took`) in one transaction with
/// the holder on the key's tail row; dying writes it (`died`) alone. So every copy of the
/// instance takes the same decision: a copy that finds the record adopts it, whatever the
/// lock's state is now. (A death recorded apart from the take let one copy die while a
/// twin took the lock later, which then leaked.) Waiting writes nothing, and a death
/// never touches the contended row.
pub(super) async fn lock(
    e: &Engine,
    state: &TxnState,
    step: u64,
    table: &str,
    data: &str,
    key: &str,
) -> Result<(), BeldiError> {
    let txn = &state.ctx;
    if let Some(why) = state.died() {
        return Err(died(txn, why));
    }
    let store = &*e.store;
    let log_table = e.tables.log();
    let instance = &e.instance;
    let outcome_key = ids::lock_outcome_key(step);
    let daal = Daal::new(store, data, e.row_capacity);
    let die = |why: String| -> BeldiError {
        state.mark_died(&why);
        died(txn, why)
    };
    // What a logged outcome means: `Ok` if the lock is held, the death otherwise.
    let adopt = async |rec: LogRecord| -> Result<(), BeldiError> {
        if rec.target == TOOK {
            let entry = ShadowEntry::Lock {
                table: table.to_owned(),
                key: key.to_owned(),
            };
            shadow_put(e, txn, entry).await?;
            return Ok(());
        }
        let why = rec
            .value
            .as_ref()
            .and_then(AttrValue::as_s)
            .unwrap_or("wait-die: the lock was held by another transaction")
            .to_owned();
        Err(die(why))
    };
    let logged = match e.prefetched_at(&outcome_key) {
        Some(rec) => Some(rec.clone()),
        None => crate::log::get_at(store, &log_table, instance, &outcome_key).await?,
    };
    if let Some(rec) = logged {
        if rec.target != TOOK {
            state.mark_replayed_death();
        }
        return adopt(rec).await;
    }
    let free_or_mine = Condition::not_exists(HOLDER).or(Condition::eq(HOLDER, txn.id.as_str()));
    let lock_wait = e.lock_wait;
    let started = std::time::Instant::now();
    let mut backoff = Duration::from_millis(1);
    let mut nudged = false;
    loop {
        let tail = match daal.tail(key).await? {
            Some(t) => t,
            None => {
                daal.create_head(key).await?;
                continue;
            }
        };
        if daal.is_full(&tail) {
            daal.append(key, &tail).await?;
            continue;
        }
        let hid = tail.0.get(HOLDER).and_then(AttrValue::as_s).unwrap_or("");
        let hts = tail
            .0
            .get(HOLDER_TS)
            .and_then(AttrValue::as_i64)
            .unwrap_or(i64::MAX);
        if hid.is_empty() || hid == txn.id {
            let took = LogRecord::new(StepKind::Lock, TOOK, None);
            let mut take = Update::new(data, Key::with_sort(key, tail.id()))
                .action(UpdateAction::set(HOLDER, txn.id.as_str()))
                .action(UpdateAction::set(HOLDER_TS, txn.ts));
            if let Some(c) = &txn.coordinator {
                take = take.action(UpdateAction::set(HOLDER_COORDINATOR, c.to_attr()));
            }
            let tx = TransactWrite::new()
                .op(TransactOp::Put(crate::log::put_if_absent(
                    &log_table,
                    instance,
                    &outcome_key,
                    &took,
                )))
                .op(TransactOp::Update(
                    take
                        // Not full, so still the tail (rows are appended only when full).
                        .condition(free_or_mine.clone().and(daal.not_full(&tail))),
                ));
            match store.transact_write(tx).await {
                Ok(()) => return adopt(took).await,
                Err(StoreError::TransactionCancelled { reasons }) => {
                    if let Some(CancellationReason::ConditionFailed { item: Some(rec) }) =
                        reasons.first()
                    {
                        // A twin decided first.
                        return adopt(LogRecord::from_item(rec)).await;
                    }
                    continue; // the row changed (taken, filled): look again
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Held by another transaction: if its coordinator no longer runs (it crashed), have
        // it restarted now rather than when the intent collector gets to it, so the lock is
        // freed soon (once per lock step).
        if !nudged {
            nudged = true;
            if let Some(c) = tail
                .0
                .get(HOLDER_COORDINATOR)
                .and_then(Coordinator::from_attr)
            {
                e.platform.revive(&c.function, &c.instance);
            }
        }
        let older = txn.older_than(hts, hid);
        if older && started.elapsed() < lock_wait {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(20));
            continue;
        }
        let why = if older {
            format!(
                "wait-die: `{table}/{key}` is held by the younger transaction {hid}, for longer than the lock wait ({lock_wait:?})"
            )
        } else {
            format!("wait-die: `{table}/{key}` is held by the older transaction {hid}")
        };
        let death = LogRecord::new(StepKind::Lock, DIED_OUTCOME, Some(AttrValue::S(why)));
        // The decision: a death, unless a twin took the lock first.
        let got = crate::log::record_at(store, &log_table, instance, &outcome_key, death).await?;
        return adopt(got).await;
    }
}

/// The outcome of a lock step that took the lock.
const TOOK: &str = "took";
/// The outcome of a lock step that died.
const DIED_OUTCOME: &str = "died";
