//! A [`Store`] wrapper that counts round trips per operation kind, and the bytes they carry.
//!
//! Every call to the wrapped store is one round trip, whether it succeeds or fails. Protocol
//! cost is reported in round trips per logged operation from these counts. Bytes are
//! DynamoDB's item sizes ([`item_size`](crate::store::validate::item_size)): *read* is every
//! item a call returns (found items, query and scan pages, old or new items, the current item
//! of a failed condition); *written* is what a request sends to be stored (a put's item; an
//! update's key and action values; a delete's key).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use beldi_runtime::counting::CountingStore;
//! use beldi_runtime::embedded::EmbeddedStore;
//! use beldi_runtime::store::{Key, OpKind, Store, TableSpec};
//! let dir = tempfile::tempdir().unwrap();
//! let store = CountingStore::new(EmbeddedStore::open(dir.path()).unwrap());
//! store.create_table(&TableSpec::new("accounts", "id")).await.unwrap();
//! store.get("accounts", &Key::new("alice")).await.unwrap();
//! let counts = store.counts();
//! assert_eq!(counts.get(OpKind::Get), 1);
//! assert_eq!(counts.total_data(), 1); // table creation is not a data round trip
//! # });
//! ```

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use crate::store::validate::{item_size, value_size};
use crate::store::{
    BatchGet, BatchWrite, BatchWriteOp, CancellationReason, Delete, Item, Key, KeyValue, OpKind,
    Page, Path, Put, Query, Scan, Store, StoreError, TableSpec, TransactOp, TransactWrite, Update,
    UpdateAction,
};

/// Round trips per operation kind, and bytes read and written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RttCounts {
    counts: [u64; OpKind::ALL.len()],
    read: u64,
    written: u64,
}

impl RttCounts {
    /// Bytes of the items the calls returned.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }
    /// Bytes the calls sent to be stored.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }
    /// Round trips of one kind.
    pub fn get(&self, kind: OpKind) -> u64 {
        self.counts[kind as usize]
    }
    /// Round trips of every kind but table management.
    pub fn total_data(&self) -> u64 {
        OpKind::ALL
            .iter()
            .filter(|k| **k != OpKind::Admin)
            .map(|k| self.get(*k))
            .sum()
    }
    /// Round trips that write (put, update, delete, transaction, batch write).
    pub fn writes(&self) -> u64 {
        [
            OpKind::Put,
            OpKind::Update,
            OpKind::Delete,
            OpKind::TransactWrite,
            OpKind::BatchWrite,
        ]
        .iter()
        .map(|k| self.get(*k))
        .sum()
    }
    /// The counts since `earlier`.
    pub fn since(&self, earlier: &RttCounts) -> RttCounts {
        let mut out = *self;
        for (o, e) in out.counts.iter_mut().zip(earlier.counts.iter()) {
            *o = o.saturating_sub(*e);
        }
        out.read = self.read.saturating_sub(earlier.read);
        out.written = self.written.saturating_sub(earlier.written);
        out
    }
}

impl fmt::Display for RttCounts {
    /// `get=1 update=2 total=3 read=120B written=64B`, listing only non-zero kinds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for k in OpKind::ALL {
            if self.get(k) > 0 {
                write!(f, "{}={} ", k.name(), self.get(k))?;
            }
        }
        write!(
            f,
            "total={} read={}B written={}B",
            self.total_data(),
            self.read,
            self.written
        )
    }
}

/// Counts round trips of the wrapped store.
pub struct CountingStore<S> {
    inner: S,
    counts: [AtomicU64; OpKind::ALL.len()],
    read: AtomicU64,
    written: AtomicU64,
}

