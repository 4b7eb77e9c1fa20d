//! The embedded backend (the default): a durable [`Store`] in one SQLite database on local
//! disk, with no server.
//!
//! SQLite runs in WAL mode. Writes go through one writer thread, which commits them in
//! groups (see `embedded/writer.rs`): the requests waiting when a commit starts are applied
//! in arrival order inside one `BEGIN IMMEDIATE` transaction, each reading its item and
//! evaluating its condition in Rust ([`crate::store::eval`]) against the state the earlier
//! ones left, and are answered once the group has committed. So conditional writes are atomic also across
//! OS processes sharing the database, and concurrent writers share a commit (and its fsync).
//! Reads use a small pool of reader connections (a read runs on the calling task when one is
//! free) and see every acknowledged write.
//!
//! [`Durability::Fsync`] syncs the WAL before acknowledging a commit (survives power loss;
//! one fsync covers every group committed before it); [`Durability::ProcessCrash`] writes
//! the WAL to the OS on every commit without syncing (survives `kill -9` of the process,
//! not a machine crash), and is several times faster when requests come one at a time.

mod codec;
mod sql;
mod stats;
mod wal;
mod writer;

use sql::{
    SCHEMA, load, load_checked, load_if, load_spec, remove_item, sql_err, store_encoded,
    store_item, updated,
};
pub use stats::CommitStats;
pub use writer::MAX_GROUP;
use writer::{Acks, Writer};

use std::collections::HashMap;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use crate::store::eval::{self, eval_condition};
use crate::store::{
    BatchGet, BatchWrite, BatchWriteOp, CancellationReason, Delete, Item, Key, Page, Path, Put,
    Query, ReturnValues, Scan, Store, StoreError, TableSpec, TransactOp, TransactWrite, Update,
    validate,
};

/// The table schemas seen so far, by name.
type Specs = RwLock<HashMap<String, TableSpec>>;

/// How much a write survives once acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// The WAL is fsynced before a write is acknowledged (one fsync for all the groups
    /// committed since the last): survives power loss and OS crashes.
    #[default]
    Fsync,
    /// No fsync: survives the process being killed (`kill -9`), not a machine crash.
    ProcessCrash,
}

/// Options of [`EmbeddedStore::open_with`].
#[derive(Clone, Debug)]
pub struct EmbeddedOptions {
    /// Durability of acknowledged writes.
    pub durability: Durability,
    /// Number of reader connections.
    pub readers: usize,
    /// How long a writer waits for another process holding the write lock.
    pub busy_timeout: Duration,
    /// Whether concurrent write requests share commits (the default). `false` commits
    /// (and, under [`Durability::Fsync`], syncs) every request alone, one after the other,
    /// as stores without group commit do: the baseline of `bench store`.
    pub group_commit: bool,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            durability: Durability::Fsync,
            readers: 4,
            busy_timeout: Duration::from_secs(30),
            group_commit: true,
        }
    }
}

/// The file name of the database inside the store's directory.
pub const DB_FILE: &str = "beldi.sqlite3";

/// How long a transaction's idempotency token is remembered, as on DynamoDB.
const TOKEN_WINDOW_MS: i64 = 10 * 60 * 1000;

/// A durable [`Store`] in a directory on local disk. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    writer: Writer,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
    specs: Arc<Specs>,
}

fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>, StoreError> {
    m.lock().map_err(|_| StoreError::Io {
        message: "embedded store connection poisoned by a panic".into(),
        source: None,
    })
}

fn open_conn(path: &FsPath, opts: &EmbeddedOptions) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| StoreError::io(format!("cannot open embedded store {}", path.display()), e))?;
    conn.busy_timeout(opts.busy_timeout).map_err(sql_err)?;
    // Every statement the store runs, in all its shapes, stays compiled.
    conn.set_prepared_statement_cache_capacity(64);
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(sql_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Io {
            message: format!("cannot switch {} to WAL mode (got {mode})", path.display()),
            source: None,
        });
    }
    // Commits write the WAL to the OS without syncing it; under `Durability::Fsync` the
    // writer's syncer syncs it before acknowledging (see `writer`). Checkpoints still sync.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sql_err)?;
    Ok(conn)
}

