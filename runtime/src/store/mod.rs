//! The storage abstraction every protocol stands on.
//!
//! [`Store`] mirrors the part of DynamoDB the protocols need: consistent get, conditional
//! put / update / delete, query by partition key with a sort-key prefix, scan, and a
//! multi-item all-or-nothing transaction. Backends: [`crate::embedded`] (default, SQLite on
//! local disk) and `crate::dynamodb` (feature `dynamodb`). Wrappers: [`crate::counting`]
//! (round trips per operation kind) and [`crate::faulty`] (seeded throttling, conflicts and
//! lost responses).
//!
//! Every backend runs the same request validation ([`validate`]) before touching storage, so
//! bad input yields the same [`StoreError`] on both.

mod error;
pub mod eval;
mod expr;
pub mod validate;
mod value;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use error::{CancellationReason, StoreError};
pub use expr::{Condition, MAX_PATH_DEPTH, Path, PathElem, UpdateAction};
pub use value::{AttrValue, Item, Key, KeyType, KeyValue, MAX_NUMBER_DIGITS, Number};

/// DynamoDB's item size limit, in bytes (400 KB).
pub const MAX_ITEM_SIZE: usize = 400 * 1024;
/// DynamoDB's maximum number of items in one transaction.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// A key attribute of a table: its name and type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttr {
    /// The attribute name.
    pub name: String,
    /// The attribute type.
    pub key_type: KeyType,
}

/// The schema of a table: its name and primary key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableSpec {
    /// The table name (3–255 characters of `a-z A-Z 0-9 _ . -`).
    pub name: String,
    /// The partition key attribute.
    pub partition_key: KeyAttr,
    /// The sort key attribute, if any.
    pub sort_key: Option<KeyAttr>,
}

impl TableSpec {
    /// A table with a string partition key `pk` and no sort key.
    pub fn new(name: impl Into<String>, partition_key: impl Into<String>) -> TableSpec {
        TableSpec {
            name: name.into(),
            partition_key: KeyAttr {
                name: partition_key.into(),
                key_type: KeyType::S,
            },
            sort_key: None,
        }
    }
    /// Adds a string sort key.
    pub fn with_sort_key(mut self, name: impl Into<String>) -> TableSpec {
        self.sort_key = Some(KeyAttr {
            name: name.into(),
            key_type: KeyType::S,
        });
        self
    }
    /// Changes the key types.
    pub fn with_key_types(mut self, partition: KeyType, sort: Option<KeyType>) -> TableSpec {
        self.partition_key.key_type = partition;
        if let (Some(sk), Some(t)) = (self.sort_key.as_mut(), sort) {
            sk.key_type = t;
        }
        self
    }
    /// The key of `item` under this schema (validated).
    pub fn key_of(&self, item: &Item) -> Result<Key, StoreError> {
        validate::key_of_item(self, item)
    }
    /// The key attributes of `key` as item attributes.
    pub fn key_item(&self, key: &Key) -> Item {
        let mut item = Item::new();
        item.insert(self.partition_key.name.clone(), key.partition.to_attr());
        if let (Some(sk), Some(v)) = (&self.sort_key, &key.sort) {
            item.insert(sk.name.clone(), v.to_attr());
        }
        item
    }
}

/// What a write returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReturnValues {
    /// Nothing.
    #[default]
    None,
    /// The item as it was before the write (`None` if it did not exist).
    AllOld,
    /// The item as it is after the write (updates only).
    AllNew,
}

/// Write a whole item, replacing any item with the same key.
#[derive(Clone, Debug, PartialEq)]
pub struct Put {
    /// The table.
    pub table: String,
    /// The item, including its key attributes.
    pub item: Item,
    /// Write only if this holds for the current item.
    pub condition: Option<Condition>,
    /// Return the replaced item (`ReturnValues::AllOld`) or nothing.
    pub return_values: ReturnValues,
    /// On a failed condition, return the current item in the error.
    pub return_item_on_failure: bool,
}

impl Put {
    /// A put of `item` into `table`.
    pub fn new(table: impl Into<String>, item: Item) -> Put {
        Put {
            table: table.into(),
            item,
            condition: None,
            return_values: ReturnValues::None,
            return_item_on_failure: false,
        }
    }
    /// Only if `condition` holds.
    pub fn condition(mut self, condition: Condition) -> Put {
        self.condition = Some(condition);
        self
    }
    /// Only if no item with this key exists (put-if-absent).
    pub fn if_absent(self, spec_pk_name: impl Into<String>) -> Put {
        self.condition(Condition::not_exists(Path::attr(spec_pk_name)))
    }
    /// Return the replaced item.
    pub fn return_old(mut self) -> Put {
        self.return_values = ReturnValues::AllOld;
        self
    }
    /// Return the current item when the condition fails.
    pub fn return_item_on_failure(mut self) -> Put {
        self.return_item_on_failure = true;
        self
    }
}

