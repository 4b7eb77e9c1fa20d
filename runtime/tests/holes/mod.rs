//! Holes in exactly-once and transactions found by review, each reproduced by a test that
//! failed before its fix. Written once, instantiated for every backend with
//! [`holes_suite!`].

#![allow(dead_code)]

use std::time::Duration;

use beldi_runtime::explorer::current_value;
use beldi_runtime::fault::{CrashPoint, FaultPlan};
use beldi_runtime::gc::GcConfig;
use beldi_runtime::platform::{Runtime, RuntimeConfig};
use beldi_runtime::store::*;
use beldi_runtime::{BeldiError, Ctx, UserError};

use super::protocol::Backend;

/// Instantiates every test of the suite for a backend.
#[macro_export]
macro_rules! holes_suite {
    ($backend:path) => {
        $crate::holes_suite!(@tests $backend;
            a_collected_async_callee_is_not_run_again_by_a_late_caller_replay);
    };
    (@tests $backend:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let Some(b) = $backend(stringify!($name)).await else { return };
            holes::$name(&b).await;
        }
    )*};
}

fn runtime_with(b: &Backend, timeout: Duration) -> Runtime {
    let (store, ns) = b.fresh();
    Runtime::with_config(
        store,
        RuntimeConfig {
            namespace: ns,
            row_capacity: 16,
            timeout,
            max_queue_age: Duration::ZERO,
            ..Default::default()
        },
    )
    .unwrap()
}

async fn value(rt: &Runtime, f: &str, t: &str, k: &str) -> Option<AttrValue> {
    current_value(rt, f, t, k).await.unwrap()
}

fn bump() -> Vec<UpdateAction> {
    vec![UpdateAction::add(Path::root(), 1)]
}

/// A1: a root spawns a callee, which finishes; the root keeps crashing at a later step
/// (as it may for max_restarts × restart_after, far longer than the GC window). Once the
/// callee has been done for the window, a GC pass must not collect it while the root can
/// still replay the spawn, or the replay creates the callee again and its writes apply
/// twice.
pub async fn a_collected_async_callee_is_not_run_again_by_a_late_caller_replay(b: &Backend) {
    let timeout = Duration::from_millis(200);
    let rt = runtime_with(b, timeout);
    rt.register("root", &["r"], |ctx: Ctx, _: ()| async move {
        ctx.spawn("child", &()).await?;
        ctx.update("r", "after", bump()).await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.register("child", &["c"], |ctx: Ctx, _: ()| async move {
        ctx.update("c", "runs", bump()).await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.provision().await.unwrap();
    let gc = GcConfig::safe(timeout, Duration::ZERO);
    // Steps: 0 = spawn, 1 = the write after it.
    let crash = FaultPlan::crash_instance("r1", CrashPoint::Before(1));
    for attempt in 0..3 {
        let e = rt
            .execute("root", "r1", AttrValue::Null, crash.clone(), attempt)
            .await
            .unwrap_err();
        assert!(matches!(e, BeldiError::Crashed { .. }), "{e}");
        rt.wait_background().await;
        // Past the window after the callee finished: a GC pass runs.
        tokio::time::sleep(gc.window + Duration::from_millis(100)).await;
        rt.collect_garbage(&gc).await.unwrap();
    }
    // The root's late replay finishes it.
    rt.execute("root", "r1", AttrValue::Null, FaultPlan::none(), 9)
        .await
        .unwrap();
    rt.wait_background().await;
    assert_eq!(value(&rt, "child", "c", "runs").await, Some(1.into()));
    assert_eq!(value(&rt, "root", "r", "after").await, Some(1.into()));
    // Once the root has been done for the window, everything goes.
    tokio::time::sleep(gc.window + Duration::from_millis(100)).await;
    rt.collect_garbage(&gc).await.unwrap();
    rt.collect_garbage(&gc).await.unwrap();
    for f in ["root", "child"] {
        let t = rt.tables(f).unwrap();
        assert!(
            rt.store().scan_all(&t.intent()).await.unwrap().is_empty(),
            "{f}: intents collected"
        );
    }
}
