//! Transactions across functions: strict two-phase locking with **wait-die**, writes
//! buffered in each function's own shadow table, and exactly-once commit and abort that
//! propagate to every participant.
//!
//! - A `#[beldi::txn]` block begins a transaction: its id is
//!   derived from the coordinator's instance and step, its start time is logged, so a
//!   re-execution resumes the same transaction.
//! - Inside it, every `read` and `write` first takes the item's lock: the holder (`H`, with
//!   its start time `HT`) set in the key's DAAL tail row, so the lock survives row appends.
//!   If another transaction holds it, the **older** one (smaller start time, ties by id)
//!   waits with bounded backoff and retries; the **younger** one dies
//!   ([`BeldiError::TxnAborted`] with `wait_die: true`). Each decision is one put-if-absent
//!   record, so every copy of the instance takes the same one ([`lock`]).
//! - Writes go to the function's shadow table (item per written key, holding the value the
//!   key will have), invisible to others until commit; reads inside the transaction see
//!   them. Every locked key, read or written, is recorded in the shadow table too.
//! - A step's durable effects are **one** store transaction: taking a lock carries the
//!   lock's outcome, the step's record, the shadow items and the execution's deferred
//!   records with the holder's update of the row; a step on a key already held carries its
//!   record and buffer. What this execution learned of a key (its buffered view) is kept in
//!   memory, and forgotten while a participant call may change it.
//! - Calls made inside the transaction carry it (`execute`); the caller records each callee
//!   function once as a participant, however many times it calls it.
//! - Commit: per key, the buffered value is applied and the lock released atomically; abort
//!   releases every lock (read locks too). A first decision does this for every key in one
//!   transaction with the decision's record ([`commit`]); then every participant is invoked
//!   with `commit` or `abort`, which does the same in its own tables, recursively. Both are
//!   logged steps of exactly-once instances, so a crash anywhere is finished by a
//!   re-execution, key by key and idempotently when the single transaction did not apply.
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

use std::collections::{HashMap, HashSet};

use crate::daal::{Attempt, Daal, busy_backoff, transact};
use crate::deferred::{self, DeferredLog};
use crate::engine::{Engine, WriteOp};
use crate::error::BeldiError;
use crate::invocation::Execution;
use crate::logged::{read_record, read_value, rebase, target};
use crate::schema::names::{READ_VALUE, TXN_WRITE_HELD, TXN_WRITE_VERSION, VALUE};
use crate::schema::{LogRecord, Outcome, StepKind, TxnCtx, step_key};
use crate::store::{
    AttrValue, Condition, Item, MAX_TRANSACTION_ITEMS, Path, StoreError, UpdateAction,
};

pub(crate) use commit::end;
use lock::{Effect, Target, Took, logged_outcome};
pub(crate) use shadow::{add_participant, participant_put};

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
    /// What this execution knows of the transaction's keys.
    known: Mutex<Known>,
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
            known: Default::default(),
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
        self.forget_views();
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

/// What the transaction sees of a key in this function: the value it will have (its own
/// buffered write, or the committed value) and the version of the buffered write (0: none).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct View {
    pub(crate) value: Option<AttrValue>,
    pub(crate) version: i64,
}

impl View {
    /// The view of a key the transaction has buffered nothing for.
    fn free(committed: Option<AttrValue>) -> View {
        View {
            value: committed,
            version: 0,
        }
    }
}

/// What an execution knows of the transaction's keys in its function, so a step on a key it
/// has locked or written needs no lookup.
#[derive(Default)]
pub(crate) struct Known {
    /// Keys whose lock the transaction holds (taken, or replayed as taken, by this
    /// execution). Locks are released only when the transaction finishes.
    locks: HashSet<(String, String)>,
    /// The transaction's view of keys, as this execution made or saw it. Other instances of
    /// the transaction (participants of this function) may change a view only while a
    /// participant call runs: every call clears them, and none is kept while one is in
    /// flight.
    views: HashMap<(String, String), View>,
    /// How many participant calls this execution started: a view made from what was read
    /// before a call started is not kept.
    epoch: u64,
}

fn known_key(table: &str, key: &str) -> (String, String) {
    (table.to_owned(), key.to_owned())
}

impl TxnState {
    fn known(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn holds(&self, table: &str, key: &str) -> bool {
        self.known().locks.contains(&known_key(table, key))
    }
    fn view(&self, table: &str, key: &str) -> Option<View> {
        if self.inflight.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            return None;
        }
        self.known().views.get(&known_key(table, key)).cloned()
    }
    /// The participant calls started so far (see [`TxnState::learn`]).
    fn epoch(&self) -> u64 {
        self.known().epoch
    }
    /// Notes that the transaction holds the lock of `table/key`, and what it sees of it,
    /// unless a participant call is in flight or was started since `since` (an
    /// [`TxnState::epoch`] taken before the view was read): the call may have changed it.
    fn learn(&self, table: &str, key: &str, view: Option<View>, since: u64) {
        let inflight = self.inflight.load(std::sync::atomic::Ordering::SeqCst) > 0;
        let mut known = self.known();
        known.locks.insert(known_key(table, key));
        let unchanged = !inflight && known.epoch == since;
        match view {
            Some(v) if unchanged => {
                known.views.insert(known_key(table, key), v);
            }
            _ => {
                known.views.remove(&known_key(table, key));
            }
        }
    }
    /// A participant call is made: what other instances of the transaction do to this
    /// function's keys is not known any more.
    pub(crate) fn forget_views(&self) {
        let mut known = self.known();
        known.views.clear();
        known.epoch += 1;
    }
    /// Forgets the view of `table/key` (found stale).
    fn forget_view(&self, table: &str, key: &str) {
        self.known().views.remove(&known_key(table, key));
    }
}

