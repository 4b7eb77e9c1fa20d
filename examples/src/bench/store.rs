//! Embedded store throughput: logged writes/s and reads/s (each a whole instance making one
//! logged operation on one of 64 keys per `store_ops` instances) with 1, 4, 16 and 64
//! instances in flight, per durability setting, and how the store grouped the write
//! requests into commits.

use std::time::Instant;

use beldi::platform::Mode;
use beldi::prelude::*;

use super::fns::{self, OpKind, OpReq};
use super::{Backend, Report, Scale, median, table};
use crate::app::App;
use crate::driver::Load;

const CONCURRENCY: [usize; 4] = [1, 4, 16, 64];

/// Runs per point (each on a fresh store); the median is reported.
const RUNS: usize = 5;

/// One run of one point.
struct Run {
    rate: f64,
    stats: CommitStats,
}

/// Keys per `store_ops` instances: a key's DAAL row grows with its writes, so every point
/// writes each key as often.
const KEYS: usize = 64;

/// Instances and keys of a point: `store_ops` instances on 64 keys up to 8 in flight, then
/// as many again per 8 in flight, so that every point runs for a comparable time and each
/// key gets as many writes.
fn size(scale: &Scale, concurrency: usize) -> (usize, usize) {
    let times = concurrency.div_ceil(8);
    (scale.store_ops * times, KEYS * times)
}

async fn run_once(
    backend: &Backend,
    op: OpKind,
    concurrency: usize,
    (count, keys): (usize, usize),
) -> Result<Run, BeldiError> {
    let f = backend.runtime(Mode::Beldi, 1000).await?;
    f.install(&[fns::bench_op.name()]).await?;
    let before = f.embedded.as_ref().map(EmbeddedStore::commit_stats);
    let started = Instant::now();
    super::clients(concurrency, count, |i| {
        let rt = f.rt.clone();
        async move {
            let req = OpReq {
                kind: op,
                key: format!("k{}", i % keys),
            };
            fns::bench_op
                .invoke(&rt, &format!("i{i}"), &req)
                .await?
                .map_err(|e| BeldiError::Corrupt {
                    what: "instance".into(),
                    message: e.0,
                })
        }
    })
    .await?;
    let rate = count as f64 / started.elapsed().as_secs_f64();
    let stats = match (f.embedded.as_ref(), before) {
        (Some(s), Some(before)) => s.commit_stats().since(&before),
        _ => CommitStats::default(),
    };
    Ok(Run { rate, stats })
}

/// The median run of each case at one concurrency. The cases' runs are interleaved, so a
/// drift of the machine's speed during the point affects them all alike.
async fn point(
    cases: &[(Backend, OpKind)],
    concurrency: usize,
    size: (usize, usize),
) -> Result<Vec<Run>, BeldiError> {
    let mut runs: Vec<Vec<Run>> = cases.iter().map(|_| Vec::with_capacity(RUNS)).collect();
    for _ in 0..RUNS {
        for ((backend, op), runs) in cases.iter().zip(&mut runs) {
            runs.push(run_once(backend, *op, concurrency, size).await?);
        }
    }
    Ok(runs
        .into_iter()
        .filter_map(|mut r| {
            r.sort_by(|a, b| a.rate.total_cmp(&b.rate));
            (!r.is_empty()).then(|| r.swap_remove(r.len() / 2))
        })
        .collect())
}

/// One run of the main job (README's first command: travel, 16 clients, 2% crashes) on
/// `backend`: its closed-loop throughput, requests/s.
async fn main_job(backend: &Backend, requests: u32) -> Result<f64, BeldiError> {
    let load = Load::Closed { clients: 16 };
    let (f, w, o) =
        super::apps::drive_fresh(backend, App::Travel, Mode::Beldi, load, requests, 0.02).await?;
    let failed: Vec<_> = App::Travel
        .check(&f.rt, &w)
        .await?
        .into_iter()
        .filter(|i| !i.holds())
        .collect();
    if !failed.is_empty() {
        return Err(BeldiError::Corrupt {
            what: "main job".into(),
            message: format!("invariants failed on {}: {failed:?}", backend.label()),
        });
    }
    Ok(o.throughput())
}

