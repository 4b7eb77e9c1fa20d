//! Invocations through a [`Remote`]: every call, spawn and collector restart goes out as a
//! JSON envelope and is run by `Runtime::host` on another runtime (another "process" on the
//! same store), as the AWS Lambda platform does. Bad envelopes get structured errors and
//! write nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use beldi_runtime::__internals::intents;
use beldi_runtime::embedded::EmbeddedStore;
use beldi_runtime::remote::{self, Envelope, Remote, Reply, ReplyError};
use beldi_runtime::store::{AttrValue, Path, UpdateAction};
use beldi_runtime::{BeldiError, Runtime, UserError};

/// Sends envelopes as JSON to a host runtime, like a network would.
struct Loopback {
    host: Runtime,
    /// `Run` envelopes posted (fire-and-forget) so far.
    runs_posted: Arc<AtomicUsize>,
}

#[async_trait]
impl Remote for Loopback {
    async fn send(&self, envelope: &Envelope) -> Result<Reply, BeldiError> {
        let wire = serde_json::to_value(envelope).unwrap();
        let reply = self.host.host(wire).await;
        Ok(serde_json::from_value(serde_json::to_value(&reply).unwrap()).unwrap())
    }
    async fn post(&self, envelope: &Envelope) -> Result<(), BeldiError> {
        if matches!(envelope, Envelope::Run { .. }) {
            self.runs_posted.fetch_add(1, Ordering::SeqCst);
        }
        let (host, wire) = (self.host.clone(), serde_json::to_value(envelope).unwrap());
        tokio::spawn(async move { host.host(wire).await });
        Ok(())
    }
}

fn register(rt: &Runtime) {
    rt.register("count", &["n"], |ctx, key: String| async move {
        ctx.update("n", &key, vec![UpdateAction::add(Path::root(), 1)])
            .await?;
        Ok::<_, UserError>(ctx.read_as::<i64>("n", &key).await?.unwrap_or(0))
    })
    .unwrap();
    rt.register("front", &[], |ctx, key: String| async move {
        let n: Result<i64, UserError> = ctx.call("count", &key).await?;
        ctx.spawn("count", &format!("{key}-later")).await?;
        n
    })
    .unwrap();
}

/// A client runtime and a host runtime on one store, each sending through the loopback.
async fn pair() -> (Runtime, Runtime, Arc<EmbeddedStore>, tempfile::TempDir) {
    let (client, host, store, dir, _) = pair_counting().await;
    (client, host, store, dir)
}

/// [`pair`], and the number of `Run` envelopes the host's instances posted.
async fn pair_counting() -> (
    Runtime,
    Runtime,
    Arc<EmbeddedStore>,
    tempfile::TempDir,
    Arc<AtomicUsize>,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let (client, host) = (Runtime::new(store.clone()), Runtime::new(store.clone()));
    register(&client);
    register(&host);
    client.provision().await.unwrap();
    let posted = Arc::new(AtomicUsize::new(0));
    client.set_remote(Arc::new(Loopback {
        host: host.clone(),
        runs_posted: Arc::new(AtomicUsize::new(0)),
    }));
    host.set_remote(Arc::new(Loopback {
        host: host.clone(),
        runs_posted: posted.clone(),
    }));
    (client, host, store, dir, posted)
}

/// A13: a caller that replays a logged spawn must not post another `Run` of the callee
/// (each post starts one more copy of it).
#[tokio::test]
async fn a_replayed_spawn_posts_no_second_run() {
    let (_client, host, _store, _dir, posted) = pair_counting().await;
    let crash = beldi_runtime::crash::FaultPlan::crash_instance(
        "replayed",
        beldi_runtime::crash::CrashPoint::BeforeDone,
    );
    for attempt in 0..4 {
        let e = host
            .execute(
                "front",
                "replayed",
                AttrValue::S("k".into()),
                crash.clone(),
                attempt,
            )
            .await
            .unwrap_err();
        assert!(matches!(e, BeldiError::Crashed { .. }), "{e}");
    }
    host.wait_background().await;
    assert_eq!(
        posted.load(Ordering::SeqCst),
        1,
        "one run of the spawned callee posted"
    );
}

#[tokio::test]
async fn calls_and_spawns_travel_as_envelopes_exactly_once() {
    let (client, host, store, _dir) = pair().await;
    for _ in 0..2 {
        // The same root twice: the second returns the stored result, runs nothing again.
        let got = client
            .invoke::<_, i64, UserError>("front", "req-1", "k")
            .await
            .unwrap();
        assert_eq!(got, Ok(1));
    }
    host.wait_background().await;
    assert_eq!(
        beldi_runtime::explorer::quiesce(&client, 5).await.unwrap(),
        0
    );
    let values = beldi_runtime::data::current_values(&client, "count", "n")
        .await
        .unwrap();
    assert_eq!(
        values,
        vec![
            ("k".to_owned(), AttrValue::from(1)),
            ("k-later".to_owned(), AttrValue::from(1))
        ]
    );
    // The spawned instance's intent was created by the host (the callee's side).
    let intents = intents(&*store, &client.tables("count").unwrap().intent())
        .await
        .unwrap();
    assert_eq!(intents.len(), 2);
    assert!(intents.iter().all(|i| i.done && i.caller.is_some()));
}

#[tokio::test]
async fn an_envelope_round_trips_through_json() {
    let e = Envelope::Run {
        function: "f".into(),
        instance: "i".into(),
        input: AttrValue::M([("a".to_owned(), AttrValue::from(1))].into()),
        caller: None,
        txn: None,
        sent_at_ms: None,
        traceparent: None,
        fresh: false,
    };
    let wire = serde_json::to_value(&e).unwrap();
    assert_eq!(wire["beldi"], "run");
    assert_eq!(remote::parse(wire).unwrap(), e);
}

