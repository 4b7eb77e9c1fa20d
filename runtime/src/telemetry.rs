//! Tracing: the spans and events the runtime emits, the trace context that travels with an
//! [`Invocation`](crate::Invocation) (and in the remote envelope), the metering of store
//! round trips per step, and (feature `otel`) the OpenTelemetry glue.
//!
//! Every span and event has target [`TARGET`] (`beldi`): filter with `beldi=debug` to see
//! the steps, `beldi=info` for executions only.
//!
//! - [`EXECUTION_SPAN`] (`beldi.execution`, INFO), one per execution of an instance:
//!   `function`, `instance`, `attempt`, `caller` (`function/instance` of the caller, empty
//!   for a root request), `replay` (whether it found steps logged by an earlier execution
//!   in the log it read ahead: false on a first execution; true for a repeated request of
//!   a finished instance), `logged` (the log records read ahead, 0 on a first execution),
//!   `trace_id` (32 hex digits, shared by every execution of one request), and, at its end,
//!   `ran` (false when the stored result was returned without running the body), `steps`
//!   and `outcome` (`ok`, `err` — the body returned an error —, `died` — a transaction
//!   participant died under wait-die —, `failed`, `crashed`, `aborted` — a transaction
//!   abort —, or `error`).
//! - [`STEP_SPAN`] (`beldi.step`, DEBUG), one per logged step, inside its execution's span:
//!   `step`, `kind` ([`StepKind`] name), `target` (`table/key` of a data step, the table of
//!   a scan, `function/instance` of a call's or spawn's callee, the label of a logged value,
//!   the transaction of a commit or abort), `replayed` (the step was in the log when this
//!   execution started, so its effect is not applied again) and `round_trips` (store calls
//!   the step made; 0 for a replayed step served from the log read ahead).
//! - Events: an injected crash (WARN, `step`, `point`), a step that failed (WARN, or DEBUG
//!   for a wait-die death; `step`, `error`), an execution that ended in an error (WARN,
//!   `error`).
//!
//! Without feature `otel` the runtime makes its own trace ids: a root request gets a new
//! one, every invocation it makes carries it in a W3C `traceparent`-style
//! [`TraceContext`], and `trace_id` joins the logs of one request across functions and
//! processes. With `otel`, the execution span's OpenTelemetry parent is the incoming
//! context, the context a call sends is the current span's, and `trace_id` is the
//! OpenTelemetry trace id; [`otlp_layer`] installs an OTLP/HTTP exporter.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use async_trait::async_trait;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tracing::Span;
use tracing::field::Empty;

use crate::schema::{CallerRef, StepKind};
use crate::store::{
    BatchGet, BatchWrite, Delete, Item, Key, Page, Path, Put, Query, Scan, Store, StoreError,
    TableSpec, TransactWrite, Update,
};

/// The target of every span and event the runtime emits for executions and steps.
pub const TARGET: &str = "beldi";
/// The name of the span of one execution of an instance.
pub const EXECUTION_SPAN: &str = "beldi.execution";
/// The name of the span of one logged step.
pub const STEP_SPAN: &str = "beldi.step";

/// A W3C trace context (`traceparent`: `00-<trace id>-<parent span id>-<flags>`): which
/// trace an invocation belongs to and which span made it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: u128,
    span_id: u64,
    sampled: bool,
}

/// Why a `traceparent` string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed traceparent `{value}`: {reason}")]
pub struct TraceContextError {
    /// The string.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl TraceContext {
    /// A context with these ids (`None` if either is zero, which W3C forbids).
    pub fn new(trace_id: u128, span_id: u64, sampled: bool) -> Option<TraceContext> {
        (trace_id != 0 && span_id != 0).then_some(TraceContext {
            trace_id,
            span_id,
            sampled,
        })
    }

    /// The start of a new trace: random trace and span ids, sampled.
    pub fn new_root() -> TraceContext {
        TraceContext {
            trace_id: rand::random::<u128>().max(1),
            span_id: rand::random::<u64>().max(1),
            sampled: true,
        }
    }

