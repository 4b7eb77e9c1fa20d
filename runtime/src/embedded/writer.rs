//! Group commit: one writer thread owns the database's write connection and applies the
//! write requests that are waiting, in arrival order, inside one SQLite transaction, with
//! one commit per group.
//!
//! Each request runs against the state the earlier requests of its group left and gets its
//! own answer: its result, or its own refusal (`ConditionFailed`, `TransactionCancelled`,
//! …). A request refuses before it writes anything, so a refusal leaves the group intact.
//! A request that fails *after* writing (an SQLite error mid-write) cannot be undone alone:
//! the whole group rolls back and every request in it gets an error (even one that had
//! refused: it was refused on state that was rolled back). No request is
//! answered before its group has committed (and, under [`super::Durability::Fsync`], been
//! synced), so nothing is acknowledged before it is durable; a group that fails to commit
//! is answered with the failure, and none of it is applied.
//!
//! Batching is natural: while one group commits, the next requests queue, and the next
//! group takes all of them. A request alone is committed at once. Without grouping
//! (`EmbeddedOptions::group_commit: false`) every request is committed, and synced, alone.
//!
//! Under [`super::Durability::Fsync`] the fsync is pipelined: SQLite commits without
//! syncing (`synchronous=NORMAL`), and a syncer thread syncs the WAL file and only then
//! answers the groups committed before that sync; meanwhile the writer already applies the
//! next group. (When the syncer is idle and no request waits, the writer syncs a group
//! itself: a lone request is not handed from thread to thread.) One fsync covers every
//! group committed before it (the WAL is appended in order), so under load there are fewer
//! fsyncs than commits. A synced WAL is what SQLite's
//! own `synchronous=FULL` gives a WAL-mode commit, so an acknowledged write survives power
//! loss as before. Readers may see a committed group whose fsync is still running; any
//! acknowledged write made after such a read sits later in the WAL, so it is durable only
//! together with what was read.
//!
//! The WAL file and its syncing are in `wal.rs`; the commit statistics in `stats.rs`.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::stats::{CommitStats, Histogram};
use super::wal::Wal;
use crate::store::StoreError;

/// The most requests one group takes (bounds a group's latency).
pub const MAX_GROUP: usize = 1024;

/// The write connection as a request sees it, inside its group's transaction.
pub struct GroupTx<'a> {
    conn: &'a Connection,
    writes: Cell<usize>,
    /// Tables found to exist earlier in this group.
    checked: RefCell<HashSet<String>>,
}

impl<'a> GroupTx<'a> {
    /// The connection, to read with.
    pub fn read(&self) -> &'a Connection {
        self.conn
    }

    /// The connection, to write with: from here on, a failure of the request fails its
    /// whole group.
    pub fn write(&self) -> &'a Connection {
        self.writes.set(self.writes.get() + 1);
        self.conn
    }

    /// Whether table `name` was found to exist earlier in this group (so it still does,
    /// inside the group's transaction).
    pub fn table_checked(&self, name: &str) -> bool {
        self.checked.borrow().contains(name)
    }

    /// Notes that table `name` exists.
    pub fn mark_table_checked(&self, name: &str) {
        self.checked.borrow_mut().insert(name.to_owned());
    }

    /// Forgets which tables exist (a request deletes one).
    pub fn forget_checked_tables(&self) {
        self.checked.borrow_mut().clear();
    }
}

/// Why a whole group failed.
#[derive(Clone, Debug)]
pub(super) struct GroupFailure {
    pub(super) message: String,
    pub(super) busy: bool,
}

impl GroupFailure {
    fn from_sql(what: &str, e: &rusqlite::Error) -> GroupFailure {
        GroupFailure {
            message: format!("embedded store: {what}: {e}"),
            busy: super::sql::is_busy(e),
        }
    }

    fn to_error(&self) -> StoreError {
        if self.busy {
            StoreError::Throttled {
                message: self.message.clone(),
            }
        } else {
            StoreError::Io {
                message: self.message.clone(),
                source: None,
            }
        }
    }
}

