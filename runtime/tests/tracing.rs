//! The spans and events an execution emits, seen by a collecting subscriber: one
//! `beldi.execution` span per execution (function, instance, attempt, replay, caller,
//! trace id, outcome), one `beldi.step` span per logged step (step, kind, target, replayed,
//! round trips), crashes and errors as events; the trace context shared by a caller and its
//! callees, locally and through the remote envelope. With feature `otel`: the same spans in
//! one OpenTelemetry trace (in-memory exporter), and the OTLP exporter posting to a local
//! receiver.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use beldi_runtime::crash::{CrashPoint, FaultPlan};
use beldi_runtime::embedded::EmbeddedStore;
use beldi_runtime::remote::{Envelope, Remote, Reply};
use beldi_runtime::store::{AttrValue, Path, UpdateAction};
use beldi_runtime::telemetry::TraceContext;
use beldi_runtime::{BeldiError, Ctx, Runtime, UserError};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

// ---------------------------------------------------------------------------------------
// A collecting layer.

/// A span as the layer saw it: its name, fields (as text), parent (an index into the
/// collected spans) and whether it closed.
#[derive(Clone, Debug, Default)]
struct SpanRec {
    name: String,
    fields: BTreeMap<String, String>,
    parent: Option<usize>,
}

impl SpanRec {
    fn get(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
    fn field(&self, field: &str) -> &str {
        self.get(field)
            .unwrap_or_else(|| panic!("span {} has no field `{field}`: {self:?}", self.name))
    }
    fn num(&self, field: &str) -> u64 {
        self.field(field).parse().expect("a number")
    }
}

/// An event: its level, fields (the message under `message`) and span.
#[derive(Clone, Debug)]
struct EventRec {
    level: tracing::Level,
    fields: BTreeMap<String, String>,
    span: Option<usize>,
}

#[derive(Default)]
struct Collected {
    spans: Vec<SpanRec>,
    events: Vec<EventRec>,
    live: HashMap<Id, usize>,
}

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Collected>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S> tracing_subscriber::Layer<S> for Collector
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut c = self.0.lock().unwrap();
        let mut rec = SpanRec {
            name: attrs.metadata().name().to_owned(),
            ..SpanRec::default()
        };
        attrs.record(&mut Fields(&mut rec.fields));
        let parent = ctx
            .span(id)
            .and_then(|s| s.parent())
            .map(|p| p.id())
            .and_then(|p| c.live.get(&p).copied());
        rec.parent = parent;
        let at = c.spans.len();
        c.spans.push(rec);
        c.live.insert(id.clone(), at);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut c = self.0.lock().unwrap();
        if let Some(&at) = c.live.get(id) {
            values.record(&mut Fields(&mut c.spans[at].fields));
        }
    }
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut c = self.0.lock().unwrap();
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let span = ctx
            .event_span(event)
            .and_then(|s| c.live.get(&s.id()).copied());
        c.events.push(EventRec {
            level: *event.metadata().level(),
            fields,
            span,
        });
    }
    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        self.0.lock().unwrap().live.remove(&id);
    }
}

