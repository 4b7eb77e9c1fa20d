//! [`Ctx`]: what a function body receives — a thin API over the execution's
//! [`Engine`](crate::engine::Engine), split by capability: data ([`data`]: read, write,
//! scan…), calls ([`calls`]: call, spawn), logged values and time ([`values`]: side
//! effects, clocks, randomness, sleep) and transactions ([`txn`]).
//!
//! The data path is chosen once, when the context is made: logged ([`crate::logged`]),
//! inside a transaction ([`crate::txn`]) or baseline ([`crate::baseline`]). Any failed
//! operation marks the execution as failed: it is not recorded as done, whatever the body
//! returns, so an error the body turned into its own error type is never stored as the
//! instance's result.

mod calls;
mod data;
pub(crate) mod txn;
mod values;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::{Instrument, Span};

use crate::crash::CrashPoint;
use crate::engine::Engine;
use crate::error::BeldiError;
use crate::telemetry;
use crate::txn::TxnState;

pub use crate::engine::OCCURRENCE_BITS;

/// The handle a function body uses for every logged operation. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub(crate) engine: Arc<Engine>,
    /// The call site the next operation is made from (set by the macros).
    pub(crate) site: Option<u32>,
    /// How its operations reach the data.
    pub(crate) path: DataPath,
}

/// Records a step's round trips in its span when dropped.
struct RecordTrips(Span, Arc<AtomicU64>);

impl Drop for RecordTrips {
    fn drop(&mut self) {
        self.0.record("round_trips", self.1.load(Ordering::Relaxed));
    }
}

/// How a context's operations reach the data, chosen when the context is made.
#[derive(Clone)]
pub(crate) enum DataPath {
    /// Logged, exactly once ([`crate::logged`]).
    Logged,
    /// Inside a transaction ([`crate::txn`]).
    Txn(Arc<TxnState>),
    /// Plain store operations, nothing logged ([`crate::baseline`]).
    Baseline,
}

impl Ctx {
    /// A context over `engine` on data path `path`.
    pub(crate) fn new(engine: Arc<Engine>, path: DataPath) -> Ctx {
        Ctx {
            engine,
            site: None,
            path,
        }
    }

    /// The transaction this context works in, if any.
    pub(crate) fn txn(&self) -> Option<&Arc<TxnState>> {
        match &self.path {
            DataPath::Txn(t) => Some(t),
            _ => None,
        }
    }

    /// Whether this context runs in baseline mode (plain store operations, nothing logged).
    pub(crate) fn baseline(&self) -> bool {
        matches!(self.path, DataPath::Baseline)
    }

    /// Whether this context is inside a `#[beldi::txn]` block or function.
    pub fn in_transaction(&self) -> bool {
        self.txn().is_some()
    }

    /// The id of the running instance.
    pub fn instance_id(&self) -> &str {
        &self.engine.instance
    }

    /// The name of the running function.
    pub fn function(&self) -> &str {
        self.engine.function()
    }

    /// Steps allocated so far.
    pub fn steps(&self) -> u64 {
        self.engine.steps()
    }

    /// The next step of this context's call site. (The step is noted with its kind when the
    /// operation runs, so a trace shows only operations that ran.)
    pub(crate) fn alloc(&self) -> u64 {
        self.engine.alloc(self.site)
    }

    /// The context as seen from call site `site` (used by the code `#[beldi::function]`
    /// generates): operations made through it get the step `site << 24 | occurrence`, where
    /// occurrence counts the site's earlier operations in this execution. Site ids come from
    /// the call's own tokens, so editing unrelated code does not move them. Site 0 is
    /// reserved for plain sequential numbering.
    #[doc(hidden)]
    pub fn __site(&self, site: u32) -> Ctx {
        Ctx {
            site: Some(site.max(1)),
            ..self.clone()
        }
    }

    /// Runs one logged operation with its crash points and failure tracking, in `span`
    /// (its [`telemetry::step_span`]): records whether the step was replayed and the round
    /// trips it made, unless no subscriber wants the span. With `flush`, the log records
    /// deferred before it are made durable first ([`crate::deferred`]): every operation but
    /// the ones that defer their own record or carry the deferred ones with their effect.
    pub(crate) async fn step<T>(
        &self,
        step: u64,
        flush: bool,
        span: Span,
        op: impl Future<Output = Result<T, BeldiError>>,
    ) -> Result<T, BeldiError> {
        let op = async {
            if flush {
                self.engine.flush_before(step).await?;
            }
            op.await
        };
        if span.is_disabled() {
            return self.run_step(step, op).await;
        }
        span.record("replayed", self.engine.prefetched(step).is_some());
        // Recorded when the step ends, or is dropped by a crash mid-step.
        let trips = RecordTrips(span.clone(), Arc::new(AtomicU64::new(0)));
        let run = telemetry::metered(self.engine.meter(), &trips.1, self.run_step(step, op));
        let out = run.instrument(span.clone()).await;
        if self.engine.replayed(step) {
            // Not prefetched, but found logged by an earlier execution when it ran.
            span.record("replayed", true);
        }
        out
    }

    /// [`Ctx::step`] without its span.
    async fn run_step<T>(
        &self,
        step: u64,
        op: impl Future<Output = Result<T, BeldiError>>,
    ) -> Result<T, BeldiError> {
        self.engine.maybe_crash(CrashPoint::Before(step)).await;
        match op.await {
            Ok(v) => {
                self.engine.maybe_crash(CrashPoint::After(step)).await;
                Ok(v)
            }
            Err(e) => {
                let died = matches!(e, BeldiError::TxnAborted { wait_die: true, .. });
                telemetry::step_failed(step, &e, died);
                if let (
                    BeldiError::TxnAborted {
                        wait_die: true,
                        reason,
                        ..
                    },
                    Some(t),
                ) = (&e, self.txn())
                {
                    t.mark_died(reason);
                    if t.coordinator {
                        // An expected outcome: the transaction block aborts and may retry.
                        return Err(e);
                    }
                    // A participant does not finish: its caller learns of the death and the
                    // coordinator aborts (and may retry) the whole transaction.
                }
                // The platform reports the original error; the body gets it wrapped, so
                // whatever it makes of it, the execution is not recorded as done.
                let seen = BeldiError::StepFailed {
                    step,
                    source: Box::new(e.clone()),
                };
                self.engine.record_failure(e);
                Err(seen)
            }
        }
    }
}
