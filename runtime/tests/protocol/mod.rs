//! The protocol suite: written once, instantiated for every backend with
//! [`protocol_suite!`]. Crash-point exploration, exactly-once counters under random crashes
//! and duplicates, DAAL growth and races, replay divergence, bad input and round trips.

#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use beldi_runtime::__internals::{Daal, Row, row_id};
use beldi_runtime::counting::CountingStore;
use beldi_runtime::crash::{CrashPoint, FaultPlan};
use beldi_runtime::explorer::{self, current_value};
use beldi_runtime::gc::GcConfig;
use beldi_runtime::platform::{Runtime, RuntimeConfig};
use beldi_runtime::store::*;
use beldi_runtime::{BeldiError, Ctx, UserError};
use serde::{Deserialize, Serialize};

/// Where fresh stores come from.
pub enum Backend {
    /// A new embedded store in a new temporary directory each time.
    Embedded(Mutex<Vec<tempfile::TempDir>>),
    /// One shared store, a new table namespace each time.
    Shared {
        store: Arc<dyn Store>,
        prefix: String,
        counter: AtomicUsize,
    },
}

impl Backend {
    pub fn embedded() -> Backend {
        Backend::Embedded(Mutex::new(Vec::new()))
    }
    /// A fresh, empty store and the namespace to use in it.
    pub fn fresh(&self) -> (Arc<dyn Store>, String) {
        match self {
            Backend::Embedded(dirs) => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let store = beldi_runtime::embedded::EmbeddedStore::open_with(
                    dir.path(),
                    beldi_runtime::embedded::EmbeddedOptions {
                        durability: beldi_runtime::embedded::Durability::ProcessCrash,
                        ..Default::default()
                    },
                )
                .expect("open embedded store");
                dirs.lock().unwrap().push(dir);
                (Arc::new(store), String::new())
            }
            Backend::Shared {
                store,
                prefix,
                counter,
            } => {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                (store.clone(), format!("{prefix}{n}_"))
            }
        }
    }
    /// A shared DynamoDB Local store with a table prefix unique to this run and test, or
    /// `None` when the endpoint is not set (outside CI).
    #[cfg(feature = "dynamodb")]
    pub async fn dynamodb(suite: char, test: &str) -> Option<Backend> {
        let endpoint = beldi_runtime::dynamodb::test_endpoint()?;
        let run = uuid::Uuid::new_v4().simple().to_string();
        let short: String = test
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect();
        Some(Backend::Shared {
            store: Arc::new(beldi_runtime::dynamodb::DynamoDbStore::local(endpoint).await),
            prefix: format!("{suite}{}{short}", &run[..8]),
            counter: AtomicUsize::new(0),
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            Backend::Embedded(_) => "embedded",
            Backend::Shared { .. } => "dynamodb",
        }
    }
}

/// Instantiates every protocol test for a backend. `$backend` is an async fn taking the test
/// name and returning `Option<Backend>` (`None`: backend unavailable outside CI).
#[macro_export]
macro_rules! protocol_suite {
    ($backend:path) => {
        $crate::protocol_suite!(@tests $backend;
            explorer_finds_no_violation_in_a_mixed_workflow,
            explorer_handles_concurrent_steps,
            counter_of_200_instances_with_crashes_and_duplicates_ends_at_200,
            daal_chain_grows_and_concurrent_appenders_race,
            replay_divergence_is_a_non_determinism_error,
            bad_input_fails_clearly_without_partial_state,
            done_instances_return_the_stored_result,
            round_trips_per_logged_operation,
            a_timeout_is_a_crash_and_the_rerun_finishes,
            a_duplicate_that_read_another_value_runs_again_from_the_log,
            a_callee_that_defers_its_intent_yields_to_an_earlier_copy,
            a_full_tail_gets_its_successor_with_the_write_in_one_round_trip,
            a_nested_update_of_a_key_this_process_has_not_seen_applies,
            a_runtime_refuses_another_stored_format);
    };
    (@tests $backend:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let Some(b) = $backend(stringify!($name)).await else { return };
            protocol::$name(&b).await;
        }
    )*};
}

fn runtime(b: &Backend, capacity: u64) -> Runtime {
    let (store, ns) = b.fresh();
    Runtime::with_config(
        store,
        RuntimeConfig {
            namespace: ns,
            row_capacity: capacity,
            ..Default::default()
        },
    )
    .unwrap()
}

/// Writes an initial value straight into the DAAL (as a logged write of a seeding id).
async fn seed(rt: &Runtime, function: &str, table: &str, key: &str, v: AttrValue) {
    let t = rt.tables(function).unwrap().data(table).unwrap();
    Daal::new(&**rt.store(), &t, rt.config().row_capacity)
        .write(
            key,
            &format!("seed#{}", rand_id()),
            beldi_runtime::__internals::Entry::Write,
            &[UpdateAction::set("V", v)],
            None,
        )
        .await
        .unwrap();
}

fn rand_id() -> u64 {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst) as u64
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct MixedOut {
    x: Option<i64>,
    took_c: bool,
    took_d: bool,
    keys: Vec<String>,
    y: Option<i64>,
}

async fn mixed(ctx: Ctx, _input: ()) -> Result<MixedOut, UserError> {
    let x: Option<i64> = ctx.read_as("a", "x").await?;
    ctx.write_as("a", "y", &(x.unwrap_or(0) + 1)).await?;
    for _ in 0..3 {
        ctx.update("a", "count", vec![UpdateAction::add(Path::root(), 1)])
            .await?;
    }
    let took_c = ctx
        .cond_write(
            "b",
            "c",
            vec![UpdateAction::set(Path::root(), "taken")],
            Condition::not_exists(Path::root()).or(Condition::eq(Path::root(), "free")),
        )
        .await?;
    let took_d = ctx
        .cond_write(
            "b",
            "d",
            vec![UpdateAction::set(Path::root(), "taken")],
            Condition::eq(Path::root(), "free"),
        )
        .await?;
    let keys = ctx.scan("a").await?.into_iter().map(|(k, _)| k).collect();
    ctx.delete("a", "z").await?;
    let y: Option<i64> = ctx.read_as("a", "y").await?;
    Ok(MixedOut {
        x,
        took_c,
        took_d,
        keys,
        y,
    })
}