impl Collector {
    /// Collects every span and event of this thread (the tests run on a current-thread
    /// runtime, so every task of the runtime runs on it) while the guard lives.
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::registry().with(self.clone());
        tracing::subscriber::set_default(subscriber)
    }
    fn spans(&self) -> Vec<SpanRec> {
        self.0.lock().unwrap().spans.clone()
    }
    fn events(&self) -> Vec<EventRec> {
        self.0.lock().unwrap().events.clone()
    }
    /// The execution spans of `function`, in the order they started.
    fn executions(&self, function: &str) -> Vec<(usize, SpanRec)> {
        self.spans()
            .into_iter()
            .enumerate()
            .filter(|(_, s)| s.name == "beldi.execution" && s.get("function") == Some(function))
            .collect()
    }
    /// The step spans whose parent is span `exec`, in the order they started.
    fn steps_of(&self, exec: usize) -> Vec<(usize, SpanRec)> {
        self.spans()
            .into_iter()
            .enumerate()
            .filter(|(_, s)| s.name == "beldi.step" && s.parent == Some(exec))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// The functions.

/// `front` reads `f/k`, calls `back`, writes `f/out`; `back` adds to `b/<key>`; `spawner`
/// spawns `back` and logs a value.
fn register(rt: &Runtime) {
    rt.register("front", &["f"], |ctx: Ctx, key: String| async move {
        let before: Option<i64> = ctx.read_as("f", "k").await?;
        let n: Result<i64, UserError> = ctx.call("back", &key).await?;
        let n = n?;
        ctx.write_as("f", "out", &(n + before.unwrap_or(0))).await?;
        Ok::<_, UserError>(n)
    })
    .unwrap();
    rt.register("back", &["b"], |ctx: Ctx, key: String| async move {
        ctx.update("b", &key, vec![UpdateAction::add(Path::root(), 1)])
            .await?;
        Ok::<_, UserError>(1i64)
    })
    .unwrap();
    rt.register("spawner", &[], |ctx: Ctx, key: String| async move {
        let id = ctx.spawn("back", &key).await?;
        let _: u64 = ctx.random().await?;
        Ok::<_, UserError>(id)
    })
    .unwrap();
}

async fn runtime() -> (Runtime, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let rt = Runtime::new(store);
    register(&rt);
    rt.provision().await.unwrap();
    (rt, dir)
}

fn is_trace_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) && s != "0".repeat(32)
}

// ---------------------------------------------------------------------------------------
// Execution and step spans.

#[tokio::test]
async fn a_root_and_its_sync_callee_have_execution_and_step_spans() {
    let (rt, _dir) = runtime().await;
    let c = Collector::default();
    let _g = c.install();
    let got = rt
        .invoke::<_, i64, UserError>("front", "req-1", "x")
        .await
        .unwrap();
    assert_eq!(got, Ok(1));

    let fronts = c.executions("front");
    assert_eq!(fronts.len(), 1, "{fronts:?}");
    let (fi, front) = &fronts[0];
    assert_eq!(front.field("instance"), "req-1");
    assert_eq!(front.field("attempt"), "0");
    assert_eq!(front.field("replay"), "false");
    assert_eq!(
        front.num("logged"),
        0,
        "a first execution reads nothing ahead"
    );
    assert_eq!(front.field("caller"), "");
    assert_eq!(front.field("outcome"), "ok");
    assert_eq!(front.field("ran"), "true");
    assert_eq!(front.num("steps"), 3);
    assert!(is_trace_id(front.field("trace_id")), "{front:?}");

    let steps = c.steps_of(*fi);
    let shape: Vec<(&str, &str)> = steps
        .iter()
        .map(|(_, s)| (s.field("kind"), s.field("target")))
        .collect();
    let backs = c.executions("back");
    assert_eq!(backs.len(), 1, "{backs:?}");
    let (bi, back) = &backs[0];
    let callee_id = back.field("instance").to_owned();
    assert_eq!(
        shape,
        vec![
            ("read", "f/k"),
            ("call", &*format!("back/{callee_id}")),
            ("write", "f/out"),
        ]
    );
    for (i, (_, s)) in steps.iter().enumerate() {
        assert_eq!(s.num("step"), i as u64);
        assert_eq!(s.field("replayed"), "false", "{s:?}");
        assert!(s.num("round_trips") > 0, "{s:?}");
    }
    // The callee's execution: its caller, the same trace, inside the caller's call step.
    assert_eq!(back.field("caller"), "front/req-1");
    assert_eq!(back.field("replay"), "false");
    assert_eq!(back.field("outcome"), "ok");
    assert_eq!(back.field("trace_id"), front.field("trace_id"));
    assert_eq!(back.parent, Some(steps[1].0));
    let back_steps = c.steps_of(*bi);
    assert_eq!(back_steps.len(), 1);
    assert_eq!(back_steps[0].1.field("kind"), "write");
    assert_eq!(back_steps[0].1.field("target"), "b/x");

    // Round trips per step, as the protocol makes them on a first execution: a read gets
    // the DAAL tail and defers its log record; a call makes the deferred record durable
    // and defers its own, with the callee's result (the callee's own round trips are the
    // callee's); a write of a fresh key creates its first row with the write, its log
    // record and the call's in one transaction.
    let trips: Vec<u64> = steps.iter().map(|(_, s)| s.num("round_trips")).collect();
    assert_eq!(trips, vec![1, 1, 1], "{steps:?}");
    assert_eq!(back_steps[0].1.num("round_trips"), 1);

    // A second root request is another trace.
    rt.invoke::<_, i64, UserError>("front", "req-2", "y")
        .await
        .unwrap()
        .unwrap();
    let fronts = c.executions("front");
    assert_ne!(fronts[1].1.field("trace_id"), front.field("trace_id"));
    // Asking for a finished instance again returns its stored result without running it.
    rt.invoke::<_, i64, UserError>("front", "req-1", "x")
        .await
        .unwrap()
        .unwrap();
    let again = &c.executions("front")[2].1;
    assert_eq!(again.field("ran"), "false");
    assert_eq!(again.field("replay"), "true");
    assert_eq!(again.num("steps"), 0);
    assert!(c.steps_of(c.executions("front")[2].0).is_empty());
}

