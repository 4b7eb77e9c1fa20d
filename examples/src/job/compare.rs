//! The `compare` job (and `--mode compare`): baseline and beldi runs of each application
//! on the same workload, without crashes, side by side.

use beldi::platform::Mode;
use beldi_examples::app::App;

use super::app::run_app;
use super::cli::AppArgs;
use super::error::{JobError, usage};

/// Baseline and beldi runs of each app on the same workload, without crashes, side by side.
pub(crate) async fn compare_job(apps: &[App], mut args: AppArgs) -> Result<bool, JobError> {
    for app in apps {
        args.validate(*app)?;
    }
    if args.store.data_dir.is_some() {
        return Err(usage(
            "compare runs on fresh stores; --data-dir cannot be used with it",
        ));
    }
    args.resume = false;
    let mut rows = Vec::new();
    let mut ok = true;
    for app in apps {
        let base = run_app(*app, &args, Mode::Baseline, 0.0, !args.no_progress, false).await?;
        let beldi = run_app(*app, &args, Mode::Beldi, 0.0, !args.no_progress, false).await?;
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
                run.rtt_per_request(),
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
            beldi.rtt_per_request() / base.rtt_per_request().max(1e-9),
        );
    }
    Ok(ok)
}
