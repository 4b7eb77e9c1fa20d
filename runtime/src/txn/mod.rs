//! Transactions across functions: strict two-phase locking with **wait-die**, writes
//! buffered in each function's own shadow table, and exactly-once commit and abort that
//! propagate to every participant.
//!
//! - A `#[beldi::txn]` block begins a transaction: its id is
//!   derived from the coordinator's instance and step, its start time is logged, so a
//!   re-execution resumes the same transaction.
//! - Inside it, every `read` and `write` first takes the item's lock: a logged conditional
//!   write of the holder (`H`, with its start time `HT`) into the DAAL row, so the lock
//!   survives row appends. If another transaction holds it, the **older** one (smaller start
//!   time, ties by id) waits with bounded backoff and retries; the **younger** one dies
//!   ([`BeldiError::TxnAborted`] with `wait_die: true`). Each decision is logged, so a replay
//!   takes the same one.
//! - Writes go to the function's shadow table (item per written key, holding the value the
//!   key will have), invisible to others until commit; reads inside the transaction see
//!   them. Every locked key, read or written, is recorded in the shadow table too.
//! - Calls made inside the transaction carry it (`execute`); the caller records each callee
//!   function once as a participant, however many times it calls it.
//! - Commit: per key, one logged DAAL write applies the buffered value and releases the lock
//!   atomically; then every participant is invoked with `commit`, which does the same in its
//!   own tables, recursively. Abort releases every lock (read locks too) and propagates
//!   `abort`. Both are logged steps of exactly-once instances, so a crash anywhere is finished
//!   by a re-execution.
//!
//! Isolation of plain operations: a plain `read` sees only committed values (never a buffered
//! write); a plain `write` does not take locks, so it is not isolated from transactions on the
//! same key — use transactions for keys that transactions also write.

//!
//! The files: [`lock`] (the wait-die rule), [`shadow`] (the shadow table: buffered writes,
//! locks held, participants), [`commit`] (commit and abort, and their propagation); this
//! one has the transaction's state in an execution and the transactional read and write.

mod commit;
mod lock;
pub(crate) mod shadow;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use crate::daal::Daal;
use crate::engine::{Engine, WriteOp};
use crate::error::BeldiError;
use crate::invocation::Execution;
use crate::logged::{read_record, read_value, rebase, target};
use crate::schema::names::{READ_VALUE, SHADOW_VERSION, TXN_WRITE_HELD, TXN_WRITE_VERSION, VALUE};
use crate::schema::{Outcome, StepKind, TxnCtx};
use crate::store::{AttrValue, Item};

pub(crate) use commit::finish;
use lock::lock;
pub(crate) use shadow::add_participant;
use shadow::{shadow_get, shadow_put_write};

/// A context's transaction.
pub struct TxnState {
    pub(crate) ctx: TxnCtx,
    /// Whether this context began the transaction (else it joined it as a participant).
    pub(crate) coordinator: bool,
    /// Why the transaction must abort (set when it died under wait-die).
    pub(crate) died: Mutex<Option<String>>,
    /// Participant calls made from this context that have not settled yet (the callee
    /// runs on even when the body drops the call's future).
    inflight: std::sync::atomic::AtomicUsize,
    /// The error of a participant call that failed after the body stopped waiting for it:
    /// this execution must not decide the transaction.
    unsettled: Mutex<Option<BeldiError>>,
    /// Whether the death was replayed from the log (the execution that met it backed off
    /// for it already).
    replayed_death: std::sync::atomic::AtomicBool,
}

impl TxnState {
    fn new(ctx: TxnCtx, coordinator: bool) -> Arc<TxnState> {
        Arc::new(TxnState {
            ctx,
            coordinator,
            died: Mutex::new(None),
            inflight: Default::default(),
            unsettled: Mutex::new(None),
            replayed_death: Default::default(),
        })
    }
    pub(crate) fn participant(ctx: TxnCtx) -> Arc<TxnState> {
        TxnState::new(ctx, false)
    }
    pub(crate) fn coordinator(ctx: TxnCtx) -> Arc<TxnState> {
        TxnState::new(ctx, true)
    }

    /// Runs participant call `call` to its end whatever the body does with the returned
    /// future: the call runs in a task of its own, counted until it settles, so the
    /// transaction is decided only once every participant call has ([`TxnState::settle`]).
    /// A call the body stopped waiting for still counts: its death dooms the transaction,
    /// and its failure fails this execution.
    pub(crate) fn track<F>(
        self: &Arc<Self>,
        call: F,
    ) -> impl std::future::Future<Output = Result<Execution, BeldiError>> + Send + 'static
    where
        F: std::future::Future<Output = Result<Execution, BeldiError>> + Send + 'static,
    {
        use std::sync::atomic::Ordering;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let state = self.clone();
        tokio::spawn(async move {
            let out = call.await;
            if let Err(out) = tx.send(out) {
                // Nobody waits for it any more: keep what it means for the transaction.
                match out {
                    Ok(exec) => {
                        if let Some(why) = Outcome::death(&exec.result) {
                            state.mark_died(if why.is_empty() {
                                "a participant died"
                            } else {
                                why
                            });
                        }
                    }
                    Err(e) => {
                        state
                            .unsettled
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .get_or_insert(e);
                    }
                }
            }
            state.inflight.fetch_sub(1, Ordering::SeqCst);
        });
        async move {
            rx.await.unwrap_or_else(|_| {
                Err(BeldiError::Corrupt {
                    what: "participant call".into(),
                    message: "its task ended without an outcome".into(),
                })
            })
        }
    }

