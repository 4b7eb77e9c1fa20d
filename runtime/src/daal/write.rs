//! The logged write of a key: exactly once across executions, with an optional companion
//! put (the step's log record) in the same transaction as whatever it writes.

use super::{Daal, Entry, MAX_ATTEMPTS, Row, row_id};
use crate::schema::names::{CAPACITY, DAAL_KEY, DAAL_ROW, LOG_COUNT, LOGS, NEXT};
use crate::store::{
    AttrValue, CancellationReason, Condition, Item, MAX_ITEM_SIZE, Path, Put, Store, StoreError,
    TransactOp, TransactWrite, Update, UpdateAction,
};

/// The entry a row holds, or the corruption of its code.
fn corrupt_entry(cid: &str, e: Result<Entry, String>) -> Result<Entry, StoreError> {
    e.map_err(|v| StoreError::validation(cid, format!("corrupt DAAL entry {v}")))
}

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
    /// Nothing was applied: the condition of companion put `index` failed, on this item
    /// (the caller decides whether to write again, and with which companions).
    CompanionFailed {
        /// Which companion put (in the order the companion function made them).
        index: usize,
        /// The item its condition failed on, if the store returned it.
        item: Option<Box<Item>>,
    },
}

/// Waits before trying a write again that a concurrent one cancelled: 1 ms doubling up to
/// 32 ms, with jitter, so contenders spread out.
pub(crate) async fn busy_backoff(busy: &mut u32) {
    *busy = (*busy + 1).min(6);
    let cap = 1u64 << (*busy - 1);
    let ms = 1 + rand::random::<u64>() % cap.max(1);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// How one conditional write went.
pub(crate) enum Attempt {
    /// It was applied (with its companions, if any).
    Written,
    /// The condition of one of the writes failed: the item as it is (`None`: it does not
    /// exist).
    Refused(Option<Box<Item>>),
    /// The condition of companion `.0` failed: the item it found; nothing was applied.
    CompanionFailed(usize, Option<Box<Item>>),
    /// A concurrent write of one of the items (or throttling) cancelled it: nothing was
    /// applied.
    Busy,
}

/// What a companion function makes for the entry being written: the puts that go in one
/// transaction with the row's write.
pub type Companions<'a> = &'a (dyn Fn(Entry) -> Vec<Put> + Sync);

/// Sends `companions` and `writes` (rows' updates or puts) in one transaction (a lone write
/// goes as a plain put or update). A cancellation says which item refused; an item the
/// transaction would make too large, or an invalid update, fails it as it would alone
/// (`table` names the data table in that error).
pub(crate) async fn transact(
    store: &dyn Store,
    table: &str,
    companions: &[Put],
    mut writes: Vec<TransactOp>,
) -> Result<Attempt, StoreError> {
    if companions.is_empty() && writes.len() == 1 {
        let out = match writes.remove(0) {
            TransactOp::Put(p) => store.put(p).await,
            TransactOp::Update(u) => store.update(u).await,
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
    }
    let n = companions.len();
    let tx = companions.iter().fold(TransactWrite::new(), |tx, c| {
        tx.op(TransactOp::Put(c.clone()))
    });
    let tx = writes.into_iter().fold(tx, |tx, w| tx.op(w));
    let reasons = match store.transact_write(tx).await {
        Ok(()) => return Ok(Attempt::Written),
        Err(StoreError::TransactionCancelled { reasons }) => reasons,
        Err(StoreError::TransactionConflict { .. } | StoreError::Throttled { .. }) => {
            return Ok(Attempt::Busy);
        }
        Err(e) => return Err(e),
    };
    for (i, r) in reasons.iter().enumerate() {
        if let CancellationReason::ConditionFailed { item } = r {
            return Ok(if i < n {
                Attempt::CompanionFailed(i, item.clone())
            } else {
                Attempt::Refused(item.clone())
            });
        }
    }
    for r in &reasons {
        match r {
            CancellationReason::ItemTooLarge => {
                return Err(StoreError::ItemTooLarge {
                    table: table.to_owned(),
                    size: None,
                    limit: MAX_ITEM_SIZE,
                });
            }
            CancellationReason::Other { code, message } if code == "ValidationError" => {
                return Err(StoreError::validation(table, message.clone()));
            }
            _ => {}
        }
    }
    // Another write of one of the items was in progress (or the store throttled):
    // nothing was applied; try again, as when the row changed.
    if reasons.iter().all(|c| {
        matches!(
            c,
            CancellationReason::None
                | CancellationReason::TransactionConflict
                | CancellationReason::Throttled
        )
    }) {
        return Ok(Attempt::Busy);
    }
    Err(StoreError::TransactionCancelled { reasons })
}

impl Daal<'_> {
    /// Sends `op` (a row's update or put), in one transaction with `companions` if there
    /// are any ([`transact`]).
    async fn write_with(&self, op: TransactOp, companions: &[Put]) -> Result<Attempt, StoreError> {
        transact(self.store, self.table, companions, vec![op]).await
    }

    /// The id and capacity of the tail row of `key` (one query of one item, projected to
    /// those two attributes), if the key has any row.
    async fn tail_id(&self, key: &str) -> Result<Option<(String, u64)>, StoreError> {
        let tail = self
            .tail_of(key, &[Path::attr(DAAL_ROW), Path::attr(CAPACITY)])
            .await?;
        Ok(tail.map(|row| (row.id().to_owned(), self.capacity_of(&row))))
    }
}

impl Daal<'_> {
    /// A logged write of `key`: applies `actions` (paths under the value, already rebased)
    /// under `cond` together with the log entry `cid`, exactly once across executions.
    /// With `cond`, a false condition is logged too ([`Entry::CondWrite`]`(false)`), and
    /// counts toward the row's fullness. With no companion to tie the step to, the entry
    /// itself is the proof: every row is looked at first (one query).
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
        let change = Change {
            entry,
            actions,
            cond,
        };
        let tail = rows.last().map(|r| r.id().to_owned());
        let (out, _) = self
            .write_at(tail.as_deref(), key, cid, change, None)
            .await?;
        Ok(out)
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

    /// Writes entry `cid` of `change` into the tail of `key`, starting at row `tail` (where
    /// the tail was last seen; `None`: try to create the key's first row with the write in
    /// it). Nothing is read first: the write is one conditional update of that row (entry
    /// absent, row not full, the user's condition), so with a right guess it is one round
    /// trip. A refusal says why: a full row leads to its successor (appended if need be),
    /// a row that is not there (collected) to the tail found by a projected query.
    ///
    /// With `companions`, every write to the row goes in one transaction with the puts it
    /// makes for the entry being written (other tables' items), so they are durable exactly
    /// when that entry is; if one of their conditions fails, nothing is written and which
    /// one, with the item it found, is returned ([`WriteResult::CompanionFailed`]). That is
    /// what makes the write exactly once when the entry may sit in an older row: the
    /// caller's companion is a put-if-absent of the step's log record. Without one, the
    /// caller must have looked for the entry in every row ([`Daal::find`]) first.
    ///
    /// Returns the outcome and the id of the row the write went to.
    pub async fn write_at(
        &self,
        tail: Option<&str>,
        key: &str,
        cid: &str,
        change: Change<'_>,
        companions: Option<Companions<'_>>,
    ) -> Result<(WriteResult, String), StoreError> {
        let Change {
            entry,
            actions,
            cond,
        } = change;
        let applied_entry = match entry {
            Entry::CondWrite(_) => Entry::CondWrite(true),
            e => e,
        };
        let with = |e: Entry| companions.map_or_else(Vec::new, |c| c(e));
        let entry_path = Path::attr(LOGS).key(cid);
        let absent = Condition::not_exists(entry_path.clone());
        // `None`: the key may have no row yet; try to create its first one with the write.
        let mut at: Option<(String, u64)> = tail.map(|t| (t.to_owned(), self.capacity));
        let mut busy = 0u32;
        for _ in 0..MAX_ATTEMPTS {
            let Some((row, cap)) = at.clone() else {
                // A fresh key: its first row, with this write applied and logged in it, in
                // one put-if-absent. If another writer created the row first, write into it.
                let (head, done) = match self.head_with(key, cid, applied_entry, actions, cond) {
                    Ok(made) => made,
                    // The change cannot apply to an empty value (a nested path, an item too
                    // large): it is an error only if the key really has no row.
                    Err(e) => match self.tail_id(key).await? {
                        Some(t) => {
                            at = Some(t);
                            continue;
                        }
                        None => return Err(e),
                    },
                };
                let put = Put::new(self.table, head)
                    .if_absent(DAAL_KEY)
                    .return_item_on_failure();
                match self.write_with(TransactOp::Put(put), &with(done)).await? {
                    Attempt::Written => return Ok((WriteResult::Fresh(done), row_id(0))),
                    Attempt::CompanionFailed(index, item) => {
                        return Ok((WriteResult::CompanionFailed { index, item }, row_id(0)));
                    }
                    Attempt::Refused(Some(first)) => {
                        let first = Row(*first);
                        if let Some(e) = first.entry(cid) {
                            return Ok((WriteResult::Logged(corrupt_entry(cid, e)?), row_id(0)));
                        }
                        at = if self.is_full(&first) {
                            self.tail_id(key).await?
                        } else {
                            Some((first.id().to_owned(), self.capacity_of(&first)))
                        };
                    }
                    Attempt::Refused(None) => at = self.tail_id(key).await?,
                    Attempt::Busy => busy_backoff(&mut busy).await,
                }
                continue;
            };
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
            let current = match self
                .write_with(TransactOp::Update(req), &with(applied_entry))
                .await?
            {
                Attempt::Written => return Ok((WriteResult::Fresh(applied_entry), row)),
                Attempt::CompanionFailed(index, item) => {
                    return Ok((WriteResult::CompanionFailed { index, item }, row));
                }
                Attempt::Refused(item) => item,
                Attempt::Busy => {
                    busy_backoff(&mut busy).await;
                    continue;
                }
            };
            let Some(current) = current.map(|b| Row(*b)) else {
                // The row is not there (a stale guess, or collected): go to the real tail.
                at = self.tail_id(key).await?;
                continue;
            };
            if self.capacity_of(&current) != cap {
                // The row says otherwise: hold to its N.
                at = Some((row, self.capacity_of(&current)));
                continue;
            }
            if let Some(e) = current.entry(cid) {
                return Ok((WriteResult::Logged(corrupt_entry(cid, e)?), row));
            }
            if current.entries() >= cap {
                if current.next().is_some() {
                    // Not the tail any more: find the real one in one query rather than
                    // walking the chain.
                    at = self.tail_id(key).await?;
                    continue;
                }
                // The tail is full: its successor, with this write in it, is put and linked
                // in one transaction (with the companions), on the value the full row holds.
                let (id, next) = self.successor_row(key, &current)?;
                let Ok((next, done)) =
                    Self::row_with(self.table, next, cid, applied_entry, actions, cond)
                else {
                    // The change does not apply to that value: append, and let the row's
                    // own update say why.
                    at = Some((self.append(key, &current).await?, self.capacity));
                    continue;
                };
                let put = Put::new(self.table, next).if_absent(DAAL_KEY);
                // Linked only if the full row is still as read: its value is the key's.
                let link = Update::new(self.table, Self::key(key, &row))
                    .action(UpdateAction::set(NEXT, id.clone()))
                    .condition(
                        Condition::not_exists(NEXT)
                            .and(Condition::eq(LOG_COUNT, current.entries() as i64)),
                    );
                let ops = vec![TransactOp::Put(put), TransactOp::Update(link)];
                match transact(self.store, self.table, &with(done), ops).await? {
                    Attempt::Written => return Ok((WriteResult::Fresh(done), id)),
                    Attempt::CompanionFailed(index, item) => {
                        return Ok((WriteResult::CompanionFailed { index, item }, row));
                    }
                    // Another writer appended first: write into the real tail.
                    Attempt::Refused(_) => at = self.tail_id(key).await?,
                    Attempt::Busy => busy_backoff(&mut busy).await,
                }
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
            match self
                .write_with(TransactOp::Update(req), &with(Entry::CondWrite(false)))
                .await?
            {
                Attempt::Written => return Ok((WriteResult::Fresh(Entry::CondWrite(false)), row)),
                Attempt::CompanionFailed(index, item) => {
                    return Ok((WriteResult::CompanionFailed { index, item }, row));
                }
                Attempt::Refused(..) => continue,
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
        let item = self.empty_row(key, &row_id(0));
        Self::row_with(self.table, item, cid, applied, actions, cond)
    }

    /// Row `item` (in `table`) with the write of entry `cid` in it: `actions` applied if
    /// `cond` holds on it (the `applied` entry), else nothing but the false condition's
    /// entry; and which entry it logs.
    fn row_with(
        table: &str,
        mut item: Item,
        cid: &str,
        applied: Entry,
        actions: &[UpdateAction],
        cond: Option<&Condition>,
    ) -> Result<(Item, Entry), StoreError> {
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
        crate::store::validate::item_within_limit(table, &item)?;
        Ok((item, done))
    }
}