/// Update one item (creating it when missing) with typed actions.
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    /// The table.
    pub table: String,
    /// The item's key.
    pub key: Key,
    /// The actions, at least one, on pairwise non-overlapping paths.
    pub actions: Vec<UpdateAction>,
    /// Update only if this holds for the current item.
    pub condition: Option<Condition>,
    /// What to return.
    pub return_values: ReturnValues,
    /// On a failed condition, return the current item in the error.
    pub return_item_on_failure: bool,
}

impl Update {
    /// An update of `key` in `table` with no actions yet.
    pub fn new(table: impl Into<String>, key: Key) -> Update {
        Update {
            table: table.into(),
            key,
            actions: Vec::new(),
            condition: None,
            return_values: ReturnValues::None,
            return_item_on_failure: false,
        }
    }
    /// Adds an action.
    pub fn action(mut self, action: UpdateAction) -> Update {
        self.actions.push(action);
        self
    }
    /// Adds several actions.
    pub fn actions(mut self, actions: impl IntoIterator<Item = UpdateAction>) -> Update {
        self.actions.extend(actions);
        self
    }
    /// Only if `condition` holds.
    pub fn condition(mut self, condition: Condition) -> Update {
        self.condition = Some(condition);
        self
    }
    /// What to return.
    pub fn returning(mut self, rv: ReturnValues) -> Update {
        self.return_values = rv;
        self
    }
    /// Return the current item when the condition fails.
    pub fn return_item_on_failure(mut self) -> Update {
        self.return_item_on_failure = true;
        self
    }
}

/// Delete one item (no error if it does not exist, unless the condition says so).
#[derive(Clone, Debug, PartialEq)]
pub struct Delete {
    /// The table.
    pub table: String,
    /// The item's key.
    pub key: Key,
    /// Delete only if this holds for the current item.
    pub condition: Option<Condition>,
    /// Return the deleted item (`ReturnValues::AllOld`) or nothing.
    pub return_values: ReturnValues,
    /// On a failed condition, return the current item in the error.
    pub return_item_on_failure: bool,
}

impl Delete {
    /// A delete of `key` from `table`.
    pub fn new(table: impl Into<String>, key: Key) -> Delete {
        Delete {
            table: table.into(),
            key,
            condition: None,
            return_values: ReturnValues::None,
            return_item_on_failure: false,
        }
    }
    /// Only if `condition` holds.
    pub fn condition(mut self, condition: Condition) -> Delete {
        self.condition = Some(condition);
        self
    }
    /// Return the deleted item.
    pub fn return_old(mut self) -> Delete {
        self.return_values = ReturnValues::AllOld;
        self
    }
    /// Return the current item when the condition fails.
    pub fn return_item_on_failure(mut self) -> Delete {
        self.return_item_on_failure = true;
        self
    }
}

/// Check a condition on one item inside a transaction without writing it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConditionCheck {
    /// The table.
    pub table: String,
    /// The item's key.
    pub key: Key,
    /// The condition that must hold.
    pub condition: Condition,
    /// On a failed condition, return the current item in the cancellation reason.
    pub return_item_on_failure: bool,
}

/// One item of a [`TransactWrite`].
#[derive(Clone, Debug, PartialEq)]
pub enum TransactOp {
    /// A (conditional) put.
    Put(Put),
    /// A (conditional) update.
    Update(Update),
    /// A (conditional) delete.
    Delete(Delete),
    /// A condition that must hold, with no write.
    ConditionCheck(ConditionCheck),
}

impl TransactOp {
    /// The table of this item.
    pub fn table(&self) -> &str {
        match self {
            TransactOp::Put(p) => &p.table,
            TransactOp::Update(u) => &u.table,
            TransactOp::Delete(d) => &d.table,
            TransactOp::ConditionCheck(c) => &c.table,
        }
    }
}

/// An all-or-nothing write of up to 100 items, each with its own condition. Either every
/// condition holds and every write is applied, or nothing is and the error says, per item,
/// what failed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TransactWrite {
    /// The items, at most one per (table, key).
    pub ops: Vec<TransactOp>,
    /// An idempotency token: a repeat of the same request with the same token within ten
    /// minutes succeeds without applying anything again (lets a caller retry a lost response).
    pub client_token: Option<String>,
}

