//! The benchmarks behind `cargo run --release -p beldi-examples --bin bench -- all`: protocol
//! cost per operation, application overhead against the baseline, GC and DAAL growth,
//! transactions under contention, and embedded-store throughput. Each part returns a
//! Markdown section and writes its PNG plots; [`Report`] puts them together with the
//! machine and the run's settings. Nothing here asserts timings: a run only measures.

pub mod apps;
pub mod fns;
pub mod gc;
pub mod ops;
pub mod plot;
pub mod store;
pub mod txn;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use beldi::counting::CountingStore;
use beldi::platform::Mode;
use beldi::prelude::*;

/// How long a run is.
#[derive(Clone, Debug, PartialEq)]
pub struct Scale {
    /// Its name in the report.
    pub name: &'static str,
    /// Runs per point for the noisy figures (the median is reported).
    pub repeats: usize,
    /// Measured instances per operation (after warm-up).
    pub op_samples: usize,
    /// Full DAAL rows of the hot key before the grown-key measurements.
    pub grown_rows: u64,
    /// Requests per application run.
    pub app_requests: u32,
    /// Closed-loop client counts.
    pub clients: Vec<usize>,
    /// Open-loop rates (requests per second).
    pub rates: Vec<f64>,
    /// Length of the GC experiment and its write rate.
    pub gc_secs: u64,
    /// Writes per second in the GC experiment.
    pub gc_rate: u64,
    /// Reservations per transaction point.
    pub txn_requests: u32,
    /// Concurrency levels of the transaction experiment.
    pub txn_concurrency: Vec<usize>,
    /// Instances per store-throughput point with up to 8 in flight (more in flight: this
    /// many per 8).
    pub store_ops: usize,
    /// Requests of each main-job run in the store section.
    pub store_job_requests: u32,
}

impl Scale {
    /// A few samples of everything: for CI, so the benchmarks never rot.
    pub fn smoke() -> Scale {
        Scale {
            name: "smoke",
            repeats: 1,
            op_samples: 4,
            grown_rows: 3,
            app_requests: 12,
            clients: vec![1, 4],
            rates: vec![50.0],
            gc_secs: 2,
            gc_rate: 20,
            txn_requests: 12,
            txn_concurrency: vec![1, 4],
            store_ops: 32,
            store_job_requests: 12,
        }
    }
    /// The committed results: minutes, not hours, on two cores.
    pub fn standard() -> Scale {
        Scale {
            name: "standard",
            repeats: 3,
            op_samples: 60,
            grown_rows: 20,
            app_requests: 150,
            clients: vec![1, 4, 16],
            rates: vec![50.0, 100.0, 200.0, 400.0],
            gc_secs: 40,
            gc_rate: 50,
            txn_requests: 200,
            txn_concurrency: vec![1, 4, 16, 32],
            store_ops: 800,
            store_job_requests: 1000,
        }
    }
}

/// Where a benchmark's data lives.
#[derive(Clone, Debug)]
pub enum Backend {
    /// The embedded store with this durability.
    Embedded(Durability),
    /// The embedded store with this durability and no group commit (every request
    /// committed alone): the store's baseline.
    EmbeddedUngrouped(Durability),
    /// DynamoDB (Local) at this endpoint.
    DynamoDb(String),
}

impl Backend {
    /// Its name in tables and plots.
    pub fn label(&self) -> String {
        match self {
            Backend::Embedded(Durability::Fsync) => "embedded (fsync)".into(),
            Backend::Embedded(_) => "embedded (process-crash)".into(),
            Backend::EmbeddedUngrouped(Durability::Fsync) => {
                "embedded (fsync), no group commit".into()
            }
            Backend::EmbeddedUngrouped(_) => "embedded (process-crash), no group commit".into(),
            Backend::DynamoDb(_) => "DynamoDB Local".into(),
        }
    }

    /// A fresh, empty store with round-trip counting, and a runtime on it in `mode`.
    pub async fn runtime(&self, mode: Mode, row_capacity: u64) -> Result<Fresh, BeldiError> {
        let (store, dir, embedded): (Arc<dyn Store>, _, _) = match self {
            Backend::Embedded(d) | Backend::EmbeddedUngrouped(d) => {
                let dir = tempfile::tempdir().map_err(|e| BeldiError::Corrupt {
                    what: "temporary directory".into(),
                    message: e.to_string(),
                })?;
                let opts = EmbeddedOptions {
                    durability: *d,
                    group_commit: matches!(self, Backend::Embedded(_)),
                    ..Default::default()
                };
                let s = EmbeddedStore::open_with(dir.path(), opts)?;
                (Arc::new(s.clone()), Some(dir), Some(s))
            }
            Backend::DynamoDb(endpoint) => (dynamodb(endpoint).await?, None, None),
        };
        let counting = Arc::new(CountingStore::new(store));
        let config = RuntimeConfig {
            namespace: fresh_namespace(),
            mode,
            row_capacity,
            timeout: Duration::from_secs(20),
            ..Default::default()
        };
        let rt = Runtime::with_config(counting.clone(), config)?;
        Ok(Fresh {
            rt,
            counts: counting,
            embedded,
            _dir: dir,
        })
    }
}

#[cfg(feature = "dynamodb")]
async fn dynamodb(endpoint: &str) -> Result<Arc<dyn Store>, BeldiError> {
    Ok(Arc::new(
        beldi::dynamodb::DynamoDbStore::local(endpoint.to_owned()).await,
    ))
}