/// A queued request, type-erased.
trait Job: Send {
    /// Runs the request inside the group's transaction. `Err`: it failed after writing,
    /// and the group must roll back.
    fn run(&mut self, tx: &GroupTx<'_>) -> Result<(), GroupFailure>;

    /// Answers the caller once the group's fate is known.
    fn answer(self: Box<Self>, group: Result<(), &GroupFailure>);
}

struct Request<T, F> {
    apply: Option<F>,
    out: Option<Result<T, StoreError>>,
    /// Whether this request's failure after writing rolled its group back.
    failed_group: bool,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Request<T, F>
where
    T: Send,
    F: FnOnce(&GroupTx<'_>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, tx: &GroupTx<'_>) -> Result<(), GroupFailure> {
        let Some(apply) = self.apply.take() else {
            return Ok(());
        };
        let before = tx.writes.get();
        let out = apply(tx);
        let failed = match &out {
            Err(e) if tx.writes.get() > before => Some(GroupFailure {
                message: format!(
                    "embedded store: a request of this commit group failed after writing, \
                     so the whole group rolled back: {e}"
                ),
                busy: false,
            }),
            _ => None,
        };
        self.out = Some(out);
        self.failed_group = failed.is_some();
        failed.map_or(Ok(()), Err)
    }

    fn answer(self: Box<Self>, group: Result<(), &GroupFailure>) {
        let answer = match (group, self.out) {
            (Ok(()), Some(out)) => out,
            // Its own failure rolled the group back: it gets its own error.
            (Err(_), Some(Err(own))) if self.failed_group => Err(own),
            // Any other answer (even a refusal) was reached on state that was rolled back.
            (Err(g), _) => Err(g.to_error()),
            (Ok(()), None) => Err(StoreError::Io {
                message: "embedded store: a write request was never run".into(),
                source: None,
            }),
        };
        // The caller may have stopped waiting (its future was dropped): nothing to do.
        let _ = self.reply.send(answer);
    }
}

/// Groups committed and waiting for the WAL sync that acknowledges them.
type Committed = Vec<Box<dyn Job>>;

/// The writer thread (and the syncer thread, if any) and the queue to it. Dropping it lets
/// the threads finish the queued requests, close the connection and exit, and waits for
/// that.
pub struct Writer {
    queue: Option<mpsc::Sender<Box<dyn Job>>>,
    threads: Vec<JoinHandle<()>>,
    stats: Arc<Mutex<Histogram>>,
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, StoreError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map_err(|e| {
            StoreError::io(
                format!("cannot start the embedded store's {name} thread"),
                e,
            )
        })
}

/// When a committed group is answered.
#[derive(Clone, Debug)]
pub enum Acks {
    /// Once committed (the OS has the WAL; no fsync).
    OnCommit,
    /// Once the WAL file at this path is synced: by a syncer thread while the writer goes
    /// on with the next group or, without grouping, by the writer before the next request.
    Synced(PathBuf),
}

/// What the writer does with a committed group.
enum Then {
    /// Answers it.
    Answer,
    /// Hands it over to the syncer; but when the syncer is idle and no request waits, syncs
    /// it itself (sparing a lone request a thread switch).
    HandOver {
        syncer: mpsc::Sender<Committed>,
        /// Groups handed over and not yet answered.
        pending: Arc<AtomicUsize>,
        wal: Wal,
    },
    /// Syncs it, then answers it.
    SyncHere(Wal),
}

impl Writer {
    /// Starts the writer thread on `conn`, which must commit without syncing; `acks` says
    /// when a committed group is answered. Without `grouping`, every request is committed
    /// (and synced) alone, one after the other, as with no group commit at all.
    pub fn start(conn: Connection, acks: Acks, grouping: bool) -> Result<Writer, StoreError> {
        let (queue, jobs) = mpsc::channel::<Box<dyn Job>>();
        let stats = Arc::new(Mutex::new(Histogram::default()));
        let mut threads = Vec::new();
        let (then, max_group) = match (acks, grouping) {
            (Acks::OnCommit, true) => (Then::Answer, MAX_GROUP),
            (Acks::OnCommit, false) => (Then::Answer, 1),
            (Acks::Synced(path), grouping) => {
                let wal = || Wal::new(path.clone(), stats.clone());
                if !grouping {
                    (Then::SyncHere(wal()), 1)
                } else {
                    let (to_sync, committed) = mpsc::channel::<Committed>();
                    let pending = Arc::new(AtomicUsize::new(0));
                    let (syncer_wal, left) = (wal(), pending.clone());
                    threads.push(spawn("beldi-embedded-syncer", move || {
                        sync_loop(syncer_wal, committed, left)
                    })?);
                    let then = Then::HandOver {
                        syncer: to_sync,
                        pending,
                        wal: wal(),
                    };
                    (then, MAX_GROUP)
                }
            }
        };
        let counts = stats.clone();
        threads.push(spawn("beldi-embedded-writer", move || {
            run(conn, jobs, then, max_group, counts)
        })?);
        Ok(Writer {
            queue: Some(queue),
            threads,
            stats,
        })
    }

