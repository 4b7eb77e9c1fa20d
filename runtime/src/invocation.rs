//! An [`Invocation`] of a function instance, the [`Execution`] it produces, and the
//! [`Platform`] that runs it, as the protocol sees it: the protocol modules (the engine,
//! transactions, the collectors) hold a [`PlatformHandle`] and never the concrete runtime.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::crash::FaultPlan;
use crate::error::BeldiError;
use crate::schema::{CallerRef, TxnCtx};
use crate::store::{AttrValue, Store};
use crate::tables::SsfTables;
use crate::telemetry::TraceContext;

/// A boxed future, as the platform's object-safe methods return.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// One request to run an instance: which, with what, for whom, and under which faults.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// The function.
    pub function: String,
    /// The instance id.
    pub instance: String,
    /// The input.
    pub input: AttrValue,
    /// Who called it (`None`: a root request).
    pub caller: Option<CallerRef>,
    /// The transaction it runs in, or the commit or abort it is asked to do.
    pub txn: Option<TxnCtx>,
    /// Crashes to inject (tests).
    pub plan: FaultPlan,
    /// Which execution this is, for the plan's random crashes.
    pub attempt: u32,
    /// The trace it belongs to and the span that made it (`None`: the execution starts a
    /// trace, or joins the current span's with feature `otel`).
    pub trace: Option<TraceContext>,
    /// A sync call made by a first execution of its caller (one that created the caller's
    /// intent): the callee instance exists only if a duplicate of the caller made it, so the
    /// callee defers its intent to its first durable effect ([`crate::deferred`]). `false`
    /// is always safe (the callee creates its intent before it runs).
    pub fresh: bool,
}

impl Invocation {
    /// A root request for `instance` of `function` with `input`, with no faults.
    pub fn root(function: &str, instance: &str, input: AttrValue) -> Invocation {
        Invocation {
            function: function.to_owned(),
            instance: instance.to_owned(),
            input,
            caller: None,
            txn: None,
            plan: FaultPlan::none(),
            attempt: 0,
            trace: None,
            fresh: false,
        }
    }

    /// The same invocation under fault plan `plan`, as execution number `attempt`.
    pub fn with_faults(self, plan: FaultPlan, attempt: u32) -> Invocation {
        Invocation {
            plan,
            attempt,
            ..self
        }
    }

    /// The same invocation in trace `trace`.
    pub fn with_trace(self, trace: Option<TraceContext>) -> Invocation {
        Invocation { trace, ..self }
    }

    /// Whether it was started asynchronously (by a spawn).
    pub fn is_async(&self) -> bool {
        self.caller.as_ref().is_some_and(|c| c.is_async)
    }

    /// The commit or abort it asks for, if it is one (not a run of the body).
    pub fn finishing(&self) -> Option<&TxnCtx> {
        self.txn.as_ref().filter(|t| t.is_finish())
    }
}

/// What one execution of an instance produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Execution {
    /// The stored result ([`crate::schema::Outcome`]).
    pub result: AttrValue,
    /// Steps the body allocated in this execution (0 when the stored result was returned
    /// without running the body).
    pub steps: u64,
    /// Whether the body ran (false: the instance was already done).
    pub ran: bool,
}

/// What the protocol needs of the platform it runs on.
pub(crate) trait Platform: Send + Sync + 'static {
    /// The store.
    fn store(&self) -> &Arc<dyn Store>;
    /// The tables of registered function `function`.
    fn tables(&self, function: &str) -> Result<SsfTables, BeldiError>;
    /// The names of every registered function, sorted.
    fn function_names(&self) -> Vec<String>;
    /// Whether an execution of `instance` of `function` runs in this process now.
    fn is_running_here(&self, function: &str, instance: &str) -> bool;
    /// Runs `inv` where its function lives and waits for its execution.
    fn call(&self, inv: Invocation) -> BoxFuture<Result<Execution, BeldiError>>;
    /// Starts async instance `inv` where its function lives: returns once its intent is
    /// durable.
    fn start(&self, inv: Invocation) -> BoxFuture<Result<(), BeldiError>>;
    /// Restarts, in the background, whatever would finish `instance` of `function` if
    /// nothing runs it any more (a contender for a lock held by a crashed transaction asks
    /// for this).
    fn revive(&self, function: &str, instance: &str);
    /// Where keys' DAAL tails were last seen by this process (shared by its executions).
    fn tail_hints(&self) -> &crate::daal::TailHints;
}

/// A cheap handle on the platform, held by the protocol modules.
#[derive(Clone)]
pub(crate) struct PlatformHandle(Arc<dyn Platform>);

impl PlatformHandle {
    /// A handle on `platform`.
    pub(crate) fn new(platform: impl Platform) -> PlatformHandle {
        PlatformHandle(Arc::new(platform))
    }
}

impl std::ops::Deref for PlatformHandle {
    type Target = dyn Platform;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}