pub async fn explorer_finds_no_violation_in_a_mixed_workflow(b: &Backend) {
    let report = explorer::explore(
        "mixed",
        &(),
        async || {
            // Row capacity 2: the three increments of `count` fill rows and append new ones.
            let rt = runtime(b, 2);
            rt.register("mixed", &["a", "b"], mixed)?;
            rt.provision().await?;
            seed(&rt, "mixed", "a", "x", 10.into()).await;
            seed(&rt, "mixed", "a", "count", 0.into()).await;
            seed(&rt, "mixed", "a", "z", "doomed".into()).await;
            seed(&rt, "mixed", "b", "c", "free".into()).await;
            seed(&rt, "mixed", "b", "d", "held".into()).await;
            Ok(rt)
        },
        async |rt: &Runtime| {
            let get = async |t: &str, k: &str| {
                current_value(rt, "mixed", t, k)
                    .await
                    .map_err(|e| e.to_string())
            };
            let want: [(&str, &str, Option<AttrValue>); 6] = [
                ("a", "y", Some(11.into())),
                ("a", "count", Some(3.into())),
                ("a", "z", None),
                ("b", "c", Some("taken".into())),
                ("b", "d", Some("held".into())),
                ("a", "x", Some(10.into())),
            ];
            for (t, k, v) in want {
                let got = get(t, k).await?;
                if got != v {
                    return Err(format!("{t}/{k} is {got:?}, expected {v:?}"));
                }
            }
            Ok(())
        },
    )
    .await
    .unwrap();
    println!(
        "[{}] mixed workflow: {} steps, {} crash points explored, {} executions, {} violations",
        b.name(),
        report.steps,
        report.crash_points,
        report.executions,
        report.failures.len()
    );
    assert_eq!(report.steps, 10);
    assert_eq!(report.crash_points, 21);
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
}

async fn concurrent(ctx: Ctx, _input: ()) -> Result<(Option<i64>, Option<i64>), UserError> {
    // Two reads and two writes awaited together: the steps are taken when the operations
    // are called, so they are the same on every execution whatever order they finish in.
    let (a, b) = tokio::join!(ctx.read_as::<i64>("t", "a"), ctx.read_as::<i64>("t", "b"));
    let (a, b) = (a?, b?);
    let (w1, w2) = tokio::join!(
        ctx.write_as("t", "a", &(b.unwrap_or(0) + 100)),
        ctx.write_as("t", "b", &(a.unwrap_or(0) + 100)),
    );
    w1?;
    w2?;
    Ok((a, b))
}

pub async fn explorer_handles_concurrent_steps(b: &Backend) {
    let report = explorer::explore(
        "concurrent",
        &(),
        async || {
            let rt = runtime(b, 4);
            rt.register("concurrent", &["t"], concurrent)?;
            rt.provision().await?;
            seed(&rt, "concurrent", "t", "a", 1.into()).await;
            seed(&rt, "concurrent", "t", "b", 2.into()).await;
            Ok(rt)
        },
        async |rt: &Runtime| {
            let a = current_value(rt, "concurrent", "t", "a")
                .await
                .map_err(|e| e.to_string())?;
            let b = current_value(rt, "concurrent", "t", "b")
                .await
                .map_err(|e| e.to_string())?;
            if (a.clone(), b.clone()) == (Some(102.into()), Some(101.into())) {
                Ok(())
            } else {
                Err(format!("a={a:?} b={b:?}"))
            }
        },
    )
    .await
    .unwrap();
    println!(
        "[{}] concurrent steps: {} steps, {} crash points, {} violations",
        b.name(),
        report.steps,
        report.crash_points,
        report.failures.len()
    );
    assert_eq!(report.steps, 4);
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
}

async fn incr(ctx: Ctx, _input: ()) -> Result<i64, UserError> {
    ctx.update("c", "counter", vec![UpdateAction::add(Path::root(), 1)])
        .await?;
    Ok(ctx.read_as::<i64>("c", "counter").await?.unwrap_or(0))
}

