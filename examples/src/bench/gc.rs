//! GC and DAAL growth (the paper's Fig. 14): one hot key under steady writes (open loop, a
//! fixed rate) with the garbage collector off, frequent and rare; per one-second interval,
//! the median write latency and the key's chain length (DAAL rows).

use std::time::{Duration, Instant};

use beldi::gc::GcConfig;
use beldi::platform::Mode;
use beldi::prelude::*;

use super::{Backend, Report, Scale, fns, median, table};

/// Row capacity: small, so the chain grows visibly within a short run.
const ROW_CAPACITY: u64 = 20;

/// How often the collector runs (`None`: never).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Setting {
    /// Its name.
    pub name: &'static str,
    /// Period of the GC pass.
    pub every: Option<Duration>,
}

/// Per interval: (seconds since start, median latency ms, DAAL rows of the key).
pub type Series = Vec<(f64, f64, usize)>;

async fn one(backend: &Backend, scale: &Scale, setting: Setting) -> Result<Series, BeldiError> {
    let f = backend.runtime(Mode::Beldi, ROW_CAPACITY).await?;
    f.install(&[fns::bench_hot.name()]).await?;
    let rt = f.rt.clone();
    // Short windows, so collection happens within the run (fine here: one writer, no
    // duplicates in flight).
    let cfg = GcConfig {
        window: Duration::from_millis(200),
        unlink_window: Duration::from_millis(200),
    };
    let gc = setting.every.map(|every| {
        let (rt, cfg) = (rt.clone(), cfg.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let _ = rt.collect_garbage(&cfg).await;
            }
        })
    });
    let total = scale.gc_secs * scale.gc_rate;
    let started = Instant::now();
    let mut series = Vec::new();
    let mut window: Vec<f64> = Vec::new();
    let mut next_tick = 1.0;
    for i in 0..total {
        let at = started + Duration::from_secs_f64(i as f64 / scale.gc_rate as f64);
        tokio::time::sleep_until(at.into()).await;
        let t0 = Instant::now();
        rt.execute(
            fns::bench_hot.name(),
            &format!("w{i}"),
            beldi::store::AttrValue::S("k".into()),
            FaultPlan::none(),
            0,
        )
        .await?;
        window.push(t0.elapsed().as_secs_f64() * 1000.0);
        let now = started.elapsed().as_secs_f64();
        if now >= next_tick || i + 1 == total {
            let rows = beldi::inspect::chain(&rt, fns::bench_hot.name(), "hot", "k")
                .await?
                .rows;
            series.push((now, median(std::mem::take(&mut window)), rows));
            next_tick += 1.0;
        }
    }
    if let Some(h) = gc {
        h.abort();
    }
    Ok(series)
}

/// Runs the GC experiment on the first backend given.
pub async fn run(
    backend: &Backend,
    scale: &Scale,
    report: &mut Report,
) -> Result<Vec<(Setting, Series)>, BeldiError> {
    let frequent = Duration::from_secs((scale.gc_secs / 20).max(1));
    let rare = Duration::from_secs((scale.gc_secs / 4).max(1));
    let settings = [
        Setting {
            name: "GC off",
            every: None,
        },
        Setting {
            name: "GC frequent",
            every: Some(frequent),
        },
        Setting {
            name: "GC rare",
            every: Some(rare),
        },
    ];
    let mut out = Vec::new();
    for s in settings {
        out.push((s, one(backend, scale, s).await?));
    }
    let rows: Vec<Vec<String>> = out
        .iter()
        .map(|(s, series)| {
            let last = series.last().copied().unwrap_or((0.0, f64::NAN, 0));
            let first = series.first().copied().unwrap_or(last);
            vec![
                s.name.into(),
                s.every
                    .map_or("never".into(), |d| format!("every {} s", d.as_secs())),
                format!("{:.2}", first.1),
                format!("{:.2}", last.1),
                last.2.to_string(),
                series.iter().map(|p| p.2).max().unwrap_or(0).to_string(),
            ]
        })
        .collect();
    report.section(format!(
        "## GC and DAAL growth (Fig. 14)\n\n\
         One hot key, {} writes/s for {} s ({} writes) on {}, row capacity {ROW_CAPACITY}, GC \
         windows 200 ms; the paper ran 10 writes/s for 30 min with GC every 1 and 10 min.\n\n{}\n\n\
         ![latency per interval](gc_latency.png)\n\n![chain length](gc_rows.png)",
        scale.gc_rate,
        scale.gc_secs,
        scale.gc_rate * scale.gc_secs,
        backend.label(),
        table(
            &[
                "setting",
                "GC period",
                "first-second p50 ms",
                "last-second p50 ms",
                "rows at the end",
                "most rows",
            ],
            &rows
        )
    ));
    let lat: Vec<(String, Vec<(f64, f64)>)> = out
        .iter()
        .map(|(s, v)| (s.name.to_owned(), v.iter().map(|p| (p.0, p.1)).collect()))
        .collect();
    let rows: Vec<(String, Vec<(f64, f64)>)> = out
        .iter()
        .map(|(s, v)| {
            (
                s.name.to_owned(),
                v.iter().map(|p| (p.0, p.2 as f64)).collect(),
            )
        })
        .collect();
    super::plot::lines(
        &report.dir().join("gc_latency.png"),
        "Hot-key write latency per second",
        "seconds",
        "median write latency (ms)",
        &lat,
    )?;
    super::plot::lines(
        &report.dir().join("gc_rows.png"),
        "DAAL chain length of the hot key",
        "seconds",
        "rows",
        &rows,
    )?;
    Ok(out)
}
