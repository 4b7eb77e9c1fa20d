//! The wait-die rule: how a transaction takes the lock of a key, waits for an older holder
//! or dies for a younger one, and how every copy of an instance takes the same decision.
//!
//! Taking a lock is **one** transaction that also makes the step's effect durable: the
//! lock's outcome record (`<step>.LK`, put-if-absent), the step's own record (put-if-absent),
//! the shadow items it implies (the lock, the buffered write) and the execution's deferred
//! log records go with the holder's update of the key's tail row. So a first execution that
//! finds the key free and knows where its tail is takes the lock, logs the step and buffers
//! the write in one round trip; a step that needs the committed value (a read, a write that
//! is not a blind set) reads the tail first and takes the lock only if the row is unchanged
//! since (its entry count `LN`, which every change of the value moves).

use std::time::Duration;

use super::shadow::{self, shadow_get};
use super::{TxnState, View, died};
use crate::daal::{Attempt, Daal, Row, busy_backoff, row_id, transact};
use crate::deferred::{self, DeferredLog};
use crate::engine::Engine;
use crate::error::BeldiError;
use crate::log;
use crate::schema::names::{
    CAPACITY, DAAL_ROW, HOLDER, HOLDER_COORDINATOR, HOLDER_TS, LOG_COUNT, NEXT, SHADOW_VERSION,
    VALUE,
};
use crate::schema::{LogRecord, StepKind, ids, step_key};
use crate::store::{
    AttrValue, Condition, Key, MAX_TRANSACTION_ITEMS, Path, Put, StoreError, TransactOp, Update,
    UpdateAction,
};

/// A step's effect, made from the transaction's view of the key: its log record and the
/// buffered write it makes, if any.
pub(super) struct Effect {
    /// The step's log record.
    pub(super) record: LogRecord,
    /// The write to buffer (value, version), for a write whose condition held.
    pub(super) buffer: Option<View>,
}

/// What makes a step's effect from the view it is taken on.
pub(super) type MakeEffect<'a> = &'a (dyn Fn(&View) -> Result<Effect, BeldiError> + Sync);

/// The key a step works on.
#[derive(Clone, Copy)]
pub(super) struct Target<'a> {
    /// The function's table, as the body names it.
    pub(super) table: &'a str,
    /// Its data table in the store.
    pub(super) data: &'a str,
    /// The key.
    pub(super) key: &'a str,
}

/// How taking the lock went.
pub(super) enum Took {
    /// Taken, with the step's effect made on this view, durable with it.
    Taken(View),
    /// A twin of this execution logged the step or its lock decision first: the caller
    /// adopts what the log holds.
    Twin,
}

/// The lock outcome of `step` logged by an earlier execution (or a twin), if any: `Ok(true)`
/// if it took the lock, the death otherwise.
pub(super) async fn logged_outcome(
    e: &Engine,
    state: &TxnState,
    step: u64,
    look: bool,
) -> Result<Option<bool>, BeldiError> {
    let outcome_key = ids::lock_outcome_key(step);
    let rec = match e.prefetched_at(&outcome_key) {
        Some(rec) => Some(rec.clone()),
        None if look => log::get_at(&*e.store, &e.tables.log(), &e.instance, &outcome_key).await?,
        None => None,
    };
    let Some(rec) = rec else {
        return Ok(None);
    };
    if rec.target == TOOK {
        return Ok(Some(true));
    }
    state.mark_replayed_death();
    let why = rec
        .value
        .as_ref()
        .and_then(AttrValue::as_s)
        .unwrap_or("wait-die: the lock was held by another transaction")
        .to_owned();
    state.mark_died(&why);
    Err(died(&state.ctx, why))
}

/// Where the lock is tried next.
enum At {
    /// Not known: read the tail.
    Unknown,
    /// Where this process last saw the tail: take it there without reading (the refusal
    /// returns the row if it is not free or not the tail).
    Guess(String),
    /// The tail as read: its holder, entry count and value.
    Read(Row),
    /// The key has no row: create its first one, locked.
    NoRow,
}

/// What a tail read returns: everything but the row's log.
fn tail_paths() -> [Path; 8] {
    [
        DAAL_ROW,
        VALUE,
        HOLDER,
        HOLDER_TS,
        HOLDER_COORDINATOR,
        LOG_COUNT,
        CAPACITY,
        NEXT,
    ]
    .map(Path::attr)
}