/// Runs the store-throughput experiment.
pub async fn run(scale: &Scale, report: &mut Report) -> Result<(), BeldiError> {
    let mut rows = Vec::new();
    let mut groups = Vec::new();
    let mut series = Vec::new();
    // (durability, grouped?) -> logged-write rates by concurrency.
    let mut writes: Vec<(Durability, bool, Vec<f64>)> = Vec::new();
    for durability in [Durability::Fsync, Durability::ProcessCrash] {
        let cases = [
            (Backend::Embedded(durability), OpKind::Write),
            (Backend::Embedded(durability), OpKind::Read),
            (Backend::EmbeddedUngrouped(durability), OpKind::Write),
        ];
        let mut by_concurrency = Vec::new();
        for c in CONCURRENCY {
            by_concurrency.push(point(&cases, c, size(scale, c)).await?);
        }
        for (k, (backend, op)) in cases.iter().enumerate() {
            let op = *op;
            let grouped = matches!(backend, Backend::Embedded(_));
            let mut line = vec![backend.label(), format!("logged {}s/s", op.name())];
            let mut group_line = vec![backend.label(), format!("logged {}s", op.name())];
            let mut points = Vec::new();
            for (c, runs) in CONCURRENCY.iter().zip(&by_concurrency) {
                let Some(r) = runs.get(k) else { continue };
                line.push(format!("{:.0}", r.rate));
                let per_sync = if r.stats.syncs == 0 {
                    "–".to_owned()
                } else {
                    format!("{:.1}", r.stats.mean_per_sync())
                };
                group_line.push(format!(
                    "{:.1} / {} ({per_sync})",
                    r.stats.mean_group(),
                    r.stats.group_quantile(0.99),
                ));
                points.push((*c as f64, r.rate));
            }
            if op == OpKind::Write {
                writes.push((durability, grouped, points.iter().map(|p| p.1).collect()));
            }
            rows.push(line);
            if grouped {
                groups.push(group_line);
            }
            series.push((format!("{} {}", op.name(), backend.label()), points));
        }
    }
    let rates = |d: Durability, grouped: bool| {
        writes
            .iter()
            .find(|(wd, g, _)| *wd == d && *g == grouped)
            .map(|w| w.2.clone())
            .unwrap_or_default()
    };
    let ratio = |a: Option<&f64>, b: Option<&f64>| match (a, b) {
        (Some(a), Some(b)) if *b > 0.0 => a / b,
        _ => f64::NAN,
    };
    let fsync = rates(Durability::Fsync, true);
    let mut findings = vec![format!(
        "- Durable (fsync) logged writes, 64 in flight: **{:.0}/s**, **{:.1}×** the rate with 1 \
         in flight.",
        fsync.last().copied().unwrap_or(f64::NAN),
        ratio(fsync.last(), fsync.first())
    )];
    for d in [Durability::Fsync, Durability::ProcessCrash] {
        let (on, off) = (rates(d, true), rates(d, false));
        findings.push(format!(
            "- {}: group commit vs none, logged writes with 1 / 64 in flight: **{:.2}× / {:.2}×**.",
            Backend::Embedded(d).label(),
            ratio(on.first(), off.first()),
            ratio(on.last(), off.last())
        ));
    }
    let mut job = Vec::new();
    for d in [Durability::ProcessCrash, Durability::Fsync] {
        let (mut offs, mut ons) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            offs.push(main_job(&Backend::EmbeddedUngrouped(d), scale.store_job_requests).await?);
            ons.push(main_job(&Backend::Embedded(d), scale.store_job_requests).await?);
        }
        let (off, on) = (median(offs), median(ons));
        job.push(vec![
            Backend::Embedded(d).label(),
            format!("{off:.0}"),
            format!("{on:.0}"),
            format!("{:.2}×", on / off),
        ]);
    }
    report.section(format!(
        "## Embedded store throughput\n\n\
         Instances per second, each making one logged operation on a key ({} instances on \
         {} keys per point up to 8 in flight, as many again per 8 in flight above, so every \
         key is written as often; median of {} runs, each on a fresh store, the runs of the cases interleaved). Writes are \
         committed in groups: the requests waiting when a commit starts share it; under \
         fsync, a syncer thread syncs the WAL for every group committed since its last sync \
         while the writer goes on. \"No group commit\" is the same store committing (and \
         syncing) every request alone, one after the other: the baseline, measured in the \
         same run.\n\n{}\n\n{}\n\n\
         Requests per commit group, mean / p99 (and per fsync, mean), same runs:\n\n{}\n\n\
         The main job (`cargo run --release -p beldi-examples -- travel`: {} requests, 16 \
         clients, 2% crashes, invariants checked), closed-loop requests/s, median of {} runs, \
         without and with group commit; process-crash is its default durability:\n\n{}\n\n\
         ![throughput](store.png)",
        scale.store_ops,
        KEYS,
        RUNS,
        table(
            &["store", "operation", "1", "4", "16", "64 in flight"],
            &rows
        ),
        findings.join("\n"),
        table(
            &["store", "operation", "1", "4", "16", "64 in flight"],
            &groups
        ),
        scale.store_job_requests,
        RUNS,
        table(
            &["durability", "no group commit", "group commit", "ratio"],
            &job
        ),
    ));
    super::plot::lines(
        &report.dir().join("store.png"),
        "Embedded store: logged operations per second",
        "instances in flight",
        "instances/s",
        &series,
    )
}
