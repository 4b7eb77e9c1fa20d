//! Holes in exactly-once and transactions found by review, each reproduced by a test that
//! failed before its fix. Written once, instantiated for every backend with
//! [`holes_suite!`].

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use beldi_runtime::crash::{CrashPoint, FaultPlan};
use beldi_runtime::explorer::current_value;
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
            a_collected_async_callee_is_not_run_again_by_a_late_caller_replay,
            a_replay_writing_another_key_at_a_logged_step_is_non_determinism,
            a_replay_writing_where_a_read_or_call_was_logged_is_non_determinism,
            a_lagging_duplicate_does_not_roll_back_a_shadow_write,
            a_replay_after_commit_leaves_no_shadow_item_after_gc,
            collectors_refuse_windows_shorter_than_a_per_function_timeout,
            a_deterministic_failure_ends_the_instance_and_its_caller_can_handle_it,
            a_transaction_is_decided_only_after_every_participant_call_settled,
            two_copies_of_a_participant_take_one_lock_decision,
            the_explorer_passes_a_transactional_fan_out_of_contending_callees,
            writers_with_different_row_capacities_lose_no_write,
            gc_reclaims_rows_around_an_append_that_crashed_before_linking,
            a_replayed_commit_with_other_shadow_entries_applies_nothing_again,
            a_contender_has_a_crashed_lock_holder_restarted,
            a_replayed_commit_keeps_the_finish_marker,
            a_lock_a_lagging_copy_takes_after_the_decision_is_released,
            concurrent_participants_of_one_function_lose_no_write);
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
    // Generous: the suite's tests run in parallel on one DynamoDB Local, and the root's
    // last execution must finish within it.
    let timeout = Duration::from_secs(1);
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

/// Registers `name`, whose body runs `first` until `flip` is set and `second` after.
fn flipping<F1, F2, Fut1, Fut2>(
    rt: &Runtime,
    name: &str,
    flip: &Arc<AtomicBool>,
    first: F1,
    second: F2,
) where
    F1: Fn(Ctx) -> Fut1 + Send + Sync + 'static,
    F2: Fn(Ctx) -> Fut2 + Send + Sync + 'static,
    Fut1: std::future::Future<Output = Result<(), UserError>> + Send + 'static,
    Fut2: std::future::Future<Output = Result<(), UserError>> + Send + 'static,
{
    let flip = flip.clone();
    let (first, second) = (Arc::new(first), Arc::new(second));
    rt.register(name, &["t"], move |ctx: Ctx, _: ()| {
        let flipped = flip.load(Ordering::SeqCst);
        let (first, second) = (first.clone(), second.clone());
        async move {
            if flipped {
                second(ctx).await
            } else {
                first(ctx).await
            }
        }
    })
    .unwrap();
}

/// Runs `name` once crashing after step 0, flips the body, and re-runs it: the error the
/// replay fails with.
async fn replay_after_flip(rt: &Runtime, name: &str, flip: &AtomicBool) -> BeldiError {
    replay_after_flip_at(rt, name, flip, 0).await
}

/// [`replay_after_flip`], crashing after step `step`.
async fn replay_after_flip_at(
    rt: &Runtime,
    name: &str,
    flip: &AtomicBool,
    step: u64,
) -> BeldiError {
    flip.store(false, Ordering::SeqCst);
    let e = rt
        .execute(
            name,
            "i1",
            AttrValue::Null,
            FaultPlan::crash_at(CrashPoint::After(step)),
            0,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, BeldiError::Crashed { .. }), "{e}");
    flip.store(true, Ordering::SeqCst);
    rt.execute(name, "i1", AttrValue::Null, FaultPlan::none(), 1)
        .await
        .unwrap_err()
}

fn assert_non_determinism(e: &BeldiError, want_logged: &str, want_requested: &str) {
    match e {
        BeldiError::NonDeterminism {
            step,
            logged,
            requested,
            ..
        } => {
            assert_eq!(*step, 0, "{e}");
            assert!(logged.contains(want_logged), "{e}");
            assert!(requested.contains(want_requested), "{e}");
        }
        other => panic!("expected NonDeterminism, got {other}"),
    }
}

/// A7: a replay that writes another key at a logged write step applied a second write
/// silently (the write entries live in the target key's rows, so the first key's entry was
/// never seen).
pub async fn a_replay_writing_another_key_at_a_logged_step_is_non_determinism(b: &Backend) {
    let rt = runtime_with(b, Duration::from_secs(30));
    let flip = Arc::new(AtomicBool::new(false));
    flipping(
        &rt,
        "writer",
        &flip,
        |ctx| async move { Ok(ctx.write("t", "k1", 1.into()).await?) },
        |ctx| async move { Ok(ctx.write("t", "k2", 2.into()).await?) },
    );
    rt.provision().await.unwrap();
    let e = replay_after_flip(&rt, "writer", &flip).await;
    assert_non_determinism(&e, "write of `t/k1`", "write of `t/k2`");
    assert_eq!(value(&rt, "writer", "t", "k1").await, Some(1.into()));
    assert_eq!(
        value(&rt, "writer", "t", "k2").await,
        None,
        "nothing applied"
    );
}

