//! The one execution path: an [`Invocation`] becomes an execution of its instance — the
//! intent created or found, the body (or the transaction's commit or abort) run in its own
//! task under the crash plan and the timeout, the outcome stored.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::Notify;
use tracing::{Instrument, Span};

use super::registry::Function;
use super::{Mode, Runtime};
use crate::crash::{CrashPoint, FaultPlan};
use crate::ctx::{Ctx, DataPath};
use crate::engine::{Engine, EngineParts, Prefetched};
use crate::error::BeldiError;
use crate::intent::{self, Intent};
use crate::invocation::{Execution, Invocation};
use crate::log;
use crate::schema::{Instruction, Outcome, validate_instance};
use crate::store::{AttrValue, Put};
use crate::telemetry::{self, TraceContext};
use crate::txn::TxnState;

/// How many times in a row an execution that diverged from a concurrent one is run again
/// from the log before the error is returned (and the intent collector takes over).
const MAX_RERUNS: usize = 8;

/// Counts an execution as running in this process while it lives.
struct LiveGuard {
    rt: Runtime,
    key: (String, String),
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut live = self.rt.inner.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = live.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                live.remove(&self.key);
            }
        }
    }
}

/// How an execution begins its intent.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Begin {
    /// To run the body now (async if its caller spawned it).
    Run,
    /// To start it asynchronously (in the background, or on a remote host).
    Async,
    /// To finish a transaction (commit or abort): the input is the instruction, not the
    /// function's input type.
    Finish,
}

/// An execution whose intent exists: the function, its intent, and whether this
/// execution created it.
pub(super) struct Begun {
    pub(super) f: Arc<Function>,
    pub(super) rec: Intent,
    pub(super) created: bool,
}

impl Runtime {
    /// One execution of an instance, root or callee, here: `inv.txn` is the transaction it
    /// runs in, or the commit or abort it is asked to do.
    pub(crate) async fn run(&self, inv: Invocation) -> Result<Execution, BeldiError> {
        let (span, trace) = execution_span(&inv);
        let out = self.run_traced(inv, trace).instrument(span.clone()).await;
        finish_span(&span, &out);
        out
    }

    /// [`Runtime::run`] in its execution's span, in trace `trace`.
    async fn run_traced(
        &self,
        inv: Invocation,
        trace: TraceContext,
    ) -> Result<Execution, BeldiError> {
        let f = self.function(&inv.function)?;
        self.check_format().await?;
        if self.inner.config.mode == Mode::Baseline {
            (f.check_input)(&inv.input)?;
            Span::current().record("replay", false);
            return self.run_body(&f, inv, None, None, None, trace).await;
        }
        let how = match inv.finishing() {
            Some(_) => Begin::Finish,
            None => Begin::Run,
        };
        if how == Begin::Run && defers_intent(&inv) {
            match self.run_deferring_intent(&f, &inv, trace).await {
                // The instance existed: run it again the usual way.
                Err(BeldiError::Superseded { .. } | BeldiError::Diverged { .. }) => {}
                out => return out,
            }
        }
        let (rec, created) = self.begin_intent(&f, &inv, how).await?;
        self.run_begun(Begun { f, rec, created }, inv, trace).await
    }

    /// An execution of a sync callee that does not create its intent before it runs: the
    /// intent's put rides with its first durable effect, or is the finished intent if it
    /// has none ([`crate::deferred`]). Fails with [`BeldiError::Superseded`] (nothing of it
    /// escaped) if the instance existed.
    async fn run_deferring_intent(
        &self,
        f: &Arc<Function>,
        inv: &Invocation,
        trace: TraceContext,
    ) -> Result<Execution, BeldiError> {
        validate_instance(&inv.instance)?;
        (f.check_input)(&inv.input)?;
        Span::current().record("replay", false);
        let _live = self.count_live(&inv.function, &inv.instance);
        let item = intent::new_item(&inv.instance, &inv.input, inv.caller.as_ref(), false);
        let create = intent::create(&f.tables.intent(), item);
        self.run_body(
            f,
            inv.clone(),
            Some(f.tables.intent()),
            None,
            Some(create),
            trace,
        )
        .await
    }

    /// Creates the intent of `inv`'s instance unless it exists (checking the input first,
    /// and that a repeat brings the same input); returns the intent and whether this created
    /// it.
    pub(super) async fn begin_intent(
        &self,
        f: &Function,
        inv: &Invocation,
        how: Begin,
    ) -> Result<(Intent, bool), BeldiError> {
        validate_instance(&inv.instance)?;
        if how != Begin::Finish {
            (f.check_input)(&inv.input)?;
        }
        let (rec, created) = intent::begin(
            &**self.store(),
            &f.tables.intent(),
            &inv.instance,
            &inv.input,
            inv.caller.as_ref(),
            how == Begin::Async || inv.is_async(),
        )
        .await?;
        if rec.input != inv.input {
            return Err(BeldiError::InputMismatch {
                function: f.tables.ssf().to_owned(),
                instance: inv.instance.clone(),
            });
        }
        Ok((rec, created))
    }

