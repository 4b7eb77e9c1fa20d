//! Per-operation cost (the paper's Fig. 11): each instance makes one operation; its round
//! trips by kind, minus an empty instance's, are the operation's, and its latency is timed
//! from outside. For beldi and baseline, on a fresh key and on a key whose DAAL was grown to
//! 20+ rows first, on every backend given.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use beldi::platform::Mode;
use beldi::prelude::*;
use beldi::store::OpKind as Rtt;

use super::fns::{self, OpKind, OpReq};
use super::{Backend, Report, Scale, quantile_ms, table};

/// Row capacity used here, so 20 rows take 200 writes to grow.
const ROW_CAPACITY: u64 = 10;

/// One measured point.
#[derive(Clone, Debug)]
pub struct Point {
    /// Backend label.
    pub backend: String,
    /// Beldi or baseline.
    pub mode: Mode,
    /// Fresh key or grown DAAL.
    pub grown: bool,
    /// The operation.
    pub op: OpKind,
    /// Round trips by kind, per operation (instance minus empty instance).
    pub rtt: BTreeMap<&'static str, f64>,
    /// Instance latencies.
    pub latencies: Vec<Duration>,
    /// Bytes read and written per operation (instance minus empty instance), as the
    /// counting wrapper counts them.
    pub bytes: (f64, f64),
}

impl Point {
    /// Total round trips per operation.
    pub fn total_rtt(&self) -> f64 {
        self.rtt.values().sum()
    }
}

async fn instance(rt: &Runtime, id: &str, req: &OpReq) -> Result<Duration, BeldiError> {
    let input = beldi::value::to_attr(req, "bench op")?;
    let t0 = Instant::now();
    rt.execute(fns::bench_op.name(), id, input, FaultPlan::none(), 0)
        .await?;
    Ok(t0.elapsed())
}

/// A fresh runtime with ten keys to scan and, if `grown`, a hot key whose DAAL has
/// `rows` full rows.
async fn prepare(
    backend: &Backend,
    mode: Mode,
    grown: bool,
    rows: u64,
) -> Result<super::Fresh, BeldiError> {
    let f = backend.runtime(mode, ROW_CAPACITY).await?;
    f.install(&[
        fns::bench_op.name(),
        fns::bench_noop.name(),
        fns::bench_part.name(),
    ])
    .await?;
    let rt = &f.rt;
    for k in 0..10 {
        let req = OpReq {
            kind: OpKind::Write,
            key: format!("scan{k}"),
        };
        instance(rt, &format!("seed-scan-{k}"), &req).await?;
    }
    if grown {
        for i in 0..ROW_CAPACITY * rows {
            let req = OpReq {
                kind: OpKind::Write,
                key: HOT.into(),
            };
            instance(rt, &format!("grow-{i}"), &req).await?;
        }
    }
    Ok(f)
}

const HOT: &str = "hot";

/// Measures `op` `samples` times (after a warm-up); returns latencies and round trips per
/// instance by kind.
async fn measure(
    f: &super::Fresh,
    grown: bool,
    op: OpKind,
    samples: usize,
) -> Result<(Vec<Duration>, BTreeMap<Rtt, f64>, (f64, f64)), BeldiError> {
    let rt = &f.rt;
    let warmup = (samples / 10).max(2);
    let mut latencies = Vec::with_capacity(samples);
    let mut rtt: BTreeMap<Rtt, f64> = BTreeMap::new();
    let mut bytes = (0.0, 0.0);
    for i in 0..warmup + samples {
        let key = if grown {
            HOT.to_owned()
        } else {
            format!("{op:?}-k{i}")
        };
        let req = OpReq { kind: op, key };
        let before = f.counts.counts();
        let lat = instance(rt, &format!("{op:?}-{i}"), &req).await?;
        rt.wait_background().await;
        let used = f.counts.counts().since(&before);
        if i >= warmup {
            latencies.push(lat);
            for k in Rtt::ALL.iter().filter(|k| **k != Rtt::Admin) {
                *rtt.entry(*k).or_default() += used.get(*k) as f64 / samples as f64;
            }
            bytes.0 += used.bytes_read() as f64 / samples as f64;
            bytes.1 += used.bytes_written() as f64 / samples as f64;
        }
    }
    Ok((latencies, rtt, bytes))
}

/// Runs the per-operation benchmark; returns the points and the report section.
pub async fn run(
    backends: &[Backend],
    scale: &Scale,
    report: &mut Report,
) -> Result<Vec<Point>, BeldiError> {
    let mut points = Vec::new();
    for backend in backends {
        for mode in [Mode::Baseline, Mode::Beldi] {
            for grown in [false, true] {
                let f = prepare(backend, mode, grown, scale.grown_rows).await?;
                let (_, empty, empty_bytes) =
                    measure(&f, grown, OpKind::Empty, scale.op_samples).await?;
                for op in OpKind::MEASURED {
                    let (latencies, rtt, bytes) = measure(&f, grown, op, scale.op_samples).await?;
                    let per_op = rtt
                        .iter()
                        .map(|(k, v)| (k.name(), v - empty.get(k).copied().unwrap_or(0.0)))
                        .filter(|(_, v)| v.abs() > 0.005)
                        .collect();
                    points.push(Point {
                        backend: backend.label(),
                        mode,
                        grown,
                        op,
                        rtt: per_op,
                        latencies,
                        bytes: (bytes.0 - empty_bytes.0, bytes.1 - empty_bytes.1),
                    });
                }
            }
        }
    }
    report.section(section(&points, scale));
    plot(&points, report)?;
    Ok(points)
}

