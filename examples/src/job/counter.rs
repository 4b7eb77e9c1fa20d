//! The `counter` job: exactly-once increments of one shared counter under random crashes
//! and concurrent duplicates; the smallest end-to-end check of the protocol.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use beldi::counting::CountingStore;
use beldi::prelude::*;
use beldi::store::{AttrValue, OpKind};

use beldi_examples::driver::quantile_ms;

use super::cli::StoreArgs;
use super::error::{JobError, usage};
use super::report::{pass, table_header, table_row};
use super::setup::open_store;

#[derive(clap::Args)]
pub(crate) struct CounterArgs {
    /// Client requests (one function instance each).
    #[arg(long, default_value_t = 1000)]
    requests: u32,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Probability of a crash at each step boundary of an execution (0–1).
    #[arg(long, default_value_t = 0.2, allow_negative_numbers = true)]
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
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

fn check_args(args: &CounterArgs) -> Result<(), JobError> {
    if args.requests == 0 || args.concurrency == 0 || args.row_capacity == 0 {
        return Err(usage(format!(
            "--requests ({}), --concurrency ({}) and --row-capacity ({}) must be at least 1",
            args.requests, args.concurrency, args.row_capacity
        )));
    }
    for (name, v) in [
        ("--crash-rate", args.crash_rate),
        ("--duplicate-rate", args.duplicate_rate),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(usage(format!("{name} must be between 0 and 1, got {v}")));
        }
    }
    if args.crash_rate >= 0.95 {
        return Err(usage(format!(
            "--crash-rate {} would almost never let a request finish; use less than 0.95",
            args.crash_rate
        )));
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

pub(crate) async fn counter(args: CounterArgs) -> Result<bool, JobError> {
    check_args(&args)?;
    let (store, temp_dir) = open_store(&args.store, "counter").await?;
    let store = Arc::new(CountingStore::new(store));
    let namespace = format!("job{}_", std::process::id());
    let config = RuntimeConfig {
        namespace,
        row_capacity: args.row_capacity,
        ..Default::default()
    };
    let rt = Runtime::with_config(store.clone(), config)?;
    rt.register_where(|r| r.name == increment.name())?;
    rt.provision().await?;
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
            // The semaphore is never closed.
            let _permit = sem.acquire_owned().await.ok();
            let id = format!("req-{i}");
            let failed = |message: String| JobError::Request {
                request: id.clone(),
                message,
            };
            let run = async |first_attempt: u32| -> Result<Result<i64, UserError>, JobError> {
                for attempt in first_attempt..first_attempt + 10_000 {
                    stats.executions.fetch_add(1, Ordering::Relaxed);
                    match increment
                        .invoke_with(&rt, &id, &(), plan.clone(), attempt)
                        .await
                    {
                        Ok(result) => return Ok(result),
                        Err(BeldiError::Crashed { .. }) => {
                            stats.crashes.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => return Err(failed(e.to_string())),
                    }
                }
                Err(failed("did not finish in 10,000 attempts".into()))
            };
            let t0 = Instant::now();
            if duplicate {
                stats.duplicates.fetch_add(1, Ordering::Relaxed);
                let (a, b) = tokio::join!(run(0), run(1_000_000));
                if a? != b? {
                    stats.disagreements.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                if let Err(e) = run(0).await? {
                    return Err(failed(format!("the increment returned an error: {e}")));
                }
            }
            Ok::<Duration, JobError>(t0.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(handles.len());
    for h in handles {
        latencies.push(h.await??);
    }
    let elapsed = started.elapsed();
    let rtt = store.counts();

    // Invariants, read straight from the store.
    let chain = beldi::inspect::chain(&rt, "increment", "counters", "total").await?;
    let value = chain
        .value
        .as_ref()
        .and_then(AttrValue::as_i64)
        .unwrap_or(0);
    let entries = chain.entries;
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
    let pct = |p: f64| quantile_ms(&latencies, p).unwrap_or(0.0);
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
    row("DAAL rows of the counter", chain.rows.to_string());
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
    for (name, held, detail) in &checks {
        row(&format!("invariant: {name}"), pass(*held).to_string());
        if !held {
            ok = false;
            println!("  violation: {detail}");
        }
    }
    if let Some(d) = temp_dir {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(ok)
}
