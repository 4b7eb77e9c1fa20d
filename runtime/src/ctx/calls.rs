//! The calls capability of [`Ctx`]: invoking other functions, synchronously or not.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Ctx, DataPath};
use crate::error::BeldiError;
use crate::schema::{StepKind, decode_result};
use crate::telemetry;
use crate::value::to_attr;
use crate::{baseline, calls};

impl Ctx {
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
            let e = &*this.engine;
            let op = async {
                let input = input?;
                e.note(step, StepKind::Call);
                match &this.path {
                    DataPath::Baseline => baseline::call(e, step, &function, input).await,
                    _ => calls::call(e, this.txn(), step, &function, input).await,
                }
            };
            let span = telemetry::step_span(
                step,
                StepKind::Call,
                format_args!("{function}/{}", e.callee_id(step)),
            );
            let result = this.step(step, true, span, op).await?;
            decode_result(&function, &this.callee_id(step), &result)
        }
    }

    /// The instance id of the callee of `step`: a UUID derived from this function, instance
    /// and step, so every execution of this instance names the same callee instance.
    pub fn callee_id(&self, step: u64) -> String {
        self.engine.callee_id(step)
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
            let e = &*this.engine;
            let op = async {
                let input = input?;
                e.note(step, StepKind::Spawn);
                match &this.path {
                    DataPath::Baseline => baseline::spawn(e, step, &function, input).await,
                    _ => calls::spawn(e, step, &function, input).await,
                }
            };
            let span = telemetry::step_span(
                step,
                StepKind::Spawn,
                format_args!("{function}/{}", e.callee_id(step)),
            );
            this.step(step, true, span, op).await
        }
    }
}
