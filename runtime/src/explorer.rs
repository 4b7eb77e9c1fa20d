//! The crash-point explorer: proves a workflow exactly-once by crashing it at every step
//! boundary in turn.
//!
//! Given a root function, an input, a way to build a fresh runtime (tables provisioned, data
//! seeded) and an invariant over the final state, [`explore`]:
//!
//! 1. runs the workflow once without faults, recording the root's result and every instance
//!    it ran (root, sync and async callees) with its logged steps;
//! 2. for every crash point of every instance — before and after each step, inside each call
//!    and spawn, and before the result is recorded — builds a fresh runtime, runs the workflow
//!    crashing that instance at that point, then recovers the root with **two concurrent
//!    re-executions** (a duplicate racing the recovery) and async instances with the intent
//!    collector, runs the root once more (which must return the stored result without
//!    running), and checks that every instance is done, every result equals the crash-free
//!    one and the invariant holds;
//!    Before the recovery the garbage collector runs with no window (a caller that replays
//!    after its callees were collected must not run them again); a point that three
//!    crashing runs did not reach (paths can differ with contending async callees) is
//!    listed in [`ExploreReport::unreached`], not reported as a violation; background work
//!    blocked on a crashed lock holder is unblocked by restarting the holder at once;
//! 3. for every step of every instance, runs a **lagging duplicate**: a second execution
//!    of the root that pauses after that step in that instance until the first execution
//!    has finished the workflow, then resumes and replays; checks results and invariant;
//! 4. runs two copies of the workflow concurrently from scratch and checks the same.
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

use crate::collector::IcConfig;
use crate::crash::{CrashPoint, FaultPlan};
use crate::error::BeldiError;
use crate::invocation::Execution;
use crate::platform::{Runtime, TracedExecution};
use crate::schema::StepKind;
use crate::value::to_attr;

/// The instance id the explorer runs.
pub const INSTANCE: &str = "explored-instance";

/// One crash point (or the duplicate run) that violated exactly-once.
#[derive(Clone, Debug, PartialEq)]
pub struct ExploreFailure {
    /// The crashed instance (`function instance`); `None` for the duplicates run.
    pub instance: Option<String>,
    /// The crash point; `None` for the concurrent-duplicates run.
    pub point: Option<CrashPoint>,
    /// What went wrong.
    pub problem: String,
}

/// What [`explore`] found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ExploreReport {
    /// Steps of the root's crash-free execution.
    pub steps: u64,
    /// Instances the workflow ran (root and callees).
    pub instances: usize,
    /// Crash points explored, over all instances: before and after each step, inside each
    /// call and spawn, and before the result is recorded.
    pub crash_points: usize,
    /// Executions run in all.
    pub executions: usize,
    /// Every violation found.
    pub failures: Vec<ExploreFailure>,
    /// Crash points a crash-free run reached that three crashing runs did not (the
    /// workflow's path differs from run to run, with contending async callees say): not
    /// violations, listed so a test can see what was not explored.
    pub unreached: Vec<(String, CrashPoint)>,
    /// Lagging-duplicate schedules run: a duplicate paused after a step of an instance
    /// while the workflow finished, then resumed.
    pub lagging: usize,
}

pub use crate::data::{current_value, current_values};

fn restart_at_once() -> IcConfig {
    IcConfig {
        restart_after: std::time::Duration::ZERO,
        max_restarts: u32::MAX,
        plan: FaultPlan::none(),
    }
}

/// Runs intent-collector passes (restarting at once whatever is not running in this
/// process) until no root or async instance is left unfinished; returns the instances
/// still unfinished after `max_passes` passes. A pass runs before each wait for the
/// background work, so a crashed instance holding locks others wait for is restarted at
/// once instead of after their lock wait.
pub async fn quiesce(rt: &Runtime, max_passes: usize) -> Result<usize, BeldiError> {
    let cfg = restart_at_once();
    let mut pending = 0;
    let mut passes = 0;
    while passes < max_passes {
        let report = rt.collect_intents(&cfg).await?;
        pending = report.pending;
        if report.running > 0 && report.restarted == 0 {
            // Running where the pass ran (not as this runtime's background work, say a
            // posted event): let them finish before counting a pass.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            continue;
        }
        passes += 1;
        rt.wait_background().await;
        if pending == 0 {
            pending = rt.collect_intents(&cfg).await?.pending;
            if pending == 0 {
                return Ok(0);
            }
        }
    }
    Ok(pending)
}

