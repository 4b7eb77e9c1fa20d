//! The workload driver: issues an application's requests closed-loop (N clients) or
//! open-loop (a fixed rate), injects crashes at a seeded rate, retries crashed requests as a
//! client would (same instance id), and measures latency and throughput.
//!
//! Crashes follow the [`FaultPlan`] of the request's first three executions: at every step
//! boundary of the request and of every callee it reaches, a crash with probability
//! `crash_rate`. A crashed request is re-executed at once by its client; a crashed async
//! callee is restarted by the intent collector, which runs in the background during the run
//! and once more, to quiescence, at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use beldi::prelude::*;
use beldi::store::AttrValue;

use crate::app::{App, Request, Workload};

/// How requests are issued.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// `clients` clients, each issuing its next request when the last one returned.
    Closed {
        /// Clients.
        clients: usize,
    },
    /// One request every `1/rate` seconds, whether earlier ones returned or not; latency is
    /// measured from the scheduled start (no coordinated omission).
    Open {
        /// Requests per second.
        rate: f64,
    },
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Load::Closed { clients: 1 } => write!(f, "closed loop, 1 client"),
            Load::Closed { clients } => write!(f, "closed loop, {clients} clients"),
            Load::Open { rate } => write!(f, "open loop, {rate} req/s"),
        }
    }
}

/// Options of one run.
#[derive(Clone, Debug)]
pub struct DriverOptions {
    /// How requests are issued.
    pub load: Load,
    /// Probability of a crash at each step boundary (beldi mode only).
    pub crash_rate: f64,
    /// Show a progress bar on the terminal.
    pub progress: bool,
}

/// What a run measured.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Requests per type.
    pub kinds: BTreeMap<&'static str, u64>,
    /// Latency of every request that ran, sorted.
    pub latencies: Vec<Duration>,
    /// From the first request to the last response.
    pub elapsed: Duration,
    /// Executions of root requests (first runs and client retries).
    pub executions: u64,
    /// Crashes injected (roots and callees).
    pub crashes: u64,
    /// Requests that had finished before this run (a resumed run returns their results).
    pub already_done: u64,
    /// Root or async instances still unfinished after recovery (must be 0).
    pub unfinished: usize,
}

impl Outcome {
    /// Requests per second.
    pub fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    /// The `p` quantile (0–1) of the latencies, in milliseconds (0 with no latency).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        quantile_ms(&self.latencies, p).unwrap_or(0.0)
    }
}

/// The `p` quantile (0–1) of sorted latencies, in milliseconds; `None` when there are none.
pub fn quantile_ms(sorted: &[Duration], p: f64) -> Option<f64> {
    let i = ((sorted.len().checked_sub(1)?) as f64 * p).round() as usize;
    Some(sorted[i].as_secs_f64() * 1000.0)
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The runtime or the store failed.
    #[error(transparent)]
    Beldi(#[from] BeldiError),
    /// A request's function returned an error: a bug in the workload or the app.
    #[error("request {instance} ({kind}) returned an error: {error}")]
    RequestFailed {
        /// The request's instance id.
        instance: String,
        /// Its type.
        kind: &'static str,
        /// The error it returned.
        error: String,
    },
    /// A request kept crashing.
    #[error("request {instance} ({kind}) did not finish in {executions} executions")]
    NeverFinished {
        /// The request's instance id.
        instance: String,
        /// Its type.
        kind: &'static str,
        /// Executions tried.
        executions: u32,
    },
    /// A client task panicked or was cancelled.
    #[error("a client task failed: {0}")]
    Client(String),
}

/// How often the background intent collector runs during a run.
const IC_EVERY: Duration = Duration::from_secs(2);

/// Issues every request of `w` against `rt` (the app installed), waits for every instance
/// to finish (recovering crashed ones), and reports.
pub async fn drive(
    app: App,
    rt: &Runtime,
    w: &Workload,
    opts: &DriverOptions,
) -> Result<Outcome, DriverError> {
    let baseline = rt.config().mode == beldi::platform::Mode::Baseline;
    let crash_rate = if baseline { 0.0 } else { opts.crash_rate };
    let requests: Vec<Request> = (0..w.requests)
        .map(|i| app.request(w, i))
        .collect::<Result<_, _>>()?;
    let crashes_before = rt.injected_crashes();
    let _ic = if baseline {
        None
    } else {
        let cfg = IcConfig {
            restart_after: rt.config().timeout,
            ..Default::default()
        };
        Some(rt.spawn_intent_collector(cfg, IC_EVERY)?)
    };
    let bar = progress_bar(opts.progress, w.requests as u64, app.name());
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let sem = match opts.load {
        Load::Closed { clients } => Some(Arc::new(tokio::sync::Semaphore::new(clients.max(1)))),
        Load::Open { .. } => None,
    };
    let mut outcome = Outcome::default();
    for (i, req) in requests.into_iter().enumerate() {
        // Collect what has finished, so finished requests do not pile up.
        while let Some(joined) = tasks.try_join_next() {
            outcome.record(joined)?;
        }
        let permit = match &sem {
            Some(s) => Some(
                s.clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| DriverError::Client(e.to_string()))?,
            ),
            None => None,
        };
        let scheduled = match opts.load {
            Load::Open { rate } => {
                let at = started + Duration::from_secs_f64(i as f64 / rate);
                tokio::time::sleep_until(at.into()).await;
                at
            }
            Load::Closed { .. } => Instant::now(),
        };
        let (rt, bar, seed) = (rt.clone(), bar.clone(), w.seed);
        tasks.spawn(async move {
            let out = run_request(&rt, &req, seed, crash_rate).await;
            drop(permit);
            bar.inc(1);
            out.map(|(executions, ran)| (req.kind, scheduled.elapsed(), executions, ran))
        });
    }
    while let Some(joined) = tasks.join_next().await {
        outcome.record(joined)?;
    }
    outcome.elapsed = started.elapsed();
    bar.finish_and_clear();
    // Finish everything the requests started (async callees), restarting crashed ones.
    outcome.unfinished = beldi::explorer::quiesce(rt, 50).await?;
    outcome.crashes = rt.injected_crashes() - crashes_before;
    outcome.latencies.sort();
    Ok(outcome)
}

