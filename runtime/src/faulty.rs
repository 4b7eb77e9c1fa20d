//! A [`Store`] wrapper that injects the failures DynamoDB produces and DynamoDB Local
//! does not: throttling, transaction conflicts, and responses lost after the write was
//! applied. Decisions come from a seeded generator, so a failing run can be replayed.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use beldi_runtime::embedded::EmbeddedStore;
//! use beldi_runtime::faulty::{FaultConfig, FaultyStore};
//! use beldi_runtime::store::{Key, Store, StoreError, TableSpec};
//! let dir = tempfile::tempdir().unwrap();
//! let cfg = FaultConfig { seed: 7, throttle: 1.0, ..FaultConfig::default() };
//! let store = FaultyStore::new(EmbeddedStore::open(dir.path()).unwrap(), cfg);
//! store.create_table(&TableSpec::new("t_1", "id")).await.unwrap(); // admin calls pass
//! let err = store.get("t_1", &Key::new("k")).await.unwrap_err();
//! assert!(matches!(err, StoreError::Throttled { .. }) && err.is_retryable());
//! # });
//! ```

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::store::{
    BatchGet, BatchWrite, CancellationReason, Delete, Item, Key, Page, Path, Put, Query, Scan,
    Store, StoreError, TableSpec, TransactWrite, Update,
};

/// Rates (0.0–1.0) of each injected failure, and the seed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultConfig {
    /// Seed of the decision generator.
    pub seed: u64,
    /// Probability that a data operation is rejected with [`StoreError::Throttled`] before it
    /// reaches the store (nothing applied).
    pub throttle: f64,
    /// Probability that a write conflicts with a concurrent transaction: single-item writes
    /// fail with [`StoreError::TransactionConflict`], transactions with
    /// [`StoreError::TransactionCancelled`] naming one item as conflicting (nothing applied).
    pub conflict: f64,
    /// Probability that a write is applied and then its response is lost: the caller gets
    /// [`StoreError::Unavailable`] although the write took effect.
    pub lost_response: f64,
}

impl FaultConfig {
    fn check(&self) -> Result<(), StoreError> {
        for (name, p) in [
            ("throttle", self.throttle),
            ("conflict", self.conflict),
            ("lost_response", self.lost_response),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(StoreError::validation(
                    name,
                    format!("a fault rate is between 0 and 1, got {p}"),
                ));
            }
        }
        Ok(())
    }
}

/// How many failures of each kind were injected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Throttled requests.
    pub throttled: u64,
    /// Conflicting writes and transactions.
    pub conflicts: u64,
    /// Writes applied whose response was then lost.
    pub lost_responses: u64,
}

/// Injects failures into the wrapped store.
pub struct FaultyStore<S> {
    inner: S,
    cfg: FaultConfig,
    rng: Mutex<StdRng>,
    throttled: AtomicU64,
    conflicts: AtomicU64,
    lost: AtomicU64,
}

impl<S: Store> FaultyStore<S> {
    /// Wraps `inner`. Rates outside 0–1 are clamped into range.
    pub fn new(inner: S, mut cfg: FaultConfig) -> FaultyStore<S> {
        if cfg.check().is_err() {
            cfg.throttle = cfg.throttle.clamp(0.0, 1.0);
            cfg.conflict = cfg.conflict.clamp(0.0, 1.0);
            cfg.lost_response = cfg.lost_response.clamp(0.0, 1.0);
        }
        FaultyStore {
            inner,
            rng: Mutex::new(StdRng::seed_from_u64(cfg.seed)),
            cfg,
            throttled: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }
    /// Wraps `inner`, rejecting rates outside 0–1.
    pub fn try_new(inner: S, cfg: FaultConfig) -> Result<FaultyStore<S>, StoreError> {
        cfg.check()?;
        Ok(FaultyStore::new(inner, cfg))
    }
    /// What was injected so far.
    pub fn injected(&self) -> FaultCounts {
        FaultCounts {
            throttled: self.throttled.load(Ordering::Relaxed),
            conflicts: self.conflicts.load(Ordering::Relaxed),
            lost_responses: self.lost.load(Ordering::Relaxed),
        }
    }
    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn roll(&self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        // A poisoned generator only means another task panicked mid-roll; keep going.
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        rng.random_bool(p)
    }

    fn before(&self, what: &str, table: &str, is_write: bool) -> Result<(), StoreError> {
        if self.roll(self.cfg.throttle) {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Throttled {
                message: format!("injected: {what} on `{table}` throttled"),
            });
        }
        if is_write && self.roll(self.cfg.conflict) {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::TransactionConflict {
                table: table.to_owned(),
            });
        }
        Ok(())
    }

    fn after<T>(
        &self,
        what: &str,
        table: &str,
        out: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if out.is_ok() && self.roll(self.cfg.lost_response) {
            self.lost.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Unavailable {
                message: format!(
                    "injected: response to {what} on `{table}` lost after it was applied"
                ),
            });
        }
        out
    }
}

