//! The spans of a macro-written transaction across two functions, seen by a collecting
//! subscriber: the coordinator's steps (begin, the participant calls, the commit) carry
//! call-site step ids, each participant runs its part and its commit in executions of the
//! same trace, and a crash before the commit then a re-execution replays the calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use beldi::prelude::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

#[beldi::function(tables = ["slots"])]
pub async fn take_slot(ctx: &Ctx, slot: String) -> Result<i64, UserError> {
    let n: i64 = ctx.read_as("slots", &slot).await?.unwrap_or(0);
    ctx.write_as("slots", &slot, &(n + 1)).await?;
    Ok(n + 1)
}

#[beldi::function(tables = ["bookings"])]
pub async fn book(ctx: &Ctx, slot: String) -> Result<i64, UserError> {
    let got: Result<i64, UserError> = #[beldi::txn]
    {
        let n = take_slot.call(ctx, &slot).await??;
        ctx.write_as("bookings", &slot, &n).await?;
        Ok(n)
    };
    got
}

/// A span: name, fields as text, the index of its parent.
#[derive(Clone, Debug, Default)]
struct SpanRec {
    name: String,
    fields: BTreeMap<String, String>,
    parent: Option<usize>,
}

impl SpanRec {
    fn f(&self, k: &str) -> &str {
        self.fields.get(k).map(String::as_str).unwrap_or("")
    }
}

#[derive(Default)]
struct State {
    spans: Vec<SpanRec>,
    live: BTreeMap<u64, usize>,
}

#[derive(Clone, Default)]
struct Collector(Arc<Mutex<State>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Collector {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut st = self.0.lock().unwrap();
        let mut rec = SpanRec {
            name: attrs.metadata().name().to_owned(),
            ..Default::default()
        };
        attrs.record(&mut Fields(&mut rec.fields));
        rec.parent = ctx
            .span(id)
            .and_then(|s| s.parent())
            .and_then(|p| st.live.get(&p.id().into_u64()).copied());
        let at = st.spans.len();
        st.spans.push(rec);
        st.live.insert(id.into_u64(), at);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _ctx: Context<'_, S>) {
        let mut st = self.0.lock().unwrap();
        if let Some(&at) = st.live.get(&id.into_u64()) {
            values.record(&mut Fields(&mut st.spans[at].fields));
        }
    }
    fn on_close(&self, id: Id, _ctx: Context<'_, S>) {
        self.0.lock().unwrap().live.remove(&id.into_u64());
    }
}

impl Collector {
    fn spans(&self) -> Vec<SpanRec> {
        self.0.lock().unwrap().spans.clone()
    }
    fn executions(&self, function: &str) -> Vec<(usize, SpanRec)> {
        self.spans()
            .into_iter()
            .enumerate()
            .filter(|(_, s)| s.name == "beldi.execution" && s.f("function") == function)
            .collect()
    }
    fn steps(&self, exec: usize) -> Vec<SpanRec> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == "beldi.step" && s.parent == Some(exec))
            .collect()
    }
}

async fn runtime(dir: &std::path::Path) -> Runtime {
    let opts = EmbeddedOptions {
        durability: Durability::ProcessCrash,
        ..Default::default()
    };
    let rt = Runtime::new(Arc::new(EmbeddedStore::open_with(dir, opts).unwrap()));
    rt.register_all().unwrap();
    rt.provision().await.unwrap();
    rt
}

#[tokio::test]
async fn a_transaction_s_spans_join_one_trace_and_replay_once() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path()).await;
    let c = Collector::default();
    let _g = tracing::subscriber::set_default(tracing_subscriber::registry().with(c.clone()));

    assert_eq!(
        book.invoke(&rt, "b-1", &"s1".to_owned()).await.unwrap(),
        Ok(1)
    );
    let (bi, booking) = c.executions("book").remove(0);
    let steps = c.steps(bi);
    let kinds: Vec<&str> = steps.iter().map(|s| s.f("kind")).collect();
    assert_eq!(
        kinds,
        ["txn_begin", "call", "write", "commit"],
        "{steps:#?}"
    );
    // Call-site step ids: a site in the high bits, the occurrence in the low 24.
    for s in &steps {
        let step: u64 = s.f("step").parse().unwrap();
        assert_ne!(step >> beldi_runtime::ctx::OCCURRENCE_BITS, 0, "{s:?}");
        assert_eq!(s.f("replayed"), "false");
    }
    let txn_id = steps[3].f("target").to_owned();
    assert!(!txn_id.is_empty());
    // The participant ran its part, then its commit, each an execution of the same trace.
    let parts = c.executions("take_slot");
    assert_eq!(parts.len(), 2, "{parts:#?}");
    for (pi, p) in &parts {
        assert_eq!(p.f("trace_id"), booking.f("trace_id"));
        assert_eq!(p.f("caller"), "book/b-1");
        assert_eq!(p.f("outcome"), "ok");
        let kinds: Vec<String> = c
            .steps(*pi)
            .iter()
            .map(|s| s.f("kind").to_owned())
            .collect();
        assert!(
            kinds == ["read", "write"] || kinds == ["commit"],
            "{kinds:?}"
        );
    }
    let commit = c.steps(parts[1].0);
    assert_eq!(commit[0].f("target"), txn_id);

    // A crash before the coordinator's result is recorded, then a re-execution: every step
    // is replayed from the log, and the participant does not run its part again.
    let crash = FaultPlan::crash_instance("b-2", CrashPoint::BeforeDone);
    book.invoke_with(&rt, "b-2", &"s2".to_owned(), crash, 0)
        .await
        .unwrap_err();
    let before = c.executions("take_slot").len();
    assert_eq!(
        book.invoke_with(&rt, "b-2", &"s2".to_owned(), FaultPlan::none(), 1)
            .await
            .unwrap(),
        Ok(1)
    );
    let books = c.executions("book");
    let (ri, replay) = books.last().unwrap().clone();
    assert_eq!(replay.f("replay"), "true");
    assert_eq!(replay.f("outcome"), "ok");
    let steps = c.steps(ri);
    let shape: Vec<(&str, &str, &str)> = steps
        .iter()
        .map(|s| (s.f("kind"), s.f("replayed"), s.f("round_trips")))
        .collect();
    // Every step was logged: all replayed. The begin and the call are served from the log
    // read ahead; the transactional write and the commit re-run their idempotent store
    // parts (what the step costs is what its span says).
    assert_eq!(shape.len(), 4, "{steps:#?}");
    assert!(shape.iter().all(|(_, r, _)| *r == "true"), "{shape:?}");
    assert_eq!(
        &shape[..2],
        [("txn_begin", "true", "0"), ("call", "true", "0")]
    );
    assert_eq!(
        c.executions("take_slot").len(),
        before,
        "no participant runs again"
    );
}
