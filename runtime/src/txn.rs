//! Transactions across functions: strict two-phase locking with **wait-die**, writes
//! buffered in each function's own shadow table, and exactly-once commit and abort that
//! propagate to every participant.
//!
//! - A `#[beldi::txn]` block (or [`Ctx::__txn_block`]) begins a transaction: its id is
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

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use crate::ctx::Ctx;
use crate::daal::{Daal, Entry, HOLDER, VALUE};
use crate::error::BeldiError;
use crate::log::LogRecord;
use crate::store::{
    AttrValue, CancellationReason, Condition, Delete, Item, Key, Path, Put, Query, Store,
    StoreError, StoreExt, TransactOp, TransactWrite, Update, UpdateAction,
};
use crate::tables::{DAAL_KEY, DAAL_ROW};

/// The holder's start time attribute of a DAAL row.
pub const HOLDER_TS: &str = "HT";
/// The holder's coordinator (function and instance) attribute of a DAAL row.
pub const HOLDER_COORDINATOR: &str = "HC";

/// The key of a participant's stored result when it died under wait-die.
pub const DIED: &str = "died";

/// What a call inside a transaction asks the callee to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Instruction {
    /// Run the body as part of the transaction.
    Execute,
    /// Apply the buffered writes and release the locks.
    Commit,
    /// Drop the buffered writes and release the locks.
    Abort,
}

/// The transaction context that travels with invocations.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TxnCtx {
    /// The transaction id.
    pub id: String,
    /// Its start time (ms since the epoch): the wait-die age.
    pub ts: i64,
    /// What the callee is asked to do.
    pub instruction: Instruction,
    /// The instance that began the transaction (recorded with its locks, so a contender
    /// can have it restarted when it no longer runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinator: Option<Coordinator>,
}

/// The function and instance that began a transaction.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Coordinator {
    /// The function.
    pub function: String,
    /// The instance.
    pub instance: String,
}

impl Coordinator {
    fn to_attr(&self) -> AttrValue {
        AttrValue::M(
            [
                ("f".to_owned(), AttrValue::S(self.function.clone())),
                ("i".to_owned(), AttrValue::S(self.instance.clone())),
            ]
            .into(),
        )
    }
    fn from_attr(v: &AttrValue) -> Option<Coordinator> {
        let m = v.as_m()?;
        Some(Coordinator {
            function: m.get("f")?.as_s()?.to_owned(),
            instance: m.get("i")?.as_s()?.to_owned(),
        })
    }
}

