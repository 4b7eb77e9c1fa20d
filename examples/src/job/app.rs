//! The application jobs (`movie`, `travel`, `social`): one run of an application under a
//! workload, with crashes injected, then its invariants checked over the final state.

use std::sync::Arc;
use std::time::Duration;

use beldi::counting::{CountingStore, RttCounts};
use beldi::platform::Mode;
use beldi::prelude::*;
use beldi::store::OpKind;
use beldi_examples::app::{App, Invariant, Workload};
use beldi_examples::driver::{self, DriverOptions, Outcome};

use super::cli::{AppArgs, Backend, ModeArg, PlatformArg};
use super::compare::compare_job;
use super::error::{JobError, usage};
use super::report::{pass, table_header, table_row};
use super::setup::{check_deployment, lambda_remote, open_store};

/// The execution timeout of the jobs' functions (a lost execution is restarted by the
/// intent collector after this long).
pub(crate) const JOB_TIMEOUT: Duration = Duration::from_secs(10);

/// One application run (or, with `--mode compare`, two).
pub(crate) async fn app_job(app: App, args: AppArgs) -> Result<bool, JobError> {
    args.validate(app)?;
    if args.mode == ModeArg::Compare {
        return compare_job(&[app], args).await;
    }
    let mode = match args.mode {
        ModeArg::Baseline => Mode::Baseline,
        _ => Mode::Beldi,
    };
    let run = run_app(app, &args, mode, args.crash_rate, !args.no_progress, true).await?;
    print_run(app, &args, &run);
    Ok(run.passed())
}

/// What one run of one app in one mode produced.
pub(crate) struct Run {
    pub(crate) mode: Mode,
    pub(crate) backend: &'static str,
    pub(crate) outcome: Outcome,
    pub(crate) rtt: RttCounts,
    pub(crate) invariants: Vec<Invariant>,
    pub(crate) crash_rate: f64,
    /// Whether the functions ran elsewhere (Lambda).
    remote: bool,
    /// Where the inspector finds the run's data, when it was kept.
    inspect: Option<Inspect>,
}

/// The store options that open a kept run in the inspector.
pub(crate) struct Inspect {
    data_dir: Option<std::path::PathBuf>,
    endpoint: Option<String>,
    namespace: String,
}

impl Inspect {
    /// The inspector's options naming this store.
    fn options(&self) -> String {
        let mut o = match (&self.data_dir, &self.endpoint) {
            (Some(d), _) => format!("--data-dir {}", d.display()),
            (None, Some(e)) => format!("--endpoint {e}"),
            (None, None) => String::new(),
        };
        if !self.namespace.is_empty() {
            o.push_str(&format!(" --namespace {}", self.namespace));
        }
        o
    }
}

impl Run {
    /// Whether the run is a success: every request finished, and in beldi mode every
    /// invariant holds (baseline mode promises nothing, so its invariants are informative).
    pub(crate) fn passed(&self) -> bool {
        self.outcome.unfinished == 0
            && (self.mode == Mode::Baseline || self.invariants.iter().all(Invariant::holds))
    }
    /// Data round trips (every kind but table management) per request.
    pub(crate) fn rtt_per_request(&self) -> f64 {
        self.per_request(self.rtt.total_data())
    }
    /// `n` per request.
    fn per_request(&self, n: u64) -> f64 {
        n as f64 / self.outcome.kinds.values().sum::<u64>().max(1) as f64
    }
}

pub(crate) async fn run_app(
    app: App,
    args: &AppArgs,
    mode: Mode,
    crash_rate: f64,
    progress: bool,
    keep_data: bool,
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
        timeout: JOB_TIMEOUT,
        ..Default::default()
    };
    let rt = Runtime::with_config(store.clone(), config)?;
    app.register(&rt)?;
    if args.platform == PlatformArg::Lambda {
        let remote = lambda_remote(args).await?;
        check_deployment(&*remote, &rt).await?;
        rt.set_remote(remote);
    }
    let previous = has_previous_run(app, &w, &rt, &*store).await;
    if previous && !args.resume {
        return Err(usage(format!(
            "the store already holds a run of {} (namespace {:?}); continue it with --resume, or use an empty --data-dir / another --namespace",
            app.name(),
            rt.config().namespace
        )));
    }
    app.install(&rt, w.seed).await?;
    if args.resume && previous {
        // Requests the killed run had started: the intent collector finishes them first.
        let left = beldi::explorer::quiesce(&rt, 50).await?;
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
    let outcome = driver::drive(app, &rt, &w, &opts).await?;
    let rtt = store.counts();
    let invariants = app.check(&rt, &w).await?;
    // A beldi run's data is kept for the inspector (a baseline run has no intents to show).
    let keep = keep_data && mode == Mode::Beldi;
    let inspect = keep.then(|| Inspect {
        data_dir: args.store.data_dir.clone().or(temp.clone()),
        endpoint: args.store.endpoint.clone(),
        namespace: rt.config().namespace.clone(),
    });
    if let (Some(d), false) = (temp, keep) {
        let _ = std::fs::remove_dir_all(d);
    }
    Ok(Run {
        inspect,
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
        format!("{:.1}", run.rtt_per_request()),
    );
    for k in OpKind::ALL
        .iter()
        .filter(|k| **k != OpKind::Admin && run.rtt.get(**k) > 0)
    {
        table_row(
            &format!("  of which {}", k.name()),
            format!("{:.1}", run.per_request(run.rtt.get(*k))),
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
    if let Some(i) = &run.inspect {
        let features = if i.endpoint.is_some() {
            "cli,dynamodb"
        } else {
            "cli"
        };
        let beldi = format!("cargo run -q -p beldi --features {features} --bin beldi --");
        println!("\ninspect this run (instances, one instance's steps and calls, locks, stats):");
        println!("  {beldi} {} instances --state running", i.options());
        println!("  {beldi} {} stats", i.options());
        println!(
            "  {beldi} {} ui      # then open http://127.0.0.1:7878/",
            i.options()
        );
        println!(
            "  cargo run -q -p beldi-examples{} -- inspect --app {} {} collect   # operator actions with the app's code: rerun, collect, gc",
            if i.endpoint.is_some() {
                " --features dynamodb"
            } else {
                ""
            },
            app.name(),
            i.options()
        );
    }
}