    /// A new span of the same trace.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            span_id: rand::random::<u64>().max(1),
            ..*self
        }
    }

    /// The trace id.
    pub fn trace_id(&self) -> u128 {
        self.trace_id
    }

    /// The span id (the parent of what this context is sent to).
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// Whether the trace is sampled.
    pub fn sampled(&self) -> bool {
        self.sampled
    }

    /// The trace id as 32 lowercase hex digits (as the `trace_id` field shows it).
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The `traceparent` form.
    pub fn to_traceparent(&self) -> String {
        self.to_string()
    }

    /// Reads a `traceparent` (version `00`; a later version's first four fields are read,
    /// as W3C asks).
    pub fn parse(s: &str) -> Result<TraceContext, TraceContextError> {
        let bad = |reason| TraceContextError {
            value: s.chars().take(80).collect(),
            reason,
        };
        let parts: Vec<&str> = s.trim().split('-').collect();
        let [version, trace, span, flags, rest @ ..] = parts.as_slice() else {
            return Err(bad("not four dash-separated fields"));
        };
        let hex = |f: &str, n: usize| {
            (f.len() == n
                && f.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
            .then_some(())
        };
        hex(version, 2).ok_or_else(|| bad("the version is not two hex digits"))?;
        if *version == "ff" || (*version == "00" && !rest.is_empty()) {
            return Err(bad("an invalid version or extra fields"));
        }
        hex(trace, 32).ok_or_else(|| bad("the trace id is not 32 hex digits"))?;
        hex(span, 16).ok_or_else(|| bad("the parent id is not 16 hex digits"))?;
        hex(flags, 2).ok_or_else(|| bad("the flags are not two hex digits"))?;
        let trace_id = u128::from_str_radix(trace, 16).map_err(|_| bad("the trace id"))?;
        let span_id = u64::from_str_radix(span, 16).map_err(|_| bad("the parent id"))?;
        let flags = u8::from_str_radix(flags, 16).map_err(|_| bad("the flags"))?;
        TraceContext::new(trace_id, span_id, flags & 1 == 1).ok_or_else(|| bad("a zero id"))
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id,
            self.span_id,
            u8::from(self.sampled)
        )
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceContext({self})")
    }
}

impl Serialize for TraceContext {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TraceContext {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<TraceContext, D::Error> {
        let s = String::deserialize(d)?;
        TraceContext::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Reads an optional `traceparent` leniently: a malformed one is ignored (as W3C asks of
/// a receiver), not a reason to refuse the message that carries it.
pub(crate) fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Option<TraceContext>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) => TraceContext::parse(&s).ok(),
        _ => None,
    })
}

/// `function/instance` of a caller, empty for none (formatted only when recorded).
struct CallerField<'a>(Option<&'a CallerRef>);

impl fmt::Display for CallerField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(c) => write!(f, "{}/{}", c.function, c.instance),
            None => Ok(()),
        }
    }
}

/// The span of one execution of `instance` of `function` (see the module docs); `replay`,
/// `logged`, `trace_id`, `ran`, `steps` and `outcome` are recorded later.
pub(crate) fn execution_span(
    function: &str,
    instance: &str,
    attempt: u32,
    caller: Option<&CallerRef>,
) -> Span {
    tracing::info_span!(
        target: TARGET,
        "beldi.execution",
        function,
        instance,
        attempt,
        caller = %CallerField(caller),
        replay = Empty,
        logged = Empty,
        trace_id = Empty,
        ran = Empty,
        steps = Empty,
        outcome = Empty,
    )
}

/// Joins the execution of `span` to the trace of `incoming` (a new trace if none) and
/// records its `trace_id`; returns the context of this execution, which is what its
/// invocations carry unless a more precise span is current (see [`outgoing`]).
pub(crate) fn enter_trace(span: &Span, incoming: Option<TraceContext>) -> TraceContext {
    #[cfg(feature = "otel")]
    if let Some(ctx) = otel::adopt(span, incoming) {
        span.record(
            "trace_id",
            tracing::field::display(format_args!("{:032x}", ctx.trace_id)),
        );
        return ctx;
    }
    let ctx = match incoming {
        Some(c) => c.child(),
        None => TraceContext::new_root(),
    };
    span.record(
        "trace_id",
        tracing::field::display(format_args!("{:032x}", ctx.trace_id)),
    );
    ctx
}