#[tokio::test]
async fn a_crash_then_a_replay_marks_the_replayed_steps() {
    let (rt, _dir) = runtime().await;
    let c = Collector::default();
    let _g = c.install();
    // Crash right after the call (step 1) returned: the read's record is durable (the call
    // made it so before the callee ran), the call's own record, deferred, is lost.
    let crash = FaultPlan::crash_instance("req-c", CrashPoint::After(1));
    let e = rt
        .execute("front", "req-c", AttrValue::S("x".into()), crash, 0)
        .await
        .unwrap_err();
    assert!(matches!(e, BeldiError::Crashed { .. }), "{e}");
    rt.execute(
        "front",
        "req-c",
        AttrValue::S("x".into()),
        FaultPlan::none(),
        1,
    )
    .await
    .unwrap();

    let fronts = c.executions("front");
    assert_eq!(fronts.len(), 2);
    let (first_i, first) = &fronts[0];
    let (second_i, second) = &fronts[1];
    assert_eq!(first.field("replay"), "false");
    assert_eq!(first.field("outcome"), "crashed");
    assert_eq!(second.field("replay"), "true");
    // It read its log ahead in one query: the read's record.
    assert_eq!(second.num("logged"), 1);
    assert_eq!(second.field("attempt"), "1");
    assert_eq!(second.field("outcome"), "ok");

    // The crash is a WARN event in the step it hit, and the execution's failure another.
    let events = c.events();
    let crash_ev: Vec<&EventRec> = events
        .iter()
        .filter(|e| e.fields.get("message").map(String::as_str) == Some("injected crash"))
        .collect();
    assert_eq!(crash_ev.len(), 1, "{events:?}");
    assert_eq!(crash_ev[0].level, tracing::Level::WARN);
    assert_eq!(crash_ev[0].fields["step"], "1");
    assert_eq!(crash_ev[0].fields["point"], "after step 1");
    let first_steps = c.steps_of(*first_i);
    assert_eq!(crash_ev[0].span, Some(first_steps[1].0));
    assert!(events.iter().any(|e| e.level == tracing::Level::WARN
        && e.span == Some(*first_i)
        && e.fields.get("outcome").map(String::as_str) == Some("crashed")));

    // The first execution ran steps 0 and 1 as new; the replay finds the read in the log
    // it read ahead (no round trip), calls the callee again (which is done: it returns its
    // stored result without running) and runs step 2 as new.
    let shape = |exec: usize| -> Vec<(String, String, Option<u64>)> {
        c.steps_of(exec)
            .iter()
            .map(|(_, s)| {
                (
                    s.field("kind").to_owned(),
                    s.field("replayed").to_owned(),
                    s.get("round_trips").map(|n| n.parse().unwrap()),
                )
            })
            .collect()
    };
    let first_shape = shape(*first_i);
    assert_eq!(first_shape.len(), 2);
    assert!(first_shape.iter().all(|(_, r, _)| r == "false"));
    // The crashed step's count is recorded too (the read's deferred record, made durable
    // before the callee ran).
    assert_eq!(first_shape[0].2, Some(1));
    assert_eq!(first_shape[1].2, Some(1));
    let second_shape = shape(*second_i);
    assert_eq!(
        second_shape,
        vec![
            ("read".to_owned(), "true".to_owned(), Some(0)),
            ("call".to_owned(), "false".to_owned(), Some(0)),
            ("write".to_owned(), "false".to_owned(), Some(1)),
        ]
    );
    // Each write shows once as new across all executions; the callee ran its body once.
    let backs = c.executions("back");
    assert_eq!(backs.len(), 2);
    assert_eq!(backs[1].1.field("ran"), "false");
    assert!(c.steps_of(backs[1].0).is_empty());
    let new_writes: Vec<String> = c
        .spans()
        .iter()
        .filter(|s| s.name == "beldi.step" && s.get("replayed") == Some("false"))
        .filter(|s| s.field("kind") == "write")
        .map(|s| format!("{} {}", s.field("kind"), s.field("target")))
        .collect();
    let mut dedup = new_writes.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), new_writes.len(), "{new_writes:?}");
    assert_eq!(new_writes.len(), 2, "{new_writes:?}");
}

