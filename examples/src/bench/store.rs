//! Embedded store throughput: logged writes/s and reads/s (each a whole instance making one
//! logged operation on its own key) with 1, 4, 16 and 64 instances in flight, per durability
//! setting.

use std::time::Instant;

use beldi::platform::Mode;
use beldi::prelude::*;

use super::fns::{self, OpKind, OpReq};
use super::{Backend, Report, Scale, table};

const CONCURRENCY: [usize; 4] = [1, 4, 16, 64];

async fn rate(
    backend: &Backend,
    op: OpKind,
    concurrency: usize,
    ops: usize,
) -> Result<f64, BeldiError> {
    let f = backend.runtime(Mode::Beldi, 1000).await?;
    f.install(&[fns::bench_op.name()]).await?;
    let started = Instant::now();
    super::clients(concurrency, ops, |i| {
        let rt = f.rt.clone();
        async move {
            let req = OpReq {
                kind: op,
                key: format!("k{}", i % 64),
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
    Ok(ops as f64 / started.elapsed().as_secs_f64())
}

/// Runs the store-throughput experiment.
pub async fn run(scale: &Scale, report: &mut Report) -> Result<(), BeldiError> {
    let mut rows = Vec::new();
    let mut series = Vec::new();
    for durability in [Durability::Fsync, Durability::ProcessCrash] {
        let backend = Backend::Embedded(durability);
        for op in [OpKind::Write, OpKind::Read] {
            let mut line = vec![backend.label(), format!("logged {}s/s", op.name())];
            let mut points = Vec::new();
            for c in CONCURRENCY {
                let r = rate(&backend, op, c, scale.store_ops).await?;
                line.push(format!("{r:.0}"));
                points.push((c as f64, r));
            }
            rows.push(line);
            series.push((format!("{} {}", op.name(), backend.label()), points));
        }
    }
    report.section(format!(
        "## Embedded store throughput\n\n\
         Instances per second, each making one logged operation on one of 64 keys ({} \
         instances per point).\n\n{}\n\n![throughput](store.png)",
        scale.store_ops,
        table(
            &["store", "operation", "1", "4", "16", "64 in flight"],
            &rows
        )
    ));
    super::plot::lines(
        &report.dir().join("store.png"),
        "Embedded store: logged operations per second",
        "instances in flight",
        "instances/s",
        &series,
    )
}
