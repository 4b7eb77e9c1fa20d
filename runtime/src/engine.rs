//! The [`Engine`]: the state of one execution of an instance that every logged operation
//! works on — step identity, the crash plan, the first failure, the operations run — and
//! the log check every step makes. The user's [`Ctx`](crate::ctx::Ctx) is a thin API over
//! it; the data paths ([`crate::logged`], [`crate::txn`], [`crate::baseline`]) and calls
//! ([`crate::calls`]) take it.
//!
//! Every operation gets its **step** when it is *called*, not when it is first polled, so
//! `futures::join!(ctx.read(..), ctx.read(..))` numbers its two reads the same way on every
//! execution. `(instance, step)` names the operation across all re-executions.

use std::collections::{BTreeMap, HashMap};

/// The log records of an instance by sort key, as a re-execution found them when it
/// started.
pub(crate) type Prefetched = HashMap<String, LogRecord>;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use crate::crash::{CrashPoint, FaultPlan};
use crate::deferred::{self, DeferredLog};
use crate::error::BeldiError;
use crate::invocation::PlatformHandle;
use crate::log;
use crate::schema::{LogRecord, StepKind, callee_id, entry_id, step_key};
use crate::store::{AttrValue, Store};
use crate::tables::SsfTables;
use crate::telemetry::{self, MeteredStore, TraceContext};

/// Bits of a step that hold the occurrence number of its call site.
pub const OCCURRENCE_BITS: u32 = 24;

/// The state of one execution of an instance.
pub(crate) struct Engine {
    /// The platform it runs on.
    pub(crate) platform: PlatformHandle,
    /// The store, as this execution sees it: metered, so a step's span can say how many
    /// round trips it made ([`telemetry::MeteredStore`]; every call goes through unchanged).
    pub(crate) store: Arc<dyn Store>,
    /// The id of the meter of `store`.
    meter: usize,
    /// This execution's trace context (what its calls carry, see [`telemetry::outgoing`]).
    pub(crate) trace: TraceContext,
    /// The function's tables.
    pub(crate) tables: SsfTables,
    /// The instance id.
    pub(crate) instance: String,
    /// DAAL row capacity N.
    pub(crate) row_capacity: u64,
    /// Longest an older transaction waits for a lock held by a younger one.
    pub(crate) lock_wait: Duration,
    /// The crash plan, and which execution this is for it.
    pub(crate) plan: FaultPlan,
    pub(crate) attempt: u32,
    /// Notified when the plan crashes the execution (the platform then drops the body).
    crash: Arc<Notify>,
    crashed: Mutex<Option<CrashPoint>>,
    ops: Mutex<BTreeMap<u64, StepKind>>,
    site_counts: Mutex<HashMap<u32, u64>>,
    next_step: AtomicU64,
    failure: Mutex<Option<BeldiError>>,
    /// A re-execution's log as it was when it started (`None`: a first execution, which
    /// reads nothing ahead). Records are never changed once written (a call's result is
    /// added to its record once, and a record without one is looked up again), so a step
    /// found here needs no round trip; a step not found is looked up in the store.
    prefetched: Option<Prefetched>,
    /// Log records not durable yet ([`crate::deferred`]).
    pub(crate) deferred: DeferredLog,
    /// Steps that made deferred records durable on their own, before their effect.
    flushed: Mutex<Vec<u64>>,
    /// Steps not prefetched that found their record logged by an earlier execution.
    found_logged: Mutex<Vec<u64>>,
}

/// What an engine is made from (the platform fills it in when an execution starts).
pub(crate) struct EngineParts {
    pub(crate) platform: PlatformHandle,
    pub(crate) tables: SsfTables,
    pub(crate) instance: String,
    pub(crate) row_capacity: u64,
    pub(crate) lock_wait: Duration,
    pub(crate) plan: FaultPlan,
    pub(crate) attempt: u32,
    pub(crate) crash: Arc<Notify>,
    pub(crate) prefetched: Option<Prefetched>,
    pub(crate) trace: TraceContext,
}

impl Engine {
    pub(crate) fn new(p: EngineParts) -> Engine {
        let metered = MeteredStore::new(p.platform.store().clone());
        Engine {
            meter: metered.id(),
            store: Arc::new(metered),
            trace: p.trace,
            platform: p.platform,
            tables: p.tables,
            instance: p.instance,
            row_capacity: p.row_capacity,
            lock_wait: p.lock_wait,
            plan: p.plan,
            attempt: p.attempt,
            crash: p.crash,
            crashed: Mutex::new(None),
            ops: Mutex::new(BTreeMap::new()),
            site_counts: Mutex::new(HashMap::new()),
            next_step: AtomicU64::new(0),
            failure: Mutex::new(None),
            prefetched: p.prefetched,
            deferred: DeferredLog::default(),
            flushed: Mutex::new(Vec::new()),
            found_logged: Mutex::new(Vec::new()),
        }
    }