pub async fn counter_of_200_instances_with_crashes_and_duplicates_ends_at_200(b: &Backend) {
    let rt = runtime(b, 8);
    rt.register("incr", &["c"], incr).unwrap();
    rt.provision().await.unwrap();
    let crashes = Arc::new(AtomicUsize::new(0));
    let duplicates = Arc::new(AtomicUsize::new(0));
    let sem = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::new();
    for i in 0..200u32 {
        let (rt, crashes, duplicates, sem) =
            (rt.clone(), crashes.clone(), duplicates.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.unwrap();
            let id = format!("incr-{i}");
            let run = async |attempt_base: u32| {
                for attempt in attempt_base.. {
                    match rt
                        .execute(
                            "incr",
                            &id,
                            AttrValue::Null,
                            FaultPlan::random(42, 0.2),
                            attempt,
                        )
                        .await
                    {
                        Ok(e) => return e.result,
                        Err(BeldiError::Crashed { .. }) => {
                            crashes.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => panic!("instance {id}: {e}"),
                    }
                }
                unreachable!()
            };
            if i % 4 == 0 {
                // A duplicate execution of the same instance, concurrently.
                duplicates.fetch_add(1, Ordering::SeqCst);
                let (r1, r2) = tokio::join!(run(0), run(1000));
                assert_eq!(r1, r2, "duplicates of {id} disagree");
            } else {
                run(0).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = current_value(&rt, "incr", "c", "counter").await.unwrap();
    let t = rt.tables("incr").unwrap().data("c").unwrap();
    let rows = Daal::new(&**rt.store(), &t, 8)
        .rows("counter")
        .await
        .unwrap();
    let entries: usize = rows.iter().map(|r| r.log_len()).sum();
    println!(
        "[{}] counter: 200 instances, {} injected crashes, {} duplicated instances, {} DAAL rows, value {:?}",
        b.name(),
        crashes.load(Ordering::SeqCst),
        duplicates.load(Ordering::SeqCst),
        rows.len(),
        v
    );
    assert_eq!(v, Some(200.into()));
    assert_eq!(entries, 200, "every increment logged exactly once");
    assert!(
        crashes.load(Ordering::SeqCst) > 20,
        "random crashes were injected"
    );
}

pub async fn daal_chain_grows_and_concurrent_appenders_race(b: &Backend) {
    let (store, ns) = b.fresh();
    let table = format!("{ns}daal_growth");
    store.create_table(&Daal::spec(&table)).await.unwrap();
    let daal = Daal::new(&*store, &table, 4);
    // Sequential: 30 writes with capacity 4 make a chain of 8 rows; reads see the latest.
    for i in 0..30 {
        daal.write(
            "seq",
            &format!("i#{i}"),
            beldi_runtime::__internals::Entry::Write,
            &[UpdateAction::set("V", i)],
            None,
        )
        .await
        .unwrap();
        assert_eq!(
            daal.tail("seq").await.unwrap().unwrap().value(),
            Some(&i.into())
        );
    }
    let rows = daal.rows("seq").await.unwrap();
    assert_eq!(rows.len(), 8);
    check_chain(&rows, 4);
    // Replaying every write changes nothing.
    for i in 0..30 {
        let r = daal
            .write(
                "seq",
                &format!("i#{i}"),
                beldi_runtime::__internals::Entry::Write,
                &[UpdateAction::set("V", -1)],
                None,
            )
            .await
            .unwrap();
        assert!(matches!(
            r,
            beldi_runtime::__internals::WriteResult::Logged(_)
        ));
    }
    assert_eq!(
        daal.tail("seq").await.unwrap().unwrap().value(),
        Some(&29.into())
    );
    // Concurrent: 8 writers × 25 increments race to append rows.
    let race = async || {
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (store, table) = (store.clone(), table.clone());
            tasks.push(tokio::spawn(async move {
                let daal = Daal::new(&*store, &table, 4);
                for i in 0..25 {
                    daal.write(
                        "hot",
                        &format!("w{w}#{i}"),
                        beldi_runtime::__internals::Entry::Write,
                        &[UpdateAction::add("V", 1)],
                        None,
                    )
                    .await
                    .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    };
    race().await;
    // And every write once more, concurrently: all already logged.
    race().await;
    let rows = daal.rows("hot").await.unwrap();
    check_chain(&rows, 4);
    assert_eq!(rows.len(), 50, "200 entries in rows of 4");
    assert_eq!(
        daal.tail("hot").await.unwrap().unwrap().value(),
        Some(&200.into()),
        "no write applied twice or lost"
    );
    println!(
        "[{}] DAAL: 30 sequential writes → 8 rows; 8×25 racing writes → {} rows, value 200",
        b.name(),
        rows.len()
    );
}

/// Rows are numbered in order, every non-tail row is full and links to its successor, and
/// every entry appears once.
fn check_chain(rows: &[Row], cap: u64) {
    let mut seen = std::collections::HashSet::new();
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.id(), row_id(i as u64));
        if i + 1 < rows.len() {
            assert_eq!(r.entries(), cap, "row {i} is full");
            assert_eq!(
                r.next(),
                Some(row_id(i as u64 + 1).as_str()),
                "row {i} links to its successor"
            );
        } else {
            assert!(r.entries() <= cap);
            assert_eq!(r.next(), None, "the tail has no successor");
        }
        for k in r.0.get("L").and_then(AttrValue::as_m).unwrap().keys() {
            assert!(seen.insert(k.clone()), "entry {k} appears twice");
        }
    }
}

pub async fn replay_divergence_is_a_non_determinism_error(b: &Backend) {
    let rt = runtime(b, 16);
    let switch = Arc::new(AtomicBool::new(false));
    let s = switch.clone();
    rt.register("flaky", &["t"], move |ctx: Ctx, _: ()| {
        let flipped = s.load(Ordering::SeqCst);
        async move {
            let key = if flipped { "other" } else { "one" };
            let v = ctx.read("t", key).await?;
            // A durable effect after the read: its log record is durable with it.
            ctx.write("t", "after", 1.into()).await?;
            Ok::<_, UserError>(v.is_some())
        }
    })
    .unwrap();
    let s = switch.clone();
    rt.register("flaky_write", &["t"], move |ctx: Ctx, _: ()| {
        let flipped = s.load(Ordering::SeqCst);
        async move {
            if flipped {
                ctx.write("t", "w", 1.into()).await?;
            } else {
                ctx.cond_write(
                    "t",
                    "w",
                    vec![UpdateAction::set(Path::root(), 2)],
                    Condition::not_exists(Path::root()),
                )
                .await?;
            }
            Ok::<_, UserError>(())
        }
    })
    .unwrap();
    rt.provision().await.unwrap();
    for (f, step) in [("flaky", 1), ("flaky_write", 0)] {
        let e = rt
            .execute(
                f,
                "i1",
                AttrValue::Null,
                FaultPlan::crash_at(CrashPoint::After(step)),
                0,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, BeldiError::Crashed { .. }), "{e}");
    }
    switch.store(true, Ordering::SeqCst);
    let e = rt
        .execute("flaky", "i1", AttrValue::Null, FaultPlan::none(), 1)
        .await
        .unwrap_err();
    match &e {
        BeldiError::NonDeterminism {
            step,
            logged,
            requested,
            ..
        } => {
            assert_eq!(*step, 0);
            assert!(logged.contains("read of `t/one`"), "{logged}");
            assert!(requested.contains("read of `t/other`"), "{requested}");
        }
        other => panic!("expected NonDeterminism, got {other}"),
    }
    let e = rt
        .execute("flaky_write", "i1", AttrValue::Null, FaultPlan::none(), 1)
        .await
        .unwrap_err();
    match &e {
        BeldiError::NonDeterminism {
            step,
            logged,
            requested,
            ..
        } => {
            assert_eq!(*step, 0);
            assert!(logged.contains("cond_write of `t/w`"), "{logged}");
            assert!(requested.contains("write of `t/w`"), "{requested}");
        }
        other => panic!("expected NonDeterminism, got {other}"),
    }
    assert_eq!(
        current_value(&rt, "flaky_write", "t", "w").await.unwrap(),
        Some(2.into()),
        "the divergent write was not applied"
    );
    // A read at a step where a write to the same key was logged is caught too.
    let s = switch.clone();
    rt.register("read_vs_write", &["t"], move |ctx: Ctx, _: ()| {
        let flipped = s.load(Ordering::SeqCst);
        async move {
            if flipped {
                ctx.read("t", "q").await?;
            } else {
                ctx.write("t", "q", 5.into()).await?;
            }
            Ok::<_, UserError>(())
        }
    })
    .unwrap();
    rt.provision().await.unwrap();
    switch.store(false, Ordering::SeqCst);
    rt.execute(
        "read_vs_write",
        "i2",
        AttrValue::Null,
        FaultPlan::crash_at(CrashPoint::After(0)),
        0,
    )
    .await
    .unwrap_err();
    switch.store(true, Ordering::SeqCst);
    let e = rt
        .execute("read_vs_write", "i2", AttrValue::Null, FaultPlan::none(), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BeldiError::NonDeterminism { logged, .. } if logged.contains("write of `t/q`")),
        "{e}"
    );
}

/// Runs `instance` of `function` and returns the message of its terminal failure (panics
/// if it did not end failed).
async fn failure(rt: &Runtime, function: &str, instance: &str) -> String {
    let exec = rt
        .execute(function, instance, AttrValue::Null, FaultPlan::none(), 0)
        .await
        .unwrap();
    match beldi_runtime::schema::decode_result::<(), UserError>(function, instance, &exec.result) {
        Err(BeldiError::Failed { message, .. }) => message,
        other => panic!("{function} {instance}: expected a terminal failure, got {other:?}"),
    }
}

pub async fn bad_input_fails_clearly_without_partial_state(b: &Backend) {
    let rt = runtime(b, 16);
    rt.register("uses_unknown", &["t"], |ctx: Ctx, _: ()| async move {
        ctx.write("nope", "k", 1.into()).await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.register("too_big", &["t"], |ctx: Ctx, _: ()| async move {
        ctx.write("t", "k", AttrValue::B(vec![0; 401 * 1024]))
            .await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.register(
        "echo",
        &["t"],
        |_ctx: Ctx, m: std::collections::HashMap<String, i64>| async move {
            Ok::<_, UserError>(m.len())
        },
    )
    .unwrap();
    rt.provision().await.unwrap();
    // Both end failed for good, with the error stored as their result.
    let e = failure(&rt, "uses_unknown", "u1").await;
    assert!(
        e.contains("function `uses_unknown` has no table `nope` (declared: t)"),
        "{e}"
    );
    let e = failure(&rt, "too_big", "u2").await;
    assert!(e.contains("too large") || e.contains("400"), "{e}");
    let store = rt.store();
    for f in ["uses_unknown", "too_big"] {
        let tables = rt.tables(f).unwrap();
        assert!(
            store
                .scan_all(&tables.data("t").unwrap())
                .await
                .unwrap()
                .is_empty(),
            "{f}: no data row written"
        );
        assert!(
            store.scan_all(&tables.log()).await.unwrap().is_empty(),
            "{f}: nothing logged"
        );
    }
    // Non-serializable input: rejected before anything is written.
    let mut bad = std::collections::HashMap::new();
    bad.insert((1, 2), 3);
    let e = rt
        .invoke::<_, usize, UserError>("echo", "u3", &bad)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BeldiError::Serialization { what, .. } if what.contains("input of `echo`")),
        "{e}"
    );
    assert!(
        store
            .scan_all(&rt.tables("echo").unwrap().intent())
            .await
            .unwrap()
            .is_empty(),
        "no intent for a rejected input"
    );
    // Input of the wrong shape for the function: a clear error naming the function.
    let e = rt
        .invoke::<_, usize, UserError>("echo", "u4", &"not a map")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BeldiError::Serialization { what, .. } if what.contains("input of `echo`")),
        "{e}"
    );
    // Bad names.
    let e = rt
        .invoke::<_, usize, UserError>("echo", "a#b", &())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BeldiError::InvalidName { name, .. } if name == "a#b"),
        "{e}"
    );
    let e = rt
        .register("bad.name", &["t"], |_c: Ctx, _: ()| async move {
            Ok::<_, UserError>(())
        })
        .unwrap_err();
    assert!(
        matches!(&e, BeldiError::InvalidName { name, .. } if name == "bad.name"),
        "{e}"
    );
    let e = rt
        .invoke::<_, (), UserError>("missing", "x", &())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BeldiError::UnknownFunction(n) if n == "missing"),
        "{e}"
    );
}