impl TransactWrite {
    /// An empty transaction.
    pub fn new() -> TransactWrite {
        TransactWrite::default()
    }
    /// Adds an item.
    pub fn op(mut self, op: TransactOp) -> TransactWrite {
        self.ops.push(op);
        self
    }
    /// Sets the idempotency token.
    pub fn client_token(mut self, token: impl Into<String>) -> TransactWrite {
        self.client_token = Some(token.into());
        self
    }
}

/// Items of one partition, in sort-key order.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The table.
    pub table: String,
    /// The partition key value.
    pub partition: KeyValue,
    /// Only sort keys beginning with this prefix.
    pub sort_prefix: Option<KeyValue>,
    /// At most this many items per page.
    pub limit: Option<usize>,
    /// Continue after this key (the previous page's `last_key`).
    pub start_after: Option<Key>,
    /// Descending sort-key order.
    pub descending: bool,
    /// Only these parts of each item (and its key attributes); `None`: whole items.
    pub projection: Option<Vec<Path>>,
}

impl Query {
    /// All items of `partition` in `table`.
    pub fn new(table: impl Into<String>, partition: impl Into<KeyValue>) -> Query {
        Query {
            table: table.into(),
            partition: partition.into(),
            sort_prefix: None,
            limit: None,
            start_after: None,
            descending: false,
            projection: None,
        }
    }
    /// Only sort keys starting with `prefix`.
    pub fn sort_prefix(mut self, prefix: impl Into<KeyValue>) -> Query {
        self.sort_prefix = Some(prefix.into());
        self
    }
    /// Page size.
    pub fn limit(mut self, limit: usize) -> Query {
        self.limit = Some(limit);
        self
    }
    /// Continue after `key`.
    pub fn start_after(mut self, key: Option<Key>) -> Query {
        self.start_after = key;
        self
    }
    /// Descending order.
    pub fn descending(mut self) -> Query {
        self.descending = true;
        self
    }
    /// Only the parts `paths` name of each item (see [`Store::get_projected`]).
    pub fn project(mut self, paths: impl IntoIterator<Item = Path>) -> Query {
        self.projection = Some(paths.into_iter().collect());
        self
    }
}

impl TableSpec {
    /// The names of its key attributes (what a projection always keeps).
    pub fn key_names(&self) -> Vec<&str> {
        std::iter::once(self.partition_key.name.as_str())
            .chain(self.sort_key.as_ref().map(|s| s.name.as_str()))
            .collect()
    }
}

/// Most keys in one [`BatchGet`] (DynamoDB's `BatchGetItem` limit).
pub const MAX_BATCH_GET: usize = 100;
/// Most operations in one [`BatchWrite`] (DynamoDB's `BatchWriteItem` limit).
pub const MAX_BATCH_WRITE: usize = 25;

/// Consistent reads of up to [`MAX_BATCH_GET`] items of one table in one round trip.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchGet {
    /// The table.
    pub table: String,
    /// The items' keys, distinct.
    pub keys: Vec<Key>,
    /// Only these parts of each item (and its key attributes); `None`: whole items.
    pub projection: Option<Vec<Path>>,
}

impl BatchGet {
    /// A read of the items at `keys` of `table`.
    pub fn new(table: impl Into<String>, keys: impl IntoIterator<Item = Key>) -> BatchGet {
        BatchGet {
            table: table.into(),
            keys: keys.into_iter().collect(),
            projection: None,
        }
    }
    /// Only the parts `paths` name of each item.
    pub fn project(mut self, paths: impl IntoIterator<Item = Path>) -> BatchGet {
        self.projection = Some(paths.into_iter().collect());
        self
    }
}

/// One operation of a [`BatchWrite`]: an unconditional put or delete.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchWriteOp {
    /// Writes a whole item.
    Put {
        /// The table.
        table: String,
        /// The item.
        item: Item,
    },
    /// Deletes an item (nothing if it does not exist).
    Delete {
        /// The table.
        table: String,
        /// The item's key.
        key: Key,
    },
}

impl BatchWriteOp {
    /// The table it writes.
    pub fn table(&self) -> &str {
        match self {
            BatchWriteOp::Put { table, .. } | BatchWriteOp::Delete { table, .. } => table,
        }
    }
}

/// Up to [`MAX_BATCH_WRITE`] unconditional puts and deletes, of distinct items in any
/// tables, in one round trip. Each applies on its own (not all-or-nothing, as on DynamoDB):
/// when it returns `Ok`, all did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchWrite {
    /// The operations.
    pub ops: Vec<BatchWriteOp>,
}