/// The context an invocation made now by an execution whose context is `execution`
/// carries: with `otel` and an OpenTelemetry layer, the current span's (the calling step);
/// else the execution's.
pub(crate) fn outgoing(execution: &TraceContext) -> TraceContext {
    #[cfg(feature = "otel")]
    if let Some(ctx) = otel::current() {
        return ctx;
    }
    *execution
}

/// The trace context of the current span, with feature `otel` and an OpenTelemetry layer
/// (`None` otherwise): what a client sending a root request passes on.
pub fn current() -> Option<TraceContext> {
    #[cfg(feature = "otel")]
    {
        otel::current()
    }
    #[cfg(not(feature = "otel"))]
    {
        None
    }
}

/// The span of logged step `step` of kind `kind` on `target` (see the module docs);
/// `replayed` and `round_trips` are recorded when the step runs.
pub(crate) fn step_span(step: u64, kind: StepKind, target: fmt::Arguments<'_>) -> Span {
    tracing::debug_span!(
        target: TARGET,
        "beldi.step",
        step,
        kind = kind.as_str(),
        "target" = %target,
        replayed = Empty,
        round_trips = Empty,
    )
}

/// Records an injected crash at `point` (`step`: the step it is at, if any).
pub(crate) fn crash_event(step: Option<u64>, point: &dyn fmt::Display) {
    tracing::warn!(target: TARGET, step, point = %point, "injected crash");
}

/// Records that step `step` failed with `error` (`expected`: a wait-die death, which the
/// transaction retries).
pub(crate) fn step_failed(step: u64, error: &dyn fmt::Display, expected: bool) {
    if expected {
        tracing::debug!(target: TARGET, step, error = %error, "step failed");
    } else {
        tracing::warn!(target: TARGET, step, error = %error, "step failed");
    }
}

/// Records the end of the execution of `span`: whether the body `ran`, its `steps`, its
/// `outcome`; and an event for an execution that ended in an error.
pub(crate) fn finish_execution(
    span: &Span,
    ran: Option<bool>,
    steps: Option<u64>,
    outcome: &str,
    error: Option<&dyn fmt::Display>,
) {
    if span.is_disabled() {
        return;
    }
    if let Some(ran) = ran {
        span.record("ran", ran);
    }
    if let Some(steps) = steps {
        span.record("steps", steps);
    }
    span.record("outcome", outcome);
    if let Some(error) = error {
        span.in_scope(|| {
            tracing::warn!(target: TARGET, outcome, error = %error, "execution failed");
        });
    }
}

static NEXT_METER: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// The step being polled on this thread: its execution's meter id and its counter.
    static CURRENT_STEP: RefCell<Option<(usize, Arc<AtomicU64>)>> = const { RefCell::new(None) };
}

/// A per-execution view of the store that counts, for the step being polled (see
/// [`metered`]), the store calls made through it. Every call goes to the store as it is:
/// the number of calls does not change. Calls made while no step of this execution is
/// being polled (or by another execution, a callee run inline by a call step) are not
/// counted.
pub(crate) struct MeteredStore {
    inner: Arc<dyn Store>,
    id: usize,
}