    /// Waits until every participant call made from this context has settled; the error of
    /// one that failed unobserved, if any.
    pub(crate) async fn settle(&self) -> Option<BeldiError> {
        use std::sync::atomic::Ordering;
        while self.inflight.load(Ordering::SeqCst) > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        self.unsettled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
    /// Records that the transaction died (first reason wins).
    pub(crate) fn mark_died(&self, why: &str) {
        self.died
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| why.to_owned());
    }
    /// Records that the death was replayed from the log.
    /// Whether the death was replayed from the log.
    pub(crate) fn death_replayed(&self) -> bool {
        self.replayed_death
            .load(std::sync::atomic::Ordering::SeqCst)
    }
    pub(crate) fn mark_replayed_death(&self) {
        self.replayed_death
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    pub(crate) fn died(&self) -> Option<String> {
        self.died.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub(crate) fn died(txn: &TxnCtx, reason: String) -> BeldiError {
    BeldiError::TxnAborted {
        txn: txn.id.clone(),
        reason,
        wait_die: true,
    }
}

/// The value of `key` as the transaction sees it: its own buffered write, or the committed
/// value; and the version of the buffered write (0: none).
async fn current(
    e: &Engine,
    txn: &TxnCtx,
    table: &str,
    data: &str,
    key: &str,
) -> Result<(Option<AttrValue>, i64), BeldiError> {
    if let Some(buffered) = shadow_get(e, txn, table, key).await? {
        let version = buffered
            .get(SHADOW_VERSION)
            .and_then(AttrValue::as_i64)
            .unwrap_or(0);
        return Ok((buffered.get(VALUE).cloned(), version));
    }
    let tail = Daal::new(&*e.store, data, e.row_capacity).tail(key).await?;
    Ok((tail.and_then(|r| r.value().cloned()), 0))
}

/// A transactional read: lock, then the transaction's view of the value, logged.
pub(crate) async fn read(
    e: &Engine,
    state: &TxnState,
    step: u64,
    table: &str,
    key: &str,
) -> Result<Option<AttrValue>, BeldiError> {
    let data = e.tables.data(table)?;
    let want = target(table, key);
    if let Some(rec) = e.logged(step, StepKind::Read, &want).await? {
        return Ok(read_value(&rec));
    }
    lock(e, state, step, table, &data, key).await?;
    let (value, _) = current(e, &state.ctx, table, &data, key).await?;
    let got = e
        .log_step(step, StepKind::Read, &want, Some(read_record(value)))
        .await?;
    Ok(read_value(&got))
}

/// A transactional write: lock, compute the new value from the transaction's view, log it,
/// buffer it in the shadow table. Returns the condition's value for a conditional write.
pub(crate) async fn write(
    e: &Engine,
    state: &TxnState,
    step: u64,
    op: WriteOp<'_>,
) -> Result<bool, BeldiError> {
    let WriteOp {
        table,
        key,
        entry,
        actions,
        cond,
    } = op;
    let data = e.tables.data(table)?;
    let txn = &state.ctx;
    let want = target(table, key);
    let kind = entry.kind();
    let logged = match e.logged(step, kind, &want).await? {
        Some(rec) => rec,
        None => {
            lock(e, state, step, table, &data, key).await?;
            let mut row = Item::new();
            let (value, version) = current(e, txn, table, &data, key).await?;
            if let Some(v) = value {
                row.insert(VALUE.into(), v);
            }
            // Paths are relative to the value, as outside transactions.
            let (actions, cond) = rebase(actions, cond);
            let holds = cond
                .as_ref()
                .is_none_or(|c| crate::store::eval::eval_condition(Some(&row), c));
            if holds {
                crate::store::eval::apply_actions(&mut row, &actions)?;
                crate::store::validate::item_within_limit(&data, &row)?;
            }
            let mut m = BTreeMap::new();
            m.insert(TXN_WRITE_HELD.to_owned(), AttrValue::Bool(holds));
            m.insert(TXN_WRITE_VERSION.to_owned(), AttrValue::from(version + 1));
            if let Some(v) = row.get(VALUE) {
                m.insert(READ_VALUE.to_owned(), v.clone());
            }
            e.log_step(step, kind, &want, Some(AttrValue::M(m))).await?
        }
    };
    let held = logged
        .field(TXN_WRITE_HELD)
        .and_then(AttrValue::as_bool)
        .unwrap_or(false);
    if held {
        // Idempotent: the logged value, buffered (no value = deleted), under the logged
        // version, so a replay never overwrites a later write of the key.
        let version = logged
            .field(TXN_WRITE_VERSION)
            .and_then(AttrValue::as_i64)
            .unwrap_or(1);
        let value = logged.field(READ_VALUE).cloned();
        shadow_put_write(e, txn, (table, key), value, version).await?;
    }
    Ok(held)
}
