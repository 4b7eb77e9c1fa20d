//! The values-and-time capability of [`Ctx`]: anything not deterministic, run once and
//! logged — side effects, the clock, randomness, ids, durable sleeps.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Ctx, DataPath};
use crate::error::BeldiError;
use crate::intent::now_ms;
use crate::logged;
use crate::schema::StepKind;
use crate::telemetry;
use crate::value::{from_attr, to_attr};

impl Ctx {
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
            let op = async {
                this.engine.note(step, StepKind::SideEffect);
                if let DataPath::Baseline = this.path {
                    return Ok(f());
                }
                let what = format!("{label} value of step {step}");
                let v = logged::value(&this.engine, step, label, || to_attr(&f(), &what)).await?;
                from_attr(&v, &what)
            };
            let span = telemetry::step_span(step, StepKind::SideEffect, format_args!("{label}"));
            this.step(step, true, span, op).await
        }
    }

    /// The current wall-clock time, logged: the same on every re-execution.
    pub fn now(&self) -> impl Future<Output = Result<SystemTime, BeldiError>> + Send + 'static {
        let fut = self.logged_value("now", now_ms);
        async move { Ok(UNIX_EPOCH + Duration::from_millis(fut.await?.max(0) as u64)) }
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
        d: Duration,
    ) -> impl Future<Output = Result<(), BeldiError>> + Send + 'static {
        let fut = self.logged_value("sleep", move || now_ms() + d.as_millis() as i64);
        async move {
            let wake: i64 = fut.await?;
            let left = wake - now_ms();
            if left > 0 {
                tokio::time::sleep(Duration::from_millis(left as u64)).await;
            }
            Ok(())
        }
    }
}