#[tokio::test]
async fn a_replayed_call_re_drives_its_finished_callee() {
    let (rt, _dir) = runtime().await;
    let c = Collector::default();
    let _g = c.install();
    // Crash after the callee returned, before the call's record (deferred) is durable.
    let crash = FaultPlan::crash_instance("req-i", CrashPoint::Inside(1));
    rt.execute("front", "req-i", AttrValue::S("x".into()), crash, 0)
        .await
        .unwrap_err();
    rt.execute(
        "front",
        "req-i",
        AttrValue::S("x".into()),
        FaultPlan::none(),
        1,
    )
    .await
    .unwrap();
    let fronts = c.executions("front");
    let steps = c.steps_of(fronts[1].0);
    let call = &steps[1].1;
    assert_eq!(call.field("kind"), "call");
    // Nothing of the call was logged (its record is deferred): the call re-drives the
    // callee (the same instance), which returns its stored result without running.
    assert_eq!(call.field("replayed"), "false");
    let backs = c.executions("back");
    assert_eq!(backs.len(), 2);
    assert_eq!(backs[1].1.field("replay"), "true");
    assert_eq!(backs[1].1.field("ran"), "false");
    assert_eq!(backs[1].1.field("trace_id"), fronts[1].1.field("trace_id"));
    assert!(
        c.steps_of(backs[1].0).is_empty(),
        "no step of the callee runs again"
    );
    assert_eq!(
        beldi_runtime::explorer::current_value(&rt, "back", "b", "x")
            .await
            .unwrap(),
        Some(1.into())
    );
}

#[tokio::test]
async fn a_spawned_callee_and_a_logged_value_share_the_trace() {
    let (rt, _dir) = runtime().await;
    let c = Collector::default();
    let _g = c.install();
    rt.invoke::<_, String, UserError>("spawner", "req-s", "z")
        .await
        .unwrap()
        .unwrap();
    rt.wait_background().await;
    let (si, spawner) = c.executions("spawner").remove(0);
    let steps = c.steps_of(si);
    assert_eq!(steps[0].1.field("kind"), "spawn");
    assert_eq!(steps[1].1.field("kind"), "side_effect");
    assert_eq!(steps[1].1.field("target"), "random");
    let (_, back) = c.executions("back").remove(0);
    assert_eq!(back.field("caller"), "spawner/req-s");
    assert_eq!(back.field("trace_id"), spawner.field("trace_id"));
    assert_eq!(
        steps[0].1.field("target"),
        format!("back/{}", back.field("instance"))
    );
}