fn section(points: &[Point], scale: &Scale) -> String {
    let mut rows = Vec::new();
    for p in points.iter().filter(|p| p.mode == Mode::Beldi) {
        let base = points.iter().find(|b| {
            b.mode == Mode::Baseline && b.op == p.op && b.grown == p.grown && b.backend == p.backend
        });
        let kinds: Vec<String> = p.rtt.iter().map(|(k, v)| format!("{k} {v:.1}")).collect();
        rows.push(vec![
            p.backend.clone(),
            if p.grown { "grown DAAL" } else { "fresh key" }.into(),
            p.op.name().into(),
            format!("{:.1}", p.total_rtt().abs()),
            kinds.join(", "),
            base.map_or("-".into(), |b| format!("{:.1}", b.total_rtt().abs())),
            p.op.prototype().into(),
            format!("{:.0} / {:.0}", p.bytes.0.max(0.0), p.bytes.1.max(0.0)),
            base.map_or("-".into(), |b| {
                format!("{:.0} / {:.0}", b.bytes.0.max(0.0), b.bytes.1.max(0.0))
            }),
            format!(
                "{:.2} / {:.2}",
                quantile_ms(&p.latencies, 0.5),
                quantile_ms(&p.latencies, 0.99)
            ),
            base.map_or("-".into(), |b| {
                format!(
                    "{:.2} / {:.2}",
                    quantile_ms(&b.latencies, 0.5),
                    quantile_ms(&b.latencies, 0.99)
                )
            }),
        ]);
    }
    format!(
        "## Per-operation cost (Fig. 11)\n\n\
         One operation per instance, one instance at a time; round trips are the instance's \
         minus an empty instance's (so the 2 intent writes of every instance are not in them), \
         latency is the whole instance's (p50 / p99, ms). {} measured instances per point after \
         {} warm-up ones; row capacity {ROW_CAPACITY}, the grown key has {} full rows \
         first (and gains more while measured). A write goes straight to the row where the process \
         last saw the key's tail (on a fresh key it creates the key's first row with the write in \
         it, in the same round trip; the prototype: \"first write to a key +1\"); on the grown key \
         a row fills every {ROW_CAPACITY} writes, and the next write is refused by the full row \
         and puts its successor with the write in it, linked in the same transaction \
         (+1 per {ROW_CAPACITY}). A false conditional write is refused, then logs its outcome \
         (2). Reads, scans, call results and spawns log nothing of their own: their records \
         ride with the next durable effect. A sync callee called by a first execution creates \
         its intent with its first effect, or finished (the sync invoke's 1); an async callee's \
         intent is created before it runs, then finished (2). The two-function transaction's \
         participant is called inside the transaction (its call logged before and after, its \
         intent created first) and committed by an invocation of its own. The prototype's \
         counts are from its code. \
         Bytes are DynamoDB item sizes per operation (instance minus empty instance): read = \
         every item the store returned (found items, query pages, items returned on a failed \
         condition), written = what the requests sent to be stored.\n\n{}\n\n![per-operation round trips](ops_rtt.png)\n\n![per-operation latency](ops_latency.png)",
        scale.op_samples,
        (scale.op_samples / 10).max(2),
        scale.grown_rows,
        table(
            &[
                "backend",
                "key",
                "operation",
                "beldi RTT",
                "by kind",
                "baseline RTT",
                "prototype RTT",
                "beldi bytes read / written",
                "baseline bytes read / written",
                "beldi p50 / p99",
                "baseline p50 / p99",
            ],
            &rows
        )
    )
}

fn plot(points: &[Point], report: &Report) -> Result<(), BeldiError> {
    let ops: Vec<&str> = OpKind::MEASURED.iter().map(|o| o.name()).collect();
    let mut rtt_series = Vec::new();
    let mut lat_series = Vec::new();
    let mut backends: Vec<String> = Vec::new();
    for p in points {
        if !backends.contains(&p.backend) {
            backends.push(p.backend.clone());
        }
    }
    for backend in &backends {
        for mode in [Mode::Baseline, Mode::Beldi] {
            let pick = |op: OpKind| {
                points
                    .iter()
                    .find(|p| &p.backend == backend && p.mode == mode && !p.grown && p.op == op)
            };
            let label = format!("{} {backend}", mode.name());
            rtt_series.push((
                label.clone(),
                OpKind::MEASURED
                    .iter()
                    .map(|o| pick(*o).map_or(0.0, Point::total_rtt))
                    .collect::<Vec<f64>>(),
            ));
            lat_series.push((
                label,
                OpKind::MEASURED
                    .iter()
                    .map(|o| pick(*o).map_or(0.0, |p| quantile_ms(&p.latencies, 0.5)))
                    .collect::<Vec<f64>>(),
            ));
        }
    }
    super::plot::bars(
        &report.dir().join("ops_rtt.png"),
        "Storage round trips per operation (fresh key)",
        "round trips",
        &ops,
        &rtt_series,
    )?;
    super::plot::bars(
        &report.dir().join("ops_latency.png"),
        "Instance latency p50 per operation (fresh key)",
        "ms",
        &ops,
        &lat_series,
    )
}