pub async fn done_instances_return_the_stored_result(b: &Backend) {
    let rt = runtime(b, 16);
    rt.register("once", &["t"], |ctx: Ctx, by: i64| async move {
        ctx.update("t", "n", vec![UpdateAction::add(Path::root(), by)])
            .await?;
        if by < 0 {
            return Err(UserError("negative".into()));
        }
        Ok(ctx.read_as::<i64>("t", "n").await?.unwrap_or(0))
    })
    .unwrap();
    rt.provision().await.unwrap();
    assert_eq!(
        rt.invoke::<_, i64, UserError>("once", "r1", &5)
            .await
            .unwrap(),
        Ok(5)
    );
    assert_eq!(
        rt.invoke::<_, i64, UserError>("once", "r1", &5)
            .await
            .unwrap(),
        Ok(5)
    );
    let exec = rt
        .execute("once", "r1", 5.into(), FaultPlan::none(), 0)
        .await
        .unwrap();
    assert!(!exec.ran, "a done instance does not run again");
    // A user error is a result: stored and returned again, the write not repeated.
    assert_eq!(
        rt.invoke::<_, i64, UserError>("once", "r2", &-1)
            .await
            .unwrap(),
        Err(UserError("negative".into()))
    );
    assert_eq!(
        rt.invoke::<_, i64, UserError>("once", "r2", &-1)
            .await
            .unwrap(),
        Err(UserError("negative".into()))
    );
    assert_eq!(
        current_value(&rt, "once", "t", "n").await.unwrap(),
        Some(4.into())
    );
    let e = rt
        .invoke::<_, i64, UserError>("once", "r1", &6)
        .await
        .unwrap_err();
    assert!(matches!(e, BeldiError::InputMismatch { .. }), "{e}");
}