/// What one client task returns: the request type, its latency, the executions it took,
/// and whether its body ran.
type Finished = (&'static str, Duration, u64, bool);

impl Outcome {
    fn record(
        &mut self,
        joined: Result<Result<Finished, DriverError>, tokio::task::JoinError>,
    ) -> Result<(), DriverError> {
        let (kind, latency, executions, ran) =
            joined.map_err(|e| DriverError::Client(e.to_string()))??;
        *self.kinds.entry(kind).or_default() += 1;
        self.executions += executions;
        if ran {
            self.latencies.push(latency);
        } else {
            self.already_done += 1;
        }
        Ok(())
    }
}

/// Runs one request to completion: re-executes it (same instance id) after each crash.
/// Returns the executions it took and whether its body ran (false: it had finished before).
async fn run_request(
    rt: &Runtime,
    req: &Request,
    seed: u64,
    crash_rate: f64,
) -> Result<(u64, bool), DriverError> {
    const MAX_EXECUTIONS: u32 = 1000;
    for attempt in 0..MAX_EXECUTIONS {
        let plan = if attempt < 3 && crash_rate > 0.0 {
            FaultPlan::random(seed, crash_rate)
        } else {
            FaultPlan::none()
        };
        let input = req.input.clone();
        let ran = if rt.has_remote() {
            // The function runs where it is deployed; a lost invocation is a crash.
            rt.dispatch(req.function, &req.instance, input).await
        } else {
            rt.execute(req.function, &req.instance, input, plan, attempt)
                .await
        };
        match ran {
            Ok(e) => {
                check_result(req, &e.result)?;
                return Ok((attempt as u64 + 1, e.ran || attempt > 0));
            }
            Err(BeldiError::Crashed { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(DriverError::NeverFinished {
        instance: req.instance.clone(),
        kind: req.kind,
        executions: MAX_EXECUTIONS,
    })
}

/// A request whose function returned an error is a bug in the workload or the app: stop
/// the run and say which request and what error.
fn check_result(req: &Request, result: &AttrValue) -> Result<(), DriverError> {
    if let Some(err) = result.as_m().and_then(|m| m.get("err")) {
        return Err(DriverError::RequestFailed {
            instance: req.instance.clone(),
            kind: req.kind,
            error: format!("{err:?}"),
        });
    }
    Ok(())
}

fn progress_bar(show: bool, len: u64, what: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} requests ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar.set_prefix(what.to_owned());
    bar
}
