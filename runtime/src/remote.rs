//! Running functions somewhere else: the envelope a platform sends to the process that
//! hosts a function, the reply it gets back, and the [`Remote`] a runtime uses to send it.
//!
//! A runtime with a remote
//! ([`Runtime::set_remote`](crate::platform::Runtime::set_remote)) sends every invocation its instances
//! make — sync calls, async spawns, transaction commits and aborts, intent-collector
//! restarts — as an [`Envelope`]; the hosting process hands it to
//! [`Runtime::host`](crate::platform::Runtime::host), which runs it
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

use crate::collector::IcReport;
use crate::error::BeldiError;
use crate::invocation::Execution;
use crate::schema::{CallerRef, TxnCtx};
use crate::store::AttrValue;
use crate::telemetry::TraceContext;
use crate::value::from_attr;

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
        /// The W3C trace context of the request it is part of (`None`: it starts a trace).
        /// A malformed one is ignored.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "crate::telemetry::lenient"
        )]
        traceparent: Option<TraceContext>,
        /// A sync call from a first execution of its caller: the callee may defer its
        /// intent ([`crate::invocation::Invocation::fresh`]).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        fresh: bool,
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

/// The report of an intent-collector pass, from the reply to an [`Envelope::Ic`].
pub fn ic_report(v: &AttrValue) -> Result<IcReport, BeldiError> {
    from_attr(v, "intent collector reply")
}

/// The execution a [`Reply`] to a [`Envelope::Run`] stands for.
pub(crate) fn execution(reply: Reply, function: &str) -> Result<Execution, BeldiError> {
    Ok(Execution {
        result: reply.into_result(function)?,
        steps: 0,
        ran: true,
    })
}
