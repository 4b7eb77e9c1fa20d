//! Running functions somewhere else: the envelope a platform sends to the process that
//! hosts a function, the reply it gets back, and the [`Remote`] a runtime uses to send it.
//!
//! A runtime with a remote ([`Runtime::set_remote`]) sends every invocation its instances
//! make — sync calls, async spawns, transaction commits and aborts, intent-collector
//! restarts — as an [`Envelope`]; the hosting process hands it to [`handle`], which runs it
//! on its own runtime and answers with a [`Reply`]. The AWS Lambda platform
//! (`crate::lambda`, feature `lambda`) is one transport; the envelope and its handling do
//! not depend on it.
//!
//! An async spawn is two messages: a synchronous [`Envelope::Register`], which makes the
//! callee's runtime create the callee's intent (so the intent is durable before the caller
//! goes on, and only the callee writes its own tables), then a fire-and-forget
//! [`Envelope::Run`]. If the second is lost, the callee's intent collector runs the
//! instance.
//!
//! Bad input — a payload that is not an envelope, an unknown function, an input that does
//! not deserialize into the function's input type — is answered with a structured
//! [`ReplyError`] before anything is written.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::collector::{IcConfig, IcReport};
use crate::error::BeldiError;
use crate::fault::FaultPlan;
use crate::gc::GcConfig;
use crate::intent::CallerRef;
use crate::platform::{Execution, Runtime};
use crate::store::AttrValue;
use crate::txn::TxnCtx;

/// Field every envelope carries, so a stray payload is told apart from an envelope.
pub const ENVELOPE_TAG: &str = "beldi";

/// What a hosting process is asked to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "beldi", rename_all = "snake_case")]
pub enum Envelope {
    /// Run (or finish, or return the stored result of) an instance, and reply with its
    /// result. A root request has no caller.
    Run {
        /// The function.
        function: String,
        /// The instance id.
        instance: String,
        /// The input.
        input: AttrValue,
        /// Who called it (sync or async), if anyone.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        caller: Option<CallerRef>,
        /// The transaction it runs in, or the commit or abort it is asked to do.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        txn: Option<TxnCtx>,
        /// When the run was posted (ms since the epoch), for an async start sent as an
        /// event: a host refuses to create an intent from an event older than the
        /// runtime's `max_queue_age`, the queue age the GC window assumes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sent_at_ms: Option<i64>,
    },
    /// Create the intent of an async instance (exactly once), without running it. Replies
    /// `true` if this envelope created it, `false` if it existed.
    Register {
        /// The function.
        function: String,
        /// The instance id.
        instance: String,
        /// The input.
        input: AttrValue,
        /// The spawning caller.
        caller: CallerRef,
    },
    /// One pass of the intent collector over every hosted function.
    Ic {
        /// Restart instances whose latest execution started longer ago than this many
        /// seconds (default: the collector's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        restart_after_secs: Option<u64>,
    },
    /// One pass of the garbage collector.
    Gc,
    /// What this process hosts: its namespace, mode and functions (so a client can check it
    /// talks to the deployment it means).
    Describe,
}

impl Envelope {
    /// The function an envelope is for (`None`: the collectors).
    pub fn function(&self) -> Option<&str> {
        match self {
            Envelope::Run { function, .. } | Envelope::Register { function, .. } => Some(function),
            Envelope::Ic { .. } | Envelope::Gc | Envelope::Describe => None,
        }
    }
}

/// The answer to an envelope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// It worked: the instance's stored result (`{"ok": v}` or `{"err": e}`), or a
    /// collector's report.
    Ok(AttrValue),
    /// It did not.
    Error(ReplyError),
}

impl Reply {
    /// The value of an `ok` reply, or the error a caller of `function` sees.
    pub fn into_result(self, function: &str) -> Result<AttrValue, BeldiError> {
        match self {
            Reply::Ok(v) => Ok(v),
            Reply::Error(e) => Err(e.into_error(function)),
        }
    }
}