/// Lets the background work of a crashing run end: restarts at once what crashed (never
/// what runs in this process), so nothing waits out a lock wait for a crashed holder.
async fn settle(rt: &Runtime) -> Result<(), BeldiError> {
    let cfg = restart_at_once();
    while !rt.background_idle() {
        rt.collect_intents(&cfg).await?;
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    rt.wait_background().await;
    Ok(())
}

/// Instances not done, over every registered function (function, instance).
pub async fn unfinished(rt: &Runtime) -> Result<Vec<(String, String)>, BeldiError> {
    let mut out = Vec::new();
    for f in rt.function_names() {
        for it in crate::intent::all(&**rt.store(), &rt.tables(&f)?.intent()).await? {
            if !it.done {
                out.push((f.clone(), it.instance));
            }
        }
    }
    Ok(out)
}

/// The crash points of one traced execution: before and after every step, after the
/// deferred log records a step made durable on its own, inside every call and spawn, and
/// before the result is recorded.
fn points_of(exec: &TracedExecution) -> Vec<CrashPoint> {
    let mut points = Vec::new();
    for (step, kind) in &exec.ops {
        points.push(CrashPoint::Before(*step));
        if exec.flushed.contains(step) {
            points.push(CrashPoint::Flushed(*step));
        }
        if matches!(*kind, StepKind::Call | StepKind::Spawn) {
            points.push(CrashPoint::Inside(*step));
        }
        points.push(CrashPoint::After(*step));
    }
    points.push(CrashPoint::BeforeDone);
    points
}

/// Explores every crash point of every instance a workflow runs.
///
/// `function` is the root; `make` builds a fresh runtime with every function of the workflow
/// registered, tables provisioned and initial data written; `check` verifies the invariant
/// after the workflow finished. Callee instances (sync and async) are found by a crash-free
/// run; their ids are derived from their callers', so every run has the same ones. After each
/// crash, the root is recovered by two concurrent re-executions, async instances by the
/// intent collector, and then every instance must be done, every result equal to the
/// crash-free one, and the invariant must hold.
pub async fn explore<I: Serialize + ?Sized>(
    function: &str,
    input: &I,
    make: impl AsyncFn() -> Result<Runtime, BeldiError>,
    check: impl AsyncFn(&Runtime) -> Result<(), String>,
) -> Result<ExploreReport, BeldiError> {
    explore_with(ExploreOptions::default(), function, input, make, check).await
}

/// Options of [`explore_with`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExploreOptions {
    /// Require every recovered result to equal the crash-free run's result. Turn it off for
    /// workflows whose result depends on logged non-determinism (`ctx.uuid()`, `ctx.now()`,
    /// `ctx.random()`): each fresh runtime logs other values, so results are then compared
    /// only among the executions of the same runtime (recovery, duplicate, re-run).
    pub compare_with_crash_free: bool,
}

impl Default for ExploreOptions {
    fn default() -> Self {
        ExploreOptions {
            compare_with_crash_free: true,
        }
    }
}