/// The WAL file SQLite keeps beside the database file.
fn wal_path(db: &FsPath) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn page_limit(limit: Option<usize>, what: &str) -> Result<usize, StoreError> {
    match limit {
        Some(0) => Err(StoreError::validation(
            format!("{what} limit 0"),
            "a page limit must be at least 1",
        )),
        Some(n) => Ok(n),
        None => Ok(1 << 40),
    }
}

/// A stable fingerprint of a transaction request, for idempotency tokens.
fn fingerprint(req: &TransactWrite) -> String {
    // FNV-1a over the request's debug rendering (maps are ordered, so it is deterministic).
    let text = format!("{:?}", req.ops);
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}:{}", text.len())
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in directory `dir` with default options
    /// ([`Durability::Fsync`]). Reopening a directory recovers everything acknowledged.
    pub fn open(dir: impl AsRef<FsPath>) -> Result<EmbeddedStore, StoreError> {
        EmbeddedStore::open_with(dir, EmbeddedOptions::default())
    }

    /// Opens (creating if needed) the store in directory `dir`.
    pub fn open_with(
        dir: impl AsRef<FsPath>,
        opts: EmbeddedOptions,
    ) -> Result<EmbeddedStore, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| {
            StoreError::io(
                format!("cannot create store directory {}", dir.display()),
                e,
            )
        })?;
        let path = dir.join(DB_FILE);
        let writer = open_conn(&path, &opts)?;
        writer.execute_batch(SCHEMA).map_err(sql_err)?;
        let readers = (0..opts.readers.max(1))
            .map(|_| open_conn(&path, &opts).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                dir,
                writer: Writer::start(
                    writer,
                    match opts.durability {
                        Durability::ProcessCrash => Acks::OnCommit,
                        Durability::Fsync => Acks::Synced(wal_path(&path)),
                    },
                    opts.group_commit,
                )?,
                readers,
                next_reader: AtomicUsize::new(0),
                specs: Arc::new(RwLock::new(HashMap::new())),
            }),
        })
    }

    /// The store's directory.
    pub fn dir(&self) -> &FsPath {
        &self.inner.dir
    }

    /// How this handle's write requests were grouped into commits since it was opened.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use beldi_runtime::embedded::EmbeddedStore;
    /// use beldi_runtime::store::{Store, TableSpec};
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = EmbeddedStore::open(dir.path()).unwrap();
    /// store.create_table(&TableSpec::new("accounts", "pk")).await.unwrap();
    /// let stats = store.commit_stats();
    /// assert_eq!((stats.groups, stats.requests), (1, 1));
    /// # });
    /// ```
    pub fn commit_stats(&self) -> CommitStats {
        self.inner.writer.stats()
    }

    /// Runs a read on a reader connection. A read is short (an index lookup in pages the
    /// OS has cached), so it runs on the calling thread when a reader connection is free,
    /// sparing two thread switches; when all are busy it waits for one on a blocking
    /// thread.
    async fn reading<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = &self.inner.readers;
        let first = self.inner.next_reader.fetch_add(1, Ordering::Relaxed);
        for k in 0..readers.len() {
            if let Ok(conn) = readers[(first + k) % readers.len()].try_lock() {
                return f(&conn);
            }
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.read(f))
            .await
            .map_err(|e| StoreError::io("embedded store task failed", e))?
    }

    async fn spec(&self, table: &str) -> Result<TableSpec, StoreError> {
        if let Some(s) = self
            .inner
            .specs
            .read()
            .ok()
            .and_then(|m| m.get(table).cloned())
        {
            return Ok(s);
        }
        let name = table.to_owned();
        let specs = self.inner.specs.clone();
        self.reading(move |c| load_spec(&specs, c, &name))
            .await?
            .ok_or_else(|| StoreError::TableNotFound {
                table: table.to_owned(),
            })
    }
}

impl Inner {
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let conn = lock(&self.readers[i])?;
        f(&conn)
    }
}

