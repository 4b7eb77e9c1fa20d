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
//! ```
//!
//! Exit code: 0 when every invariant holds, 1 when one does not, 2 for bad input or a
//! failure to run (the message says which).

mod counter_job;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use beldi::counting::{CountingStore, RttCounts};
use beldi::platform::Mode;
use beldi::prelude::*;
use beldi::store::{OpKind, Store};
use beldi_examples::app::{App, Invariant, Mix, Workload};
use beldi_examples::driver::{self, DriverOptions, Load, Outcome};
use clap::{Parser, Subcommand, ValueEnum};

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
    Counter(counter_job::CounterArgs),
    /// Creates every table an application's functions need on a DynamoDB endpoint
    /// (idempotent) and prints the ones it created.
    DeployTables(DeployArgs),
}

#[derive(clap::Args, Clone)]
struct DeployArgs {
    /// The application (default: all three).
    #[arg(long, value_enum)]
    app: Option<App>,
    /// DynamoDB endpoint URL (DynamoDB Local); default: AWS's, from the usual AWS settings.
    #[arg(long)]
    endpoint: Option<String>,
    /// Table name prefix (the deployment's `BELDI_NAMESPACE`).
    #[arg(long, default_value = "")]
    namespace: String,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum PlatformArg {
    /// Functions run in this process.
    Local,
    /// Requests go to AWS Lambda (or `cargo lambda watch`, with --lambda-endpoint); the
    /// functions run there, on DynamoDB (--backend dynamodb). Needs the `lambda` feature.
    Lambda,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum ModeArg {
    /// Fault-tolerant: logged, exactly-once, transactional.
    Beldi,
    /// The same functions on plain store operations: no logging, no guarantees.
    Baseline,
    /// Baseline, then beldi, on the same workload (no crashes); prints both side by side.
    Compare,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum DurabilityArg {
    /// fsync on every commit (survives power loss).
    Fsync,
    /// No fsync (survives the process being killed, not a machine crash).
    ProcessCrash,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Backend {
    /// The embedded store on local disk.
    Embedded,
    /// DynamoDB (or DynamoDB Local, with --endpoint); needs the `dynamodb` feature.
    Dynamodb,
}

/// Where the data lives.
#[derive(clap::Args, Clone)]
pub(crate) struct StoreArgs {
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

#[derive(clap::Args, Clone)]
struct AppArgs {
    /// Client requests.
    #[arg(long, default_value_t = 1000)]
    requests: u32,
    /// Closed loop: clients, each sending its next request when the last one returned.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Open loop instead: requests per second, sent on schedule whatever the latency.
    #[arg(long, conflicts_with = "clients", allow_negative_numbers = true)]
    rate: Option<f64>,
    /// Probability of a crash at each step boundary of a request and of its callees, in the
    /// first three executions of each request (0–1; beldi mode only).
    #[arg(long, default_value_t = 0.02, allow_negative_numbers = true)]
    crash_rate: f64,
    /// Seed of the data set, the requests and the crash injection.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Request mix (`reserve-heavy`: travel only).
    #[arg(long, value_enum, default_value_t = Mix::Paper)]
    mix: Mix,
    /// Travel: hotels and flights the reservations spread over (fewer: more contention).
    #[arg(long, default_value_t = 100)]
    targets: usize,
    /// beldi, baseline, or compare (both, side by side).
    #[arg(long, value_enum, default_value_t = ModeArg::Beldi)]
    mode: ModeArg,
    #[command(flatten)]
    store: StoreArgs,
    /// Table name prefix (DynamoDB: lets runs share an endpoint; default: a fresh one per
    /// run, so `--resume` on DynamoDB needs the namespace of the run it continues).
    #[arg(long)]
    namespace: Option<String>,
    /// Continue a run that was killed: requests the run had started are finished first by
    /// the intent collector, then every request is issued again with the same id (finished
    /// ones return their stored results). Use the same options and `--data-dir`. On a store
    /// with no run yet (killed before it began), starts one.
    #[arg(long)]
    resume: bool,
    /// Do not draw a progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Where the functions run.
    #[arg(long, value_enum, default_value_t = PlatformArg::Local)]
    platform: PlatformArg,
    /// Lambda endpoint URL (with --platform lambda), e.g. `cargo lambda watch`'s.
    #[arg(long)]
    lambda_endpoint: Option<String>,
    /// Lambda function names (with --platform lambda): `prefix:<p>` (one Lambda per
    /// function) or `single:<name>` (one Lambda hosting them all).
    #[arg(long, default_value = "prefix:")]
    function_names: String,
    /// Seconds to wait for a request's Lambda invocation before counting it lost and sending
    /// it again (with --platform lambda; more than the functions' timeout).
    #[arg(long, default_value_t = 70)]
    lambda_timeout: u64,
}

/// A failure to run: bad input or a broken environment (exit code 2).
type JobError = String;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.job {
        Job::Movie(args) => app_job(App::Movie, args).await,
        Job::Travel(args) => app_job(App::Travel, args).await,
        Job::Social(args) => app_job(App::Social, args).await,
        Job::Compare(args) => compare_job(&App::ALL, args).await,
        Job::Counter(args) => counter_job::counter(args).await,
        Job::DeployTables(args) => deploy_tables(args).await,
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

impl AppArgs {
    fn workload(&self) -> Workload {
        Workload {
            seed: self.seed,
            requests: self.requests,
            mix: self.mix,
            targets: self.targets,
        }
    }

    fn load(&self) -> Load {
        match self.rate {
            Some(rate) => Load::Open { rate },
            None => Load::Closed {
                clients: self.clients,
            },
        }
    }

    fn validate(&self, app: App) -> Result<(), JobError> {
        if self.requests == 0 || self.clients == 0 {
            return Err(format!(
                "--requests ({}) and --clients ({}) must be at least 1",
                self.requests, self.clients
            ));
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(format!(
                "--rate must be a positive number of requests per second, got {rate}"
            ));
        }
        if !(0.0..=1.0).contains(&self.crash_rate) {
            return Err(format!(
                "--crash-rate must be between 0 and 1, got {}",
                self.crash_rate
            ));
        }
        if self.crash_rate >= 0.95 {
            return Err(format!(
                "--crash-rate {} would almost never let a request finish; use less than 0.95",
                self.crash_rate
            ));
        }
        if self.platform == PlatformArg::Lambda {
            if self.store.backend != Backend::Dynamodb {
                return Err(
                    "--platform lambda keeps its state in DynamoDB: add --backend dynamodb --endpoint URL".into(),
                );
            }
            if self.namespace.is_none() {
                return Err(
                    "--platform lambda needs the --namespace the deployed functions use (their BELDI_NAMESPACE)".into(),
                );
            }
        } else if self.lambda_endpoint.is_some() {
            return Err("--lambda-endpoint applies to --platform lambda only".into());
        }
        if self.resume && self.mode == ModeArg::Compare {
            return Err("--resume continues one run; it cannot be used with --mode compare".into());
        }
        if self.resume && self.store.backend == Backend::Embedded && self.store.data_dir.is_none() {
            return Err("--resume needs the --data-dir of the run it continues".into());
        }
        if self.resume && self.store.backend == Backend::Dynamodb && self.namespace.is_none() {
            return Err(
                "--resume on DynamoDB needs the --namespace of the run it continues".into(),
            );
        }
        app.validate(&self.workload())
    }
}

/// One application run (or, with `--mode compare`, two).
async fn app_job(app: App, args: AppArgs) -> Result<bool, JobError> {
    args.validate(app)?;
    if args.mode == ModeArg::Compare {
        return compare_job(&[app], args).await;
    }
    let mode = match args.mode {
        ModeArg::Baseline => Mode::Baseline,
        _ => Mode::Beldi,
    };
    let run = run_app(app, &args, mode, args.crash_rate, !args.no_progress).await?;
    print_run(app, &args, &run);
    Ok(run.passed())
}

/// What one run of one app in one mode produced.
struct Run {
    mode: Mode,
    backend: &'static str,
    outcome: Outcome,
    rtt: RttCounts,
    invariants: Vec<Invariant>,
    crash_rate: f64,
    /// Whether the functions ran elsewhere (Lambda).
    remote: bool,
}

impl Run {
    /// Whether the run is a success: every request finished, and in beldi mode every
    /// invariant holds (baseline mode promises nothing, so its invariants are informative).
    fn passed(&self) -> bool {
        self.outcome.unfinished == 0
            && (self.mode == Mode::Baseline || self.invariants.iter().all(Invariant::holds))
    }
    fn rtt_per_request(&self, kinds: &[OpKind]) -> f64 {
        let n: u64 = kinds.iter().map(|k| self.rtt.get(*k)).sum();
        n as f64 / self.outcome.kinds.values().sum::<u64>().max(1) as f64
    }
}

async fn run_app(
    app: App,
    args: &AppArgs,
    mode: Mode,
    crash_rate: f64,
    progress: bool,
) -> Result<Run, JobError> {
    let w = args.workload();
    let (inner, temp) = open_store(&args.store, app.name()).await?;
    let store = Arc::new(CountingStore::new(inner));
    let namespace = match (&args.namespace, args.store.backend) {
        (Some(ns), _) => ns.clone(),
        (None, Backend::Embedded) => String::new(),
        (None, Backend::Dynamodb) => format!(
            "{}{}_",
            app.name(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        ),
    };
    let namespace = match mode {
        Mode::Beldi => namespace,
        Mode::Baseline => format!("{namespace}b_"),
    };
    let config = RuntimeConfig {
        namespace,
        mode,
        // A lost execution is restarted by the intent collector after this long.
        timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let rt = Runtime::with_config(store.clone(), config).map_err(|e| e.to_string())?;
    app.register(&rt).map_err(|e| e.to_string())?;
    if args.platform == PlatformArg::Lambda {
        let remote = lambda_remote(args).await?;
        check_deployment(&*remote, &rt).await?;
        rt.set_remote(remote);
    }
    let previous = has_previous_run(app, &w, &rt, &*store).await;
    if previous && !args.resume {
        return Err(format!(
            "the store already holds a run of {} (namespace {:?}); continue it with --resume, or use an empty --data-dir / another --namespace",
            app.name(),
            rt.config().namespace
        ));
    }
    app.install(&rt, w.seed).await.map_err(|e| e.to_string())?;
    if args.resume && previous {
        // Requests the killed run had started: the intent collector finishes them first.
        let left = beldi::explorer::quiesce(&rt, 50)
            .await
            .map_err(|e| e.to_string())?;
        println!("resumed: started requests recovered; {left} instances left unfinished");
    } else if args.resume {
        println!(
            "resume: the store holds no run of {} yet; starting one",
            app.name()
        );
    }
    store.reset();
    // Crashes are injected into executions in this process; on Lambda none run here (crash
    // the functions themselves instead).
    let crash_rate = if rt.has_remote() { 0.0 } else { crash_rate };
    let opts = DriverOptions {
        load: args.load(),
        crash_rate,
        progress,
    };
    let outcome = driver::drive(app, &rt, &w, &opts)
        .await
        .map_err(|e| e.to_string())?;
    let rtt = store.counts();
    let invariants = app.check(&rt, &w).await.map_err(|e| e.to_string())?;
    if let Some(d) = temp {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(Run {
        mode,
        backend: store.backend_name(),
        outcome,
        rtt,
        invariants,
        crash_rate,
        remote: rt.has_remote(),
    })
}

/// Whether the store already holds a run of this app: in beldi mode, any intent of its
/// functions (tables alone, e.g. from `deploy-tables`, are not a run); in baseline mode, its
/// tables. Travel's checker holds over any number of runs on the same tables, and its
/// request ids carry the seed, so for travel only a run with the same seed counts.
async fn has_previous_run(app: App, w: &Workload, rt: &Runtime, store: &dyn Store) -> bool {
    if app == App::Travel && rt.config().mode == Mode::Beldi {
        let Ok(first) = app.request(w, 0) else {
            return false;
        };
        return beldi::inspect::exists(rt, first.function, &first.instance)
            .await
            .unwrap_or(false);
    }
    for f in rt.function_names() {
        let Ok(tables) = rt.tables(&f) else { continue };
        match rt.config().mode {
            Mode::Beldi => {
                let scan = beldi::store::Scan::new(tables.intent()).limit(1);
                if store.scan(scan).await.is_ok_and(|p| !p.items.is_empty()) {
                    return true;
                }
            }
            Mode::Baseline => {
                if let Some(Ok(t)) = tables.data_tables().first().map(|t| tables.plain(t)) {
                    return store.describe_table(&t).await.is_ok();
                }
            }
        }
    }
    false
}

fn print_run(app: App, args: &AppArgs, run: &Run) {
    let o = &run.outcome;
    println!(
        "\n{} on the {} store, {} mode: {} requests, {}, crash rate {}, seed {}\n",
        app.name(),
        run.backend,
        run.mode.name(),
        args.requests,
        args.load(),
        run.crash_rate,
        args.seed
    );
    table_header();
    for (k, n) in &o.kinds {
        table_row(&format!("requests: {k}"), n.to_string());
    }
    if o.already_done > 0 {
        table_row(
            "requests finished before (resumed run)",
            o.already_done.to_string(),
        );
    }
    table_row(
        "executions (first runs and client retries)",
        o.executions.to_string(),
    );
    if run.remote {
        table_row(
            "lost invocations, sent again",
            (o.executions - o.kinds.values().sum::<u64>()).to_string(),
        );
    }
    table_row(
        "crashes injected and recovered",
        format!(
            "{} / {}",
            o.crashes,
            if o.unfinished == 0 {
                o.crashes.to_string()
            } else {
                format!("{} instances unfinished", o.unfinished)
            }
        ),
    );
    table_row("elapsed", format!("{:.2} s", o.elapsed.as_secs_f64()));
    table_row("throughput (req/s)", format!("{:.0}", o.throughput()));
    table_row(
        "latency p50 / p90 / p99 (ms)",
        format!(
            "{:.1} / {:.1} / {:.1}",
            o.percentile_ms(0.5),
            o.percentile_ms(0.9),
            o.percentile_ms(0.99)
        ),
    );
    table_row(
        if run.remote {
            "round trips per request (this process; not the Lambdas')"
        } else {
            "round trips per request"
        },
        format!("{:.1}", run.rtt_per_request(&DATA_KINDS)),
    );
    for k in DATA_KINDS.iter().filter(|k| run.rtt.get(**k) > 0) {
        table_row(
            &format!("  of which {}", k.name()),
            format!("{:.1}", run.rtt_per_request(&[*k])),
        );
    }
    table_row(
        "invariant: every request finished",
        pass(o.unfinished == 0).to_string(),
    );
    for inv in &run.invariants {
        let verdict = match (inv.holds(), run.mode) {
            (true, _) => "PASS",
            (false, Mode::Beldi) => "FAIL",
            (false, Mode::Baseline) => "FAIL (baseline: expected)",
        };
        table_row(&format!("invariant: {}", inv.name), verdict.to_string());
    }
    for inv in &run.invariants {
        for v in inv.violations.iter().take(20) {
            println!("  violation ({}): {v}", inv.name);
        }
        if inv.violations.len() > 20 {
            println!(
                "  … and {} more violations of {}",
                inv.violations.len() - 20,
                inv.name
            );
        }
    }
    if app == App::Movie {
        println!(
            "\n(movie latency is the frontend's, as in the paper: the asynchronous fan-in that stores the review runs after the response; every instance was finished before the invariants were checked)"
        );
    }
    if run.mode == Mode::Baseline {
        println!(
            "\n(baseline mode gives no exactly-once or isolation; its invariants are shown for comparison and do not fail the run)"
        );
    }
}

const DATA_KINDS: [OpKind; 7] = [
    OpKind::Get,
    OpKind::Put,
    OpKind::Update,
    OpKind::Delete,
    OpKind::Query,
    OpKind::Scan,
    OpKind::TransactWrite,
];

fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}

/// Baseline and beldi runs of each app on the same workload, without crashes, side by side.
async fn compare_job(apps: &[App], mut args: AppArgs) -> Result<bool, JobError> {
    for app in apps {
        args.validate(*app)?;
    }
    if args.store.data_dir.is_some() {
        return Err("compare runs on fresh stores; --data-dir cannot be used with it".into());
    }
    args.resume = false;
    let mut rows = Vec::new();
    let mut ok = true;
    for app in apps {
        let base = run_app(*app, &args, Mode::Baseline, 0.0, !args.no_progress).await?;
        let beldi = run_app(*app, &args, Mode::Beldi, 0.0, !args.no_progress).await?;
        ok &= beldi.passed() && base.outcome.unfinished == 0;
        rows.push((*app, base, beldi));
    }
    println!(
        "\nbaseline vs beldi: {} requests per app, {}, no crashes, seed {}, {} store\n",
        args.requests,
        args.load(),
        args.seed,
        rows.first().map_or("", |r| r.1.backend)
    );
    println!(
        "| app | mode | throughput (req/s) | p50 (ms) | p99 (ms) | round trips/request | invariants |"
    );
    println!("|---|---|---:|---:|---:|---:|---|");
    for (app, base, beldi) in &rows {
        for run in [base, beldi] {
            let o = &run.outcome;
            let held = run.invariants.iter().filter(|i| i.holds()).count();
            println!(
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.1} | {held}/{} hold |",
                app.name(),
                run.mode.name(),
                o.throughput(),
                o.percentile_ms(0.5),
                o.percentile_ms(0.99),
                run.rtt_per_request(&DATA_KINDS),
                run.invariants.len()
            );
        }
        let (b, f) = (&base.outcome, &beldi.outcome);
        println!(
            "| {} | **beldi / baseline** | {:.2}× | {:.2}× | {:.2}× | {:.2}× | |",
            app.name(),
            f.throughput() / b.throughput().max(1e-9),
            f.percentile_ms(0.5) / b.percentile_ms(0.5).max(1e-9),
            f.percentile_ms(0.99) / b.percentile_ms(0.99).max(1e-9),
            beldi.rtt_per_request(&DATA_KINDS) / base.rtt_per_request(&DATA_KINDS).max(1e-9),
        );
    }
    Ok(ok)
}

/// Checks that the deployment `remote` reaches hosts this runtime's functions, in the same
/// namespace and mode (else its results and this process's checks would be about different
/// tables).
async fn check_deployment(
    remote: &dyn beldi::remote::Remote,
    rt: &Runtime,
) -> Result<(), JobError> {
    let want = rt.describe();
    let got = remote
        .send(&beldi::remote::Envelope::Describe)
        .await
        .map_err(|e| format!("cannot reach the deployment: {e}"))?
        .into_result("describe")
        .map_err(|e| format!("the deployment cannot describe itself: {e}"))?;
    let field = |v: &beldi::store::AttrValue, k: &str| v.as_m().and_then(|m| m.get(k)).cloned();
    for k in ["namespace", "mode"] {
        if field(&got, k) != field(&want, k) {
            return Err(format!(
                "the deployment's {k} is {:?}, this run's is {:?}: pass the deployment's (--namespace is its BELDI_NAMESPACE)",
                field(&got, k),
                field(&want, k)
            ));
        }
    }
    let hosted = field(&got, "functions");
    let hosted = hosted.as_ref().and_then(|v| v.as_l()).unwrap_or(&[]);
    for f in rt.function_names() {
        if !hosted.contains(&beldi::store::AttrValue::S(f.clone())) {
            return Err(format!("the deployment does not host function `{f}`"));
        }
    }
    Ok(())
}

#[cfg(feature = "lambda")]
async fn lambda_remote(args: &AppArgs) -> Result<Arc<dyn beldi::remote::Remote>, JobError> {
    use beldi::lambda::{FunctionNames, LambdaConfig, LambdaRemote};
    let names = FunctionNames::parse(&args.function_names).map_err(|e| e.to_string())?;
    let remote = LambdaRemote::connect(LambdaConfig {
        endpoint: args.lambda_endpoint.clone(),
        names,
        invoke_timeout: Duration::from_secs(args.lambda_timeout),
    })
    .await;
    Ok(Arc::new(remote))
}

#[cfg(not(feature = "lambda"))]
async fn lambda_remote(_args: &AppArgs) -> Result<Arc<dyn beldi::remote::Remote>, JobError> {
    Err(
        "this binary was built without the `lambda` feature; rebuild with `--features lambda`"
            .into(),
    )
}

/// Creates the tables of an app's functions (or all apps') on a DynamoDB endpoint.
async fn deploy_tables(args: DeployArgs) -> Result<bool, JobError> {
    let store = match &args.endpoint {
        Some(e) => dynamodb_store(e.clone()).await?,
        None => dynamodb_store_aws().await?,
    };
    let config = RuntimeConfig {
        namespace: args.namespace.clone(),
        ..Default::default()
    };
    let rt = Runtime::with_config(store, config).map_err(|e| e.to_string())?;
    let apps = args.app.map_or(App::ALL.to_vec(), |a| vec![a]);
    for app in &apps {
        app.register(&rt).map_err(|e| e.to_string())?;
    }
    let created = rt.provision().await.map_err(|e| e.to_string())?;
    let all: usize = rt
        .function_names()
        .iter()
        .filter_map(|f| rt.tables(f).ok())
        .map(|t| t.specs().len())
        .sum();
    for t in &created {
        println!("created {t}");
    }
    println!(
        "{} tables created, {} already there, for {} functions of {} (namespace {:?})",
        created.len(),
        all - created.len(),
        rt.function_names().len(),
        apps.iter().map(|a| a.name()).collect::<Vec<_>>().join(", "),
        args.namespace
    );
    Ok(true)
}

#[cfg(feature = "dynamodb")]
async fn dynamodb_store_aws() -> Result<Arc<dyn Store>, JobError> {
    let cfg = beldi::dynamodb::DynamoDbConfig::default();
    Ok(Arc::new(beldi::dynamodb::DynamoDbStore::connect(cfg).await))
}

#[cfg(not(feature = "dynamodb"))]
async fn dynamodb_store_aws() -> Result<Arc<dyn Store>, JobError> {
    dynamodb_store(String::new()).await
}

/// Opens the store `args` names; returns it and, for a temporary embedded directory, the
/// directory to remove at the end.
pub(crate) async fn open_store(
    args: &StoreArgs,
    job: &str,
) -> Result<(Arc<dyn Store>, Option<PathBuf>), JobError> {
    match args.backend {
        Backend::Embedded => {
            if args.endpoint.is_some() {
                return Err("--endpoint applies to --backend dynamodb only".into());
            }
            let (dir, temp) = match &args.data_dir {
                Some(d) => (d.clone(), None),
                None => {
                    let d = std::env::temp_dir().join(format!(
                        "beldi-{job}-{}-{}",
                        std::process::id(),
                        TEMP_DIRS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    ));
                    (d.clone(), Some(d))
                }
            };
            let durability = match args.durability {
                DurabilityArg::Fsync => Durability::Fsync,
                DurabilityArg::ProcessCrash => Durability::ProcessCrash,
            };
            let opts = EmbeddedOptions {
                durability,
                ..Default::default()
            };
            let store = EmbeddedStore::open_with(&dir, opts)
                .map_err(|e| format!("cannot open the store in {}: {e}", dir.display()))?;
            Ok((Arc::new(store), temp))
        }
        Backend::Dynamodb => {
            if args.data_dir.is_some() {
                return Err("--data-dir applies to --backend embedded only".into());
            }
            let endpoint = args
                .endpoint
                .clone()
                .ok_or("--backend dynamodb needs --endpoint URL")?;
            Ok((dynamodb_store(endpoint).await?, None))
        }
    }
}

static TEMP_DIRS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[cfg(feature = "dynamodb")]
async fn dynamodb_store(endpoint: String) -> Result<Arc<dyn Store>, JobError> {
    let mut cfg = beldi::dynamodb::DynamoDbConfig::local(endpoint.clone());
    cfg.max_attempts = Some(1);
    let probe = beldi::dynamodb::DynamoDbStore::connect(cfg).await;
    // One cheap request, so an unreachable endpoint is reported now, in one line.
    match tokio::time::timeout(
        Duration::from_secs(10),
        probe.describe_table("beldi-endpoint-probe"),
    )
    .await
    {
        Err(_) => {
            return Err(format!(
                "cannot reach DynamoDB at {endpoint}: no answer in 10 s"
            ));
        }
        Ok(Err(beldi::store::StoreError::TableNotFound { .. })) | Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(format!("cannot reach DynamoDB at {endpoint}: {e}")),
    }
    Ok(Arc::new(
        beldi::dynamodb::DynamoDbStore::local(endpoint).await,
    ))
}

#[cfg(not(feature = "dynamodb"))]
async fn dynamodb_store(_endpoint: String) -> Result<Arc<dyn Store>, JobError> {
    Err(
        "this binary was built without the `dynamodb` feature; rebuild with `--features dynamodb`"
            .into(),
    )
}

/// The header of a job's summary table.
pub(crate) fn table_header() {
    table_row("metric", "value".to_string());
    println!("|{}|{}|", "-".repeat(62), "-".repeat(30));
}

/// One row of a job's summary table.
pub(crate) fn table_row(name: &str, value: String) {
    println!("| {name:<60} | {value:>28} |");
}