/// Why an envelope failed, in a form that survives the trip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReplyError {
    /// The payload is not a beldi envelope.
    BadEnvelope {
        /// What is wrong with it.
        message: String,
    },
    /// The function is not hosted here.
    UnknownFunction {
        /// Its name.
        function: String,
    },
    /// The input does not fit the function's input type (or another value did not convert).
    BadInput {
        /// What did not convert, and why.
        message: String,
    },
    /// The instance exists with a different input.
    InputMismatch {
        /// The function.
        function: String,
        /// The instance.
        instance: String,
    },
    /// The instance crashed or timed out; running it again finishes it.
    Crashed {
        /// The function.
        function: String,
        /// The instance.
        instance: String,
        /// Why.
        reason: String,
    },
    /// The transaction was aborted.
    TxnAborted {
        /// The transaction.
        txn: String,
        /// Why.
        reason: String,
        /// Whether it died under wait-die.
        wait_die: bool,
    },
    /// An async run event arrived later than the queue age the GC window assumes, for an
    /// instance that does not exist (any more): nothing was created.
    StaleEvent {
        /// The function.
        function: String,
        /// The instance.
        instance: String,
        /// What the host said (age and limit).
        message: String,
    },
    /// Anything else (a store error, say), described.
    Failed {
        /// The description.
        message: String,
    },
}

impl From<&BeldiError> for ReplyError {
    fn from(e: &BeldiError) -> ReplyError {
        match e {
            BeldiError::UnknownFunction(f) => ReplyError::UnknownFunction {
                function: f.clone(),
            },
            BeldiError::Serialization { .. } => ReplyError::BadInput {
                message: e.to_string(),
            },
            BeldiError::InputMismatch { function, instance } => ReplyError::InputMismatch {
                function: function.clone(),
                instance: instance.clone(),
            },
            BeldiError::Crashed {
                function,
                instance,
                reason,
            } => ReplyError::Crashed {
                function: function.clone(),
                instance: instance.clone(),
                reason: reason.clone(),
            },
            BeldiError::TxnAborted {
                txn,
                reason,
                wait_die,
            } => ReplyError::TxnAborted {
                txn: txn.clone(),
                reason: reason.clone(),
                wait_die: *wait_die,
            },
            BeldiError::StaleEvent {
                function, instance, ..
            } => ReplyError::StaleEvent {
                function: function.clone(),
                instance: instance.clone(),
                message: e.to_string(),
            },
            other => ReplyError::Failed {
                message: other.to_string(),
            },
        }
    }
}

impl ReplyError {
    /// The error a caller sees for this reply to an envelope for `function`.
    pub fn into_error(self, function: &str) -> BeldiError {
        match self {
            ReplyError::BadEnvelope { message } | ReplyError::Failed { message } => {
                BeldiError::Remote {
                    function: function.to_owned(),
                    message,
                }
            }
            ReplyError::UnknownFunction { function } => BeldiError::UnknownFunction(function),
            ReplyError::StaleEvent {
                function,
                instance,
                message,
            } => BeldiError::Remote {
                function,
                message: format!("instance `{instance}`: {message}"),
            },
            ReplyError::BadInput { message } => BeldiError::Serialization {
                what: format!("input of `{function}`"),
                message,
            },
            ReplyError::InputMismatch { function, instance } => {
                BeldiError::InputMismatch { function, instance }
            }
            ReplyError::Crashed {
                function,
                instance,
                reason,
            } => BeldiError::Crashed {
                function,
                instance,
                reason,
            },
            ReplyError::TxnAborted {
                txn,
                reason,
                wait_die,
            } => BeldiError::TxnAborted {
                txn,
                reason,
                wait_die,
            },
        }
    }
}

/// How a runtime reaches the processes that host its functions.
#[async_trait]
pub trait Remote: Send + Sync {
    /// Sends `envelope` and waits for the reply. A lost invocation (the process died, the
    /// platform reported a function error) is [`BeldiError::Crashed`].
    async fn send(&self, envelope: &Envelope) -> Result<Reply, BeldiError>;
    /// Sends `envelope` without waiting for it to run (returns once the platform accepted
    /// it).
    async fn post(&self, envelope: &Envelope) -> Result<(), BeldiError>;
}

/// Runs `envelope` on this process's runtime `rt` and answers. Never panics on bad input:
/// a payload that is not an envelope is answered with [`ReplyError::BadEnvelope`].
pub async fn handle(rt: &Runtime, payload: serde_json::Value) -> Reply {
    let envelope = match parse(payload) {
        Ok(e) => e,
        Err(e) => return Reply::Error(e),
    };
    match run(rt, envelope).await {
        Ok(v) => Reply::Ok(v),
        Err(e) => Reply::Error(ReplyError::from(&e)),
    }
}