/// A transactional read: lock, then the transaction's view of the value, logged (with the
/// lock when it is taken, else deferred to the next durable effect).
pub(crate) async fn read(
    e: &Engine,
    state: &TxnState,
    step: u64,
    table: &str,
    key: &str,
) -> Result<Option<AttrValue>, BeldiError> {
    let data = e.tables.data(table)?;
    let want = target(table, key);
    let since = state.epoch();
    let mut look = false;
    loop {
        if let Some(rec) = logged(e, step, StepKind::Read, &want, look).await? {
            state.learn(table, key, None, since);
            e.note_found_logged(step);
            return Ok(read_value(&rec));
        }
        if !state.holds(table, key) && logged_outcome(e, state, step, look).await?.is_some() {
            state.learn(table, key, None, since);
        }
        if state.holds(table, key) {
            if let Some(why) = state.died() {
                return Err(died(&state.ctx, why));
            }
            let view = match state.view(table, key) {
                Some(v) => v,
                None => {
                    let committed = committed(e, &data, key).await?;
                    lock::buffered_view(e, state, table, key, committed).await?
                }
            };
            let got = e.defer_step(
                step,
                StepKind::Read,
                &want,
                Some(read_record(view.value.clone())),
            )?;
            state.learn(table, key, Some(view), since);
            return Ok(read_value(&got));
        }
        let make = |v: &View| {
            Ok(Effect {
                record: LogRecord::new(StepKind::Read, &want, Some(read_record(v.value.clone()))),
                buffer: None,
            })
        };
        let at = Target {
            table,
            data: &data,
            key,
        };
        match lock::take(e, state, step, at, true, &make).await? {
            Took::Taken(view) => {
                let value = view.value.clone();
                state.learn(table, key, Some(view), since);
                return Ok(value);
            }
            Took::Twin => look = true,
        }
    }
}

/// The committed value of `key` (one projected tail query).
async fn committed(e: &Engine, data: &str, key: &str) -> Result<Option<AttrValue>, BeldiError> {
    let tail = Daal::new(&*e.store, data, e.row_capacity)
        .tail_of(key, &[Path::attr(VALUE)])
        .await?;
    Ok(tail.and_then(|r| r.value().cloned()))
}

/// The record logged at `step`, if any: prefetched, or (`look`: a twin may have logged it
/// since) read from the log. A step not prefetched is otherwise not looked up: its put
/// fails if a twin logged it, and the step then looks.
async fn logged(
    e: &Engine,
    step: u64,
    kind: StepKind,
    want: &str,
    look: bool,
) -> Result<Option<LogRecord>, BeldiError> {
    if look {
        return e.logged(step, kind, want).await;
    }
    match e.prefetched(step) {
        Some(rec) => {
            e.check_log(step, rec, kind, want)?;
            Ok(Some(rec.clone()))
        }
        None => Ok(None),
    }
}

/// Whether `actions` under `cond` make a value that does not depend on the current one (a
/// set or a removal of the whole value, unconditionally).
fn blind(actions: &[UpdateAction], cond: Option<&Condition>) -> bool {
    cond.is_none()
        && matches!(
            actions,
            [UpdateAction::Set(p, _)] | [UpdateAction::Remove(p)] if *p == Path::attr(VALUE)
        )
}

/// The effect of a write on view `v`: its record (whether the condition held, the version
/// and value it buffers) and the buffered write if it held.
fn write_effect(
    data: &str,
    kind: StepKind,
    want: &str,
    actions: &[UpdateAction],
    cond: Option<&Condition>,
    v: &View,
) -> Result<Effect, BeldiError> {
    let mut row = Item::new();
    if let Some(value) = &v.value {
        row.insert(VALUE.into(), value.clone());
    }
    let holds = cond.is_none_or(|c| crate::store::eval::eval_condition(Some(&row), c));
    if holds {
        crate::store::eval::apply_actions(&mut row, actions)?;
        crate::store::validate::item_within_limit(data, &row)?;
    }
    let version = v.version + 1;
    let mut m = BTreeMap::new();
    m.insert(TXN_WRITE_HELD.to_owned(), AttrValue::Bool(holds));
    m.insert(TXN_WRITE_VERSION.to_owned(), AttrValue::from(version));
    if let Some(value) = row.get(VALUE) {
        m.insert(READ_VALUE.to_owned(), value.clone());
    }
    Ok(Effect {
        record: LogRecord::new(kind, want, Some(AttrValue::M(m))),
        buffer: holds.then(|| View {
            value: row.get(VALUE).cloned(),
            version,
        }),
    })
}

