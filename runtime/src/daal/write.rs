//! The logged write of a key: exactly once across executions, with an optional companion
//! put (the step's log record) in the same transaction as whatever it writes.

use super::{Daal, Entry, MAX_ATTEMPTS, Row, row_id};
use crate::schema::names::{DAAL_KEY, LOG_COUNT, LOGS};
use crate::store::{
    AttrValue, CancellationReason, Condition, Item, Path, Put, StoreError, TransactOp,
    TransactWrite, Update, UpdateAction,
};

/// What a logged write does to a key: the entry it logs, the actions (paths under the
/// value, already rebased) and the condition they are applied under.
#[derive(Clone, Copy, Debug)]
pub struct Change<'a> {
    /// The entry.
    pub entry: Entry,
    /// The actions.
    pub actions: &'a [UpdateAction],
    /// The condition, for a conditional write.
    pub cond: Option<&'a Condition>,
}

/// The result of a logged write.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteResult {
    /// This call applied (or, for a false condition, logged) the operation.
    Fresh(Entry),
    /// The entry was already logged by an earlier execution of the same step.
    Logged(Entry),
    /// Nothing was applied: the companion put's condition failed, on this item (the
    /// caller decides whether to write again without it).
    CompanionFailed(Option<Box<Item>>),
}

/// Waits before trying a write again that a concurrent one cancelled: 1 ms doubling up to
/// 32 ms, with jitter, so contenders spread out.
async fn busy_backoff(busy: &mut u32) {
    *busy = (*busy + 1).min(6);
    let cap = 1u64 << (*busy - 1);
    let ms = 1 + rand::random::<u64>() % cap.max(1);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// How one conditional write of a row went.
enum Attempt {
    /// It was applied (with its companion, if any).
    Written,
    /// The row's condition failed: the row as it is (`None`: it does not exist).
    Refused(Option<Box<Item>>),
    /// The companion's condition failed: the item it found; nothing was applied.
    CompanionFailed(Option<Box<Item>>),
    /// A concurrent write of one of the items (or throttling) cancelled it: nothing was
    /// applied.
    Busy,
}

impl Daal<'_> {
    /// Sends `op` (a row's update or put), in one transaction with `companion` if there is
    /// one.
    async fn write_with(
        &self,
        op: TransactOp,
        companion: Option<&Put>,
    ) -> Result<Attempt, StoreError> {
        let Some(companion) = companion else {
            let out = match op {
                TransactOp::Put(p) => self.store.put(p).await,
                TransactOp::Update(u) => self.store.update(u).await,
                other => {
                    return Err(StoreError::validation(
                        other.table(),
                        "a DAAL row is written by a put or an update",
                    ));
                }
            };
            return match out {
                Ok(_) => Ok(Attempt::Written),
                Err(StoreError::ConditionFailed { item, .. }) => Ok(Attempt::Refused(item)),
                Err(e) => Err(e),
            };
        };
        let tx = TransactWrite::new()
            .op(TransactOp::Put(companion.clone()))
            .op(op);
        match self.store.transact_write(tx).await {
            Ok(()) => Ok(Attempt::Written),
            Err(StoreError::TransactionCancelled { mut reasons }) => {
                let row = reasons.pop();
                let put = reasons.pop();
                match (put, row) {
                    (Some(CancellationReason::ConditionFailed { item }), _) => {
                        Ok(Attempt::CompanionFailed(item))
                    }
                    (_, Some(CancellationReason::ConditionFailed { item })) => {
                        Ok(Attempt::Refused(item))
                    }
                    // Another write of one of the two items was in progress (or the store
                    // throttled): nothing was applied; try again, as when the row changed.
                    (p, r)
                        if [&p, &r].into_iter().flatten().all(|c| {
                            matches!(
                                c,
                                CancellationReason::None
                                    | CancellationReason::TransactionConflict
                                    | CancellationReason::Throttled
                            )
                        }) =>
                    {
                        Ok(Attempt::Busy)
                    }
                    (p, r) => Err(StoreError::TransactionCancelled {
                        reasons: p.into_iter().chain(r).collect(),
                    }),
                }
            }
            Err(StoreError::TransactionConflict { .. } | StoreError::Throttled { .. }) => {
                Ok(Attempt::Busy)
            }
            Err(e) => Err(e),
        }
    }
}