    /// The rest of an execution, once its intent exists (in its execution's span, in
    /// trace `trace`).
    pub(super) async fn run_begun(
        &self,
        begun: Begun,
        inv: Invocation,
        trace: TraceContext,
    ) -> Result<Execution, BeldiError> {
        let Begun { f, rec, created } = begun;
        if rec.done {
            // A repeat of a finished instance: its stored result.
            Span::current().record("replay", true);
            let result = rec.result.ok_or_else(|| BeldiError::Corrupt {
                what: format!("intent of `{}` instance `{}`", inv.function, inv.instance),
                message: "done without a result".into(),
            })?;
            return Ok(Execution {
                result,
                steps: 0,
                ran: false,
            });
        }
        let _live = self.count_live(&inv.function, &inv.instance);
        // A re-execution reads its whole log ahead, in one query, so its replayed steps
        // need no round trip; a first execution reads nothing ahead.
        let prefetched = if created {
            None
        } else {
            intent::touch(&**self.store(), &f.tables.intent(), &inv.instance).await?;
            Some(log::all(&**self.store(), &f.tables.log(), &inv.instance).await?)
        };
        // A replay finds steps an earlier execution logged (not so the first run of an
        // instance whose intent a remote spawn's register created).
        let span = Span::current();
        if !span.is_disabled() {
            span.record("replay", prefetched.as_ref().is_some_and(|p| !p.is_empty()));
            span.record("logged", prefetched.as_ref().map_or(0, |p| p.len()));
        }
        let mut prefetched = prefetched;
        let mut reruns = 0;
        loop {
            let intent_table = f.tables.intent();
            let out = self
                .run_body(&f, inv.clone(), Some(intent_table), prefetched, None, trace)
                .await;
            match out {
                // A concurrent execution logged other values first: nothing this one did
                // since escaped (see `crate::deferred`). Run the body again from the log,
                // which now holds what the other one logged.
                Err(BeldiError::Diverged { .. }) if reruns < MAX_RERUNS => {
                    reruns += 1;
                    prefetched =
                        Some(log::all(&**self.store(), &f.tables.log(), &inv.instance).await?);
                }
                out => return out,
            }
        }
    }

    /// Runs the body of `inv` (or its commit or abort) in its own task under its crash plan
    /// and its function's timeout, then stores the outcome in the intent in `intent_table`
    /// (`None`: baseline, nothing stored); `prefetched` is a re-execution's log, `create` the
    /// put of an intent not created yet (deferred to the first durable effect), `trace` the
    /// execution's trace context.
    async fn run_body(
        &self,
        f: &Function,
        inv: Invocation,
        intent_table: Option<String>,
        prefetched: Option<Prefetched>,
        create: Option<Put>,
        trace: TraceContext,
    ) -> Result<Execution, BeldiError> {
        let crash = Arc::new(Notify::new());
        let finishing = inv.finishing().cloned();
        let path = match (&inv.txn, intent_table.is_some()) {
            (_, false) => DataPath::Baseline,
            (Some(t), true) if t.instruction == Instruction::Execute => {
                DataPath::Txn(TxnState::participant(t.clone()))
            }
            _ => DataPath::Logged,
        };
        let engine = Arc::new(Engine::new(EngineParts {
            platform: self.handle(),
            tables: f.tables.clone(),
            instance: inv.instance.clone(),
            row_capacity: self.inner.config.row_capacity,
            lock_wait: self.inner.config.lock_wait,
            // Baseline mode injects no crashes (there is nothing to recover).
            plan: match &intent_table {
                Some(_) => inv.plan.clone(),
                None => FaultPlan::none(),
            },
            attempt: if intent_table.is_some() {
                inv.attempt
            } else {
                0
            },
            crash: crash.clone(),
            prefetched,
            trace,
        }));
        if let Some(create) = create {
            engine.deferred.defer_intent(create);
        }
        let ctx = Ctx::new(engine.clone(), path);
        let crashed = |reason: String| BeldiError::Crashed {
            function: inv.function.clone(),
            instance: inv.instance.clone(),
            reason,
        };
        let injected = |at: Option<CrashPoint>| {
            self.inner.crashes.fetch_add(1, Ordering::SeqCst);
            let at = at.map_or("a crash point".to_owned(), |p| p.to_string());
            crashed(format!("injected crash {at}"))
        };
        // The body runs in its own task, like a Lambda in its own sandbox: a panic or a
        // crash loses its in-memory state and nothing else.
        let mut body = match finishing {
            // A commit or abort runs the transaction's own procedure, not the user's body.
            Some(t) => {
                let ctx = ctx.clone();
                tokio::spawn(
                    async move {
                        ctx.txn_end(&t, t.instruction == Instruction::Commit)
                            .await?;
                        Ok(Outcome::Ok(AttrValue::Null).to_attr())
                    }
                    .in_current_span(),
                )
            }
            None => tokio::spawn((f.handler)(ctx.clone(), inv.input.clone()).in_current_span()),
        };
        let out = tokio::select! {
            joined = &mut body => joined.map_err(|e| crashed(lost_body(e)))?,
            _ = crash.notified() => {
                body.abort();
                return Err(injected(engine.crashed_at()));
            }
            _ = tokio::time::sleep(f.timeout) => {
                body.abort();
                return Err(crashed(format!("timed out after {:?}", f.timeout)));
            }
        };
        let Some(intent_table) = intent_table else {
            // Baseline: nothing is stored.
            if let Some(e) = engine.take_failure() {
                return Err(e);
            }
            return Ok(Execution {
                result: out?,
                steps: engine.steps(),
                ran: true,
            });
        };
        // A participant returns only once every call it made in the transaction settled
        // (its caller then decides on a complete picture).
        if let Some(t) = ctx.txn()
            && let Some(e) = t.settle().await
        {
            return Err(e);
        }
        let result = match engine.take_failure() {
            // A participant that died under wait-die finishes with that outcome as its
            // result: its caller turns it back into the death, and the instance is done
            // (so nothing is left to re-run or to leak).
            Some(BeldiError::TxnAborted {
                reason,
                wait_die: true,
                ..
            }) if ctx.in_transaction() => Outcome::Died(reason).to_attr(),
            // A failure every re-execution would meet again: the instance ends failed, with
            // the error stored as its result (its caller gets it as `BeldiError::Failed`).
            Some(e) if e.is_terminal() => Outcome::Failed(e.to_string()).to_attr(),
            Some(e) => return Err(e),
            None => match out {
                Ok(v) => v,
                Err(e) if e.is_terminal() => Outcome::Failed(e.to_string()).to_attr(),
                Err(e) => return Err(e),
            },
        };
        let finish = async {
            engine.maybe_crash(CrashPoint::BeforeDone).await;
            let store = &**self.store();
            match engine.deferred.take_intent() {
                // No effect made the deferred intent durable: it is created finished.
                Some(create) => intent::create_finished(store, create, &result)
                    .await?
                    .ok_or_else(|| BeldiError::Superseded {
                        instance: inv.instance.clone(),
                    }),
                None => Ok(intent::finish(store, &intent_table, &inv.instance, &result).await?),
            }
        };
        let stored = tokio::select! {
            r = finish => r?,
            _ = crash.notified() => return Err(injected(Some(CrashPoint::BeforeDone))),
        };
        self.record_trace(&inv.function, &inv.instance, engine.ops(), engine.flushed());
        Ok(Execution {
            result: stored,
            steps: engine.steps(),
            ran: true,
        })
    }

