//! The workflow suite: invocations between functions, the intent collector and the garbage
//! collector. Written once, instantiated for every backend with [`workflow_suite!`].

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use beldi_runtime::__internals::Daal;
use beldi_runtime::collector::IcConfig;
use beldi_runtime::crash::{CrashPoint, FaultPlan};
use beldi_runtime::explorer::{self, current_value, quiesce, unfinished};
use beldi_runtime::gc::GcConfig;
use beldi_runtime::platform::{Runtime, RuntimeConfig};
use beldi_runtime::store::*;
use beldi_runtime::{BeldiError, Ctx, UserError};

use super::protocol::Backend;

/// Instantiates every workflow test for a backend.
#[macro_export]
macro_rules! workflow_suite {
    ($backend:path) => {
        $crate::workflow_suite!(@tests $backend;
            explorer_covers_three_functions,
            chaos_with_the_intent_collector_running,
            collector_restarts_crashed_instances_once_and_never_live_ones,
            gc_keeps_a_hot_key_bounded_and_without_gc_it_grows,
            gc_races_writers_and_a_second_gc_without_loss,
            gc_never_collects_inside_the_window,
            a_late_caller_replay_still_gets_the_callee_result,
            bad_invocations_fail_clearly);
    };
    (@tests $backend:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let Some(b) = $backend(stringify!($name)).await else { return };
            workflows::$name(&b).await;
        }
    )*};
}

fn runtime_with(b: &Backend, capacity: u64, timeout: Duration) -> Runtime {
    let (store, ns) = b.fresh();
    Runtime::with_config(
        store,
        RuntimeConfig {
            namespace: ns,
            row_capacity: capacity,
            timeout,
            max_queue_age: Duration::ZERO,
            ..Default::default()
        },
    )
    .unwrap()
}

fn incr(key: &str) -> (String, Vec<UpdateAction>) {
    (key.to_owned(), vec![UpdateAction::add(Path::root(), 1)])
}