#[async_trait]
impl Store for EmbeddedStore {
    fn backend_name(&self) -> &'static str {
        "embedded"
    }

    async fn create_table(&self, spec: &TableSpec) -> Result<bool, StoreError> {
        validate::table_spec(spec)?;
        let (new, specs) = (spec.clone(), self.inner.specs.clone());
        let created = self
            .inner
            .writer
            .submit(move |tx| match load_spec(&specs, tx.read(), &new.name)? {
                Some(existing) if existing == new => Ok(false),
                Some(existing) => Err(StoreError::validation(
                    &new.name,
                    format!("table exists with a different schema: {existing:?}"),
                )),
                None => {
                    let json = serde_json::to_string(&new)
                        .map_err(|e| StoreError::io("cannot encode table schema", e))?;
                    tx.write()
                        .execute(
                            "INSERT INTO beldi_tables (name, spec) VALUES (?1, ?2)",
                            params![new.name, json],
                        )
                        .map_err(sql_err)?;
                    Ok(true)
                }
            })
            .await?;
        if let Ok(mut m) = self.inner.specs.write() {
            m.insert(spec.name.clone(), spec.clone());
        }
        Ok(created)
    }

    async fn delete_table(&self, name: &str) -> Result<bool, StoreError> {
        validate::table_name(name)?;
        let (name, specs) = (name.to_owned(), self.inner.specs.clone());
        self.inner
            .writer
            .submit(move |tx| {
                if let Ok(mut m) = specs.write() {
                    m.remove(&name);
                }
                tx.forget_checked_tables();
                let w = tx.write();
                w.execute("DELETE FROM beldi_items WHERE tbl = ?1", params![name])
                    .map_err(sql_err)?;
                let n = w
                    .execute("DELETE FROM beldi_tables WHERE name = ?1", params![name])
                    .map_err(sql_err)?;
                Ok(n > 0)
            })
            .await
    }

    async fn describe_table(&self, name: &str) -> Result<TableSpec, StoreError> {
        validate::table_name(name)?;
        self.spec(name).await
    }

    async fn list_tables(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let prefix = prefix.to_owned();
        self.reading(move |c| sql::table_names(c, &prefix)).await
    }

    async fn get(&self, table: &str, key: &Key) -> Result<Option<Item>, StoreError> {
        let spec = self.spec(table).await?;
        validate::key(&spec, key)?;
        let (table, key) = (table.to_owned(), key.clone());
        self.reading(move |c| load(c, &table, &key)).await
    }

    async fn get_projected(
        &self,
        table: &str,
        key: &Key,
        projection: &[Path],
    ) -> Result<Option<Item>, StoreError> {
        let spec = self.spec(table).await?;
        validate::key(&spec, key)?;
        validate::projection(projection)?;
        let (table, key, paths) = (table.to_owned(), key.clone(), projection.to_vec());
        self.reading(move |c| {
            Ok(load(c, &table, &key)?.map(|i| eval::project(&i, &paths, &spec.key_names())))
        })
        .await
    }

    async fn batch_get(&self, req: BatchGet) -> Result<Vec<Option<Item>>, StoreError> {
        let spec = self.spec(&req.table).await?;
        validate::batch_get(&spec, &req)?;
        // One read transaction: the items as of one moment, as one round trip.
        self.reading(move |c| {
            let tx = c.unchecked_transaction().map_err(sql_err)?;
            let out = req
                .keys
                .iter()
                .map(|k| {
                    Ok(load(&tx, &req.table, k)?.map(|i| match &req.projection {
                        Some(p) => eval::project(&i, p, &spec.key_names()),
                        None => i,
                    }))
                })
                .collect::<Result<Vec<_>, StoreError>>();
            tx.finish().map_err(sql_err)?;
            out
        })
        .await
    }

    async fn batch_write(&self, req: BatchWrite) -> Result<(), StoreError> {
        validate::batch_write(&req)?;
        let mut keys = Vec::with_capacity(req.ops.len());
        for op in &req.ops {
            let spec = self.spec(op.table()).await?;
            keys.push((spec.name.clone(), validate::batch_op(&spec, op)?));
        }
        validate::distinct_items(&keys)?;
        let specs = self.inner.specs.clone();
        self.inner
            .writer
            .submit(move |tx| {
                for (op, (_, key)) in req.ops.iter().zip(&keys) {
                    let existed = load_checked(&specs, tx, op.table(), key)?.is_some();
                    match op {
                        BatchWriteOp::Put { table, item } => {
                            store_item(tx.write(), table, key, item, existed)?
                        }
                        BatchWriteOp::Delete { table, .. } if existed => {
                            remove_item(tx.write(), table, key)?
                        }
                        BatchWriteOp::Delete { .. } => {}
                    }
                }
                Ok(())
            })
            .await
    }

    async fn put(&self, req: Put) -> Result<Option<Item>, StoreError> {
        let spec = self.spec(&req.table).await?;
        let key = validate::put(&spec, &req)?;
        let specs = self.inner.specs.clone();
        let encoded = codec::encode(&req.item);
        self.inner
            .writer
            .submit(move |tx| {
                let cur = load_if(
                    &specs,
                    tx,
                    &req.table,
                    &key,
                    req.condition.as_ref(),
                    req.return_item_on_failure,
                )?;
                store_encoded(tx.write(), &req.table, &key, &encoded, cur.is_some())?;
                Ok(match req.return_values {
                    ReturnValues::AllOld => cur,
                    _ => None,
                })
            })
            .await
    }

    async fn update(&self, req: Update) -> Result<Option<Item>, StoreError> {
        let spec = self.spec(&req.table).await?;
        validate::update(&spec, &req)?;
        let specs = self.inner.specs.clone();
        self.inner
            .writer
            .submit(move |tx| {
                let cur = load_if(
                    &specs,
                    tx,
                    &req.table,
                    &req.key,
                    req.condition.as_ref(),
                    req.return_item_on_failure,
                )?;
                let new = updated(&spec, &req.key, cur.as_ref(), &req)?;
                store_item(tx.write(), &req.table, &req.key, &new, cur.is_some())?;
                Ok(match req.return_values {
                    ReturnValues::None => None,
                    ReturnValues::AllOld => cur,
                    ReturnValues::AllNew => Some(new),
                })
            })
            .await
    }

    async fn delete(&self, req: Delete) -> Result<Option<Item>, StoreError> {
        let spec = self.spec(&req.table).await?;
        validate::key(&spec, &req.key)?;
        if let Some(c) = &req.condition {
            c.validate()?;
        }
        let specs = self.inner.specs.clone();
        self.inner
            .writer
            .submit(move |tx| {
                let cur = load_if(
                    &specs,
                    tx,
                    &req.table,
                    &req.key,
                    req.condition.as_ref(),
                    req.return_item_on_failure,
                )?;
                if cur.is_some() {
                    remove_item(tx.write(), &req.table, &req.key)?;
                }
                Ok(match req.return_values {
                    ReturnValues::AllOld => cur,
                    _ => None,
                })
            })
            .await
    }

    async fn query(&self, req: Query) -> Result<Page, StoreError> {
        let spec = self.spec(&req.table).await?;
        validate::partition(&spec, &req.partition)?;

        if let (Some(p), Some(sk)) = (&req.sort_prefix, &spec.sort_key)
            && p.key_type() != sk.key_type
        {
            return Err(StoreError::validation(
                &sk.name,
                "sort key prefix has the wrong type",
            ));
        }
        if req.sort_prefix.is_some() && spec.sort_key.is_none() {
            return Err(StoreError::validation(
                &req.table,
                "the table has no sort key to match a prefix against",
            ));
        }
        if let Some(k) = &req.start_after {
            validate::key(&spec, k)?;
        }
        let limit = page_limit(req.limit, "query")?;
        if let Some(p) = &req.projection {
            validate::projection(p)?;
        }
        self.reading(move |c| {
            let mut page = sql::query_page(c, &spec, &req, limit)?;
            if let Some(p) = &req.projection {
                for item in &mut page.items {
                    *item = eval::project(item, p, &spec.key_names());
                }
            }
            Ok(page)
        })
        .await
    }

    async fn scan(&self, req: Scan) -> Result<Page, StoreError> {
        let spec = self.spec(&req.table).await?;
        if let Some(k) = &req.start_after {
            validate::key(&spec, k)?;
        }
        let limit = page_limit(req.limit, "scan")?;
        self.reading(move |c| sql::scan_page(c, &spec, &req, limit))
            .await
    }

    async fn transact_write(&self, req: TransactWrite) -> Result<(), StoreError> {
        validate::transaction(&req)?;
        let mut specs = Vec::with_capacity(req.ops.len());
        let mut keys = Vec::with_capacity(req.ops.len());
        for op in &req.ops {
            let spec = self.spec(op.table()).await?;
            keys.push((spec.name.clone(), validate::transact_op(&spec, op)?));
            specs.push(spec);
        }
        validate::distinct_items(&keys)?;
        let known = self.inner.specs.clone();
        // The token's fingerprint and the puts are made here, so the writer thread does not.
        let fp = req.client_token.as_ref().map(|_| fingerprint(&req));
        let mut encoded: Vec<Option<Vec<u8>>> = req
            .ops
            .iter()
            .map(|op| match op {
                TransactOp::Put(p) => Some(codec::encode(&p.item)),
                _ => None,
            })
            .collect();
        self.inner
            .writer
            .submit(move |tx| {
                let r = tx.read();
                if let (Some(token), Some(fp)) = (&req.client_token, &fp) {
                    let seen: Option<(String, i64)> = r
                        .prepare_cached(
                            "SELECT fingerprint, at_ms FROM beldi_tokens WHERE token = ?1",
                        )
                        .map_err(sql_err)?
                        .query_row(params![token], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                        .map_err(sql_err)?;
                    if let Some((seen_fp, at)) = seen
                        && now_ms() - at < TOKEN_WINDOW_MS
                    {
                        if seen_fp == *fp {
                            return Ok(()); // already applied: succeed without writing
                        }
                        return Err(StoreError::validation(
                            token,
                            "idempotent parameter mismatch: this client token was used with a different request",
                        ));
                    }
                }
                // Every condition is checked and every new item made before the first write.
                let mut writes = Vec::with_capacity(req.ops.len());
                let mut reasons = Vec::with_capacity(req.ops.len());
                for (((op, spec), (table, key)), put) in
                    req.ops.iter().zip(&specs).zip(&keys).zip(&mut encoded)
                {
                    let cur = load_checked(&known, tx, table, key)?;
                    let (cond, want) = match op {
                        TransactOp::Put(p) => (p.condition.as_ref(), p.return_item_on_failure),
                        TransactOp::Update(u) => (u.condition.as_ref(), u.return_item_on_failure),
                        TransactOp::Delete(d) => (d.condition.as_ref(), d.return_item_on_failure),
                        TransactOp::ConditionCheck(c) => {
                            (Some(&c.condition), c.return_item_on_failure)
                        }
                    };
                    let mut reason = CancellationReason::None;
                    let mut write = None;
                    if let Some(c) = cond
                        && !eval_condition(cur.as_ref(), c)
                    {
                        reason = CancellationReason::ConditionFailed {
                            item: if want { cur.map(Box::new) } else { None },
                        };
                    } else {
                        let existed = cur.is_some();
                        write = match op {
                            TransactOp::Put(_) => Some((put.take(), existed)),
                            TransactOp::Update(u) => match updated(spec, key, cur.as_ref(), u) {
                                Ok(new) => Some((Some(codec::encode(&new)), existed)),
                                Err(StoreError::ItemTooLarge { .. }) => {
                                    reason = CancellationReason::ItemTooLarge;
                                    None
                                }
                                Err(e) => return Err(e),
                            },
                            TransactOp::Delete(_) => Some((None, existed)),
                            TransactOp::ConditionCheck(_) => None,
                        };
                    }
                    reasons.push(reason);
                    writes.push(write);
                }
                if reasons
                    .iter()
                    .any(|r| !matches!(r, CancellationReason::None))
                {
                    return Err(StoreError::TransactionCancelled { reasons });
                }
                for ((table, key), write) in keys.iter().zip(writes) {
                    match write {
                        Some((Some(bytes), existed)) => {
                            store_encoded(tx.write(), table, key, &bytes, existed)?
                        }
                        Some((None, _)) => remove_item(tx.write(), table, key)?,
                        None => {}
                    }
                }
                if let (Some(token), Some(fp)) = (&req.client_token, &fp) {
                    let (w, now) = (tx.write(), now_ms());
                    w.prepare_cached(
                        "INSERT OR REPLACE INTO beldi_tokens (token, fingerprint, at_ms) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(sql_err)?
                    .execute(params![token, fp, now])
                    .map_err(sql_err)?;
                    w.prepare_cached("DELETE FROM beldi_tokens WHERE at_ms < ?1")
                        .map_err(sql_err)?
                        .execute(params![now - TOKEN_WINDOW_MS])
                        .map_err(sql_err)?;
                }
                Ok(())
            })
            .await
    }
}