#[tokio::test]
async fn an_incoming_trace_context_is_joined() {
    let (rt, _dir) = runtime().await;
    let c = Collector::default();
    let _g = c.install();
    let incoming =
        TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    let inv = beldi_runtime::Invocation::root("back", "req-t", AttrValue::S("k".into()))
        .with_trace(Some(incoming));
    rt.run_here(inv).await.unwrap();
    let (_, back) = c.executions("back").remove(0);
    assert_eq!(back.field("trace_id"), "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[tokio::test]
async fn a_failed_step_is_an_event() {
    let (rt, _dir) = runtime().await;
    rt.register("bad", &["t"], |ctx: Ctx, _: ()| async move {
        ctx.write("t", "", AttrValue::from(1)).await?;
        Ok::<_, UserError>(())
    })
    .unwrap();
    rt.provision().await.unwrap();
    let c = Collector::default();
    let _g = c.install();
    let _ = rt.invoke::<_, (), UserError>("bad", "req-b", &()).await;
    let events = c.events();
    let failed: Vec<&EventRec> = events
        .iter()
        .filter(|e| e.fields.get("message").map(String::as_str) == Some("step failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    assert_eq!(failed[0].level, tracing::Level::WARN);
    assert_eq!(failed[0].fields["step"], "0");
    assert!(failed[0].fields["error"].contains("empty"), "{failed:?}");
    let (_, bad) = c.executions("bad").remove(0);
    assert_ne!(bad.field("outcome"), "ok");
}

/// Waits until every execution of `function` seen so far ended (a posted run is not
/// tracked by the host's background work).
async fn settle(c: &Collector, function: &str) {
    for _ in 0..500 {
        let ex = c.executions(function);
        if !ex.is_empty() && ex.iter().all(|(_, s)| s.get("outcome").is_some()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "executions of {function} did not end: {:?}",
        c.executions(function)
    );
}

// ---------------------------------------------------------------------------------------
// Through the remote envelope.

/// Sends envelopes as JSON to a host runtime, each in a task of its own (so nothing but the
/// envelope carries the trace from the caller to the callee).
struct Loopback {
    host: Runtime,
    sent: Arc<Mutex<Vec<serde_json::Value>>>,
}

#[async_trait]
impl Remote for Loopback {
    async fn send(&self, envelope: &Envelope) -> Result<Reply, BeldiError> {
        let wire = serde_json::to_value(envelope).unwrap();
        self.sent.lock().unwrap().push(wire.clone());
        let host = self.host.clone();
        let reply = tokio::spawn(async move { host.host(wire).await })
            .await
            .unwrap();
        Ok(serde_json::from_value(serde_json::to_value(&reply).unwrap()).unwrap())
    }
    async fn post(&self, envelope: &Envelope) -> Result<(), BeldiError> {
        let wire = serde_json::to_value(envelope).unwrap();
        self.sent.lock().unwrap().push(wire.clone());
        let host = self.host.clone();
        tokio::spawn(async move { host.host(wire).await });
        Ok(())
    }
}

/// A client runtime sending every call through the envelope to a host runtime (one store);
/// and the envelopes sent.
async fn remote_pair() -> (
    Runtime,
    Runtime,
    Arc<Mutex<Vec<serde_json::Value>>>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let (client, host) = (Runtime::new(store.clone()), Runtime::new(store));
    register(&client);
    register(&host);
    client.provision().await.unwrap();
    let sent = Arc::new(Mutex::new(Vec::new()));
    for rt in [&client, &host] {
        rt.set_remote(Arc::new(Loopback {
            host: host.clone(),
            sent: sent.clone(),
        }));
    }
    (client, host, sent, dir)
}

#[tokio::test]
async fn the_trace_travels_in_the_envelope() {
    let (client, host, sent, _dir) = remote_pair().await;
    let c = Collector::default();
    let _g = c.install();
    client
        .invoke::<_, i64, UserError>("front", "req-r", "x")
        .await
        .unwrap()
        .unwrap();
    client
        .invoke::<_, String, UserError>("spawner", "req-rs", "y")
        .await
        .unwrap()
        .unwrap();
    host.wait_background().await;
    settle(&c, "back").await;
    let fronts = c.executions("front");
    let spawners = c.executions("spawner");
    let backs = c.executions("back");
    assert_eq!(backs.len(), 2, "{backs:?}");
    let by_caller = |caller: &str| {
        backs
            .iter()
            .find(|(_, b)| b.field("caller") == caller)
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(
        by_caller("front/req-r").field("trace_id"),
        fronts[0].1.field("trace_id")
    );
    assert_eq!(
        by_caller("spawner/req-rs").field("trace_id"),
        spawners[0].1.field("trace_id")
    );
    // The remote spawn's register created the callee's intent; its run is still its first
    // execution, not a replay.
    assert_eq!(by_caller("spawner/req-rs").field("replay"), "false");
    assert_eq!(by_caller("spawner/req-rs").num("logged"), 0);
    // Each run envelope carries a traceparent of the caller's trace.
    let runs: Vec<serde_json::Value> = sent
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e["beldi"] == "run")
        .cloned()
        .collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in &runs {
        let tp = TraceContext::parse(run["traceparent"].as_str().unwrap()).unwrap();
        let tid = tp.trace_id_hex();
        assert!(
            tid == fronts[0].1.field("trace_id") || tid == spawners[0].1.field("trace_id"),
            "{run}"
        );
    }
}

#[tokio::test]
async fn envelopes_without_or_with_a_bad_traceparent_still_parse() {
    let base = serde_json::json!({
        "beldi": "run", "function": "back", "instance": "i", "input": {"S": "k"}
    });
    let old = beldi_runtime::remote::parse(base.clone()).unwrap();
    assert!(matches!(
        old,
        Envelope::Run {
            traceparent: None,
            ..
        }
    ));
    let mut bad = base.clone();
    bad["traceparent"] = "not-a-traceparent".into();
    let bad = beldi_runtime::remote::parse(bad).unwrap();
    assert!(matches!(
        bad,
        Envelope::Run {
            traceparent: None,
            ..
        }
    ));
    let mut good = base;
    good["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into();
    let good = beldi_runtime::remote::parse(good).unwrap();
    let Envelope::Run {
        traceparent: Some(tp),
        ..
    } = good
    else {
        panic!("no traceparent: {good:?}")
    };
    assert_eq!(tp.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    // And it is written back as it came.
    let again = serde_json::to_value(Envelope::Run {
        function: "back".into(),
        instance: "i".into(),
        input: AttrValue::S("k".into()),
        caller: None,
        txn: None,
        sent_at_ms: None,
        traceparent: Some(tp),
        fresh: false,
    })
    .unwrap();
    assert_eq!(
        again["traceparent"],
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
}

/// How much a disabled span costs (no subscriber): the hot path pays a callsite check and
/// no formatting. Informational, with a generous bound.
#[test]
fn disabled_step_spans_cost_next_to_nothing() {
    // (Other tests of this binary install thread-local subscribers, which can make the
    // callsite's interest "always": then the span is made against the no-op subscriber of
    // this thread, which costs a little more than a disabled callsite; the bound holds
    // either way.)
    let n = 200_000u64;
    let key = String::from("key");
    let start = std::time::Instant::now();
    let mut made = 0;
    for i in 0..n {
        let span = tracing::debug_span!(target: "beldi", "beldi.step", step = i, "target" = %format_args!("t/{key}"));
        made += u64::from(!span.is_disabled());
    }
    let per = start.elapsed() / n as u32;
    eprintln!("a step span with no subscriber: {per:?} ({made} of {n} made)");
    assert!(per < std::time::Duration::from_micros(5), "{per:?}");
}

// ---------------------------------------------------------------------------------------
// OpenTelemetry (feature `otel`).

#[cfg(feature = "otel")]
mod otel {
    use super::*;
    use opentelemetry::trace::{SpanId, TracerProvider};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Collects OpenTelemetry spans in memory (and, with `collector`, the tracing spans)
    /// while the guard lives.
    fn install(
        collector: &Collector,
    ) -> (
        InMemorySpanExporter,
        SdkTracerProvider,
        tracing::subscriber::DefaultGuard,
    ) {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        let subscriber = tracing_subscriber::registry()
            .with(collector.clone())
            .with(layer);
        let guard = tracing::subscriber::set_default(subscriber);
        (exporter, provider, guard)
    }

    fn attr(span: &SpanData, key: &str) -> Option<String> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.as_str().into_owned())
    }

    fn executions<'a>(spans: &'a [SpanData], function: &str) -> Vec<&'a SpanData> {
        spans
            .iter()
            .filter(|s| {
                s.name == "beldi.execution" && attr(s, "function").as_deref() == Some(function)
            })
            .collect()
    }

    /// Caller and callee in one trace, the callee's parent the caller's call step; and the
    /// `trace_id` field is the OpenTelemetry trace id.
    fn assert_one_trace(spans: &[SpanData], c: &Collector, caller: &str) {
        let front = executions(spans, caller);
        let back = executions(spans, "back");
        let summary: Vec<String> = spans
            .iter()
            .map(|s| {
                format!(
                    "{} {:?} {:?} {} {}",
                    s.name,
                    attr(s, "function"),
                    attr(s, "kind"),
                    s.span_context.trace_id(),
                    s.parent_span_id
                )
            })
            .collect();
        assert_eq!(
            (front.len(), back.len()),
            (1, 1),
            "{summary:#?} {:?}",
            c.spans()
        );
        let (front, back) = (front[0], back[0]);
        let trace = front.span_context.trace_id();
        assert_eq!(back.span_context.trace_id(), trace);
        assert_eq!(front.parent_span_id, SpanId::INVALID, "a root");
        let parent = spans
            .iter()
            .find(|s| s.span_context.span_id() == back.parent_span_id)
            .expect("the callee's parent is exported");
        assert_eq!(parent.name, "beldi.step");
        assert_eq!(
            attr(parent, "kind").as_deref(),
            Some(if caller == "front" { "call" } else { "spawn" })
        );
        assert_eq!(parent.span_context.trace_id(), trace);
        let every_step_in_trace = spans
            .iter()
            .filter(|s| s.name == "beldi.step")
            .all(|s| s.span_context.trace_id() == trace);
        assert!(every_step_in_trace);
        let hex = format!("{trace}");
        for (_, e) in c
            .executions(caller)
            .iter()
            .chain(c.executions("back").iter())
        {
            assert_eq!(e.field("trace_id"), hex);
        }
    }

    #[tokio::test]
    async fn caller_and_callee_spans_are_one_trace() {
        let (rt, _dir) = runtime().await;
        let c = Collector::default();
        let (exporter, provider, _g) = install(&c);
        rt.invoke::<_, i64, UserError>("front", "req-o", "x")
            .await
            .unwrap()
            .unwrap();
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        assert_one_trace(&spans, &c, "front");
    }

    #[tokio::test]
    async fn caller_and_callee_spans_are_one_trace_through_the_envelope() {
        for caller in ["front", "spawner"] {
            let (client, host, _sent, _dir) = remote_pair().await;
            let c = Collector::default();
            let (exporter, provider, _g) = install(&c);
            client
                .dispatch(caller, "req-oe", AttrValue::S("x".into()))
                .await
                .unwrap();
            host.wait_background().await;
            settle(&c, "back").await;
            provider.force_flush().unwrap();
            let spans = exporter.get_finished_spans().unwrap();
            assert_one_trace(&spans, &c, caller);
        }
    }

    /// The OTLP/HTTP exporter of `telemetry::otlp_layer` posts protobuf spans to a receiver.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_otlp_exporter_posts_to_a_receiver() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Vec<u8>)>();
        let receiver = tokio::spawn(async move {
            // Bounded: a few connections at most, then it stops.
            for _ in 0..4 {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head, body_at) = loop {
                    let n = sock.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (String::from_utf8_lossy(&buf[..i]).to_string(), i + 4);
                    }
                };
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < body_at + len {
                    let n = sock.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tx.send((head, buf[body_at..].to_vec()));
            }
        });

        let (layer, provider) =
            beldi_runtime::telemetry::otlp_layer(&format!("http://{addr}/v1/traces"), "beldi-test")
                .unwrap();
        // A workflow on a runtime of its own thread, traced by the OTLP layer.
        std::thread::spawn(move || {
            let subscriber = tracing_subscriber::registry().with(layer);
            let _g = tracing::subscriber::set_default(subscriber);
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (brt, _dir) = runtime().await;
                brt.invoke::<_, i64, UserError>("front", "req-otlp", "x")
                    .await
                    .unwrap()
                    .unwrap();
            });
        })
        .join()
        .unwrap();
        let flushed = tokio::task::spawn_blocking(move || {
            let r = provider.force_flush();
            let _ = provider.shutdown();
            r
        })
        .await
        .unwrap();
        flushed.unwrap();
        let (head, body) = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        receiver.abort();
        assert!(head.starts_with("POST /v1/traces "), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: application/x-protobuf"),
            "{head}"
        );
        let has = |s: &str| body.windows(s.len()).any(|w| w == s.as_bytes());
        assert!(
            has("beldi.execution") && has("beldi.step"),
            "{} bytes",
            body.len()
        );
        assert!(has("beldi-test") && has("req-otlp"));
    }
}
