//! Transactions under contention: reservations (one transaction across a hotel function and
//! a flight function, no retry) with uniform and Zipfian (s = 0.99) hotel choice over 100
//! hotels, at rising concurrency; commit rate, abort rate (wait-die deaths) and goodput.

use std::time::Instant;

use beldi::platform::Mode;
use beldi::prelude::*;

use super::fns::{self, TxnOutcome};
use super::{Backend, Report, Scale, table};
use crate::app::Rng;

const HOTELS: usize = 100;

/// How hotels are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Uniform over the hotels.
    Uniform,
    /// Zipfian with s = 0.99 (a few hot hotels).
    Zipf,
}

/// One point.
#[derive(Clone, Debug)]
pub struct Point {
    /// The choice.
    pub choice: Choice,
    /// Concurrent clients.
    pub concurrency: usize,
    /// Committed transactions.
    pub committed: u64,
    /// Aborted (died) transactions.
    pub aborted: u64,
    /// Seconds the point took.
    pub secs: f64,
}

fn zipf_cdf() -> Vec<f64> {
    let weights: Vec<f64> = (1..=HOTELS).map(|k| 1.0 / (k as f64).powf(0.99)).collect();
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect()
}

fn pick(choice: Choice, rng: &mut Rng, cdf: &[f64]) -> usize {
    match choice {
        Choice::Uniform => rng.below(HOTELS),
        Choice::Zipf => {
            let u = rng.below(1_000_000) as f64 / 1_000_000.0;
            cdf.iter().position(|c| *c >= u).unwrap_or(HOTELS - 1)
        }
    }
}

async fn one(
    backend: &Backend,
    choice: Choice,
    concurrency: usize,
    requests: u32,
) -> Result<Point, BeldiError> {
    let f = backend.runtime(Mode::Beldi, 1000).await?;
    let names = [
        fns::bench_reserve.name(),
        fns::bench_room.name(),
        fns::bench_seat.name(),
    ];
    f.install(&names).await?;
    let cdf = zipf_cdf();
    let started = Instant::now();
    let outcomes = super::clients(concurrency, requests as usize, |i| {
        let mut rng = Rng::new(7, &format!("txn{i}"));
        let hotel = format!("h{}", pick(choice, &mut rng, &cdf));
        let flight = format!("f{}", pick(choice, &mut rng, &cdf));
        let rt = f.rt.clone();
        async move {
            fns::bench_reserve
                .invoke(&rt, &format!("r{i}"), &(hotel, flight))
                .await
        }
    })
    .await?;
    let (mut committed, mut aborted) = (0, 0);
    for out in outcomes {
        match out {
            Ok(TxnOutcome::Committed) => committed += 1,
            Ok(TxnOutcome::Aborted) => aborted += 1,
            Err(e) => {
                return Err(BeldiError::Corrupt {
                    what: "reservation".into(),
                    message: e.0,
                });
            }
        }
    }
    Ok(Point {
        choice,
        concurrency,
        committed,
        aborted,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// Runs the transaction experiment on the first backend given.
pub async fn run(
    backend: &Backend,
    scale: &Scale,
    report: &mut Report,
) -> Result<Vec<Point>, BeldiError> {
    let mut points = Vec::new();
    for choice in [Choice::Uniform, Choice::Zipf] {
        for c in &scale.txn_concurrency {
            points.push(one(backend, choice, *c, scale.txn_requests).await?);
        }
    }
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|p| {
            let n = (p.committed + p.aborted).max(1) as f64;
            vec![
                format!("{:?}", p.choice),
                p.concurrency.to_string(),
                format!("{:.1}%", 100.0 * p.committed as f64 / n),
                format!("{:.1}%", 100.0 * p.aborted as f64 / n),
                format!("{:.0}", p.committed as f64 / p.secs),
            ]
        })
        .collect();
    report.section(format!(
        "## Transactions under contention\n\n\
         {} reservations per point on {}, each one transaction (no retry) booking a room of \
         one of {HOTELS} hotels and a seat of one of {HOTELS} flights through two functions; \
         capacity unlimited, so every abort is a wait-die death.\n\n{}\n\n\
         ![goodput](txn_goodput.png)\n\n![abort rate](txn_aborts.png)",
        scale.txn_requests,
        backend.label(),
        table(
            &[
                "choice",
                "clients",
                "committed",
                "aborted",
                "goodput (commits/s)"
            ],
            &rows
        )
    ));
    let series = |f: &dyn Fn(&Point) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
        [Choice::Uniform, Choice::Zipf]
            .iter()
            .map(|c| {
                (
                    format!("{c:?}"),
                    points
                        .iter()
                        .filter(|p| p.choice == *c)
                        .map(|p| (p.concurrency as f64, f(p)))
                        .collect(),
                )
            })
            .collect()
    };
    super::plot::lines(
        &report.dir().join("txn_goodput.png"),
        "Reservation goodput vs concurrency",
        "concurrent clients",
        "commits/s",
        &series(&|p| p.committed as f64 / p.secs),
    )?;
    super::plot::lines(
        &report.dir().join("txn_aborts.png"),
        "Reservation abort rate vs concurrency",
        "concurrent clients",
        "aborted (%)",
        &series(&|p| 100.0 * p.aborted as f64 / (p.committed + p.aborted).max(1) as f64),
    )?;
    Ok(points)
}