impl<S: Store> CountingStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> CountingStore<S> {
        CountingStore {
            inner,
            counts: Default::default(),
            read: AtomicU64::new(0),
            written: AtomicU64::new(0),
        }
    }
    /// The counts so far.
    pub fn counts(&self) -> RttCounts {
        let mut out = RttCounts::default();
        for (o, c) in out.counts.iter_mut().zip(self.counts.iter()) {
            *o = c.load(Ordering::Relaxed);
        }
        out.read = self.read.load(Ordering::Relaxed);
        out.written = self.written.load(Ordering::Relaxed);
        out
    }
    /// Sets every count to zero.
    pub fn reset(&self) {
        self.counts
            .iter()
            .for_each(|c| c.store(0, Ordering::Relaxed));
        self.read.store(0, Ordering::Relaxed);
        self.written.store(0, Ordering::Relaxed);
    }
    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
    fn tick(&self, kind: OpKind) {
        self.counts[kind as usize].fetch_add(1, Ordering::Relaxed);
    }
    fn wrote(&self, bytes: usize) {
        self.written.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    fn got(&self, bytes: usize) {
        self.read.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    /// Counts the items a call returned: its result, or the current item(s) its failure
    /// carries.
    fn returned<T>(
        &self,
        out: Result<T, StoreError>,
        size: impl Fn(&T) -> usize,
    ) -> Result<T, StoreError> {
        match &out {
            Ok(v) => self.got(size(v)),
            Err(StoreError::ConditionFailed {
                item: Some(item), ..
            }) => self.got(item_size(item)),
            Err(StoreError::TransactionCancelled { reasons }) => {
                for r in reasons {
                    if let CancellationReason::ConditionFailed { item: Some(item) } = r {
                        self.got(item_size(item));
                    }
                }
            }
            Err(_) => {}
        }
        out
    }
}

fn key_size(key: &Key) -> usize {
    let part = |v: &KeyValue| match v {
        KeyValue::S(s) => s.len(),
        KeyValue::B(b) => b.len(),
    };
    part(&key.partition) + key.sort.as_ref().map_or(0, part)
}

fn update_size(u: &Update) -> usize {
    key_size(&u.key)
        + u.actions
            .iter()
            .map(|a| match a {
                UpdateAction::Set(_, v) | UpdateAction::SetIfNotExists(_, v) => value_size(v),
                UpdateAction::Add(_, n) => value_size(&crate::store::AttrValue::N(*n)),
                UpdateAction::Remove(_) => 0,
                UpdateAction::Append(_, vs) => vs.iter().map(value_size).sum(),
            })
            .sum::<usize>()
}

fn page_size(p: &Page) -> usize {
    p.items.iter().map(item_size).sum()
}

fn item_opt(i: &Option<Item>) -> usize {
    i.as_ref().map_or(0, item_size)
}

#[async_trait]
impl<S: Store> Store for CountingStore<S> {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }
    async fn create_table(&self, spec: &TableSpec) -> Result<bool, StoreError> {
        self.tick(OpKind::Admin);
        self.inner.create_table(spec).await
    }
    async fn delete_table(&self, name: &str) -> Result<bool, StoreError> {
        self.tick(OpKind::Admin);
        self.inner.delete_table(name).await
    }
    async fn describe_table(&self, name: &str) -> Result<TableSpec, StoreError> {
        self.tick(OpKind::Admin);
        self.inner.describe_table(name).await
    }
    async fn list_tables(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.tick(OpKind::Admin);
        self.inner.list_tables(prefix).await
    }
    async fn get(&self, table: &str, key: &Key) -> Result<Option<Item>, StoreError> {
        self.tick(OpKind::Get);
        self.returned(self.inner.get(table, key).await, item_opt)
    }
    async fn get_projected(
        &self,
        table: &str,
        key: &Key,
        projection: &[Path],
    ) -> Result<Option<Item>, StoreError> {
        self.tick(OpKind::Get);
        self.returned(
            self.inner.get_projected(table, key, projection).await,
            item_opt,
        )
    }
    async fn batch_get(&self, req: BatchGet) -> Result<Vec<Option<Item>>, StoreError> {
        self.tick(OpKind::BatchGet);
        self.wrote(req.keys.iter().map(key_size).sum());
        self.returned(self.inner.batch_get(req).await, |items| {
            items.iter().map(item_opt).sum()
        })
    }
    async fn batch_write(&self, req: BatchWrite) -> Result<(), StoreError> {
        self.tick(OpKind::BatchWrite);
        self.wrote(
            req.ops
                .iter()
                .map(|op| match op {
                    BatchWriteOp::Put { item, .. } => item_size(item),
                    BatchWriteOp::Delete { key, .. } => key_size(key),
                })
                .sum(),
        );
        self.inner.batch_write(req).await
    }
    async fn put(&self, req: Put) -> Result<Option<Item>, StoreError> {
        self.tick(OpKind::Put);
        self.wrote(item_size(&req.item));
        self.returned(self.inner.put(req).await, item_opt)
    }
    async fn update(&self, req: Update) -> Result<Option<Item>, StoreError> {
        self.tick(OpKind::Update);
        self.wrote(update_size(&req));
        self.returned(self.inner.update(req).await, item_opt)
    }
    async fn delete(&self, req: Delete) -> Result<Option<Item>, StoreError> {
        self.tick(OpKind::Delete);
        self.wrote(key_size(&req.key));
        self.returned(self.inner.delete(req).await, item_opt)
    }
    async fn query(&self, req: Query) -> Result<Page, StoreError> {
        self.tick(OpKind::Query);
        self.returned(self.inner.query(req).await, page_size)
    }
    async fn scan(&self, req: Scan) -> Result<Page, StoreError> {
        self.tick(OpKind::Scan);
        self.returned(self.inner.scan(req).await, page_size)
    }
    async fn transact_write(&self, req: TransactWrite) -> Result<(), StoreError> {
        self.tick(OpKind::TransactWrite);
        for op in &req.ops {
            self.wrote(match op {
                TransactOp::Put(p) => item_size(&p.item),
                TransactOp::Update(u) => update_size(u),
                TransactOp::Delete(d) => key_size(&d.key),
                TransactOp::ConditionCheck(c) => key_size(&c.key),
            });
        }
        self.returned(self.inner.transact_write(req).await, |_| 0)
    }
}
