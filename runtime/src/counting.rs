//! A [`Store`] wrapper that counts round trips per operation kind.
//!
//! Every call to the wrapped store is one round trip, whether it succeeds or fails. Protocol
//! cost is reported in round trips per logged operation from these counts.
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

use crate::store::{
    Delete, Item, Key, OpKind, Page, Put, Query, Scan, Store, StoreError, TableSpec, TransactWrite,
    Update,
};

/// Round trips per operation kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RttCounts {
    counts: [u64; OpKind::ALL.len()],
}

impl RttCounts {
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
    /// Round trips that write (put, update, delete, transaction).
    pub fn writes(&self) -> u64 {
        [
            OpKind::Put,
            OpKind::Update,
            OpKind::Delete,
            OpKind::TransactWrite,
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
        out
    }
}

impl fmt::Display for RttCounts {
    /// `get=1 update=2 total=3`, listing only non-zero kinds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for k in OpKind::ALL {
            if self.get(k) > 0 {
                write!(f, "{}={} ", k.name(), self.get(k))?;
            }
        }
        write!(f, "total={}", self.total_data())
    }
}

/// Counts round trips of the wrapped store.
pub struct CountingStore<S> {
    inner: S,
    counts: [AtomicU64; OpKind::ALL.len()],
}

impl<S: Store> CountingStore<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> CountingStore<S> {
        CountingStore {
            inner,
            counts: Default::default(),
        }
    }
    /// The counts so far.
    pub fn counts(&self) -> RttCounts {
        let mut out = RttCounts::default();
        for (o, c) in out.counts.iter_mut().zip(self.counts.iter()) {
            *o = c.load(Ordering::Relaxed);
        }
        out
    }
    /// Sets every count to zero.
    pub fn reset(&self) {
        self.counts
            .iter()
            .for_each(|c| c.store(0, Ordering::Relaxed));
    }
    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
    fn tick(&self, kind: OpKind) {
        self.counts[kind as usize].fetch_add(1, Ordering::Relaxed);
    }
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
    async fn get(&self, table: &str, key: &Key) -> Result<Option<Item>, StoreError> {
        self.tick(OpKind::Get);
        self.inner.get(table, key).await
    }
    async fn put(&self, req: Put) -> Result<Option<Item>, StoreError> {
        self.tick(OpKind::Put);
        self.inner.put(req).await
    }
    async fn update(&self, req: Update) -> Result<Option<Item>, StoreError> {
        self.tick(OpKind::Update);
        self.inner.update(req).await
    }
    async fn delete(&self, req: Delete) -> Result<Option<Item>, StoreError> {
        self.tick(OpKind::Delete);
        self.inner.delete(req).await
    }
    async fn query(&self, req: Query) -> Result<Page, StoreError> {
        self.tick(OpKind::Query);
        self.inner.query(req).await
    }
    async fn scan(&self, req: Scan) -> Result<Page, StoreError> {
        self.tick(OpKind::Scan);
        self.inner.scan(req).await
    }
    async fn transact_write(&self, req: TransactWrite) -> Result<(), StoreError> {
        self.tick(OpKind::TransactWrite);
        self.inner.transact_write(req).await
    }
}