    /// Queues `apply` to run in the next group and waits for its answer, given once its
    /// group committed. `apply` reads with [`GroupTx::read`] and writes with
    /// [`GroupTx::write`], and must refuse (return its error) before its first write.
    pub async fn submit<T, F>(&self, apply: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&GroupTx<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Request {
            apply: Some(apply),
            out: None,
            failed_group: false,
            reply,
        });
        let stopped = || StoreError::Io {
            message: "embedded store: the writer thread has stopped".into(),
            source: None,
        };
        self.queue
            .as_ref()
            .ok_or_else(stopped)?
            .send(job)
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// How requests were grouped so far.
    pub fn stats(&self) -> CommitStats {
        match self.stats.lock() {
            Ok(h) => CommitStats::from_sizes(h.by_size.clone(), h.syncs),
            Err(_) => CommitStats::default(),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // The writer ends once its queue is closed and empty; the syncer once the writer
        // (which holds its queue) ended.
        drop(self.queue.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The writer thread: takes every waiting request as one group, commits it, and answers it
/// (or, with a syncer, hands it over to be answered once synced).
fn run(
    mut conn: Connection,
    jobs: mpsc::Receiver<Box<dyn Job>>,
    mut then: Then,
    max_group: usize,
    stats: Arc<Mutex<Histogram>>,
) {
    // A request taken to see whether one waits, which starts the next group.
    let mut next: Option<Box<dyn Job>> = None;
    loop {
        let first = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        let mut group = vec![first];
        while group.len() < max_group {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let outcome = commit(&mut conn, &mut group);
        if let Ok(mut h) = stats.lock() {
            if h.by_size.len() <= group.len() {
                h.by_size.resize(group.len() + 1, 0);
            }
            h.by_size[group.len()] += 1;
        }
        match (outcome, &mut then) {
            (
                Ok(()),
                Then::HandOver {
                    syncer,
                    pending,
                    wal,
                },
            ) => {
                if pending.load(Ordering::Acquire) == 0 {
                    match jobs.try_recv() {
                        Ok(job) => next = Some(job),
                        Err(_) => {
                            answer(group, &wal.sync());
                            continue;
                        }
                    }
                }
                pending.fetch_add(1, Ordering::AcqRel);
                if let Err(mpsc::SendError(group)) = syncer.send(group) {
                    pending.fetch_sub(1, Ordering::AcqRel);
                    let stopped = GroupFailure {
                        message: "embedded store: the syncer thread has stopped".into(),
                        busy: false,
                    };
                    answer(group, &Err(stopped));
                }
            }
            (Ok(()), Then::SyncHere(wal)) => answer(group, &wal.sync()),
            (outcome, _) => answer(group, &outcome),
        }
    }
}

/// Answers every request of `jobs` with `outcome`.
fn answer(jobs: Vec<Box<dyn Job>>, outcome: &Result<(), GroupFailure>) {
    for job in jobs {
        job.answer(outcome.as_ref().map(|_| ()));
    }
}

/// The syncer thread: syncs the WAL once for every group committed since the last sync,
/// then answers them.
fn sync_loop(mut wal: Wal, committed: mpsc::Receiver<Committed>, pending: Arc<AtomicUsize>) {
    while let Ok(mut jobs) = committed.recv() {
        let mut groups = 1;
        while let Ok(more) = committed.try_recv() {
            jobs.extend(more);
            groups += 1;
        }
        answer(jobs, &wal.sync());
        pending.fetch_sub(groups, Ordering::AcqRel);
    }
}

/// Runs a group in one `BEGIN IMMEDIATE` transaction and commits it.
fn commit(conn: &mut Connection, group: &mut [Box<dyn Job>]) -> Result<(), GroupFailure> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| GroupFailure::from_sql("cannot begin a write transaction", &e))?;
    let gtx = GroupTx {
        conn: &tx,
        writes: Cell::new(0),
        checked: RefCell::new(HashSet::new()),
    };
    for job in group.iter_mut() {
        // Dropping `tx` on failure rolls the group back. A panicking request (a bug) fails
        // its group rather than the writer thread.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(&gtx))).map_err(
            |_| GroupFailure {
                message: "embedded store: a write request panicked; its group rolled back".into(),
                busy: false,
            },
        )??;
    }
    tx.commit()
        .map_err(|e| GroupFailure::from_sql("cannot commit a write group", &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn writer() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE r (k TEXT PRIMARY KEY);")
            .unwrap();
        let wal = dir.path().join("w.db-wal");
        (dir, Writer::start(conn, Acks::Synced(wal), true).unwrap())
    }

    fn insert(k: &'static str) -> impl FnOnce(&GroupTx<'_>) -> Result<(), StoreError> + Send {
        move |tx| {
            tx.write()
                .execute("INSERT INTO r (k) VALUES (?1)", [k])
                .map(|_| ())
                .map_err(|e| StoreError::io("insert", e))
        }
    }

    fn rows(dir: &tempfile::TempDir) -> Vec<String> {
        let c = Connection::open(dir.path().join("w.db")).unwrap();
        let mut st = c.prepare("SELECT k FROM r ORDER BY k").unwrap();
        st.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// While a slow request holds the writer, the next requests queue and form one group:
    /// one of them fails after writing, so the group rolls back and each of them says so;
    /// a request that refuses before writing leaves its group intact.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_failing_after_writing_rolls_its_group_back() {
        let (dir, w) = writer();
        let w = Arc::new(w);
        let slow = {
            let w = w.clone();
            tokio::spawn(async move {
                w.submit(|tx| {
                    std::thread::sleep(Duration::from_millis(300));
                    insert("slow")(tx)
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (refused, failing, other) = tokio::join!(
            // Refuses, on a state the group then rolls back.
            w.submit(|_| Err::<(), _>(StoreError::validation("refused", "before writing"))),
            async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                w.submit(|tx| {
                    insert("failing")(tx)?;
                    Err::<(), _>(StoreError::validation("failing", "fails after writing"))
                })
                .await
            },
            async {
                tokio::time::sleep(Duration::from_millis(40)).await;
                w.submit(insert("other")).await
            },
        );
        slow.await.unwrap().unwrap();
        assert!(
            matches!(&failing, Err(StoreError::Validation { name, .. }) if name == "failing"),
            "its own error: {failing:?}"
        );
        for r in [&refused, &other] {
            assert!(
                matches!(r, Err(StoreError::Io { message, .. }) if message.contains("rolled back")),
                "the group's: {r:?}"
            );
        }
        assert_eq!(rows(&dir), ["slow"]);
        assert_eq!(
            w.stats().by_size.get(3),
            Some(&1),
            "the three shared a group"
        );

        // A refusal before writing spares the others of its group.
        let slow = {
            let w = w.clone();
            tokio::spawn(async move {
                w.submit(|_| {
                    std::thread::sleep(Duration::from_millis(300));
                    Ok(())
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (refused, kept) = tokio::join!(
            w.submit(|_| Err::<(), _>(StoreError::validation("refused", "before writing"))),
            async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                w.submit(insert("kept")).await
            },
        );
        slow.await.unwrap().unwrap();
        assert!(matches!(refused, Err(StoreError::Validation { .. })));
        kept.unwrap();
        assert_eq!(rows(&dir), ["kept", "slow"]);
        assert_eq!(w.stats().by_size.get(2), Some(&1));
    }

    /// A panicking request fails its group, not the writer.
    #[tokio::test]
    async fn a_panicking_request_fails_only_its_group() {
        let (dir, w) = writer();
        let r = w
            .submit(|_| -> Result<(), StoreError> { panic!("a bug") })
            .await;
        assert!(
            matches!(&r, Err(StoreError::Io { message, .. }) if message.contains("panicked")),
            "{r:?}"
        );
        w.submit(insert("after")).await.unwrap();
        assert_eq!(rows(&dir), ["after"]);
    }
}