/// A transactional write: lock, compute the new value from the transaction's view, log it
/// and buffer it in the shadow table, in one transaction (with the lock's, when it is
/// taken). Returns the condition's value for a conditional write.
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
    // Paths are relative to the value, as outside transactions.
    let (actions, cond) = rebase(actions, cond);
    let blind = blind(&actions, cond.as_ref());
    let make = |v: &View| write_effect(&data, kind, &want, &actions, cond.as_ref(), v);
    let since = state.epoch();
    let mut look = false;
    let logged = loop {
        if let Some(rec) = logged(e, step, kind, &want, look).await? {
            break rec;
        }
        if !state.holds(table, key) && logged_outcome(e, state, step, look).await?.is_some() {
            state.learn(table, key, None, since);
        }
        if state.holds(table, key) {
            if let Some(why) = state.died() {
                return Err(died(txn, why));
            }
            let view = match state.view(table, key) {
                Some(v) => v,
                None => {
                    let committed = if blind {
                        None
                    } else {
                        committed(e, &data, key).await?
                    };
                    lock::buffered_view(e, state, table, key, committed).await?
                }
            };
            let effect = make(&view)?;
            match held_write(e, state, step, (table, &data, key), &effect).await? {
                Held::Written => {
                    state.learn(table, key, Some(after(view, &effect)), since);
                    return Ok(effect.buffer.is_some());
                }
                Held::Twin => look = true,
                Held::Stale => state.forget_view(table, key),
            }
            continue;
        }
        let at = Target {
            table,
            data: &data,
            key,
        };
        match lock::take(e, state, step, at, !blind, &make).await? {
            Took::Taken(view) => {
                let effect = make(&view)?;
                state.learn(table, key, Some(after(view, &effect)), since);
                return Ok(effect.buffer.is_some());
            }
            Took::Twin => look = true,
        }
    };
    // Logged by an earlier execution (or a twin): the lock is held and the value buffered,
    // both in the transaction that logged the step, so nothing is left to do but learn.
    e.note_found_logged(step);
    let held = logged
        .field(TXN_WRITE_HELD)
        .and_then(AttrValue::as_bool)
        .unwrap_or(false);
    let version = logged
        .field(TXN_WRITE_VERSION)
        .and_then(AttrValue::as_i64)
        .unwrap_or(1);
    let value = logged.field(READ_VALUE).cloned();
    if held {
        state.learn(table, key, Some(View { value, version }), since);
    } else {
        state.learn(table, key, None, since);
    }
    Ok(held)
}

/// The view after `effect` was made on `view`.
fn after(view: View, effect: &Effect) -> View {
    effect.buffer.clone().unwrap_or(view)
}

/// How the write of a held key went.
enum Held {
    /// Logged and buffered.
    Written,
    /// A twin logged the step first.
    Twin,
    /// The view was stale: another instance of the transaction buffered the key since.
    Stale,
}

/// The write of a key whose lock the transaction holds: the step's record and the
/// buffered write, with the deferred records, in one transaction.
async fn held_write(
    e: &Engine,
    state: &TxnState,
    step: u64,
    (table, data, key): (&str, &str, &str),
    effect: &Effect,
) -> Result<Held, BeldiError> {
    let log_table = e.tables.log();
    let mut busy = 0u32;
    loop {
        e.deferred.check(&e.instance)?;
        let (carried, all) = e.deferred.carried();
        // Two items of the step's own beside what is deferred.
        if !all || carried.len() + 2 > MAX_TRANSACTION_ITEMS {
            deferred::flush(&*e.store, &log_table, &e.instance, &e.deferred).await?;
            continue;
        }
        let mut puts = vec![crate::log::put_if_absent(
            &log_table,
            &e.instance,
            &step_key(step),
            &effect.record,
        )];
        if let Some(b) = &effect.buffer {
            puts.push(shadow::write_put(
                e,
                &state.ctx,
                (table, key),
                b.value.clone(),
                b.version,
            ));
        }
        let fixed = puts.len();
        puts.extend(DeferredLog::puts(&log_table, &e.instance, &carried));
        match transact(&*e.store, data, &puts, Vec::new()).await? {
            Attempt::Written => {
                e.deferred.settled(&carried);
                return Ok(Held::Written);
            }
            Attempt::CompanionFailed(0, _) => return Ok(Held::Twin),
            Attempt::CompanionFailed(1, _) if effect.buffer.is_some() => return Ok(Held::Stale),
            Attempt::CompanionFailed(i, item) if i >= fixed => {
                let d = &carried[i - fixed];
                let found =
                    deferred::found(&*e.store, &log_table, &e.instance, d.step, item.as_deref())
                        .await?;
                e.deferred.refused(&e.instance, d, &found)?;
            }
            Attempt::CompanionFailed(..) | Attempt::Refused(..) => {
                return Err(StoreError::validation(
                    e.tables.shadow(),
                    "a transactional write was refused on an item it puts unconditionally",
                )
                .into());
            }
            Attempt::Busy => busy_backoff(&mut busy).await,
        }
    }
}
