//! Applications (the paper's Figs. 12–13): latency and throughput of each app, beldi against
//! baseline, closed loop at several client counts and open loop at several rates, on every
//! backend given; the ratio beldi / baseline per point. Each point is the median of
//! `repeats` runs on fresh stores; no crashes.

use beldi::platform::Mode;
use beldi::prelude::*;

use super::{Backend, Fresh, Report, Scale, median, table};
use crate::app::{App, Mix, Workload};
use crate::driver::{self, DriverOptions, Load, Outcome};

/// One point: medians over the repeats.
#[derive(Clone, Debug)]
pub struct Point {
    /// Backend label.
    pub backend: String,
    /// The app.
    pub app: App,
    /// The load.
    pub load: Load,
    /// Beldi or baseline.
    pub mode: Mode,
    /// Median p50 latency, ms.
    pub p50: f64,
    /// Median p99 latency, ms.
    pub p99: f64,
    /// Median throughput, requests/s.
    pub throughput: f64,
}

/// One run of `app` (the paper's mix, `requests` requests, crashes at `crash_rate` of step
/// boundaries) on a fresh runtime on `backend`: the runtime, its workload and the outcome.
pub async fn drive_fresh(
    backend: &Backend,
    app: App,
    mode: Mode,
    load: Load,
    requests: u32,
    crash_rate: f64,
) -> Result<(Fresh, Workload, Outcome), BeldiError> {
    let f = backend.runtime(mode, 1000).await?;
    app.register(&f.rt)?;
    let w = Workload {
        seed: 1,
        requests,
        mix: Mix::Paper,
        targets: 100,
    };
    app.install(&f.rt, w.seed).await?;
    let opts = DriverOptions {
        load,
        crash_rate,
        progress: false,
    };
    let o = driver::drive(app, &f.rt, &w, &opts)
        .await
        .map_err(|e| BeldiError::Corrupt {
            what: format!("{} run", app.name()),
            message: e.to_string(),
        })?;
    Ok((f, w, o))
}

async fn one_run(
    backend: &Backend,
    app: App,
    mode: Mode,
    load: Load,
    requests: u32,
) -> Result<(f64, f64, f64), BeldiError> {
    let (_, _, o) = drive_fresh(backend, app, mode, load, requests, 0.0).await?;
    Ok((o.percentile_ms(0.5), o.percentile_ms(0.99), o.throughput()))
}

/// Runs the application benchmark.
pub async fn run(
    backends: &[Backend],
    scale: &Scale,
    report: &mut Report,
) -> Result<Vec<Point>, BeldiError> {
    let mut points = Vec::new();
    let loads: Vec<Load> = scale
        .clients
        .iter()
        .map(|c| Load::Closed { clients: *c })
        .chain(scale.rates.iter().map(|r| Load::Open { rate: *r }))
        .collect();
    for backend in backends {
        for app in App::ALL {
            for load in &loads {
                for mode in [Mode::Baseline, Mode::Beldi] {
                    let mut runs = Vec::new();
                    for _ in 0..scale.repeats {
                        runs.push(one_run(backend, app, mode, *load, scale.app_requests).await?);
                    }
                    points.push(Point {
                        backend: backend.label(),
                        app,
                        load: *load,
                        mode,
                        p50: median(runs.iter().map(|r| r.0).collect()),
                        p99: median(runs.iter().map(|r| r.1).collect()),
                        throughput: median(runs.iter().map(|r| r.2).collect()),
                    });
                }
            }
        }
    }
    report.section(section(&points, scale));
    plot(&points, report)?;
    Ok(points)
}

fn pair<'a>(points: &'a [Point], p: &Point) -> Option<&'a Point> {
    points.iter().find(|b| {
        b.mode == Mode::Baseline && b.app == p.app && b.load == p.load && b.backend == p.backend
    })
}

fn section(points: &[Point], scale: &Scale) -> String {
    let mut rows = Vec::new();
    for p in points.iter().filter(|p| p.mode == Mode::Beldi) {
        let Some(b) = pair(points, p) else { continue };
        rows.push(vec![
            p.backend.clone(),
            p.app.name().into(),
            p.load.to_string(),
            format!("{:.1} / {:.1}", b.p50, b.p99),
            format!("{:.1} / {:.1}", p.p50, p.p99),
            format!("{:.0} / {:.0}", b.throughput, p.throughput),
            format!("{:.2}×", p.p50 / b.p50),
            format!("{:.2}×", p.p99 / b.p99),
            format!("{:.2}×", p.throughput / b.throughput),
        ]);
    }
    format!(
        "## Applications, beldi vs baseline (Figs. 12–13)\n\n\
         {} requests per run, median of {} runs per point on fresh stores, no crashes; the \
         paper's mixes (travel 60/39/0.5/0.5, movie and social 100% compose). Open-loop \
         latency is measured from each request's scheduled start; movie latency is the \
         frontend's (the async fan-in runs after the response), as in the paper. Every point \
         has both sides measured in the same run of this command.\n\n{}\n\n\
         ![movie, closed loop](apps_movie_closed.png) ![movie, open loop](apps_movie_open.png)\n\n\
         ![travel, closed loop](apps_travel_closed.png) ![travel, open loop](apps_travel_open.png)\n\n\
         ![social, closed loop](apps_social_closed.png) ![social, open loop](apps_social_open.png)",
        scale.app_requests,
        scale.repeats,
        table(
            &[
                "backend",
                "app",
                "load",
                "baseline p50 / p99 ms",
                "beldi p50 / p99 ms",
                "req/s baseline / beldi",
                "p50 ratio",
                "p99 ratio",
                "throughput ratio",
            ],
            &rows
        )
    )
}

fn plot(points: &[Point], report: &Report) -> Result<(), BeldiError> {
    for app in App::ALL {
        let mut closed = Vec::new();
        let mut open = Vec::new();
        let mut keys: Vec<(String, Mode)> = Vec::new();
        for p in points.iter().filter(|p| p.app == app) {
            if !keys.contains(&(p.backend.clone(), p.mode)) {
                keys.push((p.backend.clone(), p.mode));
            }
        }
        for (backend, mode) in keys {
            let mine = points
                .iter()
                .filter(|p| p.backend == backend && p.app == app && p.mode == mode);
            let label = format!("{} ({backend})", mode.name());
            let c: Vec<(f64, f64)> = mine
                .clone()
                .filter_map(|p| match p.load {
                    Load::Closed { clients } => Some((clients as f64, p.p50)),
                    Load::Open { .. } => None,
                })
                .collect();
            let o: Vec<(f64, f64)> = mine
                .filter_map(|p| match p.load {
                    Load::Open { rate } => Some((rate, p.p50)),
                    Load::Closed { .. } => None,
                })
                .collect();
            closed.push((label.clone(), c));
            open.push((label, o));
        }
        super::plot::lines(
            &report.dir().join(format!("apps_{}_closed.png", app.name())),
            &format!("{}: p50 latency vs closed-loop clients", app.name()),
            "clients",
            "p50 latency (ms)",
            &closed,
        )?;
        super::plot::lines(
            &report.dir().join(format!("apps_{}_open.png", app.name())),
            &format!("{}: p50 latency vs offered load (open loop)", app.name()),
            "offered load (req/s)",
            "p50 latency (ms)",
            &open,
        )?;
    }
    Ok(())
}