impl TxnCtx {
    /// The same transaction with another instruction.
    pub fn with(&self, instruction: Instruction) -> TxnCtx {
        TxnCtx {
            instruction,
            ..self.clone()
        }
    }
    /// Whether `self` is older than a holder with start time `ts` and id `id`.
    pub fn older_than(&self, ts: i64, id: &str) -> bool {
        (self.ts, self.id.as_str()) < (ts, id)
    }
}

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
    ) -> impl std::future::Future<Output = Result<crate::platform::Execution, BeldiError>> + Send + 'static
    where
        F: std::future::Future<Output = Result<crate::platform::Execution, BeldiError>>
            + Send
            + 'static,
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
                        if let Some(why) = exec.result.as_m().and_then(|m| m.get(DIED)) {
                            state.mark_died(why.as_s().unwrap_or("a participant died"));
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
    pub(crate) fn mark_replayed_death(&self) {
        self.replayed_death
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    fn died(&self) -> Option<String> {
        self.died.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn shadow_sort(kind: char, table: &str, key: &str) -> String {
    format!("{kind}\u{0}{table}\u{0}{key}")
}

fn parse_sort(s: &str) -> Option<(char, &str, &str)> {
    let mut parts = s.splitn(3, '\u{0}');
    let kind = parts.next()?.chars().next()?;
    Some((kind, parts.next()?, parts.next().unwrap_or("")))
}

/// Version of a buffered write (shadow `W` item): 1 for the transaction's first write of
/// the key, one more for each later one.
const SHADOW_VERSION: &str = "SV";
/// Sort key of the marker a function's part of a transaction leaves once finished.
const FINISHED: &str = "F";
/// When the function's part of the transaction finished (ms since the epoch).
const FINISHED_AT: &str = "FT";

async fn shadow_put(
    ctx: &Ctx,
    txn: &TxnCtx,
    sort: String,
    value: Option<AttrValue>,
) -> Result<(), BeldiError> {
    let mut item = Item::new();
    item.insert(DAAL_KEY.into(), AttrValue::S(txn.id.clone()));
    item.insert(DAAL_ROW.into(), AttrValue::S(sort));
    if let Some(v) = value {
        item.insert(VALUE.into(), v);
    }
    ctx.inner
        .store
        .put(Put::new(ctx.inner.tables.shadow(), item))
        .await?;
    Ok(())
}

/// Buffers version `version` of the write of `table/key` unless a later version is
/// buffered already: a lagging copy of the instance replaying an earlier write of the key
/// must not roll the buffer back.
async fn shadow_put_write(
    ctx: &Ctx,
    txn: &TxnCtx,
    table: &str,
    key: &str,
    value: Option<AttrValue>,
    version: i64,
) -> Result<(), BeldiError> {
    let mut item = Item::new();
    item.insert(DAAL_KEY.into(), AttrValue::S(txn.id.clone()));
    item.insert(DAAL_ROW.into(), AttrValue::S(shadow_sort('W', table, key)));
    item.insert(SHADOW_VERSION.into(), AttrValue::from(version));
    if let Some(v) = value {
        item.insert(VALUE.into(), v);
    }
    let newer_or_absent =
        Condition::not_exists(SHADOW_VERSION).or(Condition::lt(SHADOW_VERSION, version));
    let put = Put::new(ctx.inner.tables.shadow(), item).condition(newer_or_absent);
    match ctx.inner.store.put(put).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_condition_failed() => Ok(()), // this version or a later one is there
        Err(e) => Err(e.into()),
    }
}

async fn shadow_get(
    ctx: &Ctx,
    txn: &TxnCtx,
    table: &str,
    key: &str,
) -> Result<Option<Item>, BeldiError> {
    Ok(ctx
        .inner
        .store
        .get(
            &ctx.inner.tables.shadow(),
            &Key::with_sort(txn.id.as_str(), shadow_sort('W', table, key)),
        )
        .await?)
}

/// Records `function` as a participant of the transaction (idempotent).
pub(crate) async fn add_participant(
    ctx: &Ctx,
    txn: &TxnCtx,
    function: &str,
) -> Result<(), BeldiError> {
    shadow_put(ctx, txn, shadow_sort('P', function, ""), None).await
}

fn died(txn: &TxnCtx, reason: String) -> BeldiError {
    BeldiError::TxnAborted {
        txn: txn.id.clone(),
        reason,
        wait_die: true,
    }
}

/// Takes the lock of `key` for the transaction, waiting if older, dying if younger.
///
/// The outcome is **one** record at a fixed address, `<step>.LK` in the function's log,
/// written with put-if-absent: taking the lock writes it (`took`) in one transaction with
/// the holder on the key's tail row; dying writes it (`died`) alone. So every copy of the
/// instance takes the same decision: a copy that finds the record adopts it, whatever the
/// lock's state is now. (A death recorded apart from the take let one copy die while a
/// twin took the lock later, which then leaked.) Waiting writes nothing, and a death
/// never touches the contended row.
async fn lock(
    ctx: &Ctx,
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
    let store = &*ctx.inner.store;
    let log_table = ctx.inner.tables.log();
    let instance = &ctx.inner.instance;
    let outcome_key = format!("{}.LK", crate::log::step_key(step));
    let daal = Daal::new(store, data, ctx.inner.row_capacity);
    let die = |why: String| -> BeldiError {
        state.mark_died(&why);
        died(txn, why)
    };
    // What a logged outcome means: `Ok` if the lock is held, the death otherwise.
    let adopt = async |rec: LogRecord| -> Result<(), BeldiError> {
        if rec.target == TOOK {
            shadow_put(ctx, txn, shadow_sort('L', table, key), None).await?;
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
    if let Some(rec) = crate::log::get_at(store, &log_table, instance, &outcome_key).await? {
        if rec.target != TOOK {
            state.mark_replayed_death();
        }
        return adopt(rec).await;
    }
    let free_or_mine = Condition::not_exists(HOLDER).or(Condition::eq(HOLDER, txn.id.as_str()));
    let lock_wait = ctx.inner.rt.config().lock_wait;
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
            let took = LogRecord {
                kind: "lock".into(),
                target: TOOK.into(),
                value: None,
            };
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
                ctx.inner.rt.revive(&c.function, &c.instance);
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
        let death = LogRecord {
            kind: "lock".into(),
            target: DIED_OUTCOME.into(),
            value: Some(AttrValue::S(why)),
        };
        // The decision: a death, unless a twin took the lock first.
        let got = crate::log::record_at(store, &log_table, instance, &outcome_key, death).await?;
        return adopt(got).await;
    }
}

/// The outcome of a lock step that took the lock.
const TOOK: &str = "took";
/// The outcome of a lock step that died.
const DIED_OUTCOME: &str = "died";

/// The value of `key` as the transaction sees it: its own buffered write, or the committed
/// value; and the version of the buffered write (0: none).
async fn current(
    ctx: &Ctx,
    txn: &TxnCtx,
    table: &str,
    data: &str,
    key: &str,
) -> Result<(Option<AttrValue>, i64), BeldiError> {
    if let Some(buffered) = shadow_get(ctx, txn, table, key).await? {
        let version = buffered
            .get(SHADOW_VERSION)
            .and_then(AttrValue::as_i64)
            .unwrap_or(0);
        return Ok((buffered.get(VALUE).cloned(), version));
    }
    let tail = Daal::new(&*ctx.inner.store, data, ctx.inner.row_capacity)
        .tail(key)
        .await?;
    Ok((tail.and_then(|r| r.value().cloned()), 0))
}

/// A transactional read: lock, then the transaction's view of the value, logged.
pub(crate) async fn read(
    ctx: &Ctx,
    state: &TxnState,
    step: u64,
    table: &str,
    key: &str,
) -> Result<Option<AttrValue>, BeldiError> {
    let data = ctx.inner.tables.data(table)?;
    let target = format!("{table}/{key}");
    if let Some(rec) = crate::log::get(
        &*ctx.inner.store,
        &ctx.inner.tables.log(),
        &ctx.inner.instance,
        step,
    )
    .await?
    {
        ctx.check_log(step, &rec, "read", &target)?;
        return Ok(rec
            .value
            .as_ref()
            .and_then(AttrValue::as_m)
            .and_then(|m| m.get("v"))
            .cloned());
    }
    lock(ctx, state, step, table, &data, key).await?;
    let (value, _) = current(ctx, &state.ctx, table, &data, key).await?;
    let mut m = std::collections::BTreeMap::new();
    if let Some(v) = value {
        m.insert("v".to_owned(), v);
    }
    let got = ctx
        .log_step(step, "read", &target, Some(AttrValue::M(m)))
        .await?;
    Ok(got
        .value
        .as_ref()
        .and_then(AttrValue::as_m)
        .and_then(|m| m.get("v"))
        .cloned())
}

/// A transactional write: lock, compute the new value from the transaction's view, log it,
/// buffer it in the shadow table. Returns the condition's value for a conditional write.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write(
    ctx: &Ctx,
    state: &TxnState,
    step: u64,
    table: &str,
    key: &str,
    entry: Entry,
    actions: &[UpdateAction],
    cond: Option<&Condition>,
) -> Result<bool, BeldiError> {
    let data = ctx.inner.tables.data(table)?;
    let txn = &state.ctx;
    let target = format!("{table}/{key}");
    let kind = entry.kind();
    let logged = match crate::log::get(
        &*ctx.inner.store,
        &ctx.inner.tables.log(),
        &ctx.inner.instance,
        step,
    )
    .await?
    {
        Some(rec) => {
            ctx.check_log(step, &rec, kind, &target)?;
            rec
        }
        None => {
            lock(ctx, state, step, table, &data, key).await?;
            let mut row = Item::new();
            let (value, version) = current(ctx, txn, table, &data, key).await?;
            if let Some(v) = value {
                row.insert(VALUE.into(), v);
            }
            // Paths are relative to the value, as outside transactions.
            let base = Path::attr(VALUE);
            let rebase = |p: &Path| p.under(&base);
            let actions: Vec<UpdateAction> = actions.iter().map(|a| a.map_path(&rebase)).collect();
            let cond = cond.map(|c| c.map_paths(&rebase));
            let holds = cond
                .as_ref()
                .is_none_or(|c| crate::store::eval::eval_condition(Some(&row), c));
            if holds {
                crate::store::eval::apply_actions(&mut row, &actions)?;
                crate::store::validate::item_within_limit(&data, &row)?;
            }
            let mut m = std::collections::BTreeMap::new();
            m.insert("ok".to_owned(), AttrValue::Bool(holds));
            m.insert("sv".to_owned(), AttrValue::from(version + 1));
            if let Some(v) = row.get(VALUE) {
                m.insert("v".to_owned(), v.clone());
            }
            ctx.log_step(step, kind, &target, Some(AttrValue::M(m)))
                .await?
        }
    };
    let m = logged
        .value
        .as_ref()
        .and_then(AttrValue::as_m)
        .cloned()
        .unwrap_or_default();
    let holds = m.get("ok").and_then(AttrValue::as_bool).unwrap_or(false);
    if holds {
        // Idempotent: the logged value, buffered (no value = deleted), under the logged
        // version, so a replay never overwrites a later write of the key.
        let version = m.get("sv").and_then(AttrValue::as_i64).unwrap_or(1);
        shadow_put_write(ctx, txn, table, key, m.get("v").cloned(), version).await?;
    }
    Ok(holds)
}

/// Finishes the function's part of a transaction (commit or abort) and propagates it to its
/// participants. `step` is the logged step this is done under.
pub(crate) async fn finish(
    ctx: &Ctx,
    txn: &TxnCtx,
    step: u64,
    commit: bool,
) -> Result<(), BeldiError> {
    let store: &dyn Store = &*ctx.inner.store;
    let shadow = ctx.inner.tables.shadow();
    let mut entries = store
        .query_all(Query::new(shadow.as_str(), txn.id.as_str()))
        .await?;
    entries.sort_by(|a, b| {
        a.get(DAAL_ROW)
            .and_then(AttrValue::as_s)
            .cmp(&b.get(DAAL_ROW).and_then(AttrValue::as_s))
    });
    let release = [
        UpdateAction::remove(HOLDER),
        UpdateAction::remove(HOLDER_TS),
        UpdateAction::remove(HOLDER_COORDINATOR),
    ];
    let mine = Condition::eq(HOLDER, txn.id.as_str());
    let mut participants = Vec::new();
    let written: std::collections::HashSet<(String, String)> = entries
        .iter()
        .filter_map(|e| parse_sort(e.get(DAAL_ROW)?.as_s()?))
        .filter(|(k, _, _)| *k == 'W')
        .map(|(_, t, k)| (t.to_owned(), k.to_owned()))
        .collect();
    for e in &entries {
        let Some((kind, table, key)) = e
            .get(DAAL_ROW)
            .and_then(AttrValue::as_s)
            .and_then(parse_sort)
        else {
            continue;
        };
        // Keyed by the item, not by its position among the shadow entries: a replay that
        // finds other entries (one re-created by a lagging copy, say) still names each
        // item's commit the same way.
        let cid = format!(
            "{}.{}{}",
            ctx.cid(step),
            if commit { 'C' } else { 'A' },
            item_tag(table, key)
        );
        let data = || ctx.inner.tables.data(table);
        match (kind, commit) {
            ('P', _) => participants.push(table.to_owned()),
            // Commit: apply the buffered value and release the lock, atomically.
            ('W', true) => {
                let mut actions: Vec<UpdateAction> = release.to_vec();
                actions.push(match e.get(VALUE) {
                    Some(v) => UpdateAction::Set(Path::attr(VALUE), v.clone()),
                    None => UpdateAction::remove(VALUE),
                });
                Daal::new(store, &data()?, ctx.inner.row_capacity)
                    .write(key, &cid, Entry::CondWrite(true), &actions, Some(&mine))
                    .await?;
            }
            // A written key's lock goes with its write (commit) or its lock entry (abort).
            ('L', true) if written.contains(&(table.to_owned(), key.to_owned())) => {}
            ('W', false) => {}
            // Every other lock, read locks included, is released.
            ('L', _) => {
                Daal::new(store, &data()?, ctx.inner.row_capacity)
                    .write(key, &cid, Entry::CondWrite(true), &release, Some(&mine))
                    .await?;
            }
            _ => {}
        }
    }
    let instruction = if commit {
        Instruction::Commit
    } else {
        Instruction::Abort
    };
    for function in &participants {
        let id = crate::invoke::callee_id(
            &format!("{}>{function}", ctx.function()),
            &ctx.inner.instance,
            step,
        );
        let caller = crate::intent::CallerRef {
            function: ctx.function().to_owned(),
            instance: ctx.inner.instance.clone(),
            step,
            is_async: false,
        };
        ctx.inner
            .rt
            .run_txn(
                function,
                &id,
                caller,
                txn.with(instruction),
                ctx.inner.plan.clone(),
                ctx.inner.attempt,
            )
            .await?;
    }
    // This function's part is finished: say so (with when), so the garbage collector can
    // remove whatever a lagging copy of a participant buffers after this point.
    let mut marker = Item::new();
    marker.insert(DAAL_KEY.into(), AttrValue::S(txn.id.clone()));
    marker.insert(DAAL_ROW.into(), AttrValue::S(FINISHED.into()));
    marker.insert(FINISHED_AT.into(), AttrValue::from(crate::intent::now_ms()));
    match store
        .put(Put::new(shadow.as_str(), marker).if_absent(DAAL_KEY))
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_condition_failed() => {}
        Err(e) => return Err(e.into()),
    }
    // The shadow entries are no longer needed (deleting them is idempotent).
    for e in &entries {
        if let Some(sort) = e.get(DAAL_ROW).and_then(AttrValue::as_s) {
            match store
                .delete(Delete::new(
                    shadow.as_str(),
                    Key::with_sort(txn.id.as_str(), sort),
                ))
                .await
            {
                Ok(_) => {}
                Err(StoreError::ConditionFailed { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// A short stable tag of `table/key` for the ids of commit and abort entries.
fn item_tag(table: &str, key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in table.bytes().chain([0]).chain(key.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The shadow items of `shadow` grouped by transaction id.
async fn shadow_by_txn(
    store: &dyn Store,
    shadow: &str,
) -> Result<std::collections::BTreeMap<String, Vec<Item>>, StoreError> {
    let mut by_txn: std::collections::BTreeMap<String, Vec<Item>> = Default::default();
    for item in store.scan_all(shadow).await? {
        if let Some(t) = item.get(DAAL_KEY).and_then(AttrValue::as_s) {
            by_txn.entry(t.to_owned()).or_default().push(item);
        }
    }
    Ok(by_txn)
}

fn is_marker(item: &Item) -> bool {
    item.get(DAAL_ROW).and_then(AttrValue::as_s) == Some(FINISHED)
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
        let mut sorts: Vec<&str> = items
            .iter()
            .filter_map(|i| i.get(DAAL_ROW).and_then(AttrValue::as_s))
            .filter(|s| *s != FINISHED)
            .collect();
        sorts.push(FINISHED);
        for sort in sorts {
            store
                .delete(Delete::new(shadow, Key::with_sort(txn.as_str(), sort)))
                .await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// How a transaction attempt ended (used by the code `#[beldi::txn]` generates).
#[doc(hidden)]
pub enum TxnEnd {
    /// Committed, or aborted because the block returned `Err`: the block's value stands.
    Done,
    /// Died under wait-die and may run again as a new transaction.
    Retry,
    /// Died under wait-die with no retry left, or failed to finish.
    Failed(BeldiError),
}

/// The state of one `#[beldi::txn]` block across its attempts (used by generated code).
#[doc(hidden)]
pub struct TxnBlock {
    at: Ctx,
    retries: u32,
    attempt: u32,
    first_ts: Option<i64>,
    nested: bool,
}

impl TxnBlock {
    /// Begins the next attempt: a logged step; returns the context inside the transaction.
    pub async fn begin(&mut self) -> Result<Ctx, BeldiError> {
        if self.at.baseline() {
            // Baseline mode: the block runs as plain code, with no locks and no rollback.
            let mut c = self.at.clone();
            c.site = None;
            return Ok(c);
        }
        if self.nested {
            return Err(BeldiError::TxnAborted {
                txn: String::new(),
                reason: "nested transactions are not supported".into(),
                wait_die: false,
            });
        }
        // A retry keeps the first attempt's start time, so it ages and cannot starve.
        let c = self.at.txn_begin(self.first_ts).await?;
        self.first_ts = c.txn.as_ref().map(|t| t.ctx.ts);
        Ok(c)
    }

    /// Commits (`ok` and not died) or aborts the attempt, as a logged step.
    pub async fn end(&mut self, inside: &Ctx, ok: bool) -> TxnEnd {
        if inside.baseline() {
            return TxnEnd::Done;
        }
        let Some(state) = inside.txn.clone() else {
            return TxnEnd::Failed(BeldiError::TxnAborted {
                txn: String::new(),
                reason: "the context is not in a transaction".into(),
                wait_die: false,
            });
        };
        // Every participant call must have settled before the decision, also one whose
        // future the body dropped (`try_join!` after another call failed, say): a callee
        // still running could take locks after an abort released them, or buffer writes a
        // commit would miss.
        if let Some(e) = state.settle().await {
            return TxnEnd::Failed(e);
        }
        // An execution that already failed (a crash of a participant, a store error) will be
        // re-executed: it must not decide the transaction's fate now.
        if let Some(e) = inside.failed() {
            return TxnEnd::Failed(e);
        }
        let death = state.died();
        if let Err(e) = self.at.txn_end(&state.ctx, ok && death.is_none()).await {
            return TxnEnd::Failed(e);
        }
        match death {
            None => TxnEnd::Done,
            Some(_) if self.attempt < self.retries => {
                self.attempt += 1;
                // Back off before the next attempt: the older holder needs time to finish.
                // Not for a death replayed from the log: the execution that met it backed
                // off already, and a replay of many deaths must not spend its timeout
                // sleeping them again.
                if !state
                    .replayed_death
                    .load(std::sync::atomic::Ordering::SeqCst)
                {
                    let ms = 2u64 << self.attempt.min(5);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                TxnEnd::Retry
            }
            Some(why) => TxnEnd::Failed(died(&state.ctx, why)),
        }
    }
}

/// `Result::is_ok`, as a function so generated code does not need the type spelled out.
#[doc(hidden)]
pub fn __is_ok<T, E>(r: &Result<T, E>) -> bool {
    r.is_ok()
}

impl Ctx {
    /// An explicit abort: the error to return from a `#[beldi::txn]` block to abort its
    /// transaction (`return Err(ctx.abort("sold out").into())`). Returning any `Err` from the
    /// block aborts too; this one says why in the transaction's terms.
    pub fn abort(&self, reason: &str) -> BeldiError {
        BeldiError::TxnAborted {
            txn: self
                .txn
                .as_ref()
                .map(|t| t.ctx.id.clone())
                .unwrap_or_default(),
            reason: reason.to_owned(),
            wait_die: false,
        }
    }

    /// Starts a `#[beldi::txn]` block at call site `site` (used by generated code).
    #[doc(hidden)]
    pub fn __txn_block(&self, site: u32, retries: u32) -> TxnBlock {
        TxnBlock {
            at: self.__site(site),
            retries,
            attempt: 0,
            first_ts: None,
            nested: self.txn.is_some(),
        }
    }

    /// Begins a transaction at this context's next step: its id derived from the instance
    /// and step, its start time logged.
    async fn txn_begin(&self, ts: Option<i64>) -> Result<Ctx, BeldiError> {
        let step = self.alloc();
        let this = self.clone();
        let ts = self
            .step(step, async {
                this.note(step, "txn_begin");
                let now = AttrValue::from(ts.unwrap_or_else(crate::intent::now_ms));
                let got = this.log_step(step, "txn_begin", "", Some(now)).await?;
                got.value
                    .as_ref()
                    .and_then(AttrValue::as_i64)
                    .ok_or_else(|| BeldiError::Corrupt {
                        what: format!("transaction start of step {step}"),
                        message: "no start time".into(),
                    })
            })
            .await?;
        let id = crate::invoke::callee_id(
            &format!("{}>txn", self.function()),
            &self.inner.instance,
            step,
        );
        let mut c = self.clone();
        c.site = None;
        c.txn = Some(TxnState::coordinator(TxnCtx {
            id,
            ts,
            instruction: Instruction::Execute,
            coordinator: Some(Coordinator {
                function: self.function().to_owned(),
                instance: self.inner.instance.clone(),
            }),
        }));
        Ok(c)
    }

    /// Commits or aborts, as a logged step of this context: the coordinator's end of a
    /// transaction block, and the procedure a participant runs when asked to commit or abort.
    pub(crate) async fn txn_end(&self, txn: &TxnCtx, commit: bool) -> Result<(), BeldiError> {
        let step = self.alloc();
        let this = self.clone();
        let txn = txn.clone();
        self.step(step, async move {
            let decision = if commit { "commit" } else { "abort" };
            this.note(step, decision);
            // The decision is logged: a replay that reaches this step decides the same.
            this.log_step(step, decision, &txn.id, None).await?;
            finish(&this, &txn, step, commit).await
        })
        .await
    }
}