#[async_trait]
impl<S: Store> Store for FaultyStore<S> {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }
    async fn create_table(&self, spec: &TableSpec) -> Result<bool, StoreError> {
        self.inner.create_table(spec).await
    }
    async fn delete_table(&self, name: &str) -> Result<bool, StoreError> {
        self.inner.delete_table(name).await
    }
    async fn describe_table(&self, name: &str) -> Result<TableSpec, StoreError> {
        self.inner.describe_table(name).await
    }
    async fn list_tables(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.inner.list_tables(prefix).await
    }
    async fn get(&self, table: &str, key: &Key) -> Result<Option<Item>, StoreError> {
        self.before("get", table, false)?;
        self.inner.get(table, key).await
    }
    async fn get_projected(
        &self,
        table: &str,
        key: &Key,
        projection: &[Path],
    ) -> Result<Option<Item>, StoreError> {
        self.before("get", table, false)?;
        self.inner.get_projected(table, key, projection).await
    }
    async fn batch_get(&self, req: BatchGet) -> Result<Vec<Option<Item>>, StoreError> {
        self.before("batch_get", &req.table, false)?;
        self.inner.batch_get(req).await
    }
    async fn batch_write(&self, req: BatchWrite) -> Result<(), StoreError> {
        let table = req
            .ops
            .first()
            .map(|o| o.table().to_owned())
            .unwrap_or_default();
        // Throttled as a whole (as DynamoDB may); a conflict does not apply to batches.
        self.before("batch_write", &table, false)?;
        let out = self.inner.batch_write(req).await;
        self.after("batch_write", &table, out)
    }
    async fn put(&self, req: Put) -> Result<Option<Item>, StoreError> {
        let table = req.table.clone();
        self.before("put", &table, true)?;
        let out = self.inner.put(req).await;
        self.after("put", &table, out)
    }
    async fn update(&self, req: Update) -> Result<Option<Item>, StoreError> {
        let table = req.table.clone();
        self.before("update", &table, true)?;
        let out = self.inner.update(req).await;
        self.after("update", &table, out)
    }
    async fn delete(&self, req: Delete) -> Result<Option<Item>, StoreError> {
        let table = req.table.clone();
        self.before("delete", &table, true)?;
        let out = self.inner.delete(req).await;
        self.after("delete", &table, out)
    }
    async fn query(&self, req: Query) -> Result<Page, StoreError> {
        self.before("query", &req.table, false)?;
        self.inner.query(req).await
    }
    async fn scan(&self, req: Scan) -> Result<Page, StoreError> {
        self.before("scan", &req.table, false)?;
        self.inner.scan(req).await
    }
    async fn transact_write(&self, req: TransactWrite) -> Result<(), StoreError> {
        let table = req
            .ops
            .first()
            .map(|o| o.table().to_owned())
            .unwrap_or_default();
        self.before("transact_write", &table, false)?;
        if !req.ops.is_empty() && self.roll(self.cfg.conflict) {
            self.conflicts.fetch_add(1, Ordering::Relaxed);
            let victim = self
                .rng
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .random_range(0..req.ops.len());
            let reasons = (0..req.ops.len())
                .map(|i| {
                    if i == victim {
                        CancellationReason::TransactionConflict
                    } else {
                        CancellationReason::None
                    }
                })
                .collect();
            return Err(StoreError::TransactionCancelled { reasons });
        }
        let out = self.inner.transact_write(req).await;
        self.after("transact_write", &table, out)
    }
}
