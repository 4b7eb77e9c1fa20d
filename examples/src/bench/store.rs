//! Embedded store throughput: logged writes/s and reads/s (each a whole instance making one
//! logged operation on one of 64 keys per `store_ops` instances) with 1, 4, 16 and 64
//! instances in flight, per durability setting, and how the store grouped the write
//! requests into commits.

use std::time::Instant;

use beldi::platform::Mode;
use beldi::prelude::*;

use super::fns::{self, OpKind, OpReq};
use super::{Backend, Report, Scale, table};

const CONCURRENCY: [usize; 4] = [1, 4, 16, 64];

/// Runs per point (each on a fresh store); the median is reported.
const RUNS: usize = 3;

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

/// The median run of a point.
async fn point(
    backend: &Backend,
    op: OpKind,
    concurrency: usize,
    size: (usize, usize),
) -> Result<Run, BeldiError> {
    let mut runs = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        runs.push(run_once(backend, op, concurrency, size).await?);
    }
    runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    Ok(runs.swap_remove(RUNS / 2))
}

/// Runs the store-throughput experiment.
pub async fn run(scale: &Scale, report: &mut Report) -> Result<(), BeldiError> {
    let mut rows = Vec::new();
    let mut groups = Vec::new();
    let mut series = Vec::new();
    let mut durable_writes = Vec::new();
    for durability in [Durability::Fsync, Durability::ProcessCrash] {
        let backend = Backend::Embedded(durability);
        for op in [OpKind::Write, OpKind::Read] {
            let mut line = vec![backend.label(), format!("logged {}s/s", op.name())];
            let mut group_line = line.clone();
            group_line[1] = format!("logged {}s", op.name());
            let mut points = Vec::new();
            for c in CONCURRENCY {
                let r = point(&backend, op, c, size(scale, c)).await?;
                line.push(format!("{:.0}", r.rate));
                group_line.push(format!(
                    "{:.1} / {}",
                    r.stats.mean_group(),
                    r.stats.group_quantile(0.99)
                ));
                points.push((c as f64, r.rate));
                if durability == Durability::Fsync && op == OpKind::Write {
                    durable_writes.push(r.rate);
                }
            }
            rows.push(line);
            groups.push(group_line);
            series.push((format!("{} {}", op.name(), backend.label()), points));
        }
    }
    let ratio = match (durable_writes.first(), durable_writes.last()) {
        (Some(one), Some(many)) if *one > 0.0 => many / one,
        _ => 0.0,
    };
    report.section(format!(
        "## Embedded store throughput\n\n\
         Instances per second, each making one logged operation on a key ({} instances on \
         {} keys per point up to 8 in flight, as many again per 8 in flight above, so every \
         key is written as often; median of {} runs, each on a fresh store). Writes are committed in groups: the requests waiting \
         when a commit starts share it (and its fsync).\n\n{}\n\n\
         Durable (fsync) logged writes with 64 in flight: **{:.1}×** the rate with 1 in \
         flight.\n\n\
         Requests per commit group (mean / p99), same runs:\n\n{}\n\n\
         ![throughput](store.png)",
        scale.store_ops,
        KEYS,
        RUNS,
        table(
            &["store", "operation", "1", "4", "16", "64 in flight"],
            &rows
        ),
        ratio,
        table(
            &["store", "operation", "1", "4", "16", "64 in flight"],
            &groups
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