impl Daal<'_> {
    /// A logged write of `key`: applies `actions` (paths under the value, already rebased)
    /// under `cond` together with the log entry `cid`, exactly once across executions.
    /// With `cond`, a false condition is logged too ([`Entry::CondWrite`]`(false)`), and
    /// counts toward the row's fullness.
    pub async fn write(
        &self,
        key: &str,
        cid: &str,
        entry: Entry,
        actions: &[UpdateAction],
        cond: Option<&Condition>,
    ) -> Result<WriteResult, StoreError> {
        let (rows, logged) = self.find(key, cid).await?;
        if let Some(e) = logged {
            return Ok(WriteResult::Logged(e));
        }
        self.precheck(&rows, key, actions)?;
        let change = Change {
            entry,
            actions,
            cond,
        };
        self.write_from(&rows, key, cid, change, None).await
    }

    /// Every row of `key` and the entry `cid` if one of them holds it (one query). Faithful
    /// to the paper: the entry may be in any row, so all of them are looked at.
    pub async fn find(
        &self,
        key: &str,
        cid: &str,
    ) -> Result<(Vec<Row>, Option<Entry>), StoreError> {
        let rows = self.rows(key).await?;
        for r in &rows {
            if let Some(e) = r.entry(cid) {
                let e =
                    e.map_err(|v| StoreError::validation(cid, format!("corrupt DAAL entry {v}")))?;
                return Ok((rows, Some(e)));
            }
        }
        Ok((rows, None))
    }

    /// Checks `actions` on the tail among `rows` (an empty row for a new key), in memory, so
    /// a write that cannot succeed (too large, invalid path) fails before anything about it
    /// is written.
    pub fn precheck(
        &self,
        rows: &[Row],
        key: &str,
        actions: &[UpdateAction],
    ) -> Result<(), StoreError> {
        let mut probe = match rows.last() {
            Some(r) => r.0.clone(),
            None => self.empty_row(key, &row_id(0)),
        };
        crate::store::eval::apply_actions(&mut probe, actions)?;
        crate::store::validate::item_within_limit(self.table, &probe)
    }

    /// [`Daal::write`] after [`Daal::find`] found no entry `cid` in `rows` and
    /// [`Daal::precheck`] accepted `actions`. With a `companion`, every write to the row
    /// goes in one transaction with the put it makes for the entry being written (another
    /// table's item), so the put is durable exactly when that entry is; if the put's own
    /// condition fails, nothing is written and the item it found is returned
    /// ([`WriteResult::CompanionFailed`]).
    pub async fn write_from(
        &self,
        rows: &[Row],
        key: &str,
        cid: &str,
        change: Change<'_>,
        companion: Option<&(dyn Fn(Entry) -> Put + Sync)>,
    ) -> Result<WriteResult, StoreError> {
        let Change {
            entry,
            actions,
            cond,
        } = change;
        let applied_entry = match entry {
            Entry::CondWrite(_) => Entry::CondWrite(true),
            e => e,
        };
        let (mut row, mut cap) = match rows.last() {
            Some(r) => (r.id().to_owned(), self.capacity_of(r)),
            None => {
                // A fresh key: its first row, with this write applied and logged in it, in
                // one put-if-absent. If another writer created the row first, write into it.
                let (head, done) = self.head_with(key, cid, applied_entry, actions, cond)?;
                let put = Put::new(self.table, head)
                    .if_absent(DAAL_KEY)
                    .return_item_on_failure();
                let with = companion.map(|c| c(done));
                match self.write_with(TransactOp::Put(put), with.as_ref()).await? {
                    Attempt::Written => return Ok(WriteResult::Fresh(done)),
                    Attempt::CompanionFailed(item) => {
                        return Ok(WriteResult::CompanionFailed(item));
                    }
                    Attempt::Refused(_) | Attempt::Busy => (row_id(0), self.capacity),
                }
            }
        };
        let entry_path = Path::attr(LOGS).key(cid);
        let absent = Condition::not_exists(entry_path.clone());
        let mut busy = 0u32;
        for _ in 0..MAX_ATTEMPTS {
            let room = absent.clone().and(Self::room_in(cap));
            let condition = match cond {
                Some(c) => room.clone().and(c.clone()),
                None => room.clone(),
            };
            let req = Update::new(self.table, Self::key(key, &row))
                .actions(actions.iter().cloned())
                .action(UpdateAction::Set(
                    entry_path.clone(),
                    applied_entry.code().into(),
                ))
                .action(UpdateAction::add(LOG_COUNT, 1))
                .condition(condition)
                .return_item_on_failure();
            let with = companion.map(|c| c(applied_entry));
            let current = match self
                .write_with(TransactOp::Update(req), with.as_ref())
                .await?
            {
                Attempt::Written => return Ok(WriteResult::Fresh(applied_entry)),
                Attempt::CompanionFailed(item) => return Ok(WriteResult::CompanionFailed(item)),
                Attempt::Refused(item) => item,
                Attempt::Busy => {
                    busy_backoff(&mut busy).await;
                    continue;
                }
            };
            let Some(current) = current.map(|b| Row(*b)) else {
                // The row vanished (collected): start again from the current tail.
                (row, cap) = match self.tail(key).await? {
                    Some(t) => (t.id().to_owned(), self.capacity_of(&t)),
                    None => (self.create_head(key).await?, self.capacity),
                };
                continue;
            };
            if self.capacity_of(&current) != cap {
                cap = self.capacity_of(&current); // the row says otherwise: hold to its N
                continue;
            }
            if let Some(e) = current.entry(cid) {
                return e
                    .map(WriteResult::Logged)
                    .map_err(|v| StoreError::validation(cid, format!("corrupt DAAL entry {v}")));
            }
            if current.entries() >= cap {
                row = self.append(key, &current).await?;
                cap = self.capacity; // re-read from the row if it says otherwise
                continue;
            }
            if cond.is_none() {
                continue; // raced with a concurrent change of the row; try again
            }
            // The user's condition is false: log that outcome, without applying anything.
            let req = Update::new(self.table, Self::key(key, &row))
                .action(UpdateAction::Set(
                    entry_path.clone(),
                    Entry::CondWrite(false).code().into(),
                ))
                .action(UpdateAction::add(LOG_COUNT, 1))
                .condition(room.clone());
            let with = companion.map(|c| c(Entry::CondWrite(false)));
            match self
                .write_with(TransactOp::Update(req), with.as_ref())
                .await?
            {
                Attempt::Written => return Ok(WriteResult::Fresh(Entry::CondWrite(false))),
                Attempt::CompanionFailed(item) => return Ok(WriteResult::CompanionFailed(item)),
                Attempt::Refused(_) => continue,
                Attempt::Busy => busy_backoff(&mut busy).await,
            }
        }
        Err(StoreError::Unavailable {
            message: format!(
                "DAAL write of `{key}` in `{}` did not settle after {MAX_ATTEMPTS} attempts",
                self.table
            ),
        })
    }

    /// The first row of `key` with the write of entry `cid` in it: `actions` applied if
    /// `cond` holds on the empty row (the applied entry), else nothing but the false
    /// condition's entry; and which entry it logs.
    fn head_with(
        &self,
        key: &str,
        cid: &str,
        applied: Entry,
        actions: &[UpdateAction],
        cond: Option<&Condition>,
    ) -> Result<(Item, Entry), StoreError> {
        let mut item = self.empty_row(key, &row_id(0));
        let held = cond.is_none_or(|c| crate::store::eval::eval_condition(Some(&item), c));
        let done = if held {
            crate::store::eval::apply_actions(&mut item, actions)?;
            applied
        } else {
            Entry::CondWrite(false)
        };
        if let Some(AttrValue::M(logs)) = item.get_mut(LOGS) {
            logs.insert(cid.to_owned(), AttrValue::S(done.code().to_owned()));
        }
        item.insert(LOG_COUNT.into(), 1.into());
        crate::store::validate::item_within_limit(self.table, &item)?;
        Ok((item, done))
    }
}