impl MeteredStore {
    /// A metered view of `inner`, with a meter id of its own.
    pub(crate) fn new(inner: Arc<dyn Store>) -> MeteredStore {
        MeteredStore {
            inner,
            id: NEXT_METER.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// This view's meter id (what [`metered`] takes).
    pub(crate) fn id(&self) -> usize {
        self.id
    }

    fn count(&self) {
        CURRENT_STEP.with(|c| {
            if let Some((id, n)) = &*c.borrow()
                && *id == self.id
            {
                n.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

#[async_trait]
impl Store for MeteredStore {
    fn backend_name(&self) -> &'static str {
        self.inner.backend_name()
    }
    async fn create_table(&self, spec: &TableSpec) -> Result<bool, StoreError> {
        self.count();
        self.inner.create_table(spec).await
    }
    async fn delete_table(&self, name: &str) -> Result<bool, StoreError> {
        self.count();
        self.inner.delete_table(name).await
    }
    async fn describe_table(&self, name: &str) -> Result<TableSpec, StoreError> {
        self.count();
        self.inner.describe_table(name).await
    }
    async fn list_tables(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.count();
        self.inner.list_tables(prefix).await
    }
    async fn get(&self, table: &str, key: &Key) -> Result<Option<Item>, StoreError> {
        self.count();
        self.inner.get(table, key).await
    }
    async fn get_projected(
        &self,
        table: &str,
        key: &Key,
        projection: &[Path],
    ) -> Result<Option<Item>, StoreError> {
        self.count();
        self.inner.get_projected(table, key, projection).await
    }
    async fn batch_get(&self, req: BatchGet) -> Result<Vec<Option<Item>>, StoreError> {
        self.count();
        self.inner.batch_get(req).await
    }
    async fn batch_write(&self, req: BatchWrite) -> Result<(), StoreError> {
        self.count();
        self.inner.batch_write(req).await
    }
    async fn put(&self, req: Put) -> Result<Option<Item>, StoreError> {
        self.count();
        self.inner.put(req).await
    }
    async fn update(&self, req: Update) -> Result<Option<Item>, StoreError> {
        self.count();
        self.inner.update(req).await
    }
    async fn delete(&self, req: Delete) -> Result<Option<Item>, StoreError> {
        self.count();
        self.inner.delete(req).await
    }
    async fn query(&self, req: Query) -> Result<Page, StoreError> {
        self.count();
        self.inner.query(req).await
    }
    async fn scan(&self, req: Scan) -> Result<Page, StoreError> {
        self.count();
        self.inner.scan(req).await
    }
    async fn transact_write(&self, req: TransactWrite) -> Result<(), StoreError> {
        self.count();
        self.inner.transact_write(req).await
    }
}

/// Restores the step polled before on drop.
struct Polling(Option<(usize, Arc<AtomicU64>)>);

impl Drop for Polling {
    fn drop(&mut self) {
        let prev = self.0.take();
        CURRENT_STEP.with(|c| *c.borrow_mut() = prev);
    }
}

/// Runs `fut` (one step of the execution whose [`MeteredStore`] has id `meter`) counting in
/// `counter` the store calls it makes through that store, even when other steps of the
/// execution run at the same time (each poll says which step is running).
pub(crate) async fn metered<F: Future>(
    meter: usize,
    counter: &Arc<AtomicU64>,
    fut: F,
) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(|cx| {
        let prev = CURRENT_STEP.with(|c| c.borrow_mut().replace((meter, counter.clone())));
        let _restore = Polling(prev);
        fut.as_mut().poll(cx)
    })
    .await
}

#[cfg(feature = "otel")]
pub use otel::{OtlpError, otlp_layer};

#[cfg(feature = "otel")]
mod otel {
    //! The OpenTelemetry side (feature `otel`).

    use std::fmt;
    use std::time::Duration;

    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider,
    };
    use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
    use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
    use tracing::Span;
    use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};

    use super::TraceContext;

    impl From<&SpanContext> for TraceContext {
        fn from(sc: &SpanContext) -> TraceContext {
            TraceContext {
                trace_id: u128::from_be_bytes(sc.trace_id().to_bytes()),
                span_id: u64::from_be_bytes(sc.span_id().to_bytes()),
                sampled: sc.is_sampled(),
            }
        }
    }

    impl TraceContext {
        /// This context as a remote OpenTelemetry parent.
        pub fn to_otel(&self) -> opentelemetry::Context {
            let flags = if self.sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            };
            let sc = SpanContext::new(
                TraceId::from_bytes(self.trace_id.to_be_bytes()),
                SpanId::from_bytes(self.span_id.to_be_bytes()),
                flags,
                true,
                TraceState::default(),
            );
            opentelemetry::Context::new().with_remote_span_context(sc)
        }
    }

    /// Makes `incoming` the OpenTelemetry parent of `span`; returns the span's own context,
    /// or `None` when no OpenTelemetry layer gives it one.
    pub(super) fn adopt(span: &Span, incoming: Option<TraceContext>) -> Option<TraceContext> {
        if span.is_disabled() {
            return None;
        }
        if let Some(parent) = incoming {
            // Fails only when no OpenTelemetry layer sees the span: then nothing to join.
            let _ = span.set_parent(parent.to_otel());
        }
        let ctx = span.context();
        let sc = ctx.span().span_context().clone();
        sc.is_valid().then(|| TraceContext::from(&sc))
    }

    /// The OpenTelemetry context of the current span, if it has a valid one.
    pub(super) fn current() -> Option<TraceContext> {
        let span = Span::current();
        if span.is_disabled() {
            return None;
        }
        let ctx = span.context();
        let sc = ctx.span().span_context().clone();
        sc.is_valid().then(|| TraceContext::from(&sc))
    }

    /// Why the OTLP exporter could not be set up.
    #[derive(Debug, thiserror::Error)]
    pub enum OtlpError {
        /// It needs a Tokio runtime to send from, and none is running.
        #[error("the OTLP exporter must be set up inside a Tokio runtime")]
        NoRuntime,
        /// The exporter refused its configuration.
        #[error("the OTLP exporter could not be built: {0}")]
        Build(String),
    }

    /// An HTTP client that sends on the Tokio runtime it was made in, whatever thread asks
    /// (the batch span processor exports from a thread of its own).
    #[derive(Clone)]
    struct TokioHyper {
        inner: opentelemetry_http::hyper::HyperClient,
        handle: tokio::runtime::Handle,
    }

    impl fmt::Debug for TokioHyper {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("TokioHyper")
        }
    }

    #[async_trait::async_trait]
    impl HttpClient for TokioHyper {
        async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
            let inner = self.inner.clone();
            self.handle
                .spawn(async move { inner.send_bytes(request).await })
                .await?
        }
    }

