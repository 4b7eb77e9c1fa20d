//! [`Ctx`]: what a function body receives, and its logged operations.
//!
//! Every operation gets its **step** when it is *called*, not when it is first polled, so
//! `futures::join!(ctx.read(..), ctx.read(..))` numbers its two reads the same way on every
//! execution. `(instance, step)` names the operation across all re-executions:
//!
//! - `read` / `scan`: the value is read from the DAAL tail, then logged in the log table with
//!   put-if-absent; a re-execution gets the logged value back.
//! - `write` / `cond_write` / `delete`: one conditional update of the DAAL tail applies the
//!   change and adds the entry `"<instance>#<step>"` atomically; a re-execution finds the
//!   entry and does nothing again (a `cond_write` returns its logged boolean).
//!
//! A log record says which operation and target it was for; a replay that asks for another
//! at that step fails with [`BeldiError::NonDeterminism`]. Any failed operation marks the
//! execution as failed: it is not recorded as done, whatever the body returns, so an error
//! the body turned into its own error type is never stored as the instance's result.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::daal::{Daal, Entry, VALUE, WriteResult};
use crate::error::BeldiError;
use crate::fault::{CrashPoint, FaultPlan};
use crate::log::{self, LogRecord};
use crate::platform::{Runtime, decode_result_of};
use crate::store::{AttrValue, Condition, Path, Store, UpdateAction};
use crate::tables::SsfTables;
use crate::value::{from_attr, to_attr};

/// The handle a function body uses for every logged operation. Cheap to clone.
#[derive(Clone)]
pub struct Ctx {
    pub(crate) inner: Arc<CtxInner>,
    /// The call site the next operation is made from (set by the macros).
    pub(crate) site: Option<u32>,
    /// The transaction this context works in, if any.
    pub(crate) txn: Option<Arc<crate::txn::TxnState>>,
}

/// Bits of a step that hold the occurrence number of its call site.
pub const OCCURRENCE_BITS: u32 = 24;

pub(crate) struct CtxInner {
    pub(crate) rt: Runtime,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tables: SsfTables,
    pub(crate) instance: String,
    pub(crate) row_capacity: u64,
    ops: Mutex<BTreeMap<u64, &'static str>>,
    site_counts: Mutex<std::collections::HashMap<u32, u64>>,
    pub(crate) plan: FaultPlan,
    pub(crate) attempt: u32,
    pub(crate) crash: Arc<Notify>,
    pub(crate) crashed: Mutex<Option<CrashPoint>>,
    next_step: AtomicU64,
    pub(crate) failure: Mutex<Option<BeldiError>>,
}

/// The separator between instance id and step in a DAAL log entry id.
pub const CID_SEPARATOR: char = '#';

fn target(table: &str, key: &str) -> String {
    format!("{table}/{key}")
}

impl Ctx {
    pub(crate) fn new(
        rt: Runtime,
        tables: SsfTables,
        instance: String,
        plan: FaultPlan,
        attempt: u32,
        crash: Arc<Notify>,
        joined: Option<crate::txn::TxnCtx>,
    ) -> Ctx {
        Ctx {
            site: None,
            txn: joined.map(crate::txn::TxnState::participant),
            inner: Arc::new(CtxInner {
                store: rt.store().clone(),
                row_capacity: rt.config().row_capacity,
                rt,
                tables,
                instance,
                ops: Mutex::new(BTreeMap::new()),
                site_counts: Mutex::new(std::collections::HashMap::new()),
                plan,
                attempt,
                crash,
                crashed: Mutex::new(None),
                next_step: AtomicU64::new(0),
                failure: Mutex::new(None),
            }),
        }
    }

    /// Whether this context runs in baseline mode (plain store operations, nothing logged).
    pub(crate) fn baseline(&self) -> bool {
        self.inner.rt.config().mode == crate::platform::Mode::Baseline
    }

    /// Whether this context is inside a `#[beldi::txn]` block or function.
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    /// The id of the running instance.
    pub fn instance_id(&self) -> &str {
        &self.inner.instance
    }