/// Reads an envelope out of a payload.
pub fn parse(payload: serde_json::Value) -> Result<Envelope, ReplyError> {
    if payload.get(ENVELOPE_TAG).is_none() {
        let shape = match &payload {
            serde_json::Value::Object(m) => format!(
                "an object with keys {:?}",
                m.keys().map(String::as_str).collect::<Vec<_>>()
            ),
            other => format!("{other}"),
        };
        return Err(ReplyError::BadEnvelope {
            message: format!(
                "not a beldi envelope (no `{ENVELOPE_TAG}` field): got {}",
                truncate(&shape, 200)
            ),
        });
    }
    serde_json::from_value(payload).map_err(|e| ReplyError::BadEnvelope {
        message: format!("malformed beldi envelope: {e}"),
    })
}

fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
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
        } => {
            if let Some(sent) = sent_at_ms {
                refuse_stale(rt, &function, &instance, sent).await?;
            }
            let exec = rt
                .run_here(
                    &function,
                    &instance,
                    input,
                    caller,
                    FaultPlan::none(),
                    0,
                    txn,
                )
                .await?;
            Ok(exec.result)
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
            let r = crate::collector::run_pass(rt, &cfg).await?;
            let mut m = report(&[
                ("pending", r.pending),
                ("restarted", r.restarted),
                ("finished", r.finished),
                ("running", r.running),
            ]);
            if let AttrValue::M(m) = &mut m {
                let gave_up = r
                    .gave_up
                    .iter()
                    .map(|(f, i)| AttrValue::S(format!("{f}/{i}")));
                m.insert("gave_up".into(), AttrValue::L(gave_up.collect()));
            }
            Ok(m)
        }
        Envelope::Describe => Ok(describe(rt)),
        Envelope::Gc => {
            let cfg = GcConfig::safe(rt.longest_timeout().timeout, rt.config().max_queue_age);
            let r = rt.collect_garbage(&cfg).await?;
            Ok(AttrValue::S(format!("{r:?}")))
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

/// The reply to [`Envelope::Describe`]: `namespace`, `mode` and `functions`.
pub fn describe(rt: &Runtime) -> AttrValue {
    let mode = rt.config().mode.name();
    AttrValue::M(
        [
            (
                "namespace".to_owned(),
                AttrValue::S(rt.config().namespace.clone()),
            ),
            ("mode".to_owned(), AttrValue::S(mode.to_owned())),
            (
                "functions".to_owned(),
                AttrValue::L(rt.function_names().into_iter().map(AttrValue::S).collect()),
            ),
        ]
        .into(),
    )
}

fn report(fields: &[(&str, usize)]) -> AttrValue {
    AttrValue::M(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), AttrValue::from(*v as i64)))
            .collect(),
    )
}

/// The report of an intent-collector pass, from the reply to an [`Envelope::Ic`].
pub fn ic_report(v: &AttrValue) -> Result<IcReport, BeldiError> {
    let corrupt = || BeldiError::Corrupt {
        what: "intent collector reply".into(),
        message: format!("{v:?}"),
    };
    let m = v.as_m().ok_or_else(corrupt)?;
    let n = |k: &str| {
        m.get(k)
            .and_then(AttrValue::as_i64)
            .map(|n| n as usize)
            .ok_or_else(corrupt)
    };
    let gave_up = m
        .get("gave_up")
        .and_then(AttrValue::as_l)
        .unwrap_or(&[])
        .iter()
        .filter_map(AttrValue::as_s)
        .map(|s| match s.split_once('/') {
            Some((f, i)) => (f.to_owned(), i.to_owned()),
            None => (s.to_owned(), String::new()),
        })
        .collect();
    Ok(IcReport {
        pending: n("pending")?,
        restarted: n("restarted")?,
        finished: n("finished")?,
        // A host from before it said: none counted.
        running: m
            .get("running")
            .and_then(AttrValue::as_i64)
            .map_or(0, |n| n as usize),
        gave_up,
    })
}

/// The execution a [`Reply`] to a [`Envelope::Run`] stands for.
pub(crate) fn execution(reply: Reply, function: &str) -> Result<Execution, BeldiError> {
    Ok(Execution {
        result: reply.into_result(function)?,
        steps: 0,
        ran: true,
    })
}