/// A7: a write where a read (or a call) was logged was never checked against the log.
pub async fn a_replay_writing_where_a_read_or_call_was_logged_is_non_determinism(b: &Backend) {
    let rt = runtime_with(b, Duration::from_secs(30));
    let flip = Arc::new(AtomicBool::new(false));
    flipping(
        &rt,
        "reader",
        &flip,
        |ctx| async move {
            ctx.read("t", "k").await?;
            // A durable effect after the read: the read's record is durable with it.
            ctx.side_effect(|| ()).await?;
            Ok(())
        },
        |ctx| async move { Ok(ctx.write("t", "k", 1.into()).await?) },
    );
    flipping(
        &rt,
        "caller",
        &flip,
        |ctx| async move {
            let _: Result<(), UserError> = ctx.call("noop", &()).await?;
            // A durable effect after the call: the call's record is durable with it.
            ctx.side_effect(|| ()).await?;
            Ok(())
        },
        |ctx| async move { Ok(ctx.delete("t", "k").await?) },
    );
    rt.register("noop", &[], |_ctx: Ctx, _: ()| async move {
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.provision().await.unwrap();
    let e = replay_after_flip_at(&rt, "reader", &flip, 1).await;
    assert_non_determinism(&e, "read of `t/k`", "write of `t/k`");
    assert_eq!(
        value(&rt, "reader", "t", "k").await,
        None,
        "nothing applied"
    );
    let e = replay_after_flip_at(&rt, "caller", &flip, 1).await;
    assert_non_determinism(&e, "call of `noop`", "delete of `t/k`");
}

/// Runs `body` as a transaction block of `ctx` (what `#[beldi::txn]` generates), with no
/// retries.
async fn txn<T>(
    ctx: &Ctx,
    body: impl AsyncFn(&Ctx) -> Result<T, UserError>,
) -> Result<T, UserError> {
    use beldi_runtime::macro_support::TxnEnd;
    let mut block = ctx.__txn_block(1, 0);
    loop {
        let inside = block.begin().await?;
        let out = body(&inside).await;
        match block.end(&inside, out.is_ok()).await {
            TxnEnd::Done => return out,
            TxnEnd::Retry => continue,
            TxnEnd::Failed(e) => return Err(e.into()),
        }
    }
}

/// A transaction block of `ctx` with `retries` wait-die retries whose only statement calls
/// `function` with `input`: `Ok(true)` once committed, `Ok(false)` when it died for good.
async fn txn_calling<I: serde::Serialize + Sync>(
    ctx: &Ctx,
    retries: u32,
    function: &str,
    input: &I,
) -> Result<bool, UserError> {
    use beldi_runtime::macro_support::TxnEnd;
    let mut block = ctx.__txn_block(1, retries);
    loop {
        let inside = block.begin().await?;
        let out: Result<(), BeldiError> = async {
            let _: Result<(), UserError> = inside.call(function, input).await?;
            Ok(())
        }
        .await;
        match block.end(&inside, out.is_ok()).await {
            TxnEnd::Done => return Ok(true),
            TxnEnd::Retry => continue,
            TxnEnd::Failed(_) => return Ok(false),
        }
    }
}

/// Signals between the two copies of a participant (tests of lagging duplicates).
#[derive(Default)]
struct Gates {
    /// Executions of the participant's body that started.
    entered: AtomicUsize,
    /// The first copy has made both its writes.
    first_wrote: tokio::sync::Notify,
    /// The second copy has replayed its first write.
    second_replayed: tokio::sync::Notify,
    /// The transaction has committed (set by the test).
    committed: tokio::sync::Notify,
}

/// A coordinator `coord` calling, in one transaction, participant `part`, which writes
/// key `a` twice (1, then 2). The first copy of the participant's body to start runs
/// through; the second one waits for `gate(second)` before replaying its writes, and
/// `after_first` runs between the second's first write replay and its second.
fn register_twice_writer(rt: &Runtime, gates: &Arc<Gates>, second_waits_for_commit: bool) {
    rt.register("coord", &[], |ctx: Ctx, _: ()| async move {
        txn(&ctx, async |c: &Ctx| {
            let r: Result<(), UserError> = c.call("part", &()).await?;
            r
        })
        .await
    })
    .unwrap();
    let g = gates.clone();
    rt.register("part", &["t"], move |ctx: Ctx, _: ()| {
        let g = g.clone();
        async move {
            let copy = g.entered.fetch_add(1, Ordering::SeqCst);
            if copy == 0 {
                ctx.write("t", "a", 1.into()).await?;
                ctx.write("t", "a", 2.into()).await?;
                g.first_wrote.notify_one();
                if !second_waits_for_commit {
                    g.second_replayed.notified().await;
                }
                return Ok::<_, UserError>(());
            }
            if second_waits_for_commit {
                g.committed.notified().await;
            } else {
                g.first_wrote.notified().await;
            }
            ctx.write("t", "a", 1.into()).await?; // a replay: logged already
            g.second_replayed.notify_one();
            if !second_waits_for_commit {
                // Lags: never gets to replay the second write (it times out).
                std::future::pending::<()>().await;
            }
            ctx.write("t", "a", 2.into()).await?;
            Ok(())
        }
    })
    .unwrap();
}

/// A3: a lagging copy of a participant replays its first write after the other copy's
/// second: on replay the shadow write was put again unconditionally, so the commit applied
/// the first, stale value.
pub async fn a_lagging_duplicate_does_not_roll_back_a_shadow_write(b: &Backend) {
    // The lagging copy times out by design; the other must finish within it, with the
    // suite's tests running in parallel on one store.
    let rt = runtime_with(b, Duration::from_secs(3));
    let gates = Arc::new(Gates::default());
    register_twice_writer(&rt, &gates, false);
    rt.provision().await.unwrap();
    let (a, b2) = tokio::join!(
        rt.execute("coord", "c1", AttrValue::Null, FaultPlan::none(), 0),
        rt.execute("coord", "c1", AttrValue::Null, FaultPlan::none(), 1),
    );
    assert!(a.is_ok() || b2.is_ok(), "one copy finished: {a:?} {b2:?}");
    assert_eq!(
        value(&rt, "part", "t", "a").await,
        Some(2.into()),
        "the last write commits"
    );
}

/// A9: a copy of a participant that replays its writes after the commit re-created shadow
/// items, and the GC never cleaned shadow tables: they leaked.
pub async fn a_replay_after_commit_leaves_no_shadow_item_after_gc(b: &Backend) {
    // A whole transaction (some 30 round trips) must fit in it, with the suite's tests
    // running in parallel on one store: CI once timed both copies out at 400 ms.
    let timeout = Duration::from_secs(2);
    let rt = runtime_with(b, timeout);
    let gates = Arc::new(Gates::default());
    register_twice_writer(&rt, &gates, true);
    rt.provision().await.unwrap();
    // Whichever copy of the coordinator drives the running-through participant commits;
    // then the other participant copy replays its writes.
    let copy = |attempt| {
        let (rt, gates) = (rt.clone(), gates.clone());
        async move {
            let r = rt
                .execute("coord", "c1", AttrValue::Null, FaultPlan::none(), attempt)
                .await;
            gates.committed.notify_one();
            r
        }
    };
    let (a, b2) = tokio::join!(copy(0), copy(1));
    assert!(a.is_ok() || b2.is_ok(), "one copy finished: {a:?} {b2:?}");
    rt.wait_background().await;
    assert_eq!(value(&rt, "part", "t", "a").await, Some(2.into()));
    let gc = GcConfig::safe(timeout, Duration::ZERO);
    tokio::time::sleep(gc.window + Duration::from_millis(100)).await;
    rt.collect_garbage(&gc).await.unwrap();
    for f in ["coord", "part"] {
        let shadow = rt.tables(f).unwrap().shadow();
        let left = rt.store().scan_all(&shadow).await.unwrap();
        assert!(left.is_empty(), "{f}: shadow items left after GC: {left:?}");
    }
}

/// A6: `#[beldi::function(timeout = …)]` (`set_timeout`) was ignored by the collectors'
/// checks, which looked at the runtime's default timeout only: a collector restarting
/// after 2 s would duplicate a live 5 s body, and a GC window of 2 × 1 s could collect
/// while a duplicate of it still runs.
pub async fn collectors_refuse_windows_shorter_than_a_per_function_timeout(b: &Backend) {
    let rt = runtime_with(b, Duration::from_secs(1));
    rt.register("slow", &["t"], |_ctx: Ctx, _: ()| async move {
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.set_timeout("slow", Duration::from_secs(5)).unwrap();
    let ic = beldi_runtime::collector::IcConfig {
        restart_after: Duration::from_secs(2),
        ..Default::default()
    };
    let e = rt
        .spawn_intent_collector(ic, Duration::from_secs(60))
        .err()
        .expect("restart_after 2 s < the 5 s timeout of `slow`");
    let msg = e.to_string();
    assert!(matches!(e, BeldiError::InvalidConfig { .. }), "{msg}");
    assert!(
        msg.contains("`slow`") && msg.contains("5s") && msg.contains("2s"),
        "{msg}"
    );
    let e = rt
        .spawn_garbage_collector(
            GcConfig::safe(Duration::from_secs(1), Duration::ZERO),
            Duration::from_secs(60),
        )
        .err()
        .expect("a 2 s window < 2 × 5 s");
    let msg = e.to_string();
    assert!(msg.contains("`slow`") && msg.contains("10s"), "{msg}");
    // What the longest timeout gives is accepted.
    let longest = rt.longest_timeout();
    assert_eq!(longest.function.as_deref(), Some("slow"));
    rt.spawn_intent_collector(
        beldi_runtime::collector::IcConfig::for_longest(&longest),
        Duration::from_secs(60),
    )
    .unwrap()
    .stop();
    rt.spawn_garbage_collector(
        GcConfig::safe(longest.timeout, Duration::ZERO),
        Duration::from_secs(60),
    )
    .unwrap()
    .stop();
}

/// Errors that never end: an instance whose body fails deterministically (an undeclared
/// table, an oversized value, a callee given an input of the wrong type) was restarted by
/// the intent collector until `max_restarts` and then stayed unfinished for good. It ends
/// in a terminal failed state with the error stored; its caller gets
/// `BeldiError::Failed` and can handle it; nothing is left to retry.
pub async fn a_deterministic_failure_ends_the_instance_and_its_caller_can_handle_it(b: &Backend) {
    let rt = runtime_with(b, Duration::from_secs(30));
    rt.register("front", &["t"], |ctx: Ctx, what: String| async move {
        let got: Result<Result<(), UserError>, BeldiError> = match what.as_str() {
            "undeclared" => ctx.call("undeclared", &()).await,
            "too_big" => ctx.call("too_big", &()).await,
            _ => ctx.call("wants_number", &"not a number").await,
        };
        ctx.write("t", "after", 1.into()).await?;
        Ok::<_, UserError>(match got {
            Err(BeldiError::Failed {
                function, message, ..
            }) => format!("{function}: {message}"),
            other => format!("unexpected: {other:?}"),
        })
    })
    .unwrap();
    rt.register("undeclared", &["t"], |ctx: Ctx, _: ()| async move {
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
    rt.register("wants_number", &["t"], |_ctx: Ctx, n: i64| async move {
        Ok::<_, UserError>(n)
    })
    .unwrap();
    rt.provision().await.unwrap();
    let handled = |instance: &'static str, what: &'static str| {
        let rt = rt.clone();
        async move {
            rt.invoke::<_, String, UserError>("front", instance, &what)
                .await
                .unwrap()
                .unwrap()
        }
    };
    let got = handled("f1", "undeclared").await;
    assert!(
        got.starts_with("undeclared: function `undeclared` has no table `nope`"),
        "{got}"
    );
    let got = handled("f2", "too_big").await;
    assert!(got.starts_with("too_big: "), "{got}");
    // A wrong input type is the caller's own mistake: the caller ends failed.
    let e = rt
        .invoke::<_, String, UserError>("front", "f3", &"wrong_input")
        .await
        .unwrap_err();
    assert!(
        matches!(&e, BeldiError::Failed { function, instance, message }
            if function == "front" && instance == "f3" && message.contains("input of `wants_number`")),
        "{e}"
    );
    // Every instance ended; the intent collector finds nothing to restart, ever.
    assert!(
        beldi_runtime::explorer::unfinished(&rt)
            .await
            .unwrap()
            .is_empty()
    );
    let ic = beldi_runtime::collector::IcConfig {
        restart_after: Duration::ZERO,
        ..Default::default()
    };
    let report = rt.collect_intents(&ic).await.unwrap();
    assert_eq!((report.pending, report.restarted), (0, 0), "{report:?}");
    // The same answers again, from the stored results.
    assert_eq!(
        handled("f1", "undeclared").await,
        got_again(&rt, "f1").await
    );
    assert_eq!(value(&rt, "front", "t", "after").await, Some(1.into()));
}

async fn got_again(rt: &Runtime, instance: &str) -> String {
    rt.invoke::<_, String, UserError>("front", instance, &"undeclared")
        .await
        .unwrap()
        .unwrap()
}

/// A4: `try_join!` of two participant calls, one of which fails at once: the other call's
/// future is dropped, but the callee goes on. The abort was decided while it still ran, so
/// the lock it took afterwards was never released (and a commit could apply only part of
/// its writes). Now the decision waits until every participant call has settled.
pub async fn a_transaction_is_decided_only_after_every_participant_call_settled(b: &Backend) {
    let rt = runtime_with(b, Duration::from_secs(30));
    rt.register("coord", &[], |ctx: Ctx, _: ()| async move {
        let out = txn(&ctx, async |c: &Ctx| {
            let quick = async {
                let r: Result<(), UserError> = c.call("quick", &()).await?;
                r
            };
            let slow = async {
                let r: Result<(), UserError> = c.call("slow", &()).await?;
                r
            };
            tokio::try_join!(quick, slow).map(|_| ())
        })
        .await;
        Ok::<_, UserError>(out.is_ok())
    })
    .unwrap();
    rt.register("quick", &[], |_ctx: Ctx, _: ()| async move {
        Err::<(), _>(UserError("no".into()))
    })
    .unwrap();
    rt.register("slow", &["t"], |ctx: Ctx, _: ()| async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        ctx.write("t", "k", 1.into()).await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.provision().await.unwrap();
    let committed = rt
        .invoke::<_, bool, UserError>("coord", "c1", &())
        .await
        .unwrap()
        .unwrap();
    assert!(!committed, "aborted: `quick` failed");
    // Whatever was still running has finished by now.
    tokio::time::sleep(Duration::from_millis(800)).await;
    rt.wait_background().await;
    let data = rt.tables("slow").unwrap().data("t").unwrap();
    let daal = beldi_runtime::__internals::Daal::new(&**rt.store(), &data, 16);
    for (k, row) in daal.tails().await.unwrap() {
        assert!(
            row.holder().is_none(),
            "slow/t/{k} still locked by {:?}",
            row.holder()
        );
        assert!(
            row.value().is_none(),
            "slow/t/{k} written by an aborted transaction"
        );
    }
    let open = beldi_runtime::data::open_transaction_items(&rt, "slow")
        .await
        .unwrap();
    assert!(
        open.is_empty(),
        "open transaction items of `slow`: {open:?}"
    );
}

/// Wait-die replay: a transaction block that died many times (an older holder kept the
/// lock) replayed every logged death with its backoff sleep again, so an instance with a
/// long history of deaths spent its whole timeout replaying and never got to try again.
/// Here 31 deaths (about 1.7 s of backoff when met) replay under a 1.2 s timeout. (Run on
/// the embedded store only: the sleep skipped is the same code on every backend, and
/// replaying 31 deaths on a loaded DynamoDB Local alone can take a second.)
pub async fn replaying_many_wait_die_deaths_costs_no_backoff(b: &Backend) {
    let rt = runtime_with(b, Duration::from_secs(30));
    let locked = Arc::new(tokio::sync::Notify::new());
    rt.register("holder", &[], |ctx: Ctx, _: ()| async move {
        txn(&ctx, async |c: &Ctx| {
            let r: Result<(), UserError> = c.call("account", &true).await?;
            r
        })
        .await
    })
    .unwrap();
    rt.register("younger", &[], |ctx: Ctx, _: ()| async move {
        txn_calling(&ctx, 30, "account", &false).await
    })
    .unwrap();
    let l = locked.clone();
    rt.register("account", &["t"], move |ctx: Ctx, hold: bool| {
        let l = l.clone();
        async move {
            ctx.write("t", "k", 1.into()).await?;
            if hold {
                l.notify_one();
                tokio::time::sleep(Duration::from_secs(6)).await;
            }
            Ok::<_, UserError>(())
        }
    })
    .unwrap();
    rt.provision().await.unwrap();
    let holder = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.invoke::<_, (), UserError>("holder", "h1", &()).await })
    };
    locked.notified().await;
    // The younger transaction dies 31 times against the older holder, then gives up; it
    // crashes before its result is recorded.
    let e = rt
        .execute(
            "younger",
            "y1",
            AttrValue::Null,
            FaultPlan::crash_instance("y1", CrashPoint::BeforeDone),
            0,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, BeldiError::Crashed { .. }), "{e}");
    holder.await.unwrap().unwrap().unwrap();
    // Its re-execution replays the 31 deaths from the log, well within a short timeout.
    rt.set_timeout("younger", Duration::from_millis(1200))
        .unwrap();
    let replay = rt
        .invoke::<_, bool, UserError>("younger", "y1", &())
        .await
        .unwrap();
    assert_eq!(replay, Ok(false), "the replay reaches the logged outcome");
}

/// A5: two copies of one participant instance could take different lock decisions. The
/// death was recorded in the log and the take in the DAAL row, and each copy read the
/// death record once: copy 1 gave up waiting (older, past the lock wait) and died; copy 2,
/// started later, had read no death and took the lock when the younger holder released
/// it, after the transaction's abort had run: the lock leaked.
pub async fn two_copies_of_a_participant_take_one_lock_decision(b: &Backend) {
    let (store, ns) = b.fresh();
    let rt = Runtime::with_config(
        store,
        RuntimeConfig {
            namespace: ns,
            row_capacity: 16,
            timeout: Duration::from_secs(30),
            max_queue_age: Duration::ZERO,
            lock_wait: Duration::from_millis(800),
            ..Default::default()
        },
    )
    .unwrap();
    // Set once the younger transaction holds the lock (one test per binary uses it).
    static YOUNGER_HOLDS: AtomicBool = AtomicBool::new(false);
    let younger_holds = &YOUNGER_HOLDS;
    younger_holds.store(false, Ordering::SeqCst);
    rt.register("older", &[], |ctx: Ctx, _: ()| async move {
        txn(&ctx, async |c: &Ctx| {
            // Begun (and so older) before the younger transaction takes the lock.
            while !YOUNGER_HOLDS.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let r: Result<(), UserError> = c.call("account", &false).await?;
            r
        })
        .await
        .map(|_| true)
        .or(Ok::<_, UserError>(false))
    })
    .unwrap();
    rt.register("younger", &[], |ctx: Ctx, _: ()| async move {
        txn(&ctx, async |c: &Ctx| {
            let r: Result<(), UserError> = c.call("account", &true).await?;
            r
        })
        .await
    })
    .unwrap();
    rt.register("account", &["t"], move |ctx: Ctx, hold: bool| async move {
        ctx.write("t", "k", 1.into()).await?;
        if hold {
            YOUNGER_HOLDS.store(true, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(1200)).await;
        }
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.provision().await.unwrap();
    let copy = |attempt: u32, after: Duration| {
        let rt = rt.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            rt.execute("older", "o1", AttrValue::Null, FaultPlan::none(), attempt)
                .await
        })
    };
    let first = copy(0, Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let younger = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.invoke::<_, (), UserError>("younger", "y1", &()).await })
    };
    while !younger_holds.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Copy 1's participant gives up at 0.8 s; copy 2's starts at 0.6 s and would wait
    // until 1.4 s, so it is still waiting when the younger holder releases the lock at 1.2 s.
    let second = copy(1, Duration::from_millis(600));
    younger.await.unwrap().unwrap().unwrap();
    let (a, b2) = (first.await.unwrap(), second.await.unwrap());
    assert!(a.is_ok() || b2.is_ok(), "{a:?} {b2:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    rt.wait_background().await;
    let data = rt.tables("account").unwrap().data("t").unwrap();
    let daal = beldi_runtime::__internals::Daal::new(&**rt.store(), &data, 16);
    for (k, row) in daal.tails().await.unwrap() {
        assert!(
            row.holder().is_none(),
            "account/t/{k} still locked by {:?}",
            row.holder()
        );
    }
    let open = beldi_runtime::data::open_transaction_items(&rt, "account")
        .await
        .unwrap();
    assert!(open.is_empty(), "{open:?}");
}

/// The explorer on a correct workflow whose async callees contend for one lock: a root
/// spawns three workers, each adds its share to one total in a transaction. It reported
/// false violations ("the crash point was not reached": which worker waits or dies, and so
/// the steps it logs, differ from run to run) and paid a lock wait (10 s) for every crash of
/// a lock holder. Now the report is empty, and a crashed holder is restarted at once.
pub async fn the_explorer_passes_a_transactional_fan_out_of_contending_callees(b: &Backend) {
    let report = beldi_runtime::explorer::explore(
        "fan_out",
        &(),
        async || {
            let rt = runtime_with(b, Duration::from_secs(30));
            rt.register("fan_out", &[], |ctx: Ctx, _: ()| async move {
                for share in 1..=3i64 {
                    ctx.spawn("worker", &share).await?;
                }
                Ok::<_, UserError>(())
            })?;
            rt.register("worker", &[], |ctx: Ctx, share: i64| async move {
                if txn_calling(&ctx, 50, "ledger", &share).await? {
                    Ok(())
                } else {
                    Err(UserError("the worker's transaction died for good".into()))
                }
            })?;
            rt.register("ledger", &["t"], |ctx: Ctx, share: i64| async move {
                let total: i64 = ctx.read_as("t", "total").await?.unwrap_or(0);
                ctx.write_as("t", "total", &(total + share)).await?;
                Ok::<_, UserError>(())
            })?;
            rt.provision().await?;
            Ok(rt)
        },
        async |rt: &Runtime| {
            let total = current_value(rt, "ledger", "t", "total")
                .await
                .map_err(|e| e.to_string())?;
            if total != Some(6.into()) {
                return Err(format!("total is {total:?}, expected 6"));
            }
            let data = rt
                .tables("ledger")
                .map_err(|e| e.to_string())?
                .data("t")
                .map_err(|e| e.to_string())?;
            let daal = beldi_runtime::__internals::Daal::new(&**rt.store(), &data, 16);
            for (k, row) in daal.tails().await.map_err(|e| e.to_string())? {
                if let Some(h) = row.holder() {
                    return Err(format!("ledger/t/{k} still locked by {h:?}"));
                }
            }
            Ok(())
        },
    )
    .await
    .unwrap();
    println!(
        "[{}] transactional fan-out: {} instances, {} crash points ({} unreached), {} lagging duplicates, {} executions",
        b.name(),
        report.instances,
        report.crash_points,
        report.unreached.len(),
        report.lagging,
        report.executions
    );
    assert!(
        report.instances >= 7,
        "root, 3 workers, their ledger calls: {report:?}"
    );
    assert!(report.lagging > 0);
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
}

/// A11: the row capacity N was a per-process setting. A writer configured with a larger N
/// that had read the chain before a writer with a smaller N appended a row wrote into the
/// old row (its `LN < N` still held), below the new tail: the write was lost. Rows now
/// carry their N and every writer holds them to it.
pub async fn writers_with_different_row_capacities_lose_no_write(b: &Backend) {
    let rt = runtime_with(b, Duration::from_secs(30));
    rt.register("w", &["t"], |_ctx: Ctx, _: ()| async move {
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.provision().await.unwrap();
    let table = rt.tables("w").unwrap().data("t").unwrap();
    let store = rt.store();
    let small = beldi_runtime::__internals::Daal::new(&**store, &table, 2);
    let large = beldi_runtime::__internals::Daal::new(&**store, &table, 100);
    let add = [UpdateAction::add("V", 1)];
    let write = beldi_runtime::__internals::Entry::Write;
    small.write("k", "a#1", write, &add, None).await.unwrap();
    small.write("k", "a#2", write, &add, None).await.unwrap();
    // The large-capacity writer reads the chain: one row, 2 entries, room for 98 more.
    let (stale, _) = large.find("k", "b#1").await.unwrap();
    // The small-capacity writer finds the row full, appends a row and writes there.
    small.write("k", "a#3", write, &add, None).await.unwrap();
    // Now the large-capacity writer writes from what it read.
    large
        .write_at(
            stale.last().map(|r| r.id()),
            "k",
            "b#1",
            beldi_runtime::__internals::Change {
                entry: write,
                actions: &add,
                cond: None,
            },
            None,
        )
        .await
        .unwrap();
    let tail = small.tail("k").await.unwrap().unwrap();
    assert_eq!(
        tail.value(),
        Some(&AttrValue::from(4)),
        "all four writes in the tail"
    );
}

/// A10: an appender that crashes between putting the next row and linking it leaves a
/// full row without `NX`. Writers go on in the new row, but the GC never unlinked the
/// unlinked row's successor (its predecessor's link was missing), so rows leaked.
pub async fn gc_reclaims_rows_around_an_append_that_crashed_before_linking(b: &Backend) {
    let (store, ns) = b.fresh();
    let rt = Runtime::with_config(
        store,
        RuntimeConfig {
            namespace: ns,
            row_capacity: 2,
            timeout: Duration::from_secs(30),
            max_queue_age: Duration::ZERO,
            ..Default::default()
        },
    )
    .unwrap();
    rt.register("w", &["t"], |ctx: Ctx, _: ()| async move {
        ctx.update("t", "hot", bump()).await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.provision().await.unwrap();
    let run = |i: usize| {
        let rt = rt.clone();
        async move {
            rt.invoke::<_, (), UserError>("w", &format!("w{i}"), &())
                .await
                .unwrap()
                .unwrap()
        }
    };
    run(0).await;
    run(1).await; // row 0 is full
    // An appender put row 1 (with row 0's value) and crashed before linking it.
    let table = rt.tables("w").unwrap().data("t").unwrap();
    let mut row1 = Item::new();
    row1.insert("K".into(), "hot".into());
    row1.insert("R".into(), beldi_runtime::__internals::row_id(1).into());
    row1.insert("L".into(), AttrValue::M(Default::default()));
    row1.insert("LN".into(), 0.into());
    row1.insert("GN".into(), 0.into());
    row1.insert("N".into(), 2.into());
    row1.insert("V".into(), 2.into());
    rt.store()
        .put(Put::new(table.as_str(), row1))
        .await
        .unwrap();
    for i in 2..8 {
        run(i).await;
    }
    assert_eq!(value(&rt, "w", "t", "hot").await, Some(8.into()));
    let gc = GcConfig {
        window: Duration::ZERO,
        unlink_window: Duration::ZERO,
    };
    rt.collect_garbage(&gc).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    rt.collect_garbage(&gc).await.unwrap();
    let rows = rt.store().scan_all(&table).await.unwrap();
    let ids: Vec<String> = rows
        .iter()
        .filter_map(|r| r.get("R").and_then(AttrValue::as_s).map(str::to_owned))
        .collect();
    assert_eq!(ids.len(), 2, "only the head and the tail are left: {ids:?}");
    assert_eq!(value(&rt, "w", "t", "hot").await, Some(8.into()));
}

/// A8 (not reproducible: a test that shows it holds). Commit and abort entry ids were
/// numbered by position among the shadow entries, so a replayed finish that sees other
/// entries (re-created by a lagging copy) names an item's commit differently and tries it
/// again. It cannot apply a stale value: every commit write is conditional on the
/// transaction still holding the item's lock, which the first finish released. Ids are
/// now keyed by the item anyway, so a replay names each commit the same way.
pub async fn a_replayed_commit_with_other_shadow_entries_applies_nothing_again(b: &Backend) {
    let rt = runtime_with(b, Duration::from_secs(30));
    rt.register("co", &["t"], |ctx: Ctx, v: i64| async move {
        let mut block = ctx.__txn_block(1, 0);
        let inside = block.begin().await?;
        let out = inside.write("t", "a", v.into()).await;
        match block.end(&inside, out.is_ok()).await {
            beldi_runtime::macro_support::TxnEnd::Done => Ok::<_, UserError>(out?),
            beldi_runtime::macro_support::TxnEnd::Retry => Err(UserError("died".into())),
            beldi_runtime::macro_support::TxnEnd::Failed(e) => Err(e.into()),
        }
    })
    .unwrap();
    rt.provision().await.unwrap();
    // T1 commits a = 1, then its coordinator crashes before recording its result.
    let e = rt
        .execute(
            "co",
            "c1",
            1.into(),
            FaultPlan::crash_instance("c1", CrashPoint::BeforeDone),
            0,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, BeldiError::Crashed { .. }), "{e}");
    // T2 then commits a = 5.
    rt.invoke::<_, (), UserError>("co", "c2", &5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(value(&rt, "co", "t", "a").await, Some(5.into()));
    // A lagging copy re-created T1's buffered write, and other entries sort before it.
    let txn_id = beldi_runtime::schema::callee_id("co>txn", "c1", 1 << 24);
    let shadow = rt.tables("co").unwrap().shadow();
    let t1_finished = rt
        .store()
        .get(&shadow, &Key::with_sort(txn_id.as_str(), "F"))
        .await
        .unwrap();
    assert!(t1_finished.is_some(), "T1's shadow partition is {txn_id}");
    for sort in ["L\u{0}t\u{0} 0", "L\u{0}t\u{0} 1", "W\u{0}t\u{0}a"] {
        let mut item = Item::new();
        item.insert("K".into(), txn_id.as_str().into());
        item.insert("R".into(), sort.into());
        if sort.starts_with('W') {
            item.insert("V".into(), 1.into());
            item.insert("SV".into(), 1.into());
        }
        rt.store()
            .put(Put::new(shadow.as_str(), item))
            .await
            .unwrap();
    }
    // T1's coordinator is re-executed and replays its commit: nothing is applied again.
    rt.invoke::<_, (), UserError>("co", "c1", &1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        value(&rt, "co", "t", "a").await,
        Some(5.into()),
        "T2's value stands"
    );
}

/// A crashed lock holder blocked younger contenders into giving up: they die at once under
/// wait-die and retry a few times, while the lock stays held until the intent collector
/// restarts the holder (after `restart_after`, minutes). Now a contender that finds the
/// holder's coordinator not running has it restarted at once, and the retry succeeds.
pub async fn a_contender_has_a_crashed_lock_holder_restarted(b: &Backend) {
    let rt = runtime_with(b, Duration::from_secs(30));
    for name in ["holder", "contender"] {
        rt.register(name, &[], |ctx: Ctx, v: i64| async move {
            txn_calling(&ctx, 8, "ledger", &v).await
        })
        .unwrap();
    }
    rt.register("ledger", &["t"], |ctx: Ctx, v: i64| async move {
        ctx.write_as("t", "k", &v).await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.provision().await.unwrap();
    // The holder takes the lock of `k` (through `ledger`) and crashes before it decides:
    // its transaction's end is the second step of its block's call site.
    let before_end = CrashPoint::Before((1 << 24) | 1);
    let e = rt
        .execute(
            "holder",
            "h1",
            1.into(),
            FaultPlan::crash_instance("h1", before_end),
            0,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, BeldiError::Crashed { .. }), "{e}");
    let data = rt.tables("ledger").unwrap().data("t").unwrap();
    let daal = beldi_runtime::__internals::Daal::new(&**rt.store(), &data, 16);
    let locked = daal
        .tail("k")
        .await
        .unwrap()
        .and_then(|r| r.holder().cloned());
    assert!(locked.is_some(), "the crashed holder keeps the lock");
    // A younger transaction dies on it, has the holder restarted, and gets the lock on a
    // retry; no intent collector runs.
    let got = rt
        .invoke::<_, bool, UserError>("contender", "c1", &2)
        .await
        .unwrap();
    assert_eq!(got, Ok(true), "the contender's transaction committed");
    rt.wait_background().await;
    assert_eq!(value(&rt, "ledger", "t", "k").await, Some(2.into()));
    let holder = rt
        .invoke::<_, bool, UserError>("holder", "h1", &1)
        .await
        .unwrap();
    assert_eq!(holder, Ok(true), "the restarted holder finished");
    assert!(
        daal.tail("k")
            .await
            .unwrap()
            .and_then(|r| r.holder().cloned())
            .is_none()
    );
}

/// A replay of a finished commit (a re-execution after a crash past the commit step) found
/// the finish marker among the shadow entries it deletes, and deleted it; whatever a lagging
/// copy of the instance buffered afterwards was then never collected (the GC removes a
/// transaction's shadow items only under its marker).
pub async fn a_replayed_commit_keeps_the_finish_marker(b: &Backend) {
    // The lagging copy times out by design; the other two must finish within it.
    let timeout = Duration::from_secs(2);
    let rt = runtime_with(b, timeout);
    let entered = Arc::new(AtomicUsize::new(0));
    let (lag_in, go) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let (e, l, g) = (entered.clone(), lag_in.clone(), go.clone());
    rt.register("solo", &["t"], move |ctx: Ctx, _: ()| {
        let (e, l, g) = (e.clone(), l.clone(), g.clone());
        async move {
            use beldi_runtime::macro_support::TxnEnd;
            let mut block = ctx.__txn_block(1, 0);
            let c = block.begin().await?;
            // Copy 0 commits and crashes before done; copy 1 lags: it replays the write
            // after copy 2 replayed the commit, then never finishes.
            let copy = e.fetch_add(1, Ordering::SeqCst);
            if copy == 1 {
                l.notify_one();
                g.notified().await;
            }
            let out = c.write("t", "a", 1.into()).await;
            if copy == 1 {
                std::future::pending::<()>().await;
            }
            match block.end(&c, out.is_ok()).await {
                TxnEnd::Done => Ok::<_, UserError>(out?),
                TxnEnd::Retry => Err(UserError("died".into())),
                TxnEnd::Failed(e) => Err(e.into()),
            }
        }
    })
    .unwrap();
    rt.provision().await.unwrap();
    let crash = FaultPlan::crash_instance("s1", CrashPoint::BeforeDone);
    let first = rt.execute("solo", "s1", AttrValue::Null, crash, 0).await;
    assert!(
        matches!(first, Err(BeldiError::Crashed { .. })),
        "{first:?}"
    );
    let lagging = tokio::spawn({
        let rt = rt.clone();
        async move {
            rt.execute("solo", "s1", AttrValue::Null, FaultPlan::none(), 1)
                .await
        }
    });
    lag_in.notified().await;
    rt.execute("solo", "s1", AttrValue::Null, FaultPlan::none(), 2)
        .await
        .unwrap();
    go.notify_one();
    let lagged = lagging.await.unwrap();
    assert!(
        matches!(lagged, Err(BeldiError::Crashed { .. })),
        "{lagged:?}"
    );
    assert_eq!(value(&rt, "solo", "t", "a").await, Some(1.into()));
    let gc = GcConfig::safe(timeout, Duration::ZERO);
    tokio::time::sleep(gc.window + Duration::from_millis(100)).await;
    rt.collect_garbage(&gc).await.unwrap();
    let shadow = rt.tables("solo").unwrap().shadow();
    let left = rt.store().scan_all(&shadow).await.unwrap();
    assert!(left.is_empty(), "shadow items left after GC: {left:?}");
}

/// A lagging copy of an instance takes a lock at a step the first copy never ran (as a
/// branch a `try_join!` dropped in one copy may run in another), after the first copy
/// decided the transaction and finished its part. The finish marker said the part was
/// finished, and a finish that returned on it left that lock held by a finished
/// transaction for good (found by review of the one-transaction commit, before it landed).
pub async fn a_lock_a_lagging_copy_takes_after_the_decision_is_released(b: &Backend) {
    let rt = runtime_with(b, Duration::from_secs(5));
    let entered = Arc::new(AtomicUsize::new(0));
    let lag_in = Arc::new(tokio::sync::Notify::new());
    let go = Arc::new(AtomicBool::new(false));
    let (e, l, g) = (entered.clone(), lag_in.clone(), go.clone());
    rt.register("late", &["t"], move |ctx: Ctx, _: ()| {
        let (e, l, g) = (e.clone(), l.clone(), g.clone());
        async move {
            // Copy 0 waits for copy 1 to be running, then writes `x` and aborts. Copy 1
            // waits for copy 0 to have finished its part, then writes `x` (logged) and `y` (a step copy
            // 0 never ran), and aborts; its first flush meets copy 0's start time, so it
            // runs again from the log (copy 2 and on) without waiting.
            let copy = e.fetch_add(1, Ordering::SeqCst);
            if copy == 0 {
                l.notified().await;
            } else if copy == 1 {
                l.notify_one();
                while !g.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            let mut block = ctx.__txn_block(1, 0);
            let c = block.begin().await?;
            c.__site(2).write("t", "x", 1.into()).await?;
            if copy != 0 {
                c.__site(3).write("t", "y", 1.into()).await?;
            }
            let end = block.end(&c, false).await;
            // Copy 0's part is finished (its marker written): copy 1 goes on.
            g.store(true, Ordering::SeqCst);
            match end {
                beldi_runtime::macro_support::TxnEnd::Failed(e) => Err(e.into()),
                _ => Ok::<_, UserError>(()),
            }
        }
    })
    .unwrap();
    rt.provision().await.unwrap();
    let (a, b2) = tokio::join!(
        rt.execute("late", "l1", AttrValue::Null, FaultPlan::none(), 0),
        rt.execute("late", "l1", AttrValue::Null, FaultPlan::none(), 1),
    );
    assert!(entered.load(Ordering::SeqCst) >= 2, "both copies ran");
    assert!(a.is_ok() && b2.is_ok(), "{a:?} {b2:?}");
    let data = rt.tables("late").unwrap().data("t").unwrap();
    let daal = beldi_runtime::__internals::Daal::new(&**rt.store(), &data, 16);
    let tails = daal.tails().await.unwrap();
    assert!(
        tails.iter().any(|(k, _)| k == "y"),
        "the lagging copy took `y`: {tails:?}"
    );
    for (k, row) in tails {
        assert!(
            row.holder().is_none(),
            "late/t/{k} still locked by {:?}",
            row.holder()
        );
        assert!(row.value().is_none(), "late/t/{k} written by an abort");
    }
}

/// Two instances of one participant function, called concurrently in one transaction, each
/// add 1 to the same key twice. A write made from what an execution last saw of the key,
/// buffered unconditionally, overwrote the other instance's write in between (found by
/// review of the in-memory views, before they landed): now the buffer is put only over
/// the version it was made from, and a stale view is read again.
pub async fn concurrent_participants_of_one_function_lose_no_write(b: &Backend) {
    let rt = runtime_with(b, Duration::from_secs(30));
    rt.register("coord", &[], |ctx: Ctx, _: ()| async move {
        txn(&ctx, async |c: &Ctx| {
            let one = async {
                let r: Result<(), UserError> = c.call("adder", &1).await?;
                r
            };
            let two = async {
                let r: Result<(), UserError> = c.call("adder", &2).await?;
                r
            };
            tokio::try_join!(one, two).map(|_| ())
        })
        .await
    })
    .unwrap();
    rt.register("adder", &["t"], |ctx: Ctx, _: i64| async move {
        ctx.update("t", "n", bump()).await?;
        // The other instance adds in between.
        tokio::time::sleep(Duration::from_millis(50)).await;
        ctx.update("t", "n", bump()).await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.provision().await.unwrap();
    rt.invoke::<_, (), UserError>("coord", "c1", &())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        value(&rt, "adder", "t", "n").await,
        Some(4.into()),
        "four adds committed"
    );
}
