//! The linked DAAL (distributed atomic affinity log): the value of a logical key with the log
//! of every write applied to it, in a chain of rows.
//!
//! Row layout (one store item per row, partition key `K` = logical key, sort key `R` = row id):
//!
//! | attribute | meaning |
//! |---|---|
//! | `V`  | the value (absent: no value) |
//! | `L`  | map: log entry id `"<instance>#<step>"` → outcome code (see [`Entry`]) |
//! | `LN` | number of entries ever added to `L` (failed conditional writes included) |
//! | `GN` | number of entries collected by GC |
//! | `NX` | id of the next row, once this row is full |
//! | `H`  | lock holder (transactions) |
//! | `N`  | the row's capacity, set when it is created (see [`CAPACITY`](crate::schema::names::CAPACITY)) |
//!
//! Row ids are `00000000`, `00000001`, … in chain order, so the tail is the row with the
//! highest id (one descending query of one item), and appending is idempotent: two racing
//! appenders put-if-absent the *same* row id with the same content (a full row is frozen:
//! every write needs `LN < N`), then link it with a conditional write of `NX`. There is no
//! losing row to delete, and a crash between creating and linking a row leaves nothing
//! behind: the next appender finds the row and links it. (The prototype used random row ids
//! and deleted the loser's row.) The value **and the lock** are copied into the new row.

use crate::schema::StepKind;
use crate::schema::names::{
    CAPACITY, DAAL_KEY, DAAL_ROW, GC_COUNT, HOLDER, HOLDER_COORDINATOR, HOLDER_TS, LOG_COUNT, LOGS,
    NEXT, VALUE,
};
use crate::store::{
    AttrValue, Condition, Item, Key, Page, Path, Put, Query, Store, StoreError, StoreExt,
    TableSpec, Update, UpdateAction,
};

mod hints;
mod write;

pub use hints::TailHints;
pub(crate) use write::{Attempt, busy_backoff, transact};
pub use write::{Change, WriteResult};

/// Default row capacity N. A log entry costs its id (instance id + `#` + step, 40–60 bytes
/// with UUID ids, at most about 140 with the longest allowed id) plus a 2-byte outcome, so
/// 1,000 entries take 45–145 KB and leave more than 250 KB of the 400 KB item for the value.
pub const DEFAULT_ROW_CAPACITY: u64 = 1000;

/// The outcome code a row's log entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// A write was applied.
    Write,
    /// A delete was applied.
    Delete,
    /// A conditional write, with the value of its condition.
    CondWrite(bool),
}

impl Entry {
    /// The code stored for this entry.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Entry::Write => "w",
            Entry::Delete => "d",
            Entry::CondWrite(true) => "c1",
            Entry::CondWrite(false) => "c0",
        }
    }
    /// The entry a stored code stands for.
    pub(crate) fn parse(v: &AttrValue) -> Option<Entry> {
        match v.as_s()? {
            "w" => Some(Entry::Write),
            "d" => Some(Entry::Delete),
            "c1" => Some(Entry::CondWrite(true)),
            "c0" => Some(Entry::CondWrite(false)),
            _ => None,
        }
    }
    /// The kind of step that logs this entry.
    pub fn kind(self) -> StepKind {
        match self {
            Entry::Write => StepKind::Write,
            Entry::Delete => StepKind::Delete,
            Entry::CondWrite(_) => StepKind::CondWrite,
        }
    }
}

/// One row of a chain.
#[derive(Clone, Debug, PartialEq)]
pub struct Row(pub Item);

impl Row {
    /// The row id.
    pub fn id(&self) -> &str {
        self.0.get(DAAL_ROW).and_then(AttrValue::as_s).unwrap_or("")
    }
    /// The value, if any.
    pub fn value(&self) -> Option<&AttrValue> {
        self.0.get(VALUE)
    }
    /// The number of log entries ever added.
    pub fn entries(&self) -> u64 {
        self.0
            .get(LOG_COUNT)
            .and_then(AttrValue::as_i64)
            .unwrap_or(0) as u64
    }
    /// The number of log entries the row holds now (collected ones are gone).
    pub fn log_len(&self) -> usize {
        self.0
            .get(LOGS)
            .and_then(AttrValue::as_m)
            .map_or(0, |m| m.len())
    }
    /// The log entry of `cid`, if present.
    pub fn entry(&self, cid: &str) -> Option<Result<Entry, String>> {
        let v = self.0.get(LOGS)?.as_m()?.get(cid)?;
        Some(Entry::parse(v).ok_or_else(|| format!("{v:?}")))
    }
    /// The next row's id, if linked.
    pub fn next(&self) -> Option<&str> {
        self.0.get(NEXT).and_then(AttrValue::as_s)
    }
    /// The lock holder, if any.
    pub fn holder(&self) -> Option<&AttrValue> {
        self.0.get(HOLDER)
    }
    /// The lock holder's start time (its wait-die age, ms since the epoch), if locked.
    pub fn holder_since(&self) -> Option<i64> {
        self.0.get(HOLDER_TS).and_then(AttrValue::as_i64)
    }
    /// The lock holder's coordinator, if locked by a transaction that recorded one.
    pub fn holder_coordinator(&self) -> Option<crate::schema::Coordinator> {
        self.0
            .get(HOLDER_COORDINATOR)
            .and_then(crate::schema::Coordinator::from_attr)
    }
    /// The capacity the row was created with (`None`: a row from before rows said).
    pub fn capacity(&self) -> Option<u64> {
        self.0
            .get(CAPACITY)
            .and_then(AttrValue::as_i64)
            .map(|n| n.max(1) as u64)
    }
}