/// Takes the lock of `at.key` for the transaction at `step`, waiting if older, dying if
/// younger, with the step's effect (`make`, on the view the lock was taken on) durable in
/// the same transaction. `needs_value`: the effect depends on the committed value (else it
/// gets a view with no value, and the tail is not read when its place is known).
///
/// Every copy of the instance takes the same decision: the outcome is one record at a fixed
/// address, put-if-absent, with the take (`took`) or alone (`died`); a copy whose put fails
/// adopts what is logged ([`Took::Twin`]). Waiting writes nothing, and a death never touches
/// the contended row.
pub(super) async fn take(
    e: &Engine,
    state: &TxnState,
    step: u64,
    at_key: Target<'_>,
    needs_value: bool,
    make: MakeEffect<'_>,
) -> Result<Took, BeldiError> {
    let txn = &state.ctx;
    let Target { table, data, key } = at_key;
    let store = &*e.store;
    let log_table = e.tables.log();
    let instance = &e.instance;
    let outcome_key = ids::lock_outcome_key(step);
    let daal = Daal::new(store, data, e.row_capacity);
    let hints = e.platform.tail_hints();
    let die = |why: String| -> BeldiError {
        state.mark_died(&why);
        died(txn, why)
    };
    let holder = |mut u: Update| {
        u = u
            .action(UpdateAction::set(HOLDER, txn.id.as_str()))
            .action(UpdateAction::set(HOLDER_TS, txn.ts));
        if let Some(c) = &txn.coordinator {
            u = u.action(UpdateAction::set(HOLDER_COORDINATOR, c.to_attr()));
        }
        u
    };
    let mut at = match (needs_value, hints.get(data, key)) {
        (true, _) => At::Unknown,
        (false, Some(row)) => At::Guess(row),
        (false, None) => At::NoRow,
    };
    let lock_wait = e.lock_wait;
    let started = std::time::Instant::now();
    let mut backoff = Duration::from_millis(1);
    let mut nudged = false;
    let mut busy = 0u32;
    loop {
        if let Some(why) = state.died() {
            return Err(died(txn, why));
        }
        e.deferred.check(instance)?;
        // The row write that takes the lock (none if this transaction holds it already),
        // and the view the effect is made on.
        let (write, view) = match &at {
            At::Unknown => {
                at = match daal.tail_of(key, &tail_paths()).await? {
                    Some(row) => At::Read(row),
                    None => At::NoRow,
                };
                continue;
            }
            At::Read(row) if daal.is_full(row) => {
                let next = daal.append(key, row).await?;
                at = if needs_value {
                    At::Unknown
                } else {
                    At::Guess(next)
                };
                continue;
            }
            At::Guess(row) => {
                let take = holder(Update::new(data, Key::with_sort(key, row.as_str())))
                    .condition(Condition::not_exists(HOLDER).and(Daal::room_in(e.row_capacity)))
                    .return_item_on_failure();
                (Some(TransactOp::Update(take)), View::free(None))
            }
            At::NoRow => {
                let mut head = daal.empty_row(key, &row_id(0));
                head.insert(HOLDER.into(), AttrValue::S(txn.id.clone()));
                head.insert(HOLDER_TS.into(), AttrValue::from(txn.ts));
                if let Some(c) = &txn.coordinator {
                    head.insert(HOLDER_COORDINATOR.into(), c.to_attr());
                }
                let put = Put::new(data, head)
                    .if_absent(crate::schema::names::DAAL_KEY)
                    .return_item_on_failure();
                (Some(TransactOp::Put(put)), View::free(None))
            }
            At::Read(row) => {
                let hid = row.holder().and_then(AttrValue::as_s).unwrap_or("");
                let committed = row.value().cloned();
                if hid.is_empty() {
                    // Free: the transaction buffered nothing for the key. Taken only if the
                    // row is as read (no entry since: the value is the one read).
                    let take = holder(Update::new(data, Key::with_sort(key, row.id())))
                        .condition(
                            Condition::not_exists(HOLDER)
                                .and(Condition::eq(LOG_COUNT, row.entries() as i64)),
                        )
                        .return_item_on_failure();
                    (Some(TransactOp::Update(take)), View::free(committed))
                } else if hid == txn.id {
                    // Held by this transaction already (another instance of it took it):
                    // its buffered write, if any, is the view.
                    (None, buffered_view(e, state, table, key, committed).await?)
                } else {
                    // Held by another transaction: if its coordinator no longer runs (it
                    // crashed), have it restarted now rather than when the intent collector
                    // gets to it, so the lock is freed soon (once per lock step).
                    if !nudged {
                        nudged = true;
                        if let Some(c) = row.holder_coordinator() {
                            e.platform.revive(&c.function, &c.instance);
                        }
                    }
                    let hts = row.holder_since().unwrap_or(i64::MAX);
                    let older = txn.older_than(hts, hid);
                    if older && started.elapsed() < lock_wait {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_millis(20));
                        at = At::Unknown;
                        continue;
                    }
                    let why = if older {
                        format!(
                            "wait-die: `{table}/{key}` is held by the younger transaction {hid}, for longer than the lock wait ({lock_wait:?})"
                        )
                    } else {
                        format!("wait-die: `{table}/{key}` is held by the older transaction {hid}")
                    };
                    // The decision: a death, unless a twin took the lock first. What this
                    // execution deferred goes first (the step it dies at is reached on it).
                    deferred::flush(store, &log_table, instance, &e.deferred).await?;
                    let death =
                        LogRecord::new(StepKind::Lock, DIED_OUTCOME, Some(AttrValue::S(why)));
                    let got =
                        log::record_at(store, &log_table, instance, &outcome_key, death).await?;
                    if got.target == TOOK {
                        return Ok(Took::Twin);
                    }
                    return Err(die(got
                        .value
                        .as_ref()
                        .and_then(AttrValue::as_s)
                        .unwrap_or("wait-die")
                        .to_owned()));
                }
            }
        };
        let effect = make(&view)?;
        let (carried, all) = e.deferred.carried();
        // At most 5 items of the step's own: what is deferred goes first if all of it
        // would not fit beside them.
        if !all || carried.len() + 5 > MAX_TRANSACTION_ITEMS {
            deferred::flush(store, &log_table, instance, &e.deferred).await?;
            continue;
        }
        // Companions: the outcome and the step's record (a failure of either: a twin
        // logged them), the shadow items, then the deferred records.
        let took = LogRecord::new(StepKind::Lock, TOOK, None);
        let mut puts = vec![
            log::put_if_absent(&log_table, instance, &outcome_key, &took),
            log::put_if_absent(&log_table, instance, &step_key(step), &effect.record),
            shadow::lock_put(e, txn, table, key),
        ];
        if let Some(b) = &effect.buffer {
            puts.push(shadow::write_put(
                e,
                txn,
                (table, key),
                b.value.clone(),
                b.version,
            ));
        }
        let fixed = puts.len();
        puts.extend(DeferredLog::puts(&log_table, instance, &carried));
        let writes: Vec<TransactOp> = write.into_iter().collect();
        match transact(store, data, &puts, writes).await? {
            Attempt::Written => {
                e.deferred.settled(&carried);
                match &at {
                    At::Guess(row) => hints.set(data, key, row),
                    At::Read(row) => hints.set(data, key, row.id()),
                    At::NoRow => hints.set(data, key, &row_id(0)),
                    At::Unknown => {}
                }
                return Ok(Took::Taken(view));
            }
            Attempt::CompanionFailed(i, _) if i < 2 => return Ok(Took::Twin),
            // The buffered write is not the version the view was made from: another
            // instance of the transaction wrote the key since. Read again.
            Attempt::CompanionFailed(3, _) if effect.buffer.is_some() => at = At::Unknown,
            Attempt::CompanionFailed(i, item) if i >= fixed => {
                let d = &carried[i - fixed];
                let found =
                    deferred::found(store, &log_table, instance, d.step, item.as_deref()).await?;
                e.deferred.refused(instance, d, &found)?;
            }
            Attempt::CompanionFailed(i, _) => {
                return Err(StoreError::validation(
                    e.tables.shadow(),
                    format!(
                        "the unconditional put {i} (the lock's shadow entry) of a lock step failed"
                    ),
                )
                .into());
            }
            Attempt::Refused(item) => {
                // Not free, not the tail, not there, or changed since it was read.
                at = match (item.map(|b| Row(*b)), needs_value, &at) {
                    (Some(row), false, _) => At::Read(row),
                    // Changed since read: read again (the value may be another).
                    _ => At::Unknown,
                };
            }
            Attempt::Busy => busy_backoff(&mut busy).await,
        }
    }
}

/// The transaction's view of a key whose lock it holds: its buffered write (one get), else
/// the committed value `committed` (read from the tail if not given and needed).
pub(super) async fn buffered_view(
    e: &Engine,
    state: &TxnState,
    table: &str,
    key: &str,
    committed: Option<AttrValue>,
) -> Result<View, BeldiError> {
    if let Some(buffered) = shadow_get(e, &state.ctx, table, key).await? {
        let version = buffered
            .get(SHADOW_VERSION)
            .and_then(AttrValue::as_i64)
            .unwrap_or(0);
        return Ok(View {
            value: buffered.get(VALUE).cloned(),
            version,
        });
    }
    Ok(View::free(committed))
}

/// The outcome of a lock step that took the lock.
const TOOK: &str = "took";
/// The outcome of a lock step that died.
const DIED_OUTCOME: &str = "died";