/// A sync-calls B, B async-calls C; each writes its own state.
fn register_abc(rt: &Runtime) {
    rt.register("fa", &["a"], |ctx: Ctx, x: i64| async move {
        let (k, add) = incr("count");
        ctx.update("a", &k, add).await?;
        let doubled: Result<i64, UserError> = ctx.call("fb", &x).await?;
        let doubled = doubled?;
        ctx.write_as("a", "last", &doubled).await?;
        Ok::<_, UserError>(doubled)
    })
    .unwrap();
    rt.register("fb", &["b"], |ctx: Ctx, x: i64| async move {
        let (k, add) = incr("count");
        ctx.update("b", &k, add).await?;
        let c_id = ctx.spawn("fc", &x).await?;
        ctx.write_as("b", "spawned", &c_id).await?;
        Ok::<_, UserError>(x * 2)
    })
    .unwrap();
    rt.register("fc", &["c"], |ctx: Ctx, x: i64| async move {
        let (k, add) = incr("count");
        ctx.update("c", &k, add).await?;
        ctx.write_as("c", "seen", &x).await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
}

async fn value(rt: &Runtime, f: &str, t: &str, k: &str) -> Result<Option<AttrValue>, String> {
    current_value(rt, f, t, k).await.map_err(|e| e.to_string())
}

pub async fn explorer_covers_three_functions(b: &Backend) {
    let report = explorer::explore(
        "fa",
        &21,
        async || {
            let rt = runtime_with(b, 3, Duration::from_secs(30));
            register_abc(&rt);
            rt.provision().await?;
            Ok(rt)
        },
        async |rt: &Runtime| {
            for (f, t) in [("fa", "a"), ("fb", "b"), ("fc", "c")] {
                let v = value(rt, f, t, "count").await?;
                if v != Some(1.into()) {
                    return Err(format!(
                        "{f} ran its body {v:?} times in effect, expected once"
                    ));
                }
            }
            let last = value(rt, "fa", "a", "last").await?;
            let seen = value(rt, "fc", "c", "seen").await?;
            if last != Some(42.into()) || seen != Some(21.into()) {
                return Err(format!("a/last = {last:?}, c/seen = {seen:?}"));
            }
            Ok(())
        },
    )
    .await
    .unwrap();
    println!(
        "[{}] A→B→(async)C: {} instances, {} crash points explored, {} executions, {} violations",
        b.name(),
        report.instances,
        report.crash_points,
        report.executions,
        report.failures.len()
    );
    assert_eq!(report.instances, 3);
    // A: 3 steps (one call), B: 3 steps (one spawn), C: 2 steps → 2×8 + 2 + 3 = 21.
    assert_eq!(report.crash_points, 21);
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
}

pub async fn chaos_with_the_intent_collector_running(b: &Backend) {
    let workflows: i64 = 200;
    let rt = runtime_with(b, 16, Duration::from_millis(500));
    register_abc(&rt);
    rt.provision().await.unwrap();
    let ic = rt
        .spawn_intent_collector(
            IcConfig {
                restart_after: Duration::from_millis(500),
                max_restarts: 1000,
                plan: FaultPlan::random(7, 0.1),
            },
            Duration::from_millis(50),
        )
        .unwrap();
    let sem = Arc::new(tokio::sync::Semaphore::new(12));
    let mut tasks = Vec::new();
    for i in 0..workflows {
        let (rt, sem) = (rt.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let id = format!("wf-{i}");
            for attempt in 0..1000 {
                match rt
                    .execute("fa", &id, i.into(), FaultPlan::random(11, 0.15), attempt)
                    .await
                {
                    Ok(e) => return (attempt, e.result),
                    Err(BeldiError::Crashed { .. }) => {}
                    Err(e) => panic!("{id}: {e}"),
                }
            }
            panic!("{id} never finished");
        }));
    }
    let mut retried = 0;
    for t in tasks {
        let (attempts, _) = t.await.unwrap();
        retried += (attempts > 0) as usize;
    }
    let crashes = rt.injected_crashes();
    drop(ic);
    let left = quiesce(&rt, 50).await.unwrap();
    assert_eq!(left, 0);
    assert!(
        unfinished(&rt).await.unwrap().is_empty(),
        "every intent is done"
    );
    for (f, t) in [("fa", "a"), ("fb", "b"), ("fc", "c")] {
        assert_eq!(
            value(&rt, f, t, "count").await.unwrap(),
            Some(workflows.into()),
            "{f}: every body once in effect"
        );
        let table = rt.tables(f).unwrap().data(t).unwrap();
        let rows = Daal::new(&**rt.store(), &table, 16)
            .rows("count")
            .await
            .unwrap();
        let entries: usize = rows.iter().map(|r| r.log_len()).sum();
        assert_eq!(entries as i64, workflows, "{f}: each increment logged once");
    }
    println!(
        "[{}] chaos: {workflows} workflows, {crashes} injected crashes, {retried} roots retried by their client, all done, effects exactly once",
        b.name()
    );
    assert!(crashes > 30);
}