    /// Notes that `step`, not prefetched, found its record logged by an earlier execution
    /// (so its span says it was replayed).
    pub(crate) fn note_found_logged(&self, step: u64) {
        self.found_logged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(step);
    }

    /// Whether `step` was replayed: prefetched, or found logged when it ran.
    pub(crate) fn replayed(&self, step: u64) -> bool {
        self.prefetched(step).is_some()
            || self
                .found_logged
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&step)
    }

    /// Logs `(kind, target, value)` at `step` later ([`crate::deferred`]): returns the
    /// record prefetched at `step` (checked to be for the same operation and target), or
    /// defers this one and returns it.
    pub(crate) fn defer_step(
        &self,
        step: u64,
        kind: StepKind,
        target: &str,
        value: Option<AttrValue>,
    ) -> Result<LogRecord, BeldiError> {
        if let Some(rec) = self.prefetched_checked(step, kind, target)? {
            return Ok(rec);
        }
        let rec = LogRecord::new(kind, target, value);
        self.deferred.push(step, rec.clone());
        Ok(rec)
    }

    /// The record prefetched at `step`, if any, checked to be for `kind` of `target`.
    fn prefetched_checked(
        &self,
        step: u64,
        kind: StepKind,
        target: &str,
    ) -> Result<Option<LogRecord>, BeldiError> {
        match self.prefetched(step) {
            Some(rec) => {
                self.check_log(step, rec, kind, target)?;
                Ok(Some(rec.clone()))
            }
            None => Ok(None),
        }
    }

    /// Makes the deferred log records durable before `step`'s own effect (nothing to do, no
    /// round trip, when there are none); the crash point [`CrashPoint::Flushed`] when there
    /// were.
    pub(crate) async fn flush_before(&self, step: u64) -> Result<(), BeldiError> {
        let log = self.tables.log();
        if deferred::flush(&*self.store, &log, &self.instance, &self.deferred).await? {
            self.flushed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(step);
            self.maybe_crash(CrashPoint::Flushed(step)).await;
        }
        Ok(())
    }

    /// The steps that made deferred records durable on their own.
    pub(crate) fn flushed(&self) -> Vec<u64> {
        self.flushed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether this is the execution that created the instance (nothing was read ahead).
    pub(crate) fn is_first_execution(&self) -> bool {
        self.prefetched.is_none()
    }

    /// The record prefetched under sort key `sort`, if any.
    pub(crate) fn prefetched_at(&self, sort: &str) -> Option<&LogRecord> {
        self.prefetched.as_ref()?.get(sort)
    }

    /// The record of `step` prefetched, if any.
    pub(crate) fn prefetched(&self, step: u64) -> Option<&LogRecord> {
        self.prefetched_at(&step_key(step))
    }

    /// The id of the meter of this execution's store (for [`telemetry::metered`]).
    pub(crate) fn meter(&self) -> usize {
        self.meter
    }

    /// The function's name.
    pub(crate) fn function(&self) -> &str {
        self.tables.ssf()
    }

    /// Steps allocated so far.
    pub(crate) fn steps(&self) -> u64 {
        self.next_step.load(Ordering::SeqCst)
    }

    /// The next step of call site `site` (`None`: plain sequential numbering): a
    /// macro-identified site gets `site << 24 | occurrence`, where occurrence counts the
    /// site's earlier operations in this execution.
    pub(crate) fn alloc(&self, site: Option<u32>) -> u64 {
        let plain = self.next_step.fetch_add(1, Ordering::SeqCst);
        let Some(site) = site else {
            return plain;
        };
        let mut occ = self.site_counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = occ.entry(site).or_insert(0);
        let step = ((site as u64) << OCCURRENCE_BITS) | (*n & ((1 << OCCURRENCE_BITS) - 1));
        *n += 1;
        step
    }

    /// Records that `step` is an operation of kind `kind` (for traces).
    pub(crate) fn note(&self, step: u64, kind: StepKind) {
        self.ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(step, kind);
    }

    /// The operations this execution ran: step and kind, in step order.
    pub(crate) fn ops(&self) -> Vec<(u64, StepKind)> {
        self.ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(s, k)| (*s, *k))
            .collect()
    }

    /// The DAAL entry id of `step`.
    pub(crate) fn cid(&self, step: u64) -> String {
        entry_id(&self.instance, step)
    }

    /// The instance id of the callee of `step`.
    pub(crate) fn callee_id(&self, step: u64) -> String {
        callee_id(self.function(), &self.instance, step)
    }

    /// Records `e` as this execution's failure unless one is recorded: the execution is
    /// then not recorded as done, whatever the body returns.
    pub(crate) fn record_failure(&self, e: BeldiError) {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(e);
    }

    /// A description of this execution's first failure, if any (the failure stays
    /// recorded): a transaction abort as it is, anything else as a crash of the instance.
    pub(crate) fn failed(&self) -> Option<BeldiError> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|e| match e {
                BeldiError::TxnAborted { .. } => e.clone(),
                other => BeldiError::Crashed {
                    function: self.function().to_owned(),
                    instance: self.instance.clone(),
                    reason: other.to_string(),
                },
            })
    }

    /// Takes this execution's first failure.
    pub(crate) fn take_failure(&self) -> Option<BeldiError> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Where the plan crashed the execution, if it did.
    pub(crate) fn crashed_at(&self) -> Option<CrashPoint> {
        *self.crashed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Crashes here if the fault plan says so: signals the platform, which drops the body,
    /// and never returns.
    pub(crate) async fn maybe_crash(&self, point: CrashPoint) {
        if let Some(gate) = self.plan.pauses(&self.instance, self.attempt, point) {
            gate.wait().await;
        }
        if self.plan.crashes(&self.instance, self.attempt, point) {
            *self.crashed.lock().unwrap_or_else(|e| e.into_inner()) = Some(point);
            telemetry::crash_event(point.step(), &point);
            self.crash.notify_one();
            std::future::pending::<()>().await;
        }
    }

    /// Logs `(kind, target, value)` at `step` unless logged already; returns the record in
    /// the log, after checking it is for the same operation and target.
    pub(crate) async fn log_step(
        &self,
        step: u64,
        kind: StepKind,
        target: &str,
        value: Option<AttrValue>,
    ) -> Result<LogRecord, BeldiError> {
        if let Some(rec) = self.prefetched_checked(step, kind, target)? {
            return Ok(rec);
        }
        let rec = LogRecord::new(kind, target, value);
        let table = self.tables.log();
        let got = log::record(&*self.store, &table, &self.instance, step, rec).await?;
        self.check_log(step, &got, kind, target)?;
        Ok(got)
    }

    /// The record logged at `step`, if any, checked to be for `kind` of `target`.
    pub(crate) async fn logged(
        &self,
        step: u64,
        kind: StepKind,
        target: &str,
    ) -> Result<Option<LogRecord>, BeldiError> {
        let got = match self.prefetched(step) {
            Some(rec) => Some(rec.clone()),
            None => log::get(&*self.store, &self.tables.log(), &self.instance, step).await?,
        };
        if let Some(rec) = &got {
            self.check_log(step, rec, kind, target)?;
        }
        Ok(got)
    }

    /// Fails with [`BeldiError::NonDeterminism`] unless `got` records `want` of `target`.
    pub(crate) fn check_log(
        &self,
        step: u64,
        got: &LogRecord,
        want: StepKind,
        target: &str,
    ) -> Result<(), BeldiError> {
        if got.is(want, target) {
            return Ok(());
        }
        Err(self.diverged(step, got.describe(), want, target))
    }

    /// The non-determinism of a replay asking for `want` of `target` at `step` where
    /// `logged` was logged.
    pub(crate) fn diverged(
        &self,
        step: u64,
        logged: String,
        want: StepKind,
        target: &str,
    ) -> BeldiError {
        BeldiError::NonDeterminism {
            instance: self.instance.clone(),
            step,
            logged,
            requested: format!("{want} of `{target}`"),
        }
    }
}

/// A write a body asks for: which key, what kind, which actions (paths relative to the
/// value), under which condition.
#[derive(Clone, Copy)]
pub(crate) struct WriteOp<'a> {
    /// The function's data table.
    pub(crate) table: &'a str,
    /// The key.
    pub(crate) key: &'a str,
    /// The kind of write.
    pub(crate) entry: crate::daal::Entry,
    /// The update actions.
    pub(crate) actions: &'a [crate::store::UpdateAction],
    /// The condition (`cond_write`).
    pub(crate) cond: Option<&'a crate::store::Condition>,
}