impl BatchWrite {
    /// An empty batch.
    pub fn new() -> BatchWrite {
        BatchWrite::default()
    }
    /// Adds a put of `item` into `table`.
    pub fn put(mut self, table: impl Into<String>, item: Item) -> BatchWrite {
        self.ops.push(BatchWriteOp::Put {
            table: table.into(),
            item,
        });
        self
    }
    /// Adds a delete of `key` from `table`.
    pub fn delete(mut self, table: impl Into<String>, key: Key) -> BatchWrite {
        self.ops.push(BatchWriteOp::Delete {
            table: table.into(),
            key,
        });
        self
    }
}

/// All items of a table, page by page, in no particular order.
#[derive(Clone, Debug, PartialEq)]
pub struct Scan {
    /// The table.
    pub table: String,
    /// At most this many items per page.
    pub limit: Option<usize>,
    /// Continue after this key (the previous page's `last_key`).
    pub start_after: Option<Key>,
}

impl Scan {
    /// A scan of `table`.
    pub fn new(table: impl Into<String>) -> Scan {
        Scan {
            table: table.into(),
            limit: None,
            start_after: None,
        }
    }
    /// Page size.
    pub fn limit(mut self, limit: usize) -> Scan {
        self.limit = Some(limit);
        self
    }
    /// Continue after `key`.
    pub fn start_after(mut self, key: Option<Key>) -> Scan {
        self.start_after = key;
        self
    }
}

/// One page of a query or scan.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    /// The items of this page.
    pub items: Vec<Item>,
    /// Where the next page starts; `None` when this is the last page. A page may be empty
    /// and still have a `last_key` (as on DynamoDB): keep reading until it is `None`.
    pub last_key: Option<Key>,
}

/// Kinds of store operations, for counting round trips.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    /// [`Store::get`] and [`Store::get_projected`].
    Get,
    /// [`Store::put`].
    Put,
    /// [`Store::update`].
    Update,
    /// [`Store::delete`].
    Delete,
    /// [`Store::query`].
    Query,
    /// [`Store::scan`].
    Scan,
    /// [`Store::transact_write`].
    TransactWrite,
    /// [`Store::batch_get`].
    BatchGet,
    /// [`Store::batch_write`].
    BatchWrite,
    /// Table management (create, delete, describe, list).
    Admin,
}

impl OpKind {
    /// Every kind, in display order.
    pub const ALL: [OpKind; 10] = [
        OpKind::Get,
        OpKind::Put,
        OpKind::Update,
        OpKind::Delete,
        OpKind::Query,
        OpKind::Scan,
        OpKind::TransactWrite,
        OpKind::BatchGet,
        OpKind::BatchWrite,
        OpKind::Admin,
    ];
    /// A short lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Put => "put",
            OpKind::Update => "update",
            OpKind::Delete => "delete",
            OpKind::Query => "query",
            OpKind::Scan => "scan",
            OpKind::TransactWrite => "transact_write",
            OpKind::BatchGet => "batch_get",
            OpKind::BatchWrite => "batch_write",
            OpKind::Admin => "admin",
        }
    }
}

/// A DynamoDB-shaped key-value store. Every read is strongly consistent. Every method is one
/// round trip to the backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name of the backend (`"embedded"`, `"dynamodb"`, or a wrapper's).
    fn backend_name(&self) -> &'static str;

    /// Creates a table. Returns `true` if it was created, `false` if a table with the same
    /// schema already existed; a different existing schema is a validation error.
    async fn create_table(&self, spec: &TableSpec) -> Result<bool, StoreError>;

    /// Deletes a table and all its items. Returns `false` if it did not exist.
    async fn delete_table(&self, name: &str) -> Result<bool, StoreError>;

    /// The schema of a table.
    async fn describe_table(&self, name: &str) -> Result<TableSpec, StoreError>;

    /// The names of every table whose name starts with `prefix` (`""`: every table), in
    /// name order (follows the backend's pagination). What the inspector discovers the
    /// functions of a store by.
    async fn list_tables(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    /// Consistent read of one item.
    async fn get(&self, table: &str, key: &Key) -> Result<Option<Item>, StoreError>;

    /// Consistent read of the parts of one item that `projection` names (attributes, map
    /// entries `a.k`, list elements `a[i]`), plus its key attributes: what is absent is
    /// left out; nested parts come back inside their enclosing maps and lists. `None` when
    /// the item does not exist. What a read that needs one entry of a large item uses, so
    /// it does not pay for (or bill) the rest.
    async fn get_projected(
        &self,
        table: &str,
        key: &Key,
        projection: &[Path],
    ) -> Result<Option<Item>, StoreError>;

    /// Consistent reads of several items of one table ([`BatchGet`]), in the order of the
    /// keys asked for (`None`: no such item).
    async fn batch_get(&self, req: BatchGet) -> Result<Vec<Option<Item>>, StoreError>;

    /// Unconditional puts and deletes of several items ([`BatchWrite`]).
    async fn batch_write(&self, req: BatchWrite) -> Result<(), StoreError>;

    /// Writes a whole item. Returns the replaced item when asked.
    async fn put(&self, req: Put) -> Result<Option<Item>, StoreError>;

    /// Updates one item, creating it when missing. Returns what `return_values` asks for.
    async fn update(&self, req: Update) -> Result<Option<Item>, StoreError>;

    /// Deletes one item. Returns the deleted item when asked.
    async fn delete(&self, req: Delete) -> Result<Option<Item>, StoreError>;

    /// One page of a partition, in sort-key order.
    async fn query(&self, req: Query) -> Result<Page, StoreError>;

    /// One page of a whole table.
    async fn scan(&self, req: Scan) -> Result<Page, StoreError>;

    /// An all-or-nothing multi-item write.
    async fn transact_write(&self, req: TransactWrite) -> Result<(), StoreError>;
}

