//! The project's main job.
//!
//! Until the paper's applications land, it runs one real workflow: `counter`, in which many
//! client requests each run an instance of an exactly-once function that increments a shared
//! counter and reads it back. Instances crash at random logged-step boundaries (seeded) and
//! some run as concurrent duplicates; every crashed instance is re-executed with the same
//! instance id until it finishes. At the end it checks the invariants — the counter equals
//! the number of requests, every increment is logged exactly once, duplicates agreed — and
//! prints crashes, throughput and store round trips per request.
//!
//! ```text
//! cargo run --release -p beldi-examples -- counter
//! cargo run --release -p beldi-examples -- counter --requests 2000 --crash-rate 0.3
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use beldi::counting::CountingStore;
use beldi::daal::Daal;
use beldi::prelude::*;
use beldi::store::{AttrValue, OpKind};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "beldi-examples",
    version,
    about = "Beldi for Rust: workflows, crash injection and invariant checks"
)]
struct Cli {
    #[command(subcommand)]
    job: Job,
}

#[derive(Subcommand)]
enum Job {
    /// Exactly-once increments of a shared counter under random crashes and duplicates.
    Counter(CounterArgs),
    /// Travel reservation: searches and cross-function reservation transactions under
    /// random crashes, with the app's invariants checked at the end.
    Travel(TravelArgs),
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Mix {
    /// The paper's: 60% search, 39% recommend, 0.5% login, 0.5% reserve.
    Paper,
    /// Reservations only.
    ReserveHeavy,
}

#[derive(clap::Args)]
struct TravelArgs {
    /// Client requests.
    #[arg(long, default_value_t = 1000)]
    requests: u32,
    /// Request mix.
    #[arg(long, value_enum, default_value_t = Mix::Paper)]
    mix: Mix,
    /// Hotels and flights the reservations spread over (fewer: more contention).
    #[arg(long, default_value_t = 20)]
    targets: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Probability of a crash at each step boundary of a request's first executions (0–1).
    #[arg(long, default_value_t = 0.02)]
    crash_rate: f64,
    /// Seed of the workload and of the crash injection.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory of the embedded store (kept); default: a fresh temporary directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Continue a run that was killed: the same requests are issued again with the same
    /// ids (use the same options and `--data-dir`); finished ones return their stored
    /// results, started ones are finished first by the intent collector.
    #[arg(long, requires = "data_dir")]
    resume: bool,
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
    /// Client requests (one function instance each).
    #[arg(long, default_value_t = 1000)]
    requests: u32,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Probability of a crash at each step boundary of an execution (0–1).
    #[arg(long, default_value_t = 0.2)]
    crash_rate: f64,
    /// Fraction of requests that also run as a concurrent duplicate (0–1).
    #[arg(long, default_value_t = 0.25)]
    duplicate_rate: f64,
    /// Seed of the crash injection.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// DAAL row capacity (log entries per row).
    #[arg(long, default_value_t = 1000)]
    row_capacity: u64,
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
    #[arg(long, value_enum, default_value_t = DurabilityArg::ProcessCrash)]
    durability: DurabilityArg,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.job {
        Job::Counter(args) => counter(args).await,
        Job::Travel(args) => travel_job(args).await,
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
            let (dir, temp) = store_dir(&args.data_dir, "counter");
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

fn check_args(args: &CounterArgs) -> Result<(), String> {
    if args.requests == 0 || args.concurrency == 0 || args.row_capacity == 0 {
        return Err(format!(
            "--requests ({}), --concurrency ({}) and --row-capacity ({}) must be at least 1",
            args.requests, args.concurrency, args.row_capacity
        ));
    }
    for (name, v) in [
        ("--crash-rate", args.crash_rate),
        ("--duplicate-rate", args.duplicate_rate),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(format!("{name} must be between 0 and 1, got {v}"));
        }
    }
    if args.crash_rate >= 0.95 {
        return Err(format!(
            "--crash-rate {} would almost never let a request finish; use less than 0.95",
            args.crash_rate
        ));
    }
    Ok(())
}

/// The function every request runs: increment, then read the counter back.
#[beldi::function(tables = ["counters"])]
async fn increment(ctx: &Ctx, _input: ()) -> Result<i64, UserError> {
    ctx.update(
        "counters",
        "total",
        vec![UpdateAction::add(Path::root(), 1)],
    )
    .await?;
    Ok(ctx.read_as::<i64>("counters", "total").await?.unwrap_or(0))
}

struct Stats {
    executions: AtomicU64,
    crashes: AtomicU64,
    duplicates: AtomicU64,
    disagreements: AtomicU64,
}

async fn counter(args: CounterArgs) -> Result<bool, String> {
    check_args(&args)?;
    let (store, temp_dir) = open_store(&args).await?;
    let store = Arc::new(CountingStore::new(store));
    let namespace = format!("job{}_", std::process::id());
    let config = RuntimeConfig {
        namespace,
        row_capacity: args.row_capacity,
        ..Default::default()
    };
    let rt = Runtime::with_config(store.clone(), config).map_err(|e| e.to_string())?;
    rt.register_all().map_err(|e| e.to_string())?;
    rt.provision().await.map_err(|e| e.to_string())?;
    store.reset();

    let stats = Arc::new(Stats {
        executions: AtomicU64::new(0),
        crashes: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        disagreements: AtomicU64::new(0),
    });
    let sem = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let started = Instant::now();
    let mut handles = Vec::new();
    for i in 0..args.requests {
        let (rt, stats, sem) = (rt.clone(), stats.clone(), sem.clone());
        let plan = FaultPlan::random(args.seed, args.crash_rate);
        // Which requests get a duplicate is decided from the seed too.
        let duplicate = FaultPlan::random(args.seed ^ 0x5eed, args.duplicate_rate).crashes(
            &format!("req-{i}"),
            0,
            CrashPoint::BeforeDone,
        );
        handles.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.map_err(|e| e.to_string())?;
            let id = format!("req-{i}");
            let run = async |first_attempt: u32| -> Result<AttrValue, String> {
                for attempt in first_attempt..first_attempt + 10_000 {
                    stats.executions.fetch_add(1, Ordering::Relaxed);
                    match rt
                        .execute(
                            increment.name(),
                            &id,
                            AttrValue::Null,
                            plan.clone(),
                            attempt,
                        )
                        .await
                    {
                        Ok(e) => return Ok(e.result),
                        Err(BeldiError::Crashed { .. }) => {
                            stats.crashes.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => return Err(format!("request {id}: {e}")),
                    }
                }
                Err(format!("request {id} did not finish in 10,000 attempts"))
            };
            let t0 = Instant::now();
            if duplicate {
                stats.duplicates.fetch_add(1, Ordering::Relaxed);
                let (a, b) = tokio::join!(run(0), run(1_000_000));
                if a? != b? {
                    stats.disagreements.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                run(0).await?;
            }
            Ok::<Duration, String>(t0.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(handles.len());
    for h in handles {
        latencies.push(h.await.map_err(|e| e.to_string())??);
    }
    let elapsed = started.elapsed();
    let rtt = store.counts();

    // Invariants, read straight from the store.
    let table = rt
        .tables("increment")
        .map_err(|e| e.to_string())?
        .data("counters")
        .map_err(|e| e.to_string())?;
    let daal = Daal::new(&*store, &table, args.row_capacity);
    let rows = daal.rows("total").await.map_err(|e| e.to_string())?;
    let value = rows
        .last()
        .and_then(|r| r.value())
        .and_then(AttrValue::as_i64)
        .unwrap_or(0);
    let entries: usize = rows
        .iter()
        .filter_map(|r| r.0.get("L").and_then(AttrValue::as_m))
        .map(|m| m.len())
        .sum();
    let requests = args.requests as i64;
    let checks = [
        (
            "counter = requests",
            value == requests,
            format!("counter is {value}, {requests} requests"),
        ),
        (
            "each increment logged once",
            entries as i64 == requests,
            format!("{entries} log entries for {requests} increments"),
        ),
        (
            "duplicates agreed",
            stats.disagreements.load(Ordering::Relaxed) == 0,
            format!(
                "{} disagreements",
                stats.disagreements.load(Ordering::Relaxed)
            ),
        ),
    ];

    latencies.sort();
    let pct = |p: f64| percentile_ms(&latencies, p);
    println!(
        "\ncounter job on the {} store: {} requests, {} in flight, crash rate {}, duplicate rate {}, seed {}\n",
        store.backend_name(),
        args.requests,
        args.concurrency,
        args.crash_rate,
        args.duplicate_rate,
        args.seed
    );
    table_header();
    let row = table_row;
    row("requests", args.requests.to_string());
    row(
        "executions",
        stats.executions.load(Ordering::Relaxed).to_string(),
    );
    row(
        "crashes injected and recovered",
        stats.crashes.load(Ordering::Relaxed).to_string(),
    );
    row(
        "requests run as duplicates",
        stats.duplicates.load(Ordering::Relaxed).to_string(),
    );
    row("elapsed", format!("{:.2} s", elapsed.as_secs_f64()));
    row(
        "requests/s",
        format!("{:.0}", args.requests as f64 / elapsed.as_secs_f64()),
    );
    row(
        "latency p50 / p90 / p99 (ms)",
        format!("{:.1} / {:.1} / {:.1}", pct(0.5), pct(0.9), pct(0.99)),
    );
    row("DAAL rows of the counter", rows.len().to_string());
    for k in OpKind::ALL
        .iter()
        .filter(|k| **k != OpKind::Admin && rtt.get(**k) > 0)
    {
        row(
            &format!("round trips: {}", k.name()),
            rtt.get(*k).to_string(),
        );
    }
    row(
        "round trips per request",
        format!("{:.2}", rtt.total_data() as f64 / args.requests as f64),
    );
    let mut ok = true;
    for (name, pass, detail) in &checks {
        row(
            &format!("invariant: {name}"),
            (if *pass { "PASS" } else { "FAIL" }).to_string(),
        );
        if !pass {
            ok = false;
            println!("  violation: {detail}");
        }
    }
    if let Some(d) = temp_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(ok)
}

async fn travel_job(args: TravelArgs) -> Result<bool, String> {
    use beldi_examples::travel::{self, ReserveReq};
    if args.requests == 0 || args.concurrency == 0 || args.targets == 0 {
        return Err(format!(
            "--requests ({}), --concurrency ({}) and --targets ({}) must be at least 1",
            args.requests, args.concurrency, args.targets
        ));
    }
    if !(0.0..=1.0).contains(&args.crash_rate) {
        return Err(format!(
            "--crash-rate must be between 0 and 1, got {}",
            args.crash_rate
        ));
    }
    let (dir, temp) = store_dir(&args.data_dir, "travel");
    let opts = EmbeddedOptions {
        durability: Durability::ProcessCrash,
        ..Default::default()
    };
    let store = Arc::new(CountingStore::new(
        EmbeddedStore::open_with(&dir, opts).map_err(|e| e.to_string())?,
    ));
    let rt = Runtime::new(store.clone());
    rt.register_all().map_err(|e| e.to_string())?;
    rt.provision().await.map_err(|e| e.to_string())?;
    if args.resume {
        // Instances the killed run had started: finish them first.
        let left = beldi::explorer::quiesce(&rt, 20)
            .await
            .map_err(|e| e.to_string())?;
        println!("resumed: {left} instances still unfinished after recovery");
    }
    store.reset();
    let crashes = Arc::new(AtomicU64::new(0));
    let sem = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let started = Instant::now();
    let mut handles = Vec::new();
    for i in 0..args.requests {
        let (rt, sem, crashes) = (rt.clone(), sem.clone(), crashes.clone());
        // The request's kind and target come from the seed.
        let pick = |salt: u64, n: usize| {
            let id = beldi::invoke::callee_id("pick", &format!("{}:{i}", args.seed), salt);
            id.bytes()
                .fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize))
                % n
        };
        let kind = match args.mix {
            Mix::ReserveHeavy => 3,
            Mix::Paper => match pick(0, 1000) {
                0..600 => 0,
                600..990 => 1,
                990..995 => 2,
                _ => 3,
            },
        };
        let (function, input) = match kind {
            0 => (
                travel::search.name(),
                request(&(pick(3, 1000) as i64, pick(4, 1000) as i64))?,
            ),
            1 => (
                travel::recommend.name(),
                request(&format!("u{}", pick(5, 500)))?,
            ),
            2 => {
                let u = pick(6, 500);
                (
                    travel::login.name(),
                    request(&(format!("u{u}"), format!("pw{u}")))?,
                )
            }
            _ => {
                let req = ReserveReq {
                    user: format!("u{i}"),
                    hotel: format!("h{}", pick(1, args.targets)),
                    flight: format!("f{}", pick(2, args.targets)),
                };
                (travel::reserve.name(), request(&req)?)
            }
        };
        let (plan_seed, rate) = (args.seed, args.crash_rate);
        handles.push(tokio::spawn(async move {
            let _p = sem.acquire_owned().await.map_err(|e| e.to_string())?;
            let t0 = Instant::now();
            for attempt in 0..10_000u32 {
                let plan = if attempt < 3 {
                    FaultPlan::random(plan_seed, rate)
                } else {
                    FaultPlan::none()
                };
                match rt
                    .execute(function, &format!("req-{i}"), input.clone(), plan, attempt)
                    .await
                {
                    Ok(_) => return Ok::<_, String>((function, t0.elapsed())),
                    Err(BeldiError::Crashed { .. }) => {
                        crashes.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => return Err(format!("request {i}: {e}")),
                }
            }
            Err(format!("request {i} did not finish"))
        }));
    }
    let mut latencies = Vec::new();
    let mut kinds: std::collections::BTreeMap<&str, u64> = Default::default();
    for h in handles {
        let (kind, lat) = h.await.map_err(|e| e.to_string())??;
        *kinds.entry(kind).or_default() += 1;
        latencies.push(lat);
    }
    let elapsed = started.elapsed();
    let left = beldi::explorer::quiesce(&rt, 20)
        .await
        .map_err(|e| e.to_string())?;
    let rtt = store.counts();
    let violations = travel::check(&rt).await.map_err(|e| e.to_string())?;
    let s = travel::state(&rt).await.map_err(|e| e.to_string())?;
    latencies.sort();
    let pct = |p: f64| percentile_ms(&latencies, p);
    println!(
        "\ntravel job on the embedded store: {} requests, {} in flight, crash rate {}, seed {}\n",
        args.requests, args.concurrency, args.crash_rate, args.seed
    );
    table_header();
    let row = table_row;
    for (k, n) in &kinds {
        row(&format!("requests: {k}"), n.to_string());
    }
    row("orders placed", s.orders.len().to_string());
    row(
        "crashes injected and recovered",
        crashes.load(Ordering::Relaxed).to_string(),
    );
    row("elapsed", format!("{:.2} s", elapsed.as_secs_f64()));
    row(
        "requests/s",
        format!("{:.0}", args.requests as f64 / elapsed.as_secs_f64()),
    );
    row(
        "latency p50 / p90 / p99 (ms)",
        format!("{:.1} / {:.1} / {:.1}", pct(0.5), pct(0.9), pct(0.99)),
    );
    row(
        "round trips per request",
        format!("{:.2}", rtt.total_data() as f64 / args.requests as f64),
    );
    row(
        "invariant: every request finished",
        (if left == 0 { "PASS" } else { "FAIL" }).to_string(),
    );
    row(
        "invariant: bookings = orders, unlocked",
        (if violations.is_empty() {
            "PASS"
        } else {
            "FAIL"
        })
        .to_string(),
    );
    for v in &violations {
        println!("  violation: {v}");
    }
    if let Some(d) = temp {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(left == 0 && violations.is_empty())
}

/// A request value as the stored input of its instance.
fn request<T: serde::Serialize>(v: &T) -> Result<beldi::store::AttrValue, String> {
    beldi::value::to_attr(v, "request").map_err(|e| e.to_string())
}

/// The store directory: `--data-dir` (kept), or a fresh temporary one (returned second, to
/// be removed at the end).
fn store_dir(data_dir: &Option<PathBuf>, job: &str) -> (PathBuf, Option<PathBuf>) {
    match data_dir {
        Some(d) => (d.clone(), None),
        None => {
            let d = std::env::temp_dir().join(format!("beldi-{job}-{}", std::process::id()));
            (d.clone(), Some(d))
        }
    }
}

/// The `p` percentile (0–1) of sorted latencies, in milliseconds.
fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0
}

/// The header of a job's summary table.
fn table_header() {
    table_row("metric", "value".to_string());
    println!("|{}|{}|", "-".repeat(40), "-".repeat(20));
}

/// One row of a job's summary table.
fn table_row(name: &str, value: String) {
    println!("| {name:<38} | {value:>18} |");
}
