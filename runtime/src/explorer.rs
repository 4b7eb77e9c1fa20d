//! The crash-point explorer: proves a workflow exactly-once by crashing it at every step
//! boundary in turn.
//!
//! Given a function, an input, a way to build a fresh runtime (tables provisioned, data
//! seeded) and an invariant over the final state, [`explore`]:
//!
//! 1. runs the instance once without faults, recording its result and its number of steps n;
//! 2. for every crash point — before and after each of the n steps, and before the result is
//!    recorded — builds a fresh runtime, runs the instance crashing at that point, then
//!    recovers it with **two concurrent re-executions** (a duplicate racing the recovery),
//!    then once more (which must return the stored result without running), and checks that
//!    every result equals the crash-free one and that the invariant holds;
//! 3. runs two copies of the instance concurrently from scratch and checks the same.
//!
//! It reports every point that failed, so a user's test can assert on an empty list.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use beldi_runtime::{Runtime, UserError, explorer, store::{Path, UpdateAction}};
//! use beldi_runtime::embedded::EmbeddedStore;
//!
//! let report = explorer::explore(
//!     "bump",
//!     &"k".to_string(),
//!     async || {
//!         let dir = tempfile::tempdir().unwrap().keep();
//!         let rt = Runtime::new(Arc::new(EmbeddedStore::open(dir).unwrap()));
//!         rt.register("bump", &["t"], |ctx, k: String| async move {
//!             ctx.update("t", &k, vec![UpdateAction::add(Path::root(), 1)]).await?;
//!             Ok::<_, UserError>(ctx.read_as::<i64>("t", &k).await?)
//!         })?;
//!         rt.provision().await?;
//!         Ok(rt)
//!     },
//!     async |rt: &Runtime| {
//!         // Read the final state directly (outside any instance).
//!         let v = beldi_runtime::explorer::current_value(rt, "bump", "t", "k").await.map_err(|e| e.to_string())?;
//!         if v == Some(1.into()) { Ok(()) } else { Err(format!("counter is {v:?}")) }
//!     },
//! )
//! .await
//! .unwrap();
//! assert_eq!(report.steps, 2);
//! assert_eq!(report.crash_points, 5);
//! assert!(report.failures.is_empty(), "{:?}", report.failures);
//! # });
//! ```

use serde::Serialize;

use crate::daal::Daal;
use crate::error::BeldiError;
use crate::fault::{CrashPoint, FaultPlan};
use crate::platform::{Execution, Runtime};
use crate::store::AttrValue;
use crate::value::to_attr;

/// The instance id the explorer runs.
pub const INSTANCE: &str = "explored-instance";

/// One crash point (or the duplicate run) that violated exactly-once.
#[derive(Clone, Debug, PartialEq)]
pub struct ExploreFailure {
    /// The crash point; `None` for the concurrent-duplicates run.
    pub point: Option<CrashPoint>,
    /// What went wrong.
    pub problem: String,
}

/// What [`explore`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExploreReport {
    /// Steps of the crash-free execution.
    pub steps: u64,
    /// Crash points explored (2 × steps + 1).
    pub crash_points: usize,
    /// Executions run in all.
    pub executions: usize,
    /// Every violation found.
    pub failures: Vec<ExploreFailure>,
}

/// The current value of `key` in data table `table` of function `function`, read directly
/// from the DAAL (for invariant checks; not logged).
pub async fn current_value(
    rt: &Runtime,
    function: &str,
    table: &str,
    key: &str,
) -> Result<Option<AttrValue>, BeldiError> {
    let t = rt.tables(function)?.data(table)?;
    let tail = Daal::new(&**rt.store(), &t, rt.config().row_capacity)
        .tail(key)
        .await?;
    Ok(tail.and_then(|r| r.value().cloned()))
}