/// A write of a key this process has not seen the tail of first tries to create the key's
/// first row with the change applied to an empty value; a change that cannot apply to an
/// empty value (a nested path) must then look for the key's rows, not fail. (It failed the
/// instance with "the document path provided in the update expression is invalid" when the
/// key existed: found by the movie job resumed after kill -9, whose parts' updates set
/// fields of a row another process had created.)
pub async fn a_nested_update_of_a_key_this_process_has_not_seen_applies(b: &Backend) {
    let rt = runtime(b, 16);
    rt.register("nested", &["t"], |ctx: Ctx, _: ()| async move {
        ctx.update("t", "k", vec![UpdateAction::set(Path::attr("b"), 2)])
            .await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.provision().await.unwrap();
    let a = AttrValue::M([("a".to_owned(), AttrValue::from(1))].into_iter().collect());
    seed(&rt, "nested", "t", "k", a).await;
    assert_eq!(
        rt.invoke::<_, (), UserError>("nested", "n1", &())
            .await
            .unwrap(),
        Ok(())
    );
    let want = AttrValue::M(
        [("a".to_owned(), 1.into()), ("b".to_owned(), 2.into())]
            .into_iter()
            .collect(),
    );
    assert_eq!(
        current_value(&rt, "nested", "t", "k").await.unwrap(),
        Some(want)
    );
    // On a key with no row at all it is the error it always was.
    rt.register("nested_fresh", &["t"], |ctx: Ctx, _: ()| async move {
        ctx.update("t", "none", vec![UpdateAction::set(Path::attr("b"), 2)])
            .await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.provision().await.unwrap();
    let e = rt
        .invoke::<_, (), UserError>("nested_fresh", "n2", &())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid"), "{e}");
}

/// Waits until an execution reached `gate`.
async fn reached(gate: &beldi_runtime::crash::Gate) {
    for _ in 0..2000 {
        if gate.reached() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    panic!("no execution reached the gate");
}

/// Deferred logging under duplicates: two executions of one instance read `k` at step 0
/// when it held different values, and neither read's record is durable when the other
/// reads. The first to make its record durable wins; the other finds another record at
/// step 0 when it flushes — before its own effect (a side effect, or in the write's own
/// transaction) — stops, and runs again from the log: both return the winner's value and
/// the write is applied once, with it.
pub async fn a_duplicate_that_read_another_value_runs_again_from_the_log(b: &Backend) {
    use beldi_runtime::crash::Gate;
    let rt = runtime(b, 16);
    let runs: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    // Reads `k`, then adds it to `out`. With k = 2 it makes a side effect first, so the
    // write's step differs by path: a copy that read 1 writes at step 1, where the other
    // made its side effect.
    let r = runs.clone();
    rt.register("branchy", &["t"], move |ctx: Ctx, _: ()| {
        r.lock().unwrap().push("branchy");
        async move {
            let v: i64 = ctx.read_as("t", "k").await?.unwrap_or(0);
            if v == 2 {
                ctx.side_effect(|| ()).await?;
            }
            ctx.update("t", "out", vec![UpdateAction::add(Path::root(), v)])
                .await?;
            Ok::<_, UserError>(v)
        }
    })
    .unwrap();
    let r = runs.clone();
    rt.register("plain", &["t"], move |ctx: Ctx, _: ()| {
        r.lock().unwrap().push("plain");
        async move {
            let v: i64 = ctx.read_as("t", "k").await?.unwrap_or(0);
            ctx.update("t", "out", vec![UpdateAction::add(Path::root(), v)])
                .await?;
            Ok::<_, UserError>(v)
        }
    })
    .unwrap();
    rt.provision().await.unwrap();
    let decode = |f: &str, exec: beldi_runtime::Execution| {
        beldi_runtime::schema::decode_result::<i64, UserError>(f, "i1", &exec.result).unwrap()
    };
    for (f, later) in [
        // The later copy pauses after making its read's record durable on its own (before
        // its side effect): the first copy's write carries its own read's record, which is
        // refused in that transaction.
        ("branchy", Some(CrashPoint::Flushed(1))),
        // The later copy runs to the end: the first copy's write finds the step logged,
        // and its read's record, flushed then, refused.
        ("plain", None),
    ] {
        seed(&rt, f, "t", "k", 1.into()).await;
        let first_gate = Gate::new();
        let first = {
            let rt = rt.clone();
            let plan = FaultPlan::pause("i1", 1, CrashPoint::After(0), first_gate.clone());
            tokio::spawn(async move { rt.execute(f, "i1", AttrValue::Null, plan, 1).await })
        };
        reached(&first_gate).await; // it read k = 1; its record is deferred
        seed(&rt, f, "t", "k", 2.into()).await;
        let later_gate = Gate::new();
        let plan = match later {
            Some(point) => FaultPlan::pause("i1", 2, point, later_gate.clone()),
            None => FaultPlan::none(),
        };
        let second = {
            let rt = rt.clone();
            tokio::spawn(async move { rt.execute(f, "i1", AttrValue::Null, plan, 2).await })
        };
        let mut second = Some(second);
        if later.is_some() {
            reached(&later_gate).await;
        } else if let Some(second) = second.take() {
            assert_eq!(decode(f, second.await.unwrap().unwrap()), Ok(2), "{f}");
        }
        first_gate.open();
        let first = first.await.unwrap().unwrap();
        assert!(
            first.ran,
            "{f}: the first copy ran (twice) rather than finding a result"
        );
        assert_eq!(
            decode(f, first),
            Ok(2),
            "{f}: it adopted the value logged first"
        );
        if let Some(second) = second {
            later_gate.open();
            assert_eq!(decode(f, second.await.unwrap().unwrap()), Ok(2), "{f}");
        }
        assert_eq!(
            current_value(&rt, f, "t", "out").await.unwrap(),
            Some(2.into()),
            "{f}: the write applied once, with the value logged"
        );
        assert_eq!(
            rt.invoke::<_, i64, UserError>(f, "i1", &()).await.unwrap(),
            Ok(2),
            "{f}: the stored result"
        );
        let ran = runs.lock().unwrap().iter().filter(|n| **n == f).count();
        assert_eq!(
            ran, 3,
            "{f}: each copy ran the body, and the first one again"
        );
    }
}

/// A sync callee called by a first execution of its caller defers its intent to its first
/// durable effect, so it starts without knowing whether the instance exists. Here a later
/// copy of the caller (a re-execution: it reads its callee's intent first) runs the callee
/// while the first copy's callee is paused: the paused one must then make no effect and
/// end with the stored result, whether its first effect is a write (its intent rides in the
/// write's transaction) or its finished intent (it has no effect of its own, and the other
/// copy is still running).
pub async fn a_callee_that_defers_its_intent_yields_to_an_earlier_copy(b: &Backend) {
    use beldi_runtime::crash::Gate;
    let rt = runtime(b, 10);
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    // Adds one to `t/n` and returns what it wrote.
    rt.register("bump", &["t"], move |ctx: Ctx, _: ()| {
        r.fetch_add(1, Ordering::SeqCst);
        async move {
            let n: i64 = ctx.read_as("t", "n").await?.unwrap_or(0);
            ctx.write_as("t", "n", &(n + 1)).await?;
            Ok::<_, UserError>(n + 1)
        }
    })
    .unwrap();
    // Returns what it reads.
    rt.register("look", &["t"], |ctx: Ctx, _: ()| async move {
        Ok::<_, UserError>(ctx.read_as::<i64>("t", "n").await?.unwrap_or(0))
    })
    .unwrap();
    for callee in ["bump", "look"] {
        let caller = format!("call_{callee}");
        rt.register(&caller, &["t"], move |ctx: Ctx, _: ()| async move {
            let got: Result<i64, UserError> = ctx.call(callee, &()).await?;
            got
        })
        .unwrap();
    }
    rt.provision().await.unwrap();
    let decode = |f: &str, exec: beldi_runtime::Execution| {
        beldi_runtime::schema::decode_result::<i64, UserError>(f, "i1", &exec.result).unwrap()
    };
    // bump: the first copy's callee pauses before its read; the later copy's callee runs to
    // the end (n = 1); the paused one reads n = 1, and its write (of 2) must not apply.
    // look: the first copy pauses before its call; the later copy's callee pauses before
    // its finish; then n changes, and the first copy's callee reads it, tries to create its
    // intent finished, finds the instance unfinished, and runs it from its intent and log
    // instead: both copies return what that run stored.
    for callee in ["bump", "look"] {
        let caller = format!("call_{callee}");
        let leaf = beldi_runtime::schema::callee_id(&caller, "i1", 0);
        seed(&rt, callee, "t", "n", 0.into()).await;
        let (first_gate, later_gate) = (Gate::new(), Gate::new());
        let (first_plan, later_plan) = if callee == "bump" {
            let first =
                FaultPlan::pause(leaf.clone(), 1, CrashPoint::Before(0), first_gate.clone());
            (first, FaultPlan::none())
        } else {
            let first = FaultPlan::pause("i1", 1, CrashPoint::Before(0), first_gate.clone());
            let later =
                FaultPlan::pause(leaf.clone(), 2, CrashPoint::BeforeDone, later_gate.clone());
            (first, later)
        };
        // The first copy creates the caller's intent: it is a first execution, and its
        // callee defers its intent. The later copy is a re-execution.
        let first = {
            let (rt, f) = (rt.clone(), caller.clone());
            tokio::spawn(async move { rt.execute(&f, "i1", AttrValue::Null, first_plan, 1).await })
        };
        reached(&first_gate).await;
        let later = {
            let (rt, f) = (rt.clone(), caller.clone());
            tokio::spawn(async move { rt.execute(&f, "i1", AttrValue::Null, later_plan, 2).await })
        };
        let (first, later) = if callee == "bump" {
            let later = later.await.unwrap().unwrap();
            first_gate.open();
            (first.await.unwrap().unwrap(), later)
        } else {
            reached(&later_gate).await;
            let intents = rt.tables(callee).unwrap().intent();
            let stored = rt
                .store()
                .get(&intents, &Key::new(leaf.clone()))
                .await
                .unwrap();
            assert!(
                stored.is_some(),
                "look: the later copy's callee created its intent first"
            );
            seed(&rt, callee, "t", "n", 5.into()).await;
            first_gate.open();
            let first = first.await.unwrap().unwrap();
            later_gate.open();
            (first, later.await.unwrap().unwrap())
        };
        let want = if callee == "bump" { 1 } else { 5 };
        assert_eq!(decode(&caller, first), Ok(want), "{callee}: the first copy");
        assert_eq!(decode(&caller, later), Ok(want), "{callee}: the later copy");
        assert_eq!(
            rt.invoke::<_, i64, UserError>(callee, &leaf, &())
                .await
                .unwrap(),
            Ok(want),
            "{callee}: the callee's stored result is the one its caller got"
        );
        if callee == "bump" {
            assert_eq!(
                current_value(&rt, callee, "t", "n").await.unwrap(),
                Some(1.into()),
                "bump: the callee's write applied once"
            );
            assert_eq!(
                runs.load(Ordering::SeqCst),
                2,
                "bump: each copy ran the body once"
            );
        }
    }
}

/// A logged write refused by a full tail row puts the row's successor with the write in it
/// and links it, in one transaction: an append costs the refused attempt and nothing more
/// (it was a put, a link and the write again). The chain stays whole and holds every write.
pub async fn a_full_tail_gets_its_successor_with_the_write_in_one_round_trip(b: &Backend) {
    let (inner, ns) = b.fresh();
    let counting = Arc::new(CountingStore::new(inner));
    let rt = Runtime::with_config(
        counting.clone(),
        RuntimeConfig {
            namespace: ns,
            row_capacity: 2,
            ..Default::default()
        },
    )
    .unwrap();
    // Six increments of one fresh key, and a false conditional write at a full tail.
    rt.register("grow", &["t"], |ctx: Ctx, _: ()| async move {
        for _ in 0..6 {
            ctx.update("t", "g", vec![UpdateAction::add(Path::root(), 1)])
                .await?;
        }
        let set = vec![UpdateAction::set(Path::root(), 0)];
        let held = ctx
            .cond_write("t", "g", set, Condition::eq(Path::root(), 99))
            .await?;
        Ok::<_, UserError>(held)
    })
    .unwrap();
    rt.provision().await.unwrap();
    counting.reset();
    let held = rt
        .invoke::<_, bool, UserError>("grow", "g1", &())
        .await
        .unwrap();
    assert_eq!(held, Ok(false));
    // The intent put and the finish; the head row put with the first write (1); then per
    // row: a write into it (1), a refused one and its successor with the write (2); the
    // false conditional write is refused by the full row and goes into a new one (2).
    let c = counting.counts();
    assert_eq!(c.total_data(), 2 + 1 + 1 + 2 + 1 + 2 + 1 + 2, "{c}");
    let t = rt.tables("grow").unwrap().data("t").unwrap();
    let rows = Daal::new(&**rt.store(), &t, 2).rows("g").await.unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r.id()).collect();
    assert_eq!(
        ids,
        [row_id(0), row_id(1), row_id(2), row_id(3)],
        "{rows:#?}"
    );
    for pair in rows.windows(2) {
        assert_eq!(pair[0].next(), Some(pair[1].id()), "linked: {rows:#?}");
    }
    assert_eq!(
        current_value(&rt, "grow", "t", "g").await.unwrap(),
        Some(6.into())
    );
}

/// Runs `body` as a transaction block of `ctx` (what `#[beldi::txn]` generates), no retry.
async fn txn_block(
    ctx: &Ctx,
    body: impl AsyncFn(&Ctx) -> Result<(), BeldiError>,
) -> Result<(), BeldiError> {
    use beldi_runtime::macro_support::TxnEnd;
    let mut block = ctx.__txn_block(1, 0);
    let inside = block.begin().await?;
    let out = body(&inside).await;
    match block.end(&inside, out.is_ok()).await {
        TxnEnd::Done => out,
        TxnEnd::Retry => Err(inside.abort("died")),
        TxnEnd::Failed(e) => Err(e),
    }
}

/// Round trips of one logged operation, first execution and replay (intent writes excluded).
pub async fn round_trips_per_logged_operation(b: &Backend) {
    let (inner, ns) = b.fresh();
    let counting = Arc::new(CountingStore::new(inner));
    let rt = Runtime::with_config(
        counting.clone(),
        RuntimeConfig {
            namespace: ns,
            ..Default::default()
        },
    )
    .unwrap();
    rt.register("op_read", &["t"], |ctx: Ctx, _: ()| async move {
        Ok::<_, UserError>(ctx.read("t", "k").await?.is_some())
    })
    .unwrap();
    rt.register("op_write", &["t"], |ctx: Ctx, _: ()| async move {
        ctx.write("t", "k", 1.into()).await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.register("op_cond_true", &["t"], |ctx: Ctx, _: ()| async move {
        Ok::<_, UserError>(
            ctx.cond_write(
                "t",
                "k",
                vec![UpdateAction::set(Path::root(), 2)],
                Condition::exists(Path::root()),
            )
            .await?,
        )
    })
    .unwrap();
    // A conditional write of `t/k` whose condition is false.
    async fn cond_false(ctx: &Ctx) -> Result<bool, BeldiError> {
        let set = vec![UpdateAction::set(Path::root(), 3)];
        ctx.cond_write("t", "k", set, Condition::eq(Path::root(), 99))
            .await
    }
    rt.register("op_cond_false", &["t"], |ctx: Ctx, _: ()| async move {
        Ok::<_, UserError>(cond_false(&ctx).await?)
    })
    .unwrap();
    // A read, then a write of the key it read (where the read saw the tail).
    rt.register("op_read_write", &["t"], |ctx: Ctx, _: ()| async move {
        let n: i64 = ctx.read_as("t", "k").await?.unwrap_or(0);
        ctx.write_as("t", "k", &(n + 1)).await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.register("op_read_cond_false", &["t"], |ctx: Ctx, _: ()| async move {
        ctx.read("t", "k").await?;
        Ok::<_, UserError>(cond_false(&ctx).await?)
    })
    .unwrap();
    rt.register("op_scan", &["t"], |ctx: Ctx, _: ()| async move {
        Ok::<_, UserError>(ctx.scan("t").await?.len())
    })
    .unwrap();
    // Six logged steps of four kinds: a replay of all of them is one query.
    rt.register("op_six_steps", &["t"], |ctx: Ctx, _: ()| async move {
        let n: i64 = ctx.read_as("t", "k").await?.unwrap_or(0);
        ctx.write_as("t", "k", &(n + 1)).await?;
        let at = ctx.now().await?;
        ctx.write_as("t", "k2", &format!("{at:?}")).await?;
        let again: Option<i64> = ctx.read_as("t", "k").await?;
        let _ = ctx.scan("t").await?;
        Ok::<_, UserError>(again)
    })
    .unwrap();
    // A transaction writing two fresh keys, and one that reads a key and writes it.
    rt.register("op_txn_two_writes", &["t"], |ctx: Ctx, _: ()| async move {
        txn_block(&ctx, async |c: &Ctx| {
            c.write("t", "ta", 1.into()).await?;
            c.write("t", "tb", 1.into()).await
        })
        .await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.register("op_txn_read_write", &["t"], |ctx: Ctx, _: ()| async move {
        txn_block(&ctx, async |c: &Ctx| {
            let n: i64 = c.read_as("t", "k").await?.unwrap_or(0);
            c.write_as("t", "k", &(n + 1)).await
        })
        .await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
    // Callees writing one key: a transaction's participant, and a sync call's callee.
    for (callee, key) in [("op_part", "p"), ("op_callee_write", "c")] {
        rt.register(callee, &["t"], move |ctx: Ctx, _: ()| async move {
            ctx.write("t", key, 1.into()).await?;
            Ok::<_, UserError>(())
        })
        .unwrap();
    }
    // A transaction writing a key here and one in a participant function.
    rt.register(
        "op_txn_two_functions",
        &["t"],
        |ctx: Ctx, _: ()| async move {
            txn_block(&ctx, async |c: &Ctx| {
                c.write("t", "ta", 1.into()).await?;
                let done: Result<(), UserError> = c.call("op_part", &()).await?;
                done.map_err(|e| c.abort(&e.0))
            })
            .await?;
            Ok::<_, UserError>(())
        },
    )
    .unwrap();
    // A sync call of a callee with no effect of its own, and of one that writes a key.
    rt.register("op_callee", &["t"], |_: Ctx, _: ()| async move {
        Ok::<_, UserError>(())
    })
    .unwrap();
    for (caller, callee) in [
        ("op_call", "op_callee"),
        ("op_call_write", "op_callee_write"),
    ] {
        rt.register(caller, &["t"], move |ctx: Ctx, _: ()| async move {
            let done: Result<(), UserError> = ctx.call(callee, &()).await?;
            Ok::<_, UserError>(done.is_ok())
        })
        .unwrap();
    }
    rt.provision().await.unwrap();
    for f in [
        "op_read",
        "op_write",
        "op_cond_true",
        "op_cond_false",
        "op_read_write",
        "op_read_cond_false",
        "op_scan",
        "op_six_steps",
        "op_txn_two_writes",
        "op_txn_read_write",
    ] {
        seed(&rt, f, "t", "k", 0.into()).await;
    }
    println!(
        "\n[{}] round trips per logged operation (intent writes excluded: 2 per instance, 3 per re-execution)",
        b.name()
    );
    println!("| operation           | first execution | replay | prototype (first) |");
    println!("|---------------------|----------------:|-------:|------------------:|");
    let mut measured = Vec::new();
    for (f, proto) in [
        ("op_read", "3"),
        ("op_write", "2"),
        ("op_cond_true", "2"),
        ("op_cond_false", "3"),
        ("op_read_write", "3 + 2"),
        ("op_read_cond_false", "3 + 3"),
        ("op_scan", "1 + 1 per page"),
        ("op_six_steps", "-"),
        ("op_txn_two_writes", "-"),
        ("op_txn_read_write", "-"),
        ("op_txn_two_functions", "-"),
        ("op_call", "1 + ~4 writes"),
        ("op_call_write", "-"),
    ] {
        counting.reset();
        let e = rt
            .execute(
                f,
                "m1",
                AttrValue::Null,
                FaultPlan::crash_instance("m1", CrashPoint::BeforeDone),
                0,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, BeldiError::Crashed { .. }));
        let first = counting.counts().total_data() - 1; // minus the intent put
        counting.reset();
        rt.execute(f, "m1", AttrValue::Null, FaultPlan::none(), 1)
            .await
            .unwrap();
        // Minus the intent put, the start refresh and the finish; what is left is the
        // prefetch of the log (one query) and whatever was not logged.
        let replay = counting.counts().total_data() - 3;
        println!("| {f:<19} | {first:>15} | {replay:>6} | {proto:>17} |");
        measured.push((f, first, replay));
    }
    assert_eq!(
        measured,
        vec![
            // A read is one query; its record is deferred to the next durable effect, and
            // there is none before the crash: the replay (the prefetch of the log, one
            // query) reads again.
            ("op_read", 1, 2),
            // A write's log record goes in one transaction with its DAAL update. This
            // process has not seen the key's tail yet: it tries to create the key's first
            // row, which is there (+1), then updates it.
            ("op_write", 2, 1),
            ("op_cond_true", 2, 1),
            // + the logged false outcome.
            ("op_cond_false", 3, 1),
            // The read saw the tail: the write goes straight there, with the read's record
            // in its transaction; the replay replays both from the prefetch.
            ("op_read_write", 1 + 1, 1),
            ("op_read_cond_false", 1 + 2, 1),
            ("op_scan", 1, 2),
            // read 1, write 1 (carrying the read's record), now 1, write of a fresh key 1
            // (its first DAAL row holds it), read 1, scan 1; the replay re-runs the last
            // read and the scan, deferred and lost with the crash.
            ("op_six_steps", 1 + 1 + 1 + 1 + 1 + 1, 1 + 2),
            // Each write takes its key's lock, logs itself and buffers its value in one
            // transaction (the begin's deferred record rides with the first); the commit
            // reads the shadow entries (1) and applies both writes with its own record and
            // the finish marker in one transaction (1). The replay (the prefetch, then) finds
            // the commit logged and the marker among the entries: nothing is left to do.
            ("op_txn_two_writes", 1 + 1 + 1 + 1, 1 + 1),
            // The read reads the tail and takes the lock with its record (2); the write of
            // the key it holds is one transaction of its record and the buffer (1); the
            // commit 2, as above.
            ("op_txn_read_write", 2 + 1 + 2, 1 + 1),
            // The coordinator's lock (1); the call's record with the participant's entry
            // (1); the participant's intent, lock and finish (3); the call's result (1); the
            // decision: the shadow read and one transaction (2); the participant's commit,
            // an instance of its own: intent, shadow read, transaction, finish (4); the
            // finish marker once the participants are done (1).
            ("op_txn_two_functions", 1 + 1 + 3 + 1 + 2 + 4 + 1, 1 + 1),
            // The callee, called by a first execution, defers its intent: with no effect of
            // its own it is one put of its finished intent. The call's record is deferred
            // and lost with the caller's crash; the replay (a re-execution: its callee is
            // read first) finds the callee done (1).
            ("op_call", 1, 1 + 1),
            // The callee's intent rides with its write (1), then its finish (1); the replay
            // finds the callee done.
            ("op_call_write", 1 + 1, 1 + 1),
        ]
    );
    // The garbage collector deletes an instance's log records in batches (one round trip per
    // 25), not one by one; the intent (a conditional delete) goes last, alone.
    counting.reset();
    let report = rt
        .collect_garbage(&GcConfig {
            window: std::time::Duration::ZERO,
            unlink_window: std::time::Duration::ZERO,
        })
        .await
        .unwrap();
    let c = counting.counts();
    println!("[{}] GC pass: {report:?}: {c}", b.name());
    // Every root, callee and the participant's commit instance.
    assert_eq!(report.instances, 17);
    assert!(report.log_records >= 15, "{report:?}");
    // op_read, op_scan, op_call, op_call_write and op_callee logged nothing: their deferred
    // records went with the crash, and the replay's were dropped once the result was
    // stored. Each function of each of the three transactions leaves shadow items (its
    // locks, buffered writes, participants and finish marker): 4 parts, 8 + 7 items, one
    // batch for each part, then each marker alone, last.
    assert_eq!(report.shadow_items, 15, "{report:?}");
    assert_eq!(
        c.get(OpKind::BatchWrite),
        12 + 4,
        "one batch per instance that logged anything, one per transaction part: {c}"
    );
    assert_eq!(
        c.get(OpKind::Delete),
        17 + 4,
        "one conditional delete per intent, one per finish marker: {c}"
    );
}

pub async fn a_timeout_is_a_crash_and_the_rerun_finishes(b: &Backend) {
    let (store, ns) = b.fresh();
    let rt = Runtime::with_config(
        store,
        RuntimeConfig {
            namespace: ns,
            timeout: std::time::Duration::from_millis(300),
            ..Default::default()
        },
    )
    .unwrap();
    let slow = Arc::new(AtomicBool::new(true));
    let s = slow.clone();
    rt.register("slow", &["t"], move |ctx: Ctx, _: ()| {
        let slow = s.load(Ordering::SeqCst);
        async move {
            ctx.update("t", "n", vec![UpdateAction::add(Path::root(), 1)])
                .await?;
            if slow {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            }
            Ok::<_, UserError>(ctx.read_as::<i64>("t", "n").await?)
        }
    })
    .unwrap();
    rt.provision().await.unwrap();
    let e = rt
        .execute("slow", "t1", AttrValue::Null, FaultPlan::none(), 0)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BeldiError::Crashed { reason, .. } if reason.contains("timed out")),
        "{e}"
    );
    assert!(e.is_retryable());
    slow.store(false, Ordering::SeqCst);
    assert_eq!(
        rt.invoke::<_, Option<i64>, UserError>("slow", "t1", &())
            .await
            .unwrap(),
        Ok(Some(1)),
        "the increment applied once"
    );
}

pub async fn a_runtime_refuses_another_stored_format(b: &Backend) {
    use beldi_runtime::format::{FORMAT_VERSION, meta_table};
    let (store, ns) = b.fresh();
    let runtime = || {
        let rt = Runtime::with_config(
            store.clone(),
            RuntimeConfig {
                namespace: ns.clone(),
                ..Default::default()
            },
        )
        .unwrap();
        rt.register("fmt", &["t"], |ctx: Ctx, _: ()| async move {
            ctx.write("t", "k", 1.into()).await?;
            Ok::<_, UserError>(())
        })
        .unwrap();
        rt
    };
    // Provisioning marks the namespace with this runtime's format (and says so).
    let rt = runtime();
    let created = rt.provision().await.unwrap();
    assert!(created.contains(&meta_table(&ns)), "{created:?}");
    let marker = store
        .get(&meta_table(&ns), &Key::new("format"))
        .await
        .unwrap()
        .expect("the marker");
    assert_eq!(
        marker.get("V").and_then(AttrValue::as_i64),
        Some(FORMAT_VERSION)
    );
    rt.execute("fmt", "before", AttrValue::Null, FaultPlan::none(), 0)
        .await
        .unwrap();
    assert!(
        runtime().provision().await.unwrap().is_empty(),
        "idempotent"
    );

    // Data of another format: a new runtime refuses to run or provision, writing nothing.
    let mut other = marker.clone();
    other.insert("V".into(), (FORMAT_VERSION + 98).into());
    store.put(Put::new(meta_table(&ns), other)).await.unwrap();
    let rt2 = runtime();
    let err = rt2
        .execute("fmt", "after", AttrValue::Null, FaultPlan::none(), 0)
        .await
        .unwrap_err();
    assert!(matches!(err, BeldiError::FormatVersion { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "namespace `{ns}` holds data in stored format version {}; this runtime reads and writes version {FORMAT_VERSION} only: run a runtime of the version that wrote it (nothing was written)",
            FORMAT_VERSION + 98
        )
    );
    assert!(
        !err.is_terminal(),
        "a deployment matter, not the instance's failure"
    );
    assert!(
        !beldi_runtime::inspect::exists(&rt2, "fmt", "after")
            .await
            .unwrap(),
        "no intent was created"
    );
    let err = rt2
        .start("fmt", "async", AttrValue::Null, None, FaultPlan::none(), 0)
        .await
        .unwrap_err();
    assert!(matches!(err, BeldiError::FormatVersion { .. }), "{err}");
    let err = runtime().provision().await.unwrap_err();
    assert!(matches!(err, BeldiError::FormatVersion { .. }), "{err}");

    // A namespace provisioned before the marker existed is in the current format.
    assert!(store.delete_table(&meta_table(&ns)).await.unwrap());
    runtime()
        .execute("fmt", "legacy", AttrValue::Null, FaultPlan::none(), 0)
        .await
        .unwrap();
}