#[tokio::test]
async fn bad_envelopes_get_structured_errors_and_write_nothing() {
    let (_client, host, store, _dir) = pair().await;
    let count_intents = async || {
        intents(&*store, &host.tables("count").unwrap().intent())
            .await
            .unwrap()
            .len()
    };
    let not_envelope = host.host(serde_json::json!({"hello": 1})).await;
    assert!(
        matches!(&not_envelope, Reply::Error(ReplyError::BadEnvelope { message }) if message.contains("hello")),
        "{not_envelope:?}"
    );
    let malformed = host
        .host(serde_json::json!({"beldi": "run", "function": 3}))
        .await;
    assert!(
        matches!(&malformed, Reply::Error(ReplyError::BadEnvelope { message }) if message.contains("malformed")),
        "{malformed:?}"
    );
    let unknown = Envelope::Run {
        function: "nope".into(),
        instance: "x".into(),
        input: AttrValue::Null,
        caller: None,
        txn: None,
        sent_at_ms: None,
        traceparent: None,
        fresh: false,
    };
    let reply = host.host(serde_json::to_value(&unknown).unwrap()).await;
    assert_eq!(
        reply,
        Reply::Error(ReplyError::UnknownFunction {
            function: "nope".into()
        })
    );
    // `count` takes a string; a number is refused before its intent is written.
    let wrong = Envelope::Run {
        function: "count".into(),
        instance: "typed-wrong".into(),
        input: AttrValue::from(5),
        caller: None,
        txn: None,
        sent_at_ms: None,
        traceparent: None,
        fresh: false,
    };
    let reply = host.host(serde_json::to_value(&wrong).unwrap()).await;
    assert!(
        matches!(&reply, Reply::Error(ReplyError::BadInput { .. })),
        "{reply:?}"
    );
    assert_eq!(count_intents().await, 0, "nothing was written");
    // And the error a caller sees names the function.
    let Reply::Error(e) = reply else {
        unreachable!()
    };
    assert!(
        matches!(e.into_error("count"), BeldiError::Serialization { what, .. } if what.contains("count"))
    );
}

#[tokio::test]
async fn the_intent_collector_runs_where_the_functions_are() {
    let (client, host, _store, _dir) = pair().await;
    // A root that crashed in the host, before its result was recorded.
    let crashed = host
        .execute(
            "front",
            "lost",
            AttrValue::S("k".into()),
            beldi_runtime::crash::FaultPlan::crash_instance(
                "lost",
                beldi_runtime::crash::CrashPoint::BeforeDone,
            ),
            0,
        )
        .await;
    assert!(
        matches!(crashed, Err(BeldiError::Crashed { .. })),
        "{crashed:?}"
    );
    host.wait_background().await;
    // The client's pass is an `ic` envelope: the host restarts and finishes the instance.
    let cfg = beldi_runtime::collector::IcConfig {
        restart_after: std::time::Duration::ZERO,
        ..Default::default()
    };
    let report = client.collect_intents(&cfg).await.unwrap();
    // The crashed root, and possibly its spawned callee if its posted run is still going.
    assert!(report.restarted >= 1, "{report:?}");
    assert_eq!(report.finished, report.restarted, "{report:?}");
    // The spawned callee's posted run may still be going (posts are fire-and-forget): more
    // passes, also through the host, finish everything.
    assert_eq!(
        beldi_runtime::explorer::quiesce(&client, 10).await.unwrap(),
        0
    );
    let got = client
        .invoke::<_, i64, UserError>("front", "lost", "k")
        .await
        .unwrap();
    assert_eq!(got, Ok(1), "the restarted run's result, applied once");
}

/// A2: an async run event can sit in Lambda's queue for hours (AWS's default event age is
/// 6 h). Arriving after its instance finished and was collected, it created and ran the
/// instance again. A host now refuses an event older than the runtime's max queue age for
/// an instance that does not exist, and creates nothing; an existing intent still runs.
#[tokio::test]
async fn a_stale_run_event_creates_nothing() {
    let (_client, host, store, _dir) = pair().await;
    let old = beldi_runtime::__internals::now_ms() - 120_000; // 2 minutes ago; the limit is 60 s
    let event = |instance: &str| {
        serde_json::json!({
            "beldi": "run",
            "function": "count",
            "instance": instance,
            "input": {"S": "late"},
            "caller": {"function": "front", "instance": "f1", "step": 1, "is_async": true},
            "sent_at_ms": old,
        })
    };
    let reply = host.host(event("gone")).await;
    assert!(
        matches!(&reply, Reply::Error(ReplyError::StaleEvent { instance, message, .. })
            if instance == "gone" && message.contains("older than the max queue age")),
        "{reply:?}"
    );
    let intents = intents(&*store, &host.tables("count").unwrap().intent())
        .await
        .unwrap();
    assert!(intents.is_empty(), "nothing created: {intents:?}");
    // The same late event for an instance whose intent was registered runs it.
    let caller = beldi_runtime::schema::CallerRef {
        function: "front".into(),
        instance: "f1".into(),
        step: 1,
        is_async: true,
    };
    let input: AttrValue = serde_json::from_value(serde_json::json!({"S": "late"})).unwrap();
    assert!(
        host.register_async("count", "kept", &input, &caller)
            .await
            .unwrap()
    );
    let reply = host.host(event("kept")).await;
    assert!(matches!(&reply, Reply::Ok(_)), "{reply:?}");
}
