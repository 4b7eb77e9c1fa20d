//! Hosting: what a process that hosts functions does with an [`Envelope`] it receives
//! (the other end of [`crate::remote`]).

use super::Runtime;
use crate::collector::IcConfig;
use crate::crash::FaultPlan;
use crate::error::BeldiError;
use crate::gc::GcConfig;
use crate::invocation::Invocation;
use crate::remote::{Envelope, Reply, ReplyError, parse};
use crate::store::AttrValue;
use crate::value::to_attr;

impl Runtime {
    /// Runs the envelope in `payload` on this runtime (the hosting process's) and answers.
    /// Never panics on bad input: a payload that is not an envelope is answered with
    /// [`ReplyError::BadEnvelope`].
    pub async fn host(&self, payload: serde_json::Value) -> Reply {
        let envelope = match parse(payload) {
            Ok(e) => e,
            Err(e) => return Reply::Error(e),
        };
        match run(self, envelope).await {
            Ok(v) => Reply::Ok(v),
            Err(e) => Reply::Error(ReplyError::from(&e)),
        }
    }

    /// The reply to [`Envelope::Describe`]: `namespace`, `mode` and `functions`.
    pub fn describe(&self) -> AttrValue {
        let mode = self.config().mode.name();
        AttrValue::M(
            [
                (
                    "namespace".to_owned(),
                    AttrValue::S(self.config().namespace.clone()),
                ),
                ("mode".to_owned(), AttrValue::S(mode.to_owned())),
                (
                    "functions".to_owned(),
                    AttrValue::L(
                        self.function_names()
                            .into_iter()
                            .map(AttrValue::S)
                            .collect(),
                    ),
                ),
            ]
            .into(),
        )
    }
}

async fn run(rt: &Runtime, envelope: Envelope) -> Result<AttrValue, BeldiError> {
    match envelope {
        Envelope::Run {
            function,
            instance,
            input,
            caller,
            txn,
            sent_at_ms,
            traceparent,
            fresh,
        } => {
            if let Some(sent) = sent_at_ms {
                refuse_stale(rt, &function, &instance, sent).await?;
            }
            let inv = Invocation {
                function,
                instance,
                input,
                caller,
                txn,
                plan: FaultPlan::none(),
                attempt: 0,
                trace: traceparent,
                fresh,
            };
            Ok(rt.run_here(inv).await?.result)
        }
        Envelope::Register {
            function,
            instance,
            input,
            caller,
        } => {
            let created = rt
                .register_async(&function, &instance, &input, &caller)
                .await?;
            Ok(AttrValue::Bool(created))
        }
        Envelope::Ic { restart_after_secs } => {
            let longest = rt.longest_timeout();
            let mut cfg = IcConfig::for_longest(&longest);
            if let Some(s) = restart_after_secs {
                cfg.restart_after = std::time::Duration::from_secs(s);
            }
            // This process's own pass (never forwarded again).
            let report = rt.collect_intents_here(&cfg).await?;
            to_attr(&report, "intent collector report")
        }
        Envelope::Describe => Ok(rt.describe()),
        Envelope::Gc => {
            let cfg = GcConfig::safe(rt.longest_timeout().timeout, rt.config().max_queue_age);
            let report = rt.collect_garbage(&cfg).await?;
            to_attr(&report, "garbage collector report")
        }
    }
}

/// An event older than the queue age the GC window assumes may arrive after its instance
/// finished and was collected: it must not create the instance again. It may still run an
/// instance whose intent exists (the register before the event created it).
async fn refuse_stale(
    rt: &Runtime,
    function: &str,
    instance: &str,
    sent_ms: i64,
) -> Result<(), BeldiError> {
    let age_ms = crate::intent::now_ms() - sent_ms;
    let max = rt.config().max_queue_age;
    if age_ms <= max.as_millis() as i64 {
        return Ok(());
    }
    let table = rt.tables(function)?.intent();
    if crate::intent::get(&**rt.store(), &table, instance)
        .await?
        .is_some()
    {
        return Ok(());
    }
    Err(BeldiError::StaleEvent {
        function: function.to_owned(),
        instance: instance.to_owned(),
        age: std::time::Duration::from_millis(age_ms.max(0) as u64),
        max_queue_age: max,
    })
}