/// [`explore`] with options.
pub async fn explore_with<I: Serialize + ?Sized>(
    opts: ExploreOptions,
    function: &str,
    input: &I,
    make: impl AsyncFn() -> Result<Runtime, BeldiError>,
    check: impl AsyncFn(&Runtime) -> Result<(), String>,
) -> Result<ExploreReport, BeldiError> {
    let input = to_attr(input, &format!("input of `{function}`"))?;
    let mut report = ExploreReport::default();
    let rt = make().await?;
    rt.start_trace();
    let base = rt
        .execute(function, INSTANCE, input.clone(), FaultPlan::none(), 0)
        .await?;
    if quiesce(&rt, 20).await? > 0 {
        report.failures.push(ExploreFailure {
            instance: None,
            point: None,
            problem: "the crash-free run left instances unfinished".into(),
        });
    }
    let traced = rt.take_trace();
    report.executions += 1;
    if let Err(problem) = check(&rt).await {
        report.failures.push(ExploreFailure {
            instance: None,
            point: None,
            problem: format!("the crash-free run violates the invariant: {problem}"),
        });
        return Ok(report);
    }
    report.steps = base.steps;
    report.instances = traced.len();

    let strict = opts.compare_with_crash_free;
    let same_as = |what: &str,
                   e: &Result<Execution, BeldiError>,
                   reference: &crate::store::AttrValue|
     -> Result<(), String> {
        match e {
            Ok(x) if !strict || x.result == *reference => Ok(()),
            Ok(x) => Err(format!(
                "{what} returned {:?}, the crash-free run {:?}",
                x.result, reference
            )),
            Err(err) => Err(format!("{what} failed: {err}")),
        }
    };
    let same = |what: &str, e: &Result<Execution, BeldiError>| same_as(what, e, &base.result);
    // Results of executions of one runtime must agree with each other in any case.
    let agree = |what: &str,
                 x: &Result<Execution, BeldiError>,
                 y: &Result<Execution, BeldiError>|
     -> Result<(), String> {
        match (x, y) {
            (Ok(a), Ok(b)) if a.result != b.result => {
                Err(format!("{what}: {:?} vs {:?}", a.result, b.result))
            }
            _ => Ok(()),
        }
    };

    for exec in &traced {
        for point in points_of(exec) {
            report.crash_points += 1;
            let plan = FaultPlan::crash_instance(exec.instance.clone(), point);
            // With contending async callees the path can differ from run to run: try up to
            // three times to reach the point.
            let mut tries = 0;
            let (rt, mut problems) = loop {
                tries += 1;
                let rt = make().await?;
                let mut problems = Vec::new();
                match rt
                    .execute(function, INSTANCE, input.clone(), plan.clone(), 0)
                    .await
                {
                    Err(BeldiError::Crashed { .. }) => {}
                    Ok(x) if x.result == base.result => {} // an async callee crashed
                    Ok(x) => problems.push(format!("the crashing run returned {:?}", x.result)),
                    Err(e) => problems.push(format!("the crashing run failed otherwise: {e}")),
                }
                settle(&rt).await?;
                report.executions += 1;
                if rt.injected_crashes() > 0 || tries == 3 {
                    if rt.injected_crashes() == 0 {
                        let who = format!("{} {}", exec.function, exec.instance);
                        report.unreached.push((who, point));
                    }
                    break (rt, problems);
                }
            };
            // The garbage collector runs before the recovery, with no window at all (nothing
            // else runs now): whatever it collects, a caller that replays must not miss.
            // (Not once the root is done: a root's client retries are bounded by the window.)
            let root_table = rt.tables(function)?.intent();
            let root = crate::intent::get(&**rt.store(), &root_table, INSTANCE).await?;
            if root.is_some_and(|r| !r.done) {
                let gc_now = crate::gc::GcConfig {
                    window: std::time::Duration::ZERO,
                    unlink_window: std::time::Duration::ZERO,
                };
                rt.collect_garbage(&gc_now).await?;
            }
            // Recovery, raced by a duplicate; then the intent collector for async instances.
            let (a, b) = tokio::join!(
                rt.execute(function, INSTANCE, input.clone(), FaultPlan::none(), 1),
                rt.execute(function, INSTANCE, input.clone(), FaultPlan::none(), 2),
            );
            let left = quiesce(&rt, 20).await?;
            let again = rt
                .execute(function, INSTANCE, input.clone(), FaultPlan::none(), 3)
                .await;
            report.executions += 3;
            problems.extend(same("the recovery", &a).err());
            problems.extend(same("the concurrent duplicate", &b).err());
            problems.extend(same("the re-run after recovery", &again).err());
            problems.extend(agree("the recovery and its duplicate disagree", &a, &b).err());
            problems.extend(agree("the re-run disagrees with the recovery", &a, &again).err());
            if matches!(&again, Ok(x) if x.ran) {
                problems.push(
                    "the re-run after recovery ran the body again instead of returning the stored result"
                        .into(),
                );
            }
            if left > 0 {
                problems.push(format!("{left} instances never finished"));
            }
            let open = unfinished(&rt).await?;
            if !open.is_empty() {
                problems.push(format!("unfinished instances after recovery: {open:?}"));
            }
            if let Err(p) = check(&rt).await {
                problems.push(format!("invariant: {p}"));
            }
            report
                .failures
                .extend(problems.into_iter().map(|problem| ExploreFailure {
                    instance: Some(format!("{} {}", exec.function, exec.instance)),
                    point: Some(point),
                    problem,
                }));
        }
    }

    // Lagging duplicates: a second execution of the root runs beside the first; in one
    // instance it pauses after a step until the first has finished the whole workflow,
    // then resumes and replays from there.
    for exec in &traced {
        for (step, _) in &exec.ops {
            let rt = make().await?;
            let gate = crate::crash::Gate::new();
            let point = CrashPoint::After(*step);
            let lagging = FaultPlan::pause(exec.instance.clone(), 1, point, gate.clone());
            let late = {
                let (rt, function, input) = (rt.clone(), function.to_owned(), input.clone());
                tokio::spawn(
                    async move { rt.execute(&function, INSTANCE, input, lagging, 1).await },
                )
            };
            let first = rt
                .execute(function, INSTANCE, input.clone(), FaultPlan::none(), 0)
                .await;
            // The first finishes everything it can while the duplicate waits (an instance
            // only the paused copy runs stays unfinished until the gate opens).
            let cfg = restart_at_once();
            rt.collect_intents(&cfg).await?;
            gate.open();
            let late = late.await.map_err(|e| BeldiError::Crashed {
                function: function.to_owned(),
                instance: INSTANCE.to_owned(),
                reason: format!("the lagging duplicate's task failed: {e}"),
            })?;
            let left = quiesce(&rt, 20).await?;
            report.lagging += 1;
            report.executions += 2;
            let mut problems: Vec<String> = [
                same("the first copy", &first).err(),
                same("the lagging duplicate", &late).err(),
                agree(
                    "the first copy and the lagging duplicate disagree",
                    &first,
                    &late,
                )
                .err(),
            ]
            .into_iter()
            .flatten()
            .collect();
            if left > 0 {
                problems.push(format!("{left} instances never finished"));
            }
            if let Err(p) = check(&rt).await {
                problems.push(format!("invariant: {p}"));
            }
            let at = if gate.reached() {
                "a lagging duplicate paused"
            } else {
                "a duplicate (which never reached its pause)"
            };
            report
                .failures
                .extend(problems.into_iter().map(|problem| ExploreFailure {
                    instance: Some(format!("{} {}", exec.function, exec.instance)),
                    point: Some(point),
                    problem: format!("{at}: {problem}"),
                }));
        }
    }

    let rt = make().await?;
    let (a, b) = tokio::join!(
        rt.execute(function, INSTANCE, input.clone(), FaultPlan::none(), 0),
        rt.execute(function, INSTANCE, input.clone(), FaultPlan::none(), 1),
    );
    quiesce(&rt, 20).await?;
    report.executions += 2;
    let mut problems: Vec<String> = [
        same("the first copy", &a).err(),
        same("the second copy", &b).err(),
        agree("the two copies disagree", &a, &b).err(),
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
            instance: None,
            point: None,
            problem,
        }));
    Ok(report)
}