    /// The name of the running function.
    pub fn function(&self) -> &str {
        self.inner.tables.ssf()
    }

    /// Steps allocated so far.
    pub fn steps(&self) -> u64 {
        self.inner.next_step.load(Ordering::SeqCst)
    }

    pub(crate) fn alloc(&self) -> u64 {
        match self.site {
            // A macro-identified call site: its id, and how many operations it made before.
            Some(site) => {
                let mut occ = self
                    .inner
                    .site_counts
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let n = occ.entry(site).or_insert(0);
                let step = ((site as u64) << OCCURRENCE_BITS) | (*n & ((1 << OCCURRENCE_BITS) - 1));
                *n += 1;
                self.inner.next_step.fetch_add(1, Ordering::SeqCst);
                step
            }
            None => self.inner.next_step.fetch_add(1, Ordering::SeqCst),
        }
    }

    /// The context as seen from call site `site` (used by the code `#[beldi::function]`
    /// generates): operations made through it get the step `site << 24 | occurrence`, where
    /// occurrence counts the site's earlier operations in this execution. Site ids come from
    /// the call's own tokens, so editing unrelated code does not move them. Site 0 is
    /// reserved for plain sequential numbering.
    #[doc(hidden)]
    pub fn __site(&self, site: u32) -> Ctx {
        Ctx {
            inner: self.inner.clone(),
            site: Some(site.max(1)),
            txn: self.txn.clone(),
        }
    }

    pub(crate) fn note(&self, step: u64, kind: &'static str) {
        self.inner
            .ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(step, kind);
    }