    /// A `tracing` layer exporting the runtime's spans (and any others) to the OTLP/HTTP
    /// (protobuf) collector at `endpoint` (e.g. `http://localhost:4318/v1/traces`) as
    /// service `service_name`, in batches, and the provider that owns the exporter: call
    /// [`SdkTracerProvider::shutdown`] (or `force_flush`) before the process exits so the
    /// last batch is sent. Must be called inside a Tokio runtime, which sends the batches.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use tracing_subscriber::layer::SubscriberExt;
    /// let (layer, provider) =
    ///     beldi_runtime::telemetry::otlp_layer("http://localhost:4318/v1/traces", "travel")?;
    /// let subscriber = tracing_subscriber::registry().with(layer);
    /// tracing::subscriber::set_global_default(subscriber)?;
    /// // … run requests …
    /// provider.shutdown()?;
    /// # Ok(()) }
    /// ```
    pub fn otlp_layer<S>(
        endpoint: &str,
        service_name: &str,
    ) -> Result<(OpenTelemetryLayer<S, SdkTracer>, SdkTracerProvider), OtlpError>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| OtlpError::NoRuntime)?;
        let timeout = Duration::from_secs(10);
        let client = TokioHyper {
            inner: opentelemetry_http::hyper::HyperClient::with_default_connector(timeout, None),
            handle,
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_timeout(timeout)
            .build()
            .map_err(|e| OtlpError::Build(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(service_name.to_owned())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("beldi");
        Ok((tracing_opentelemetry::layer().with_tracer(tracer), provider))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips() {
        let c = TraceContext::new(0xabc, 0x12, true).expect("non-zero ids");
        let s = c.to_traceparent();
        assert_eq!(s, "00-00000000000000000000000000000abc-0000000000000012-01");
        assert_eq!(TraceContext::parse(&s), Ok(c));
        let json = serde_json::to_string(&c).expect("serializes");
        assert_eq!(json, format!("\"{s}\""));
        let back: TraceContext = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, c);
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00-abc-12-01",
            "00-00000000000000000000000000000000-0000000000000012-01",
            "00-00000000000000000000000000000abc-0000000000000000-01",
            "00-00000000000000000000000000000ABC-0000000000000012-01",
            "ff-00000000000000000000000000000abc-0000000000000012-01",
            "00-00000000000000000000000000000abc-0000000000000012-01-x",
        ] {
            assert!(TraceContext::parse(bad).is_err(), "{bad}");
        }
        // A later version may add fields.
        assert!(
            TraceContext::parse("01-00000000000000000000000000000abc-0000000000000012-00-x")
                .is_ok()
        );
    }

    #[test]
    fn a_child_keeps_the_trace() {
        let root = TraceContext::new_root();
        let child = root.child();
        assert_eq!(child.trace_id(), root.trace_id());
        assert_ne!(child.span_id(), 0);
    }
}
