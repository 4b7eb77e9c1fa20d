//! The intent collector (IC): re-runs instances that started but never finished.
//!
//! One pass scans the intent table of every registered function and re-runs each instance
//! that is not done, is a root or an asynchronously started instance (a sync callee is
//! re-driven by its caller), and whose latest execution started more than
//! [`IcConfig::restart_after`] ago. Before re-running, the pass *claims* the restart with a
//! conditional write that refreshes the start time, so two collectors never restart the same
//! instance at once and a live instance (whose executions refresh the start time) is not
//! restarted on every pass. An instance with an execution running in this process
//! ([`Runtime::is_running_here`](crate::platform::Runtime::is_running_here)) is never restarted: that execution finishes it or ends.
//! An instance restarted [`IcConfig::max_restarts`] times is left alone and reported.

use std::time::Duration;

use crate::crash::FaultPlan;
use crate::error::BeldiError;
use crate::intent::{self, now_ms};
use crate::invocation::{Invocation, PlatformHandle};

/// Options of the intent collector.
#[derive(Clone, Debug, PartialEq)]
pub struct IcConfig {
    /// Re-run an unfinished instance whose latest execution started longer ago than this.
    /// Must be at least the function timeout, so a live execution is never duplicated.
    pub restart_after: Duration,
    /// Give up on an instance after this many restarts.
    pub max_restarts: u32,
    /// Faults to inject into the restarted executions (tests).
    pub plan: FaultPlan,
}

impl Default for IcConfig {
    fn default() -> Self {
        IcConfig {
            restart_after: Duration::from_secs(120),
            max_restarts: 20,
            plan: FaultPlan::none(),
        }
    }
}

impl IcConfig {
    /// Checks the configuration against the longest execution timeout of the functions it
    /// restarts: `longest` is that timeout and the function it belongs to (`None`: the
    /// runtime's default timeout).
    pub fn validate(&self, longest: &Longest) -> Result<(), BeldiError> {
        if self.restart_after < longest.timeout {
            return Err(BeldiError::InvalidConfig {
                setting: "intent collector restart_after",
                value: format!("{:?}", self.restart_after),
                message: format!(
                    "must be at least the longest execution timeout ({longest}), or live executions get duplicated"
                ),
            });
        }
        Ok(())
    }

    /// The default configuration, with `restart_after` raised to the longest timeout when
    /// that is longer.
    pub fn for_longest(longest: &Longest) -> IcConfig {
        let d = IcConfig::default();
        IcConfig {
            restart_after: d.restart_after.max(longest.timeout),
            ..d
        }
    }
}

/// The longest execution timeout of a runtime's functions, and whose it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Longest {
    /// The timeout.
    pub timeout: Duration,
    /// The function with that timeout (`None`: the runtime's default timeout, which no
    /// function exceeds).
    pub function: Option<String>,
}

impl std::fmt::Display for Longest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.function {
            Some(name) => write!(f, "{:?}, of function `{name}`", self.timeout),
            None => write!(f, "{:?}, the runtime's default", self.timeout),
        }
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IcReport {
    /// Unfinished root or async instances seen.
    pub pending: usize,
    /// Instances this pass restarted.
    pub restarted: usize,
    /// Restarted instances that finished.
    pub finished: usize,
    /// Instances given up on (function, instance), restarted too often.
    pub gave_up: Vec<(String, String)>,
    /// Unfinished instances not restarted because an execution of theirs runs in the
    /// process that made the pass.
    pub running: usize,
}

/// Intents read per scan page.
const PAGE: usize = 256;

/// Runs one pass of the intent collector over every registered function.
pub(crate) async fn run_pass(rt: &PlatformHandle, cfg: &IcConfig) -> Result<IcReport, BeldiError> {
    let mut report = IcReport::default();
    let threshold = now_ms() - cfg.restart_after.as_millis() as i64;
    let mut runs = tokio::task::JoinSet::new();
    for name in rt.function_names() {
        let table = rt.tables(&name)?.intent();
        // Page by page, so a pass over a large intent table holds one page in memory.
        let mut next = None;
        loop {
            let (intents, last) = match intent::page(&**rt.store(), &table, next, PAGE).await {
                Ok(page) => page,
                // No intent table: the function was never provisioned here, so no instance
                // of it ever started (a process may host more functions than it deploys).
                Err(crate::store::StoreError::TableNotFound { .. }) => break,
                Err(e) => return Err(e.into()),
            };
            for it in intents {
                let restartable = it.caller.as_ref().is_none_or(|c| c.is_async);
                if it.done || !restartable {
                    continue;
                }
                report.pending += 1;
                if it.start_ms > threshold {
                    continue; // started recently: may still be running
                }
                if rt.is_running_here(&name, &it.instance) {
                    report.running += 1;
                    continue; // an execution in this process is on it
                }
                if it.restarts >= cfg.max_restarts {
                    report.gave_up.push((name.clone(), it.instance.clone()));
                    continue;
                }
                let Some(rerun) = claim_rerun(rt, &name, &table, it, cfg.plan.clone()).await?
                else {
                    continue; // finished or restarted by someone else meanwhile
                };
                report.restarted += 1;
                runs.spawn(async move { rerun.await.is_ok() });
            }
            match last {
                Some(k) => next = Some(k),
                None => break,
            }
        }
    }
    while let Some(done) = runs.join_next().await {
        if matches!(done, Ok(true)) {
            report.finished += 1;
        }
    }
    Ok(report)
}

/// Claims the restart of the unfinished instance `it` of `function` (its intent in
/// `table`) and, when this caller won the claim, returns the execution that re-runs it;
/// `None` when it finished or someone else restarted it meanwhile. Serves the collector's
/// passes and the platform's revivals.
pub(crate) async fn claim_rerun(
    rt: &PlatformHandle,
    function: &str,
    table: &str,
    it: intent::Intent,
    plan: FaultPlan,
) -> Result<Option<impl Future<Output = Result<(), BeldiError>> + Send + 'static>, BeldiError> {
    if !intent::claim_restart(&**rt.store(), table, &it.instance, it.start_ms).await? {
        return Ok(None);
    }
    let (rt, function) = (rt.clone(), function.to_owned());
    Ok(Some(async move {
        let inv = Invocation {
            function,
            instance: it.instance,
            input: it.input,
            caller: it.caller,
            txn: None,
            plan,
            attempt: it.restarts + 1,
            // A restart starts a trace of its own (the request's is not stored).
            trace: None,
            fresh: false,
        };
        rt.call(inv).await.map(|_| ())
    }))
}