/// Every current value of data table `table` of `function`, ordered by key (not logged).
pub async fn current_values(
    rt: &Runtime,
    function: &str,
    table: &str,
) -> Result<Vec<(String, AttrValue)>, BeldiError> {
    let t = rt.tables(function)?.data(table)?;
    Ok(Daal::new(&**rt.store(), &t, rt.config().row_capacity)
        .scan_values()
        .await?)
}

/// Explores every crash point of `function` on `input`. `make` builds a fresh runtime with
/// the function registered, its tables provisioned and any initial data written; `check`
/// verifies the invariant on a runtime after the instance finished.
pub async fn explore<I: Serialize + ?Sized>(
    function: &str,
    input: &I,
    make: impl AsyncFn() -> Result<Runtime, BeldiError>,
    check: impl AsyncFn(&Runtime) -> Result<(), String>,
) -> Result<ExploreReport, BeldiError> {
    let input = to_attr(input, &format!("input of `{function}`"))?;
    let mut report = ExploreReport::default();
    let rt = make().await?;
    let base = rt
        .execute(function, INSTANCE, input.clone(), FaultPlan::none(), 0)
        .await?;
    report.executions += 1;
    if let Err(problem) = check(&rt).await {
        report.failures.push(ExploreFailure {
            point: None,
            problem: format!("the crash-free run violates the invariant: {problem}"),
        });
        return Ok(report);
    }
    report.steps = base.steps;
    let mut points: Vec<CrashPoint> = (0..base.steps)
        .flat_map(|s| [CrashPoint::Before(s), CrashPoint::After(s)])
        .collect();
    points.push(CrashPoint::BeforeDone);
    report.crash_points = points.len();

    let same = |what: &str, e: &Result<Execution, BeldiError>| -> Result<(), String> {
        match e {
            Ok(x) if x.result == base.result => Ok(()),
            Ok(x) => Err(format!(
                "{what} returned {:?}, the crash-free run {:?}",
                x.result, base.result
            )),
            Err(err) => Err(format!("{what} failed: {err}")),
        }
    };

    for point in points {
        let rt = make().await?;
        let mut problems = Vec::new();
        match rt
            .execute(
                function,
                INSTANCE,
                input.clone(),
                FaultPlan::crash_at(point),
                0,
            )
            .await
        {
            Err(BeldiError::Crashed { .. }) => {}
            Ok(_) => problems.push(format!("the execution did not reach {point}")),
            Err(e) => problems.push(format!("the crashing execution failed otherwise: {e}")),
        }
        // Recovery, raced by a duplicate.
        let (a, b) = tokio::join!(
            rt.execute(function, INSTANCE, input.clone(), FaultPlan::none(), 1),
            rt.execute(function, INSTANCE, input.clone(), FaultPlan::none(), 2),
        );
        let again = rt
            .execute(function, INSTANCE, input.clone(), FaultPlan::none(), 3)
            .await;
        report.executions += 4;
        problems.extend(same("the recovery", &a).err());
        problems.extend(same("the concurrent duplicate", &b).err());
        problems.extend(same("the re-run after recovery", &again).err());
        if matches!(&again, Ok(x) if x.ran) {
            problems.push("the re-run after recovery ran the body again instead of returning the stored result".into());
        }
        if let Err(p) = check(&rt).await {
            problems.push(format!("invariant: {p}"));
        }
        report
            .failures
            .extend(problems.into_iter().map(|problem| ExploreFailure {
                point: Some(point),
                problem,
            }));
    }

    let rt = make().await?;
    let (a, b) = tokio::join!(
        rt.execute(function, INSTANCE, input.clone(), FaultPlan::none(), 0),
        rt.execute(function, INSTANCE, input.clone(), FaultPlan::none(), 1),
    );
    report.executions += 2;
    let mut problems: Vec<String> = [
        same("the first copy", &a).err(),
        same("the second copy", &b).err(),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Err(p) = check(&rt).await {
        problems.push(format!("invariant: {p}"));
    }
    report
        .failures
        .extend(problems.into_iter().map(|problem| ExploreFailure {
            point: None,
            problem,
        }));
    Ok(report)
}
