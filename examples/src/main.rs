//! The project's main job: runs one of the paper's applications under a workload, with
//! crashes injected, then checks the application's invariants over the final state.
//!
//! ```text
//! cargo run --release -p beldi-examples -- travel
//! cargo run --release -p beldi-examples -- movie --requests 2000 --clients 32 --crash-rate 0.05
//! cargo run --release -p beldi-examples -- social --rate 200          # open loop
//! cargo run --release -p beldi-examples -- travel --mode compare      # baseline vs beldi
//! cargo run --release -p beldi-examples -- compare                    # every app, both modes
//! cargo run --release -p beldi-examples -- travel --data-dir d        # then kill -9 it, and:
//! cargo run --release -p beldi-examples -- travel --data-dir d --resume
//! cargo run --release -p beldi-examples -- inspect --app travel --data-dir d instances
//! ```
//!
//! Exit code: 0 when every invariant holds, 1 when one does not, 2 for bad input or a
//! failure to run (the message says which).

mod job;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use job::cli::{AppArgs, DeployArgs};
use job::counter::CounterArgs;

#[derive(Parser)]
#[command(
    name = "beldi-examples",
    version,
    about = "Beldi for Rust: the paper's applications under load and crashes, with their invariants checked"
)]
struct Cli {
    #[command(subcommand)]
    job: Job,
}

#[derive(Subcommand)]
enum Job {
    /// Movie review: compose-review fans out to four functions in parallel, which report
    /// back asynchronously; the fifth part emits the review.
    Movie(AppArgs),
    /// Travel reservation: search, recommend, login, and reserve (a transaction across the
    /// hotel and flight functions, then an order).
    Travel(AppArgs),
    /// Social media: compose-post with mentions, URL shortening, media, the author's
    /// timeline and every follower's home timeline.
    Social(AppArgs),
    /// Every application in baseline and in beldi mode, side by side (no crashes).
    Compare(AppArgs),
    /// Exactly-once increments of a shared counter under random crashes and duplicates.
    Counter(CounterArgs),
    /// The `beldi` inspector (instances, steps, call trees, locks, stats, web UI) with an
    /// application's functions registered, for the actions that run its code: rerun,
    /// collect (an intent-collector pass), gc.
    Inspect(job::inspect::InspectArgs),
    /// Creates every table an application's functions need on a DynamoDB endpoint
    /// (idempotent) and prints the ones it created.
    DeployTables(DeployArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    use beldi_examples::app::App;
    let cli = Cli::parse();
    let result = match cli.job {
        Job::Movie(args) => job::app::app_job(App::Movie, args).await,
        Job::Travel(args) => job::app::app_job(App::Travel, args).await,
        Job::Social(args) => job::app::app_job(App::Social, args).await,
        Job::Compare(args) => job::compare::compare_job(&App::ALL, args).await,
        Job::Counter(args) => job::counter::counter(args).await,
        Job::DeployTables(args) => job::deploy::deploy_tables(args).await,
        Job::Inspect(args) => job::inspect::inspect(args).await,
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