pub async fn collector_restarts_crashed_instances_once_and_never_live_ones(b: &Backend) {
    let rt = runtime_with(b, 16, Duration::from_millis(800));
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    rt.register("slow", &["t"], move |ctx: Ctx, _: ()| {
        r.fetch_add(1, Ordering::SeqCst);
        async move {
            ctx.update("t", "n", vec![UpdateAction::add(Path::root(), 1)])
                .await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok::<_, UserError>(())
        }
    })
    .unwrap();
    rt.register("always_panics", &["t"], |_ctx: Ctx, _: ()| async move {
        if true {
            panic!("boom");
        }
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.provision().await.unwrap();
    let cfg = IcConfig {
        restart_after: Duration::from_millis(800),
        max_restarts: 3,
        plan: FaultPlan::none(),
    };
    assert!(
        IcConfig {
            restart_after: Duration::from_millis(10),
            ..cfg.clone()
        }
        .validate(&rt.longest_timeout())
        .is_err()
    );
    // A live instance: passes during its execution never restart it.
    let live = {
        let rt = rt.clone();
        tokio::spawn(async move {
            rt.execute("slow", "live", AttrValue::Null, FaultPlan::none(), 0)
                .await
        })
    };
    for _ in 0..5 {
        let rep = rt.collect_intents(&cfg).await.unwrap();
        assert_eq!(rep.restarted, 0);
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    live.await.unwrap().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // A crashed instance: restarted once T after its start, not again while the restart runs.
    rt.execute(
        "slow",
        "crashed",
        AttrValue::Null,
        FaultPlan::crash_at(CrashPoint::After(0)),
        0,
    )
    .await
    .unwrap_err();
    assert_eq!(
        rt.collect_intents(&cfg).await.unwrap().restarted,
        0,
        "too young to restart"
    );
    tokio::time::sleep(Duration::from_millis(850)).await;
    let (first, second) = tokio::join!(rt.collect_intents(&cfg), async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        rt.collect_intents(&cfg).await
    });
    assert_eq!(
        first.unwrap().restarted + second.unwrap().restarted,
        1,
        "one restart, however many passes"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(
        value(&rt, "slow", "t", "n").await.unwrap(),
        Some(2.into()),
        "live + crashed, each once"
    );
    // A body that always fails is given up after max_restarts.
    rt.execute("always_panics", "p", AttrValue::Null, FaultPlan::none(), 0)
        .await
        .unwrap_err();
    let fast = IcConfig {
        restart_after: Duration::ZERO,
        ..cfg
    };
    let mut gave_up = Vec::new();
    for _ in 0..6 {
        gave_up = rt.collect_intents(&fast).await.unwrap().gave_up;
    }
    assert_eq!(gave_up, vec![("always_panics".to_owned(), "p".to_owned())]);
}

async fn item_count(rt: &Runtime, f: &str) -> usize {
    let t = rt.tables(f).unwrap();
    let mut n = 0;
    for table in [t.log(), t.intent(), t.data("h").unwrap()] {
        n += rt.store().scan_all(&table).await.unwrap().len();
    }
    n
}

async fn hot_writes(rt: &Runtime, from: usize, to: usize) {
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    let mut tasks = Vec::new();
    for i in from..to {
        let (rt, sem) = (rt.clone(), sem.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            rt.invoke::<_, (), UserError>("hot", &format!("h{i}"), &())
                .await
                .unwrap()
                .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn register_hot(rt: &Runtime) {
    rt.register("hot", &["h"], |ctx: Ctx, _: ()| async move {
        ctx.update("h", "key", vec![UpdateAction::add(Path::root(), 1)])
            .await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
}

pub async fn gc_keeps_a_hot_key_bounded_and_without_gc_it_grows(b: &Backend) {
    let total = if b.name() == "embedded" { 2000 } else { 1000 };
    let step = total / 4;
    let now = GcConfig {
        window: Duration::ZERO,
        unlink_window: Duration::ZERO,
    };
    let with_gc = runtime_with(b, 20, Duration::from_secs(30));
    let without = runtime_with(b, 20, Duration::from_secs(30));
    for rt in [&with_gc, &without] {
        register_hot(rt);
        rt.provision().await.unwrap();
    }
    let mut sizes_gc = Vec::new();
    let mut sizes_no = Vec::new();
    let mut chain_gc = Vec::new();
    for round in 0..4 {
        hot_writes(&with_gc, round * step, (round + 1) * step).await;
        hot_writes(&without, round * step, (round + 1) * step).await;
        let rep = with_gc.collect_garbage(&now).await.unwrap();
        assert!(rep.instances > 0);
        // A second pass deletes the rows the first one unlinked.
        with_gc.collect_garbage(&now).await.unwrap();
        sizes_gc.push(item_count(&with_gc, "hot").await);
        sizes_no.push(item_count(&without, "hot").await);
        let t = with_gc.tables("hot").unwrap().data("h").unwrap();
        chain_gc.push(
            Daal::new(&**with_gc.store(), &t, 20)
                .rows("key")
                .await
                .unwrap()
                .len(),
        );
    }
    let t = without.tables("hot").unwrap().data("h").unwrap();
    let chain_no = Daal::new(&**without.store(), &t, 20)
        .rows("key")
        .await
        .unwrap()
        .len();
    println!(
        "[{}] GC on: items after each quarter {sizes_gc:?}, chain rows {chain_gc:?}; GC off: items {sizes_no:?}, chain rows {chain_no}",
        b.name()
    );
    for rt in [&with_gc, &without] {
        assert_eq!(
            value(rt, "hot", "h", "key").await.unwrap(),
            Some((total as i64).into())
        );
    }
    assert!(
        chain_gc.iter().all(|n| *n <= 3),
        "chain bounded with GC: {chain_gc:?}"
    );
    assert_eq!(chain_no, total / 20, "without GC one row per 20 writes");
    assert!(
        sizes_gc.iter().all(|s| *s <= 4),
        "store flat with GC: {sizes_gc:?}"
    );
    assert!(
        sizes_no.windows(2).all(|w| w[1] > w[0] + step),
        "store grows without GC: {sizes_no:?}"
    );
}

pub async fn gc_races_writers_and_a_second_gc_without_loss(b: &Backend) {
    let rt = runtime_with(b, 5, Duration::from_secs(30));
    register_hot(&rt);
    rt.provision().await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let now = GcConfig {
        window: Duration::ZERO,
        unlink_window: Duration::ZERO,
    };
    let mut gcs = Vec::new();
    for _ in 0..2 {
        let (rt, stop, cfg) = (rt.clone(), stop.clone(), now.clone());
        gcs.push(tokio::spawn(async move {
            let mut passes = 0;
            while !stop.load(Ordering::SeqCst) {
                rt.collect_garbage(&cfg).await.unwrap();
                passes += 1;
            }
            passes
        }));
    }
    let total = if b.name() == "embedded" { 600 } else { 300 };
    hot_writes(&rt, 0, total).await;
    stop.store(true, Ordering::SeqCst);
    let mut passes = 0;
    for g in gcs {
        passes += g.await.unwrap();
    }
    rt.collect_garbage(&now).await.unwrap();
    rt.collect_garbage(&now).await.unwrap();
    assert_eq!(
        value(&rt, "hot", "h", "key").await.unwrap(),
        Some((total as i64).into()),
        "no write lost or doubled"
    );
    let t = rt.tables("hot").unwrap().data("h").unwrap();
    let rows = Daal::new(&**rt.store(), &t, 5).rows("key").await.unwrap();
    for r in &rows {
        let gn = r.0.get("GN").and_then(AttrValue::as_i64).unwrap_or(0);
        assert!(
            gn as u64 <= r.entries(),
            "row {} counts {gn} collected of {} entries",
            r.id(),
            r.entries()
        );
    }
    assert!(
        rows.len() <= 3,
        "chain collected: {} rows: {:#?}",
        rows.len(),
        rows.iter()
            .map(|r| (
                r.id().to_owned(),
                r.next().map(str::to_owned),
                r.entries(),
                r.0.get("GN").cloned(),
                r.0.get("UT").cloned(),
                r.0.get("L").and_then(AttrValue::as_m).map(|m| m.len())
            ))
            .collect::<Vec<_>>()
    );
    assert!(item_count(&rt, "hot").await <= 4);
    println!(
        "[{}] {total} writers raced {passes} GC passes of two collectors; value exact, {} rows left",
        b.name(),
        rows.len()
    );
}

pub async fn gc_never_collects_inside_the_window(b: &Backend) {
    for (window, expect) in [(Duration::from_millis(1500), 1i64), (Duration::ZERO, 2)] {
        let rt = runtime_with(b, 16, Duration::from_secs(30));
        let arrivals = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let (a, g) = (arrivals.clone(), gate.clone());
        rt.register("once", &["t"], move |ctx: Ctx, _: ()| {
            let first = a.fetch_add(1, Ordering::SeqCst) == 0;
            let g = g.clone();
            async move {
                if first {
                    g.notified().await; // the slow duplicate
                }
                ctx.update("t", "n", vec![UpdateAction::add(Path::root(), 1)])
                    .await?;
                Ok::<_, UserError>(())
            }
        })
        .unwrap();
        rt.provision().await.unwrap();
        let slow = {
            let rt = rt.clone();
            tokio::spawn(async move {
                rt.execute("once", "x", AttrValue::Null, FaultPlan::none(), 0)
                    .await
            })
        };
        while arrivals.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        rt.execute("once", "x", AttrValue::Null, FaultPlan::none(), 1)
            .await
            .unwrap();
        let rep = rt
            .collect_garbage(&GcConfig {
                window,
                unlink_window: window,
            })
            .await
            .unwrap();
        gate.notify_one();
        slow.await.unwrap().unwrap();
        let n = value(&rt, "once", "t", "n").await.unwrap();
        println!(
            "[{}] window {window:?}: GC collected {} instances while a duplicate was running; counter {n:?}",
            b.name(),
            rep.instances
        );
        assert_eq!(n, Some(expect.into()), "window {window:?}");
    }
}

pub async fn a_late_caller_replay_still_gets_the_callee_result(b: &Backend) {
    let rt = runtime_with(b, 16, Duration::from_secs(30));
    register_abc(&rt);
    rt.provision().await.unwrap();
    // A crashes after B returned, before A logged B's result (step 1 is the call).
    let e = rt
        .execute(
            "fa",
            "late",
            5.into(),
            FaultPlan::crash_instance("late", CrashPoint::Inside(1)),
            0,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, BeldiError::Crashed { .. }), "{e}");
    rt.wait_background().await;
    let b_id = beldi_runtime::schema::callee_id("fa", "late", 1);
    let gc_now = GcConfig {
        window: Duration::ZERO,
        unlink_window: Duration::ZERO,
    };
    let rep = rt.collect_garbage(&gc_now).await.unwrap();
    assert!(rep.kept_for_caller >= 1, "B kept for its caller: {rep:?}");
    let b_intent = beldi_runtime::__internals::intent(
        &**rt.store(),
        &rt.tables("fb").unwrap().intent(),
        &b_id,
    )
    .await
    .unwrap();
    assert!(
        b_intent.is_some_and(|i| i.done),
        "B's stored result survives"
    );
    // The late replay of A gets B's stored result; B does not run again.
    let out = rt
        .invoke::<_, i64, UserError>("fa", "late", &5)
        .await
        .unwrap();
    assert_eq!(out, Ok(10));
    assert_eq!(
        value(&rt, "fb", "b", "count").await.unwrap(),
        Some(1.into())
    );
    // Now nothing can ask again: everything goes.
    let rep = rt.collect_garbage(&gc_now).await.unwrap();
    assert_eq!(rep.kept_for_caller, 0, "{rep:?}");
    for f in ["fa", "fb", "fc"] {
        let t = rt.tables(f).unwrap();
        assert!(
            rt.store().scan_all(&t.intent()).await.unwrap().is_empty(),
            "{f}: intents collected"
        );
        assert!(
            rt.store().scan_all(&t.log()).await.unwrap().is_empty(),
            "{f}: logs collected"
        );
    }
}

pub async fn bad_invocations_fail_clearly(b: &Backend) {
    let rt = runtime_with(b, 16, Duration::from_secs(30));
    rt.register("caller", &["t"], |ctx: Ctx, what: String| async move {
        ctx.update("t", "before", vec![UpdateAction::add(Path::root(), 1)])
            .await?;
        let r: Result<i64, UserError> = match what.as_str() {
            "unknown" => ctx.call("nobody", &1).await?,
            "bad_payload" => ctx.call("wants_number", &"not a number").await?,
            _ => ctx.call("panics", &()).await?,
        };
        ctx.update("t", "after", vec![UpdateAction::add(Path::root(), 1)])
            .await?;
        r
    })
    .unwrap();
    rt.register("wants_number", &["t"], |_ctx: Ctx, n: i64| async move {
        Ok::<_, UserError>(n)
    })
    .unwrap();
    rt.register("panics", &["t"], |_ctx: Ctx, _: ()| async move {
        if true {
            panic!("callee exploded");
        }
        Ok::<_, UserError>(0i64)
    })
    .unwrap();
    rt.provision().await.unwrap();
    let e = rt
        .invoke::<_, i64, UserError>("caller", "c1", "unknown")
        .await
        .unwrap_err();
    // The caller's own mistake: it ends failed, saying why.
    assert!(
        matches!(&e, BeldiError::Failed { function, message, .. }
            if function == "caller" && message == "no function named `nobody` is registered"),
        "{e}"
    );
    let e = rt
        .invoke::<_, i64, UserError>("caller", "c2", "bad_payload")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BeldiError::Failed { message, .. } if message.contains("input of `wants_number`")),
        "{e}"
    );
    assert!(
        rt.store()
            .scan_all(&rt.tables("wants_number").unwrap().intent())
            .await
            .unwrap()
            .is_empty(),
        "no callee intent for a bad payload"
    );
    let e = rt
        .invoke::<_, i64, UserError>("caller", "c3", "panics")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BeldiError::Crashed { reason, .. } if reason.contains("callee exploded")),
        "{e}"
    );
    // Nothing after the failed call happened, in any of the three.
    assert_eq!(value(&rt, "caller", "t", "after").await.unwrap(), None);
    assert!(
        unfinished(&rt)
            .await
            .unwrap()
            .iter()
            .all(|(f, _)| f == "caller" || f == "panics")
    );
}