    /// The operations this execution ran: step and kind, in step order.
    pub(crate) fn ops(&self) -> Vec<(u64, &'static str)> {
        self.inner
            .ops
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(s, k)| (*s, *k))
            .collect()
    }

    pub(crate) fn cid(&self, step: u64) -> String {
        format!("{}{CID_SEPARATOR}{step}", self.inner.instance)
    }

    /// A description of this execution's first failure, if any (the failure stays recorded).
    pub(crate) fn failed(&self) -> Option<BeldiError> {
        self.inner
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|e| match e {
                BeldiError::TxnAborted {
                    txn,
                    reason,
                    wait_die,
                } => BeldiError::TxnAborted {
                    txn: txn.clone(),
                    reason: reason.clone(),
                    wait_die: *wait_die,
                },
                other => BeldiError::Crashed {
                    function: self.function().to_owned(),
                    instance: self.inner.instance.clone(),
                    reason: other.to_string(),
                },
            })
    }

    pub(crate) fn take_failure(&self) -> Option<BeldiError> {
        self.inner
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    pub(crate) fn crashed_at(&self) -> Option<CrashPoint> {
        *self.inner.crashed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Crashes here if the fault plan says so: signals the platform, which drops the body,
    /// and never returns.
    pub(crate) async fn maybe_crash(&self, point: CrashPoint) {
        if let Some(gate) = self
            .inner
            .plan
            .pauses(&self.inner.instance, self.inner.attempt, point)
        {
            gate.wait().await;
        }
        if self
            .inner
            .plan
            .crashes(&self.inner.instance, self.inner.attempt, point)
        {
            *self.inner.crashed.lock().unwrap_or_else(|e| e.into_inner()) = Some(point);
            self.inner.crash.notify_one();
            std::future::pending::<()>().await;
        }
    }

    /// Runs one logged operation with its crash points and failure tracking.
    pub(crate) async fn step<T>(
        &self,
        step: u64,
        op: impl Future<Output = Result<T, BeldiError>>,
    ) -> Result<T, BeldiError> {
        self.maybe_crash(CrashPoint::Before(step)).await;
        let out = op.await;
        match out {
            Ok(v) => {
                self.maybe_crash(CrashPoint::After(step)).await;
                Ok(v)
            }
            Err(e) => {
                // The platform reports the original error; the body gets a description, so
                // whatever it makes of it, the execution is not recorded as done.
                if let (
                    BeldiError::TxnAborted {
                        wait_die: true,
                        reason,
                        ..
                    },
                    Some(t),
                ) = (&e, &self.txn)
                {
                    t.mark_died(reason);
                    if t.coordinator {
                        // An expected outcome: the transaction block aborts and may retry.
                        return Err(e);
                    }
                    // A participant does not finish: its caller learns of the death and the
                    // coordinator aborts (and may retry) the whole transaction.
                }
                let seen = BeldiError::StepFailed {
                    step,
                    message: e.to_string(),
                };
                self.inner
                    .failure
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get_or_insert(e);
                Err(seen)
            }
        }
    }

    /// Logs `(kind, target, value)` at `step` unless logged already; returns the record in
    /// the log, after checking it is for the same operation and target.
    pub(crate) async fn log_step(
        &self,
        step: u64,
        kind: &str,
        target: &str,
        value: Option<AttrValue>,
    ) -> Result<LogRecord, BeldiError> {
        let rec = LogRecord {
            kind: kind.into(),
            target: target.into(),
            value,
        };
        let table = self.inner.tables.log();
        let got = log::record(&*self.inner.store, &table, &self.inner.instance, step, rec).await?;
        self.check_log(step, &got, kind, target)?;
        Ok(got)
    }

    pub(crate) fn check_log(
        &self,
        step: u64,
        got: &LogRecord,
        want_kind: &str,
        want_target: &str,
    ) -> Result<(), BeldiError> {
        if got.kind == want_kind && got.target == want_target {
            return Ok(());
        }
        Err(BeldiError::NonDeterminism {
            instance: self.inner.instance.clone(),
            step,
            logged: got.describe(),
            requested: format!("{want_kind} of `{want_target}`"),
        })
    }

    /// Reads the current value of `key` in the function's table `table` (`None`: no value).
    /// Logged: a re-execution returns the same value.
    pub fn read(
        &self,
        table: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<AttrValue>, BeldiError>> + Send + 'static {
        let step = self.alloc();
        let (this, table, key) = (self.clone(), table.to_owned(), key.to_owned());
        async move { this.step(step, this.read_at(step, table, key)).await }
    }

    /// [`Ctx::read`], deserialized into `T`.
    pub fn read_as<T: DeserializeOwned>(
        &self,
        table: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<T>, BeldiError>> + Send + 'static {
        let fut = self.read(table, key);
        let what = format!("value of `{table}/{key}`");
        async move { fut.await?.map(|v| from_attr(&v, &what)).transpose() }
    }

    pub(crate) async fn read_at(
        &self,
        step: u64,
        table: String,
        key: String,
    ) -> Result<Option<AttrValue>, BeldiError> {
        self.note(step, "read");
        if self.baseline() {
            return crate::baseline::read(self, &table, &key).await;
        }
        if let Some(t) = self.txn.clone() {
            return crate::txn::read(self, &t, step, &table, &key).await;
        }
        let t = self.inner.tables.data(&table)?;
        let want = target(&table, &key);
        let store = &*self.inner.store;
        let tail = Daal::new(store, &t, self.inner.row_capacity)
            .tail(&key)
            .await?;
        if let Some(Some(Ok(e))) = tail.as_ref().map(|r| r.entry(&self.cid(step))) {
            return Err(BeldiError::NonDeterminism {
                instance: self.inner.instance.clone(),
                step,
                logged: format!("{} of `{want}`", e.kind()),
                requested: format!("read of `{want}`"),
            });
        }
        let mut value = AttrValue::M(Default::default());
        if let AttrValue::M(m) = &mut value
            && let Some(v) = tail.as_ref().and_then(|r| r.value())
        {
            m.insert("v".into(), v.clone());
        }
        let got = self.log_step(step, "read", &want, Some(value)).await?;
        Ok(got
            .value
            .as_ref()
            .and_then(AttrValue::as_m)
            .and_then(|m| m.get("v"))
            .cloned())
    }

    /// Sets the whole value of `key`.
    pub fn write(
        &self,
        table: &str,
        key: &str,
        value: AttrValue,
    ) -> impl Future<Output = Result<(), BeldiError>> + Send + 'static {
        self.update(table, key, vec![UpdateAction::Set(Path::root(), value)])
    }

    /// [`Ctx::write`] of a serde value.
    pub fn write_as<T: Serialize + ?Sized>(
        &self,
        table: &str,
        key: &str,
        value: &T,
    ) -> impl Future<Output = Result<(), BeldiError>> + Send + 'static {
        let step = self.alloc();
        let (this, table, key) = (self.clone(), table.to_owned(), key.to_owned());
        let value = to_attr(value, &format!("value of `{table}/{key}`"));
        async move {
            this.step(step, async {
                let actions = vec![UpdateAction::Set(Path::root(), value?)];
                this.write_at(step, table, key, Entry::Write, actions, None)
                    .await
                    .map(|_| ())
            })
            .await
        }
    }

    /// Applies `actions` to the value of `key`. Paths are relative to the value
    /// ([`Path::root`] is the whole value; `Path::attr("cap")` its field `cap`).
    pub fn update(
        &self,
        table: &str,
        key: &str,
        actions: Vec<UpdateAction>,
    ) -> impl Future<Output = Result<(), BeldiError>> + Send + 'static {
        let step = self.alloc();
        let (this, table, key) = (self.clone(), table.to_owned(), key.to_owned());
        async move {
            this.step(
                step,
                this.write_at(step, table, key, Entry::Write, actions, None),
            )
            .await
            .map(|_| ())
        }
    }

    /// Applies `actions` only if `cond` (paths relative to the value) holds; returns whether
    /// it held. Logged: a re-execution returns the same boolean and applies nothing.
    pub fn cond_write(
        &self,
        table: &str,
        key: &str,
        actions: Vec<UpdateAction>,
        cond: Condition,
    ) -> impl Future<Output = Result<bool, BeldiError>> + Send + 'static {
        let step = self.alloc();
        let (this, table, key) = (self.clone(), table.to_owned(), key.to_owned());
        async move {
            this.step(
                step,
                this.write_at(
                    step,
                    table,
                    key,
                    Entry::CondWrite(true),
                    actions,
                    Some(cond),
                ),
            )
            .await
        }
    }

    /// Removes the value of `key` (a later read returns `None`).
    pub fn delete(
        &self,
        table: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), BeldiError>> + Send + 'static {
        let step = self.alloc();
        let (this, table, key) = (self.clone(), table.to_owned(), key.to_owned());
        async move {
            let actions = vec![UpdateAction::Remove(Path::root())];
            this.step(
                step,
                this.write_at(step, table, key, Entry::Delete, actions, None),
            )
            .await
            .map(|_| ())
        }
    }

    pub(crate) async fn write_at(
        &self,
        step: u64,
        table: String,
        key: String,
        entry: Entry,
        actions: Vec<UpdateAction>,
        cond: Option<Condition>,
    ) -> Result<bool, BeldiError> {
        self.note(step, entry.kind());
        if self.baseline() {
            return crate::baseline::write(self, &table, &key, &actions, cond.as_ref()).await;
        }
        if let Some(t) = self.txn.clone() {
            return crate::txn::write(self, &t, step, &table, &key, entry, &actions, cond.as_ref())
                .await;
        }
        let t = self.inner.tables.data(&table)?;
        if key.is_empty() {
            return Err(
                crate::store::StoreError::validation(&table, "a key must not be empty").into(),
            );
        }
        let base = Path::attr(VALUE);
        let rebase = |p: &Path| p.under(&base);
        let actions: Vec<UpdateAction> = actions.iter().map(|a| a.map_path(&rebase)).collect();
        let cond = cond.map(|c| c.map_paths(&rebase));
        let daal = Daal::new(&*self.inner.store, &t, self.inner.row_capacity);
        let cid = self.cid(step);
        let want = target(&table, &key);
        let got = match daal.find(&key, &cid).await? {
            (_, Some(logged)) => logged,
            (rows, None) => {
                // Not applied yet: first say in the log which operation and target this
                // step is, so a replay that writes elsewhere at this step (or writes where
                // a read or a call was logged) fails before any effect.
                daal.precheck(&rows, &key, &actions)?;
                self.log_step(step, entry.kind(), &want, None).await?;
                match daal
                    .write_from(&rows, &key, &cid, entry, &actions, cond.as_ref())
                    .await?
                {
                    WriteResult::Fresh(e) | WriteResult::Logged(e) => e,
                }
            }
        };
        if got.kind() != entry.kind() {
            return Err(BeldiError::NonDeterminism {
                instance: self.inner.instance.clone(),
                step,
                logged: format!("{} of `{want}`", got.kind()),
                requested: format!("{} of `{want}`", entry.kind()),
            });
        }
        Ok(match got {
            Entry::CondWrite(b) => b,
            _ => true,
        })
    }

    /// The current values of every key of `table`, ordered by key. Logged as one list.
    pub fn scan(
        &self,
        table: &str,
    ) -> impl Future<Output = Result<Vec<(String, AttrValue)>, BeldiError>> + Send + 'static {
        let step = self.alloc();
        let (this, table) = (self.clone(), table.to_owned());
        async move { this.step(step, this.scan_at(step, table)).await }
    }

    async fn scan_at(
        &self,
        step: u64,
        table: String,
    ) -> Result<Vec<(String, AttrValue)>, BeldiError> {
        self.note(step, "scan");
        if self.baseline() {
            return crate::baseline::scan(self, &table).await;
        }
        if self.txn.is_some() {
            return Err(BeldiError::TxnAborted {
                txn: String::new(),
                reason: format!("`scan` of `{table}` is not supported inside a transaction"),
                wait_die: false,
            });
        }
        let t = self.inner.tables.data(&table)?;
        let store = &*self.inner.store;
        let values = Daal::new(store, &t, self.inner.row_capacity)
            .scan_values()
            .await?;
        let list = AttrValue::L(
            values
                .into_iter()
                .map(|(k, v)| AttrValue::L(vec![AttrValue::S(k), v]))
                .collect(),
        );
        let got = self.log_step(step, "scan", &table, Some(list)).await?;
        let corrupt = || BeldiError::Corrupt {
            what: format!("scan log of step {step}"),
            message: "not a list of pairs".into(),
        };
        let mut out = Vec::new();
        for pair in got
            .value
            .as_ref()
            .and_then(AttrValue::as_l)
            .ok_or_else(corrupt)?
        {
            match pair.as_l() {
                Some([AttrValue::S(k), v]) => out.push((k.clone(), v.clone())),
                _ => return Err(corrupt()),
            }
        }
        Ok(out)
    }

    /// Invokes function `function` synchronously and returns its result: `Ok` with its
    /// output or `Err` with the error it returned (user errors are results: logged, and
    /// returned again on replay). The callee's instance id is derived from this instance and
    /// step, so a re-execution re-drives the same callee instance, which returns its stored
    /// result if it finished. A crash of the callee fails this operation (and so, normally,
    /// this instance) with [`BeldiError::Crashed`].
    pub fn call<I, O, E>(
        &self,
        function: &str,
        input: &I,
    ) -> impl Future<Output = Result<Result<O, E>, BeldiError>> + Send + 'static
    where
        I: Serialize + ?Sized,
        O: DeserializeOwned,
        E: DeserializeOwned,
    {
        let step = self.alloc();
        let (this, function) = (self.clone(), function.to_owned());
        let input = to_attr(input, &format!("input of `{function}`"));
        async move {
            let result = this
                .step(step, async {
                    let input = input?;
                    this.call_at(step, &function, input).await
                })
                .await?;
            decode_result_of(&function, &this.callee_id(step), &result)
        }
    }

    /// The instance id of the callee of `step`: a UUID derived from this function, instance
    /// and step, so every execution of this instance names the same callee instance.
    pub fn callee_id(&self, step: u64) -> String {
        crate::invoke::callee_id(self.function(), &self.inner.instance, step)
    }

    /// Logs a call or spawn of `function` at `step` (with the derived callee id); returns the
    /// callee id and the record in the log.
    pub(crate) async fn invoke_record(
        &self,
        step: u64,
        kind: &'static str,
        function: &str,
    ) -> Result<(String, LogRecord), BeldiError> {
        self.note(step, kind);
        self.inner.rt.function_exists(function)?;
        let callee = self.callee_id(step);
        let rec = crate::invoke::call_record(kind, function, &callee);
        let got = self.log_step(step, kind, function, rec.value).await?;
        Ok((callee, got))
    }

    pub(crate) async fn call_at(
        &self,
        step: u64,
        function: &str,
        input: AttrValue,
    ) -> Result<AttrValue, BeldiError> {
        if self.baseline() {
            self.note(step, "call");
            let callee = self.callee_id(step);
            let rt = &self.inner.rt;
            let exec = rt
                .call_callee(function, &callee, input, None, FaultPlan::none(), 0, None)
                .await?;
            return Ok(exec.result);
        }
        let (callee, got) = self.invoke_record(step, "call", function).await?;
        if let Some(r) = crate::invoke::logged_result(&got) {
            if let Some(t) = &self.txn
                && r.as_m().is_some_and(|m| m.contains_key(crate::txn::DIED))
            {
                t.mark_replayed_death();
            }
            return self.unless_died(r);
        }
        let txn = match &self.txn {
            Some(t) => {
                crate::txn::add_participant(self, &t.ctx, function).await?;
                Some(t.ctx.with(crate::txn::Instruction::Execute))
            }
            None => None,
        };
        let caller = crate::intent::CallerRef {
            function: self.function().to_owned(),
            instance: self.inner.instance.clone(),
            step,
            is_async: false,
        };
        let (rt, function_name, plan) = (
            self.inner.rt.clone(),
            function.to_owned(),
            self.inner.plan.clone(),
        );
        let attempt = self.inner.attempt;
        let run = async move {
            rt.call_callee(
                &function_name,
                &callee,
                input,
                Some(caller),
                plan,
                attempt,
                txn,
            )
            .await
        };
        let exec = match &self.txn {
            // A participant call runs to its end whatever the body does with this future.
            Some(t) => t.track(run).await?,
            None => run.await?,
        };
        self.maybe_crash(CrashPoint::Inside(step)).await;
        let logged = log::set_call_result(
            &*self.inner.store,
            &self.inner.tables.log(),
            &self.inner.instance,
            step,
            &exec.result,
        )
        .await?;
        self.unless_died(logged)
    }

    /// A callee's result, or the wait-die death it reports.
    fn unless_died(&self, result: AttrValue) -> Result<AttrValue, BeldiError> {
        match result.as_m().and_then(|m| m.get(crate::txn::DIED)) {
            Some(reason) => Err(BeldiError::TxnAborted {
                txn: self
                    .txn
                    .as_ref()
                    .map(|t| t.ctx.id.clone())
                    .unwrap_or_default(),
                reason: reason.as_s().unwrap_or("").to_owned(),
                wait_die: true,
            }),
            None => Ok(result),
        }
    }

    /// Starts function `function` asynchronously and returns the callee's instance id once
    /// its intent is durable; does not wait for it to run. Exactly once: a re-execution
    /// starts the same callee instance, which exists already. If the callee's run is lost,
    /// its intent collector re-runs it.
    pub fn spawn<I>(
        &self,
        function: &str,
        input: &I,
    ) -> impl Future<Output = Result<String, BeldiError>> + Send + 'static
    where
        I: Serialize + ?Sized,
    {
        let step = self.alloc();
        let (this, function) = (self.clone(), function.to_owned());
        let input = to_attr(input, &format!("input of `{function}`"));
        async move {
            this.step(step, async {
                let input = input?;
                this.spawn_at(step, &function, input).await
            })
            .await
        }
    }

    async fn spawn_at(
        &self,
        step: u64,
        function: &str,
        input: AttrValue,
    ) -> Result<String, BeldiError> {
        let caller = crate::intent::CallerRef {
            function: self.function().to_owned(),
            instance: self.inner.instance.clone(),
            step,
            is_async: true,
        };
        let (callee, plan) = if self.baseline() {
            // Nothing logged: the callee just starts (no crash injection in baseline mode).
            self.note(step, "spawn");
            (self.callee_id(step), FaultPlan::none())
        } else {
            let (callee, _) = self.invoke_record(step, "spawn", function).await?;
            self.maybe_crash(CrashPoint::Inside(step)).await;
            (callee, self.inner.plan.clone())
        };
        self.inner
            .rt
            .start_callee(function, &callee, input, caller, plan, self.inner.attempt)
            .await?;
        Ok(callee)
    }

    /// Runs `f` once and logs its value: a re-execution returns the logged value without
    /// running `f` again. (Two executions running at the very same time may both run `f`;
    /// both then return the value that was logged first.) Use it for anything that is not
    /// deterministic: clocks, randomness, reading the environment, calling an outside service
    /// whose answer you need to keep.
    pub fn side_effect<T, F>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<T, BeldiError>> + Send + 'static
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.logged_value("side_effect", f)
    }

    fn logged_value<T, F>(
        &self,
        label: &'static str,
        f: F,
    ) -> impl Future<Output = Result<T, BeldiError>> + Send + 'static
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let step = self.alloc();
        let this = self.clone();
        async move {
            this.step(step, async {
                this.note(step, "side_effect");
                if this.baseline() {
                    return Ok(f());
                }
                let store = &*this.inner.store;
                let table = this.inner.tables.log();
                let what = format!("{label} value of step {step}");
                let logged = match log::get(store, &table, &this.inner.instance, step).await? {
                    Some(rec) => rec,
                    None => {
                        let value = to_attr(&f(), &what)?;
                        let rec = LogRecord {
                            kind: "side_effect".into(),
                            target: label.into(),
                            value: Some(value),
                        };
                        log::record(store, &table, &this.inner.instance, step, rec).await?
                    }
                };
                this.check_log(step, &logged, "side_effect", label)?;
                let v = logged.value.ok_or_else(|| BeldiError::Corrupt {
                    what: what.clone(),
                    message: "no value".into(),
                })?;
                from_attr(&v, &what)
            })
            .await
        }
    }

    /// The current wall-clock time, logged: the same on every re-execution.
    pub fn now(
        &self,
    ) -> impl Future<Output = Result<std::time::SystemTime, BeldiError>> + Send + 'static {
        let fut = self.logged_value("now", crate::intent::now_ms);
        async move {
            Ok(std::time::UNIX_EPOCH + std::time::Duration::from_millis(fut.await?.max(0) as u64))
        }
    }

    /// A random value, logged: the same on every re-execution.
    pub fn random<T>(&self) -> impl Future<Output = Result<T, BeldiError>> + Send + 'static
    where
        T: Serialize + DeserializeOwned + Send + 'static,
        rand::distr::StandardUniform: rand::distr::Distribution<T>,
    {
        self.logged_value("random", rand::random::<T>)
    }

    /// A fresh random (v4) UUID, logged: the same on every re-execution.
    pub fn uuid(&self) -> impl Future<Output = Result<uuid::Uuid, BeldiError>> + Send + 'static {
        let fut = self.logged_value("uuid", || uuid::Uuid::new_v4().to_string());
        async move {
            let s = fut.await?;
            uuid::Uuid::parse_str(&s).map_err(|e| BeldiError::Corrupt {
                what: "logged uuid".into(),
                message: e.to_string(),
            })
        }
    }

    /// Sleeps for `d`, durably: the wake-up time is logged, so a re-execution sleeps only
    /// for what is left of it.
    pub fn sleep(
        &self,
        d: std::time::Duration,
    ) -> impl Future<Output = Result<(), BeldiError>> + Send + 'static {
        let fut = self.logged_value("sleep", move || {
            crate::intent::now_ms() + d.as_millis() as i64
        });
        async move {
            let wake: i64 = fut.await?;
            let left = wake - crate::intent::now_ms();
            if left > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(left as u64)).await;
            }
            Ok(())
        }
    }
}