#[cfg(not(feature = "dynamodb"))]
async fn dynamodb(endpoint: &str) -> Result<Arc<dyn Store>, BeldiError> {
    Err(BeldiError::InvalidName {
        what: "backend",
        name: endpoint.to_owned(),
        message: "built without the `dynamodb` feature".into(),
    })
}

fn fresh_namespace() -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("b{t}_{n}_")
}

/// A fresh runtime and the counting store under it (and its directory, removed on drop).
pub struct Fresh {
    /// The runtime.
    pub rt: Runtime,
    /// Round trips so far.
    pub counts: Arc<CountingStore<Arc<dyn Store>>>,
    /// The embedded store, when that is the backend (for its commit statistics).
    pub embedded: Option<EmbeddedStore>,
    _dir: Option<tempfile::TempDir>,
}

impl Fresh {
    /// Registers the benchmark functions named `functions` and creates their tables.
    pub async fn install(&self, functions: &[&str]) -> Result<(), BeldiError> {
        self.rt.register_where(|r| {
            r.path.starts_with("beldi_examples::bench::") && functions.contains(&r.name)
        })?;
        self.rt.provision().await?;
        Ok(())
    }
}

/// Runs `count` client requests, `concurrency` at a time; returns their results in order
/// of completion (the first failure stops the run).
pub async fn clients<T, Fut>(
    concurrency: usize,
    count: usize,
    request: impl Fn(usize) -> Fut,
) -> Result<Vec<T>, BeldiError>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = Result<T, BeldiError>> + Send + 'static,
{
    let pool_failed = |e: &dyn std::fmt::Display| BeldiError::Corrupt {
        what: "client pool".into(),
        message: e.to_string(),
    };
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let permit = sem
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| pool_failed(&e))?;
        let fut = request(i);
        tasks.spawn(async move {
            let out = fut.await;
            drop(permit);
            out
        });
    }
    let mut out = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        out.push(joined.map_err(|e| pool_failed(&e))??);
    }
    Ok(out)
}

/// The machine, for every figure's caption.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or("? GiB".into(), |kb| format!("{} GiB", kb / 1024 / 1024));
    format!("{cores} cores ({cpu}), {mem}, {}", std::env::consts::OS)
}

/// The `p` quantile (0–1) of latencies, in milliseconds (sorts a copy).
pub fn quantile_ms(samples: &[Duration], p: f64) -> f64 {
    let mut v = samples.to_vec();
    v.sort();
    crate::driver::quantile_ms(&v, p).unwrap_or(f64::NAN)
}

/// The median of some numbers (NaN when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The report being written: Markdown sections and the plots they reference.
pub struct Report {
    dir: PathBuf,
    sections: Vec<String>,
}

impl Report {
    /// A report written to `dir`.
    pub fn new(dir: &Path) -> std::io::Result<Report> {
        std::fs::create_dir_all(dir)?;
        Ok(Report {
            dir: dir.to_owned(),
            sections: Vec::new(),
        })
    }
    /// Where plots go.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Adds a section.
    pub fn section(&mut self, markdown: String) {
        self.sections.push(markdown);
    }
    /// Writes `REPORT.md` with a header naming the machine, scale and backends.
    pub fn write(&self, header: &str) -> std::io::Result<PathBuf> {
        let path = self.dir.join("REPORT.md");
        let mut text = String::from(header);
        for s in &self.sections {
            text.push_str("\n\n");
            text.push_str(s);
        }
        text.push('\n');
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// Replaces, in the `REPORT.md` already in the directory, the sections this report has
    /// (matched by their `## ` heading; new ones are appended), keeps the rest, and adds
    /// `note` to its header (replacing a note of the same part's earlier re-measurement).
    /// Writes a new report when there is none.
    pub fn update(&self, header: &str, note: &str) -> std::io::Result<PathBuf> {
        let path = self.dir.join("REPORT.md");
        let Ok(old) = std::fs::read_to_string(&path) else {
            return self.write(header);
        };
        let mut parts: Vec<String> = old
            .trim_end()
            .split("\n\n## ")
            .enumerate()
            .map(|(i, p)| {
                if i == 0 {
                    p.to_owned()
                } else {
                    format!("## {p}")
                }
            })
            .collect();
        let heading = |s: &str| s.lines().next().unwrap_or("").to_owned();
        for new in &self.sections {
            match parts
                .iter_mut()
                .skip(1)
                .find(|p| heading(p) == heading(new))
            {
                Some(p) => *p = new.clone(),
                None => parts.push(new.clone()),
            }
        }
        if let Some(h) = parts.first_mut() {
            // A note of an earlier re-measurement of the same part is replaced.
            let same = note.split(" --scale").next().unwrap_or(note);
            let mut lines: Vec<&str> = h
                .lines()
                .filter(|l| !l.strip_prefix("- ").is_some_and(|l| l.starts_with(same)))
                .collect();
            let line = format!("- {note}");
            lines.push(&line);
            *h = lines.join("\n");
        }
        std::fs::write(&path, parts.join("\n\n") + "\n")?;
        Ok(path)
    }
}

/// A Markdown table.
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = format!("| {} |\n|", head.join(" | "));
    for _ in head {
        t.push_str("---|");
    }
    for r in rows {
        t.push_str(&format!("\n| {} |", r.join(" | ")));
    }
    t
}