    fn count_live(&self, function: &str, instance: &str) -> LiveGuard {
        let key = (function.to_owned(), instance.to_owned());
        *self
            .inner
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_insert(0) += 1;
        LiveGuard {
            rt: self.clone(),
            key,
        }
    }

    /// Whether an execution of `instance` of `function` is running in this process now.
    /// The intent collector never restarts such an instance: the running execution
    /// finishes it, or ends (crashed, timed out) and is no longer running.
    pub fn is_running_here(&self, function: &str, instance: &str) -> bool {
        self.inner
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&(function.to_owned(), instance.to_owned()))
    }
}

/// Whether the execution `inv` asks for defers its intent: a sync call outside a
/// transaction (its caller re-drives it, so nothing needs its intent before it has an
/// effect) from a first execution of its caller (a re-execution's callee likely exists:
/// it is read first). A root's intent is what the intent collector restarts it from; an async
/// callee's is created by its spawner; a participant's or a commit's anchors the
/// transaction's recovery.
fn defers_intent(inv: &Invocation) -> bool {
    inv.fresh && inv.txn.is_none() && inv.caller.is_some() && !inv.is_async()
}

/// The span of the execution `inv` asks for, joined to its trace, and the execution's
/// trace context.
pub(super) fn execution_span(inv: &Invocation) -> (Span, TraceContext) {
    let span = telemetry::execution_span(
        &inv.function,
        &inv.instance,
        inv.attempt,
        inv.caller.as_ref(),
    );
    let trace = telemetry::enter_trace(&span, inv.trace);
    (span, trace)
}

/// Records how the execution of `span` ended.
pub(super) fn finish_span(span: &Span, out: &Result<Execution, BeldiError>) {
    if span.is_disabled() {
        return;
    }
    match out {
        Ok(exec) => {
            let outcome = match Outcome::from_attr(&exec.result, "the result") {
                Ok(Outcome::Ok(_)) => "ok",
                Ok(Outcome::Err(_)) => "err",
                Ok(Outcome::Died(_)) => "died",
                Ok(Outcome::Failed(_)) => "failed",
                Err(_) => "unknown",
            };
            telemetry::finish_execution(span, Some(exec.ran), Some(exec.steps), outcome, None);
        }
        Err(e) => {
            let outcome = match e {
                BeldiError::Crashed { .. } => "crashed",
                BeldiError::TxnAborted { .. } => "aborted",
                _ => "error",
            };
            telemetry::finish_execution(span, None, None, outcome, Some(e));
        }
    }
}

/// Why a body's task ended without a result: its panic message, or the join error.
fn lost_body(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return format!("the body task failed: {e}");
    }
    let payload = e.into_panic();
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned());
    format!("the body panicked: {msg}")
}
