//! Where an invocation runs: here, or through the runtime's [`Remote`](crate::remote::Remote)
//! where its function lives; and the doors users and hosts come in by.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::execute::{Begin, Begun};
use super::{Mode, Runtime};
use crate::crash::FaultPlan;
use crate::error::BeldiError;
use crate::intent::now_ms;
use crate::invocation::{Execution, Invocation};
use crate::remote::Envelope;
use crate::schema::{CallerRef, decode_result};
use crate::store::AttrValue;
use crate::value::to_attr;

impl Runtime {
    /// Runs instance `instance` of `name` as a root (client) request and decodes its result.
    /// Running the same instance id again returns the stored result.
    pub async fn invoke<I, O, E>(
        &self,
        name: &str,
        instance: &str,
        input: &I,
    ) -> Result<Result<O, E>, BeldiError>
    where
        I: Serialize + ?Sized,
        O: DeserializeOwned,
        E: DeserializeOwned,
    {
        self.invoke_with(name, instance, input, FaultPlan::none(), 0)
            .await
    }

    /// [`Runtime::invoke`] as one execution under fault plan `plan` (crash injection, for
    /// tests); `attempt` numbers the execution for the plan's random crashes.
    pub async fn invoke_with<I, O, E>(
        &self,
        name: &str,
        instance: &str,
        input: &I,
        plan: FaultPlan,
        attempt: u32,
    ) -> Result<Result<O, E>, BeldiError>
    where
        I: Serialize + ?Sized,
        O: DeserializeOwned,
        E: DeserializeOwned,
    {
        let input = to_attr(input, &format!("input of `{name}`"))?;
        let exec = self.execute(name, instance, input, plan, attempt).await?;
        decode_result(name, instance, &exec.result)
    }

    /// One execution of root instance `instance` of `name` with `input`, under fault plan
    /// `plan` (`attempt` numbers executions for random crashes).
    pub async fn execute(
        &self,
        name: &str,
        instance: &str,
        input: AttrValue,
        plan: FaultPlan,
        attempt: u32,
    ) -> Result<Execution, BeldiError> {
        self.run(Invocation::root(name, instance, input).with_faults(plan, attempt))
            .await
    }

    /// Runs root request `instance` of `name` where the function lives: through the remote
    /// if this runtime has one, else here.
    pub async fn dispatch(
        &self,
        name: &str,
        instance: &str,
        input: AttrValue,
    ) -> Result<Execution, BeldiError> {
        self.call(Invocation::root(name, instance, input)).await
    }

    /// Runs an instance in this process (what a hosting process does with an
    /// [`Envelope::Run`]).
    pub async fn run_here(&self, inv: Invocation) -> Result<Execution, BeldiError> {
        self.run(inv).await
    }

    /// Runs `inv` where its function lives: through the remote if there is one, else here.
    pub(crate) async fn call(&self, inv: Invocation) -> Result<Execution, BeldiError> {
        let Some(remote) = self.remote() else {
            return self.run(inv).await;
        };
        let function = inv.function.clone();
        let envelope = Envelope::Run {
            function: inv.function,
            instance: inv.instance,
            input: inv.input,
            caller: inv.caller,
            txn: inv.txn,
            sent_at_ms: None,
            traceparent: inv.trace.or_else(crate::telemetry::current),
            fresh: inv.fresh,
        };
        crate::remote::execution(remote.send(&envelope).await?, &function)
    }

    /// Starts async callee `inv` where its function lives: through the remote if there is
    /// one (register its intent, then post the run), else here.
    pub(crate) async fn start_callee(&self, inv: Invocation) -> Result<(), BeldiError> {
        let Some(remote) = self.remote() else {
            return self.start_here(inv).await;
        };
        let Some(caller) = inv.caller.clone() else {
            return self.start_here(inv).await;
        };
        if self.inner.config.mode == Mode::Beldi {
            let register = Envelope::Register {
                function: inv.function.clone(),
                instance: inv.instance.clone(),
                input: inv.input.clone(),
                caller: caller.clone(),
            };
            // Only the register that created the intent posts the run: a replayed spawn
            // finds the intent and starts no second copy (the intent collector is the
            // backstop if the first post was lost). A host that does not say (`null`)
            // is taken to have created it.
            let created = remote.send(&register).await?.into_result(&inv.function)?;
            if created == AttrValue::Bool(false) {
                return Ok(());
            }
        }
        let run = Envelope::Run {
            function: inv.function,
            instance: inv.instance,
            input: inv.input,
            caller: Some(caller),
            txn: None,
            sent_at_ms: Some(now_ms()),
            traceparent: inv.trace.or_else(crate::telemetry::current),
            fresh: false,
        };
        remote.post(&run).await
    }

    /// Creates the intent of async instance `instance` of `name` spawned by `caller`,
    /// unless it exists (the first half of a remote spawn); returns whether this call
    /// created it.
    pub async fn register_async(
        &self,
        name: &str,
        instance: &str,
        input: &AttrValue,
        caller: &CallerRef,
    ) -> Result<bool, BeldiError> {
        let f = self.function(name)?;
        if self.inner.config.mode == Mode::Baseline {
            return (f.check_input)(input).map(|_| true);
        }
        self.check_format().await?;
        let mut inv = Invocation::root(name, instance, input.clone());
        inv.caller = Some(caller.clone());
        self.begin_intent(&f, &inv, Begin::Async)
            .await
            .map(|(_, created)| created)
    }

    /// Starts instance `instance` of `name` asynchronously: creates its intent (exactly
    /// once, by the callee's own runtime) and, if this call created it, runs it in the
    /// background. Returns once the intent is durable; the intent collector is the backstop
    /// if the background run is lost.
    pub async fn start(
        &self,
        name: &str,
        instance: &str,
        input: AttrValue,
        caller: Option<CallerRef>,
        plan: FaultPlan,
        attempt: u32,
    ) -> Result<(), BeldiError> {
        let mut inv = Invocation::root(name, instance, input).with_faults(plan, attempt);
        inv.caller = caller;
        self.start_here(inv).await
    }

    /// [`Runtime::start`] of `inv`.
    async fn start_here(&self, inv: Invocation) -> Result<(), BeldiError> {
        self.check_format().await?;
        let f = self.function(&inv.function)?;
        if self.inner.config.mode == Mode::Baseline {
            (f.check_input)(&inv.input)?;
            let rt = self.clone();
            let handle = tokio::spawn(async move {
                let (name, instance) = (inv.function.clone(), inv.instance.clone());
                if let Err(e) = rt.run(inv).await {
                    tracing::debug!("baseline async instance {instance} of {name} failed: {e}");
                }
            });
            self.keep_background(handle);
            return Ok(());
        }
        let (rec, created) = self.begin_intent(&f, &inv, Begin::Async).await?;
        if created {
            let rt = self.clone();
            let handle = tokio::spawn(async move {
                let (name, instance) = (inv.function.clone(), inv.instance.clone());
                // The intent was just created: run from it, without creating it again.
                let begun = Begun {
                    f,
                    rec,
                    created: true,
                };
                let (span, trace) = super::execute::execution_span(&inv);
                let out = rt
                    .run_begun(begun, inv, trace)
                    .instrument(span.clone())
                    .await;
                super::execute::finish_span(&span, &out);
                if let Err(e) = out {
                    tracing::debug!("async instance {instance} of {name} did not finish: {e}");
                }
            });
            self.keep_background(handle);
        }
        Ok(())
    }
}
