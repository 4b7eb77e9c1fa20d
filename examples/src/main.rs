//! The project's main job.
//!
//! Until the paper's applications land, it runs one real workload: `counter`, in which many
//! concurrent clients increment shared counters with compare-and-set conditional writes on
//! the store, then checks the invariant (each counter equals the number of successful
//! compare-and-sets on it) and prints round trips per operation.
//!
//! ```text
//! cargo run --release -p beldi-examples -- counter
//! cargo run --release -p beldi-examples -- counter --tasks 32 --durability process-crash
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use beldi::counting::CountingStore;
use beldi::prelude::*;
use beldi::store::OpKind;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "beldi-examples",
    version,
    about = "Beldi for Rust: workloads and invariant checks"
)]
struct Cli {
    #[command(subcommand)]
    job: Job,
}

#[derive(Subcommand)]
enum Job {
    /// Concurrent compare-and-set increments of shared counters, with an invariant check.
    Counter(CounterArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum DurabilityArg {
    /// fsync on every commit (survives power loss).
    Fsync,
    /// No fsync (survives the process being killed, not a machine crash).
    ProcessCrash,
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    /// The embedded store on local disk.
    Embedded,
    /// DynamoDB (or DynamoDB Local, with --endpoint); needs the `dynamodb` feature.
    Dynamodb,
}

#[derive(clap::Args)]
struct CounterArgs {
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    tasks: usize,
    /// Increments each client attempts.
    #[arg(long, default_value_t = 200)]
    increments: usize,
    /// Number of shared counters the clients spread over.
    #[arg(long, default_value_t = 4)]
    counters: usize,
    /// Storage backend.
    #[arg(long, value_enum, default_value_t = Backend::Embedded)]
    backend: Backend,
    /// DynamoDB endpoint URL (with --backend dynamodb), e.g. DynamoDB Local's.
    #[arg(long)]
    endpoint: Option<String>,
    /// Directory of the embedded store (kept); default: a fresh temporary directory, removed
    /// at the end.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Durability of the embedded store.
    #[arg(long, value_enum, default_value_t = DurabilityArg::Fsync)]
    durability: DurabilityArg,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.job {
        Job::Counter(args) => counter(args).await,
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn open_store(args: &CounterArgs) -> Result<(Arc<dyn Store>, Option<PathBuf>), String> {
    match args.backend {
        Backend::Embedded => {
            let (dir, temp) = match &args.data_dir {
                Some(d) => (d.clone(), None),
                None => {
                    let d =
                        std::env::temp_dir().join(format!("beldi-counter-{}", std::process::id()));
                    (d.clone(), Some(d))
                }
            };
            let durability = match args.durability {
                DurabilityArg::Fsync => Durability::Fsync,
                DurabilityArg::ProcessCrash => Durability::ProcessCrash,
            };
            let store = EmbeddedStore::open_with(
                &dir,
                EmbeddedOptions {
                    durability,
                    ..Default::default()
                },
            )
            .map_err(|e| e.to_string())?;
            Ok((Arc::new(store), temp))
        }
        #[cfg(feature = "dynamodb")]
        Backend::Dynamodb => {
            let endpoint = args
                .endpoint
                .clone()
                .ok_or("--backend dynamodb needs --endpoint URL")?;
            Ok((
                Arc::new(beldi::dynamodb::DynamoDbStore::local(endpoint).await),
                None,
            ))
        }
        #[cfg(not(feature = "dynamodb"))]
        Backend::Dynamodb => {
            let _ = &args.endpoint;
            Err("this binary was built without the `dynamodb` feature; rebuild with `--features dynamodb`".into())
        }
    }
}

async fn counter(args: CounterArgs) -> Result<bool, String> {
    if args.tasks == 0 || args.counters == 0 {
        return Err(format!(
            "--tasks ({}) and --counters ({}) must be at least 1",
            args.tasks, args.counters
        ));
    }
    let (store, temp_dir) = open_store(&args).await?;
    let store = Arc::new(CountingStore::new(store));
    let table = format!("counters_{}", std::process::id());
    store
        .create_table(&TableSpec::new(&table, "id"))
        .await
        .map_err(|e| e.to_string())?;
    for c in 0..args.counters {
        let mut item = Item::new();
        item.insert("id".into(), format!("c{c}").into());
        item.insert("n".into(), 0.into());
        store
            .put(Put::new(&table, item))
            .await
            .map_err(|e| e.to_string())?;
    }
    store.reset();
    let started = Instant::now();
    let mut handles = Vec::new();
    for t in 0..args.tasks {
        let (store, table, increments, counters) =
            (store.clone(), table.clone(), args.increments, args.counters);
        handles.push(tokio::spawn(async move {
            let mut won = vec![0u64; counters];
            let mut lost = 0u64;
            for i in 0..increments {
                let c = (t + i) % counters;
                let key = Key::new(format!("c{c}"));
                let cur = store
                    .get(&table, &key)
                    .await?
                    .and_then(|i| i["n"].as_i64())
                    .unwrap_or(0);
                let req = Update::new(&table, key)
                    .action(UpdateAction::set("n", cur + 1))
                    .condition(Condition::eq("n", cur));
                match store.update(req).await {
                    Ok(_) => won[c] += 1,
                    Err(e) if e.is_condition_failed() => lost += 1,
                    Err(e) => return Err(e),
                }
            }
            Ok::<_, StoreError>((won, lost))
        }));
    }
    let mut won = vec![0u64; args.counters];
    let mut lost = 0;
    for h in handles {
        let (w, l) = h
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        won.iter_mut().zip(w).for_each(|(a, b)| *a += b);
        lost += l;
    }
    let elapsed = started.elapsed();
    let rtt = store.counts();
    let mut violations = Vec::new();
    for (c, expected) in won.iter().enumerate() {
        let n = store
            .get(&table, &Key::new(format!("c{c}")))
            .await
            .map_err(|e| e.to_string())?
            .and_then(|i| i["n"].as_i64())
            .unwrap_or(-1);
        if n as u64 != *expected {
            violations.push(format!(
                "counter c{c} is {n}, but {expected} compare-and-sets succeeded"
            ));
        }
    }
    let attempts = (args.tasks * args.increments) as u64;
    let successes: u64 = won.iter().sum();
    println!(
        "\ncounter job on the {} store ({} tasks × {} increments over {} counters)\n",
        store.backend_name(),
        args.tasks,
        args.increments,
        args.counters
    );
    println!("| metric                         | value      |");
    println!("|--------------------------------|------------|");
    println!("| attempts                       | {attempts:>10} |");
    println!("| successful compare-and-sets    | {successes:>10} |");
    println!("| lost races (condition failed)  | {lost:>10} |");
    println!(
        "| elapsed                        | {:>8.2} s |",
        elapsed.as_secs_f64()
    );
    println!(
        "| attempts/s                     | {:>10.0} |",
        attempts as f64 / elapsed.as_secs_f64()
    );
    for k in [OpKind::Get, OpKind::Update] {
        println!("| round trips: {:<17} | {:>10} |", k.name(), rtt.get(k));
    }
    println!(
        "| round trips per attempt        | {:>10.2} |",
        rtt.total_data() as f64 / attempts as f64
    );
    let verdict = if violations.is_empty() {
        "PASS"
    } else {
        "FAIL"
    };
    println!("| invariant: counter = successes | {verdict:>10} |");
    for v in &violations {
        println!("  violation: {v}");
    }
    store
        .delete_table(&table)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(d) = temp_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(violations.is_empty())
}
