//! The benchmarks: `cargo run --release -p beldi-examples --bin bench -- all` writes
//! `docs/bench/REPORT.md` and its PNG plots. `--dynamodb URL` adds DynamoDB Local to the
//! per-operation and application figures (build with `--features dynamodb`);
//! `scripts/bench.sh` starts and stops it for you. `--scale smoke` runs a few samples of
//! everything (CI uses it so the benchmarks never rot).

use std::path::PathBuf;
use std::process::ExitCode;

use beldi::prelude::Durability;
use beldi_examples::bench::{self, Backend, Report, Scale};
use clap::{Parser, ValueEnum};

/// Why the benchmarks could not run.
#[derive(Debug, thiserror::Error)]
enum BenchError {
    /// An option the build cannot honour.
    #[error("{0}")]
    Usage(&'static str),
    /// A benchmark failed.
    #[error(transparent)]
    Beldi(#[from] beldi::BeldiError),
    /// The report could not be written.
    #[error("{}: {source}", path.display())]
    Report {
        /// Where.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Beldi for Rust benchmarks: a Markdown report and PNG plots"
)]
struct Cli {
    /// Which part: all, ops, apps, gc, txn, store.
    #[arg(value_enum, default_value_t = Part::All)]
    part: Part,
    /// How long: smoke (seconds; CI) or standard (the committed results).
    #[arg(long, value_enum, default_value_t = ScaleArg::Standard)]
    scale: ScaleArg,
    /// Where the report and plots go.
    #[arg(long, default_value = "docs/bench")]
    out: PathBuf,
    /// DynamoDB (Local) endpoint: also measure on it (needs the `dynamodb` feature).
    #[arg(long)]
    dynamodb: Option<String>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Part {
    All,
    Ops,
    Apps,
    Gc,
    Txn,
    Store,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScaleArg {
    Smoke,
    Standard,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(path) => {
            println!("report: {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<PathBuf, BenchError> {
    let scale = match cli.scale {
        ScaleArg::Smoke => Scale::smoke(),
        ScaleArg::Standard => Scale::standard(),
    };
    let mut backends = vec![Backend::Embedded(Durability::ProcessCrash)];
    if let Some(e) = &cli.dynamodb {
        if !cfg!(feature = "dynamodb") {
            return Err(BenchError::Usage(
                "--dynamodb needs a build with `--features dynamodb`",
            ));
        }
        backends.push(Backend::DynamoDb(e.clone()));
    }
    let report_error = |source| BenchError::Report {
        path: cli.out.clone(),
        source,
    };
    let mut report = Report::new(&cli.out).map_err(report_error)?;
    bench::plot::set_footer(format!(
        "{} | scale {} | embedded store: process-crash durability unless labelled fsync",
        bench::machine(),
        scale.name
    ));
    let started = std::time::Instant::now();
    let wants = |p: Part| cli.part == Part::All || cli.part == p;
    if wants(Part::Ops) {
        eprintln!("bench: per-operation cost");
        bench::ops::run(&backends, &scale, &mut report).await?;
    }
    if wants(Part::Apps) {
        eprintln!("bench: applications");
        bench::apps::run(&backends, &scale, &mut report).await?;
    }
    if wants(Part::Gc) {
        eprintln!("bench: GC and DAAL growth");
        bench::gc::run(&backends[0], &scale, &mut report).await?;
    }
    if wants(Part::Txn) {
        eprintln!("bench: transactions");
        bench::txn::run(&backends[0], &scale, &mut report).await?;
    }
    if wants(Part::Store) {
        eprintln!("bench: embedded store throughput");
        bench::store::run(&scale, &mut report).await?;
    }
    let part_name = match cli.part {
        Part::All => "all",
        Part::Ops => "ops",
        Part::Apps => "apps",
        Part::Gc => "gc",
        Part::Txn => "txn",
        Part::Store => "store",
    };
    let header = format!(
        "# Beldi for Rust — benchmark report\n\n\
         - Machine: {}\n- Scale: `{}`; whole run {:.0} s\n- Backends: {}\n\
         - Command: `cargo run --release -p beldi-examples --features dynamodb --bin bench -- {} --scale {}{}`\n\
         - Embedded store durability: process-crash (no fsync; survives kill -9), except \
         where the store section says fsync.\n\
         - Every ratio compares two measurements from this same run on this machine; warm-up \
         instances are excluded; noisy figures are medians of several runs.",
        bench::machine(),
        scale.name,
        started.elapsed().as_secs_f64(),
        backends
            .iter()
            .map(Backend::label)
            .collect::<Vec<_>>()
            .join(", "),
        part_name,
        scale.name,
        if cli.dynamodb.is_some() {
            " --dynamodb URL"
        } else {
            ""
        },
    );
    if cli.part == Part::All {
        report.write(&header).map_err(report_error)
    } else {
        // One part: its sections replace theirs in the report already there.
        let note = format!(
            "Re-measured on its own: `bench -- {} --scale {}` ({:.0} s, {}); the other \
             sections are from the run above.",
            part_name,
            scale.name,
            started.elapsed().as_secs_f64(),
            bench::machine()
        );
        report.update(&header, &note).map_err(report_error)
    }
}