/// Helpers available on every store.
#[async_trait]
pub trait StoreExt: Store {
    /// Every item of a partition (follows pagination).
    async fn query_all(&self, req: Query) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut req = req;
        loop {
            let page = self.query(req.clone()).await?;
            out.extend(page.items);
            match page.last_key {
                Some(k) => req.start_after = Some(k),
                None => return Ok(out),
            }
        }
    }
    /// Deletes the items at `keys` of `table`, [`MAX_BATCH_WRITE`] per round trip
    /// ([`Store::batch_write`]); returns how many keys it was given.
    async fn delete_all(&self, table: &str, keys: Vec<Key>) -> Result<usize, StoreError> {
        for chunk in keys.chunks(MAX_BATCH_WRITE) {
            let req = chunk
                .iter()
                .fold(BatchWrite::new(), |w, k| w.delete(table, k.clone()));
            self.batch_write(req).await?;
        }
        Ok(keys.len())
    }
    /// Every item of a table (follows pagination).
    async fn scan_all(&self, table: &str) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut req = Scan::new(table);
        loop {
            let page = self.scan(req.clone()).await?;
            out.extend(page.items);
            match page.last_key {
                Some(k) => req.start_after = Some(k),
                None => return Ok(out),
            }
        }
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

#[async_trait]
impl<S: Store + ?Sized> Store for std::sync::Arc<S> {
    fn backend_name(&self) -> &'static str {
        (**self).backend_name()
    }
    async fn create_table(&self, spec: &TableSpec) -> Result<bool, StoreError> {
        (**self).create_table(spec).await
    }
    async fn delete_table(&self, name: &str) -> Result<bool, StoreError> {
        (**self).delete_table(name).await
    }
    async fn describe_table(&self, name: &str) -> Result<TableSpec, StoreError> {
        (**self).describe_table(name).await
    }
    async fn list_tables(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        (**self).list_tables(prefix).await
    }
    async fn get(&self, table: &str, key: &Key) -> Result<Option<Item>, StoreError> {
        (**self).get(table, key).await
    }
    async fn get_projected(
        &self,
        table: &str,
        key: &Key,
        projection: &[Path],
    ) -> Result<Option<Item>, StoreError> {
        (**self).get_projected(table, key, projection).await
    }
    async fn batch_get(&self, req: BatchGet) -> Result<Vec<Option<Item>>, StoreError> {
        (**self).batch_get(req).await
    }
    async fn batch_write(&self, req: BatchWrite) -> Result<(), StoreError> {
        (**self).batch_write(req).await
    }
    async fn put(&self, req: Put) -> Result<Option<Item>, StoreError> {
        (**self).put(req).await
    }
    async fn update(&self, req: Update) -> Result<Option<Item>, StoreError> {
        (**self).update(req).await
    }
    async fn delete(&self, req: Delete) -> Result<Option<Item>, StoreError> {
        (**self).delete(req).await
    }
    async fn query(&self, req: Query) -> Result<Page, StoreError> {
        (**self).query(req).await
    }
    async fn scan(&self, req: Scan) -> Result<Page, StoreError> {
        (**self).scan(req).await
    }
    async fn transact_write(&self, req: TransactWrite) -> Result<(), StoreError> {
        (**self).transact_write(req).await
    }
}