/// The row id of the `seq`-th row of a chain.
pub fn row_id(seq: u64) -> String {
    format!("{seq:08}")
}

pub(crate) fn next_row_id(id: &str) -> Result<String, StoreError> {
    id.parse::<u64>()
        .map(|n| row_id(n + 1))
        .map_err(|_| StoreError::validation(id, "corrupt DAAL row id"))
}

/// The chains of one data table.
pub struct Daal<'a> {
    store: &'a dyn Store,
    table: &'a str,
    capacity: u64,
}

const MAX_ATTEMPTS: usize = 10_000;

impl<'a> Daal<'a> {
    /// The chains of `table` with row capacity `capacity`.
    pub fn new(store: &'a dyn Store, table: &'a str, capacity: u64) -> Daal<'a> {
        Daal {
            store,
            table,
            capacity: capacity.max(1),
        }
    }

    /// The schema of a DAAL table.
    pub fn spec(table: &str) -> TableSpec {
        TableSpec::new(table, DAAL_KEY).with_sort_key(DAAL_ROW)
    }

    fn key(key: &str, row: &str) -> Key {
        Key::with_sort(key, row)
    }

    /// Whether `row` is full (a full row is frozen: it only gets its successor's link).
    pub fn is_full(&self, row: &Row) -> bool {
        row.entries() >= self.capacity_of(row)
    }

    /// The capacity `row` is held to: its own, or (a row from before rows said) this
    /// chain's configured one.
    pub(crate) fn capacity_of(&self, row: &Row) -> u64 {
        row.capacity().unwrap_or(self.capacity)
    }

    /// The condition under which a row of capacity `cap` is not full (and so is the tail:
    /// rows are appended only when full), and really has that capacity.
    pub(crate) fn room_in(cap: u64) -> Condition {
        Condition::lt(LOG_COUNT, cap as i64)
            .and(Condition::eq(CAPACITY, cap as i64).or(Condition::not_exists(CAPACITY)))
    }

    /// The condition under which `row` (as read) is not full, and so is the tail.
    pub fn not_full(&self, row: &Row) -> Condition {
        Self::room_in(self.capacity_of(row))
    }

    /// Every row of `key`, in chain order (one query, paginated if large).
    pub async fn rows(&self, key: &str) -> Result<Vec<Row>, StoreError> {
        Ok(self
            .store
            .query_all(Query::new(self.table, key))
            .await?
            .into_iter()
            .map(Row)
            .collect())
    }

    /// The tail row of `key` (one query of one item), if the key has any row.
    pub async fn tail(&self, key: &str) -> Result<Option<Row>, StoreError> {
        let page: Page = self
            .store
            .query(Query::new(self.table, key).descending().limit(1))
            .await?;
        Ok(page.items.into_iter().next().map(Row))
    }

    /// The tail row of `key` projected to `paths` (and the key attributes): one query of
    /// one item that returns only what the caller needs.
    pub async fn tail_of(&self, key: &str, paths: &[Path]) -> Result<Option<Row>, StoreError> {
        let query = Query::new(self.table, key)
            .descending()
            .limit(1)
            .project(paths.iter().cloned());
        let page: Page = self.store.query(query).await?;
        Ok(page.items.into_iter().next().map(Row))
    }

    /// The current values of every key of the table, ordered by key.
    pub async fn scan_values(&self) -> Result<Vec<(String, AttrValue)>, StoreError> {
        Ok(self
            .tails()
            .await?
            .into_iter()
            .filter_map(|(k, r)| r.value().cloned().map(|v| (k, v)))
            .collect())
    }

    /// The tail row of every key of the table (one scan), by key.
    pub async fn tails(&self) -> Result<std::collections::BTreeMap<String, Row>, StoreError> {
        let mut tails: std::collections::BTreeMap<String, Row> = std::collections::BTreeMap::new();
        for item in self.store.scan_all(self.table).await? {
            let row = Row(item);
            let Some(k) = row
                .0
                .get(DAAL_KEY)
                .and_then(AttrValue::as_s)
                .map(str::to_owned)
            else {
                continue;
            };
            match tails.get(&k) {
                Some(t) if t.id() >= row.id() => {}
                _ => {
                    tails.insert(k, row);
                }
            }
        }
        Ok(tails)
    }

    /// Every row of the table (one scan), grouped by key, each key's rows in chain order.
    pub async fn all_rows(
        &self,
    ) -> Result<std::collections::BTreeMap<String, Vec<Row>>, StoreError> {
        let mut chains: std::collections::BTreeMap<String, Vec<Row>> = Default::default();
        for item in self.store.scan_all(self.table).await? {
            let row = Row(item);
            if let Some(k) = row.0.get(DAAL_KEY).and_then(AttrValue::as_s) {
                chains.entry(k.to_owned()).or_default().push(row);
            }
        }
        for rows in chains.values_mut() {
            rows.sort_by(|a, b| a.id().cmp(b.id()));
        }
        Ok(chains)
    }

    /// A row `id` of `key` with no value and no log entry, of this chain's capacity.
    pub(crate) fn empty_row(&self, key: &str, id: &str) -> Item {
        let mut item = Item::new();
        item.insert(DAAL_KEY.into(), key.into());
        item.insert(DAAL_ROW.into(), id.into());
        item.insert(LOGS.into(), AttrValue::M(Default::default()));
        item.insert(LOG_COUNT.into(), 0.into());
        item.insert(GC_COUNT.into(), 0.into());
        item.insert(CAPACITY.into(), AttrValue::from(self.capacity as i64));
        item
    }

    /// Creates the first row of `key` unless it exists; returns its id.
    pub async fn create_head(&self, key: &str) -> Result<String, StoreError> {
        let id = row_id(0);
        let item = self.empty_row(key, &id);
        match self
            .store
            .put(Put::new(self.table, item).if_absent(DAAL_KEY))
            .await
        {
            Ok(_) => Ok(id),
            Err(e) if e.is_condition_failed() => Ok(id), // another writer created it
            Err(e) => Err(e),
        }
    }

    /// The id and item of the successor of the full row `full` of `key`, empty but for what
    /// it starts with: the full row's value and lock holder.
    pub(crate) fn successor_row(
        &self,
        key: &str,
        full: &Row,
    ) -> Result<(String, Item), StoreError> {
        let id = next_row_id(full.id())?;
        let mut item = self.empty_row(key, &id);
        for attr in [VALUE, HOLDER, HOLDER_TS, HOLDER_COORDINATOR] {
            if let Some(v) = full.0.get(attr) {
                item.insert(attr.into(), v.clone());
            }
        }
        Ok((id, item))
    }

    /// Appends a successor to the full row `full` (or follows the existing one); returns its
    /// id. The new row starts with the full row's value and lock holder.
    pub async fn append(&self, key: &str, full: &Row) -> Result<String, StoreError> {
        if let Some(next) = full.next() {
            return Ok(next.to_owned());
        }
        let (id, item) = self.successor_row(key, full)?;
        let created = match self
            .store
            .put(Put::new(self.table, item).if_absent(DAAL_KEY))
            .await
        {
            Ok(_) => true,
            Err(e) if e.is_condition_failed() => false, // a racing appender created the same row
            Err(e) => return Err(e),
        };
        let link = Update::new(self.table, Self::key(key, full.id()))
            .action(UpdateAction::set(NEXT, id.clone()))
            .condition(Condition::not_exists(NEXT))
            .return_item_on_failure();
        match self.store.update(link).await {
            Ok(_) => Ok(id),
            Err(StoreError::ConditionFailed {
                item: Some(cur), ..
            }) if cur.get(NEXT).and_then(AttrValue::as_s) == Some(id.as_str()) => {
                Ok(id) // a racing appender linked the same row
            }
            Err(e) if e.is_condition_failed() => {
                // `full` was stale: its successor was linked, filled and collected since.
                // The row just put would be an orphan below the tail: remove it (unless
                // someone wrote to it) and continue at the real tail.
                if created {
                    let orphan = crate::store::Delete::new(self.table, Self::key(key, &id))
                        .condition(Condition::eq(LOG_COUNT, 0));
                    match self.store.delete(orphan).await {
                        Ok(_) => {}
                        Err(e) if e.is_condition_failed() => {}
                        Err(e) => return Err(e),
                    }
                }
                match self.tail(key).await? {
                    Some(t) => Ok(t.id().to_owned()),
                    None => self.create_head(key).await,
                }
            }
            Err(e) => Err(e),
        }
    }
}
