//! Store throughput: ops/s of conditional update and consistent get, sequential and with 16
//! concurrent tasks, on the embedded backend (both durability settings) and, when
//! `BELDI_DYNAMODB_ENDPOINT` is set and the `dynamodb` feature is on, on DynamoDB.
//!
//! `cargo bench -p beldi-runtime --bench store [--features dynamodb]` runs it at full size;
//! under `cargo test` (no `--bench` argument) it runs a few operations as a smoke test.
//! Ratios are against the embedded store with per-commit fsync, sequential, same operation,
//! measured in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use beldi_runtime::embedded::{Durability, EmbeddedOptions, EmbeddedStore};
use beldi_runtime::store::*;

struct Row {
    backend: String,
    op: &'static str,
    tasks: usize,
    ops: usize,
    elapsed: Duration,
}

impl Row {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }
}

const KEYS: usize = 64;

async fn prepare(store: &Arc<dyn Store>, table: &str) {
    store
        .create_table(&TableSpec::new(table, "pk"))
        .await
        .expect("create bench table");
    for k in 0..KEYS {
        let mut item = Item::new();
        item.insert("pk".into(), format!("k{k}").into());
        item.insert("n".into(), 0.into());
        item.insert("payload".into(), "x".repeat(100).into());
        store
            .put(Put::new(table, item))
            .await
            .expect("seed bench table");
    }
}

/// One conditional update of one item: add 1 to `n` under the condition `n >= 0`, which
/// holds, so every call is a successful conditional write.
async fn cond_update(store: &dyn Store, table: &str, i: usize) {
    store
        .update(
            Update::new(table, Key::new(format!("k{}", i % KEYS)))
                .action(UpdateAction::add("n", 1))
                .condition(Condition::Ge(Path::attr("n"), 0.into())),
        )
        .await
        .expect("conditional update");
}

async fn get(store: &dyn Store, table: &str, i: usize) {
    store
        .get(table, &Key::new(format!("k{}", i % KEYS)))
        .await
        .expect("get")
        .expect("item exists");
}

async fn run(store: Arc<dyn Store>, backend: &str, table: &str, ops: usize, rows: &mut Vec<Row>) {
    prepare(&store, table).await;
    for op in ["cond_update", "get"] {
        for tasks in [1usize, 16] {
            let start = Instant::now();
            let mut handles = Vec::new();
            for t in 0..tasks {
                let store = store.clone();
                let table = table.to_owned();
                let per = ops / tasks;
                handles.push(tokio::spawn(async move {
                    for i in 0..per {
                        let i = t * per + i;
                        match op {
                            "cond_update" => cond_update(&*store, &table, i).await,
                            _ => get(&*store, &table, i).await,
                        }
                    }
                }));
            }
            for h in handles {
                h.await.expect("bench task");
            }
            rows.push(Row {
                backend: backend.to_owned(),
                op,
                tasks,
                ops: ops / tasks * tasks,
                elapsed: start.elapsed(),
            });
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let ops = if full { 4000 } else { 64 };
    let mut rows = Vec::new();
    let mut dirs = Vec::new();
    for (name, durability) in [
        ("embedded/fsync", Durability::Fsync),
        ("embedded/process-crash", Durability::ProcessCrash),
    ] {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = EmbeddedStore::open_with(
            dir.path(),
            EmbeddedOptions {
                durability,
                ..Default::default()
            },
        )
        .expect("open embedded store");
        run(Arc::new(store), name, "bench", ops, &mut rows).await;
        dirs.push(dir);
    }
    #[cfg(feature = "dynamodb")]
    if let Ok(endpoint) = std::env::var("BELDI_DYNAMODB_ENDPOINT") {
        let store = beldi_runtime::dynamodb::DynamoDbStore::local(endpoint).await;
        let table = format!("bench_{}", std::process::id());
        run(
            Arc::new(store),
            "dynamodb-local",
            &table,
            ops.min(2000),
            &mut rows,
        )
        .await;
    }
    let baseline = |op: &str| {
        rows.iter()
            .find(|r| r.backend == "embedded/fsync" && r.op == op && r.tasks == 1)
            .map(Row::rate)
            .unwrap_or(f64::NAN)
    };
    println!(
        "\nstore throughput ({}; {} cores; ratio = ops/s ÷ embedded/fsync sequential, same op)\n",
        if full {
            "full run"
        } else {
            "smoke run under cargo test"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| backend                | operation   | tasks |   ops |   ops/s |  ratio |");
    println!("|------------------------|-------------|------:|------:|--------:|-------:|");
    for r in &rows {
        println!(
            "| {:<22} | {:<11} | {:>5} | {:>5} | {:>7.0} | {:>6.2} |",
            r.backend,
            r.op,
            r.tasks,
            r.ops,
            r.rate(),
            r.rate() / baseline(r.op)
        );
    }
}
