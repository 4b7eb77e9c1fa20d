//! Errors of the protocol layer ([`crate::ctx::Ctx`] operations, instances, the platform).

use crate::store::StoreError;

/// What went wrong while running a function instance or one of its logged operations.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BeldiError {
    /// The store failed; the operation may be retried (the instance re-run).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A replay reached a logged step with a different operation or target than the one
    /// logged: the function body is not deterministic.
    #[error(
        "non-determinism in instance `{instance}` at step {step}: the log has {logged}, the replay asked for {requested}"
    )]
    NonDeterminism {
        /// The instance.
        instance: String,
        /// The step.
        step: u64,
        /// The logged operation and target.
        logged: String,
        /// The operation and target the replay asked for.
        requested: String,
    },
    /// A name (function, table) is not valid.
    #[error("invalid {what} `{name}`: {message}")]
    InvalidName {
        /// What kind of name.
        what: &'static str,
        /// The offending name.
        name: String,
        /// Why.
        message: String,
    },
    /// A collector or runtime setting cannot be safe with the functions registered.
    #[error("invalid {setting} = {value}: {message}")]
    InvalidConfig {
        /// The setting.
        setting: &'static str,
        /// Its value.
        value: String,
        /// Why it is not safe, with the numbers it was checked against.
        message: String,
    },
    /// A function used a table it did not declare.
    #[error("function `{function}` has no table `{table}` (declared: {declared})")]
    UnknownTable {
        /// The function.
        function: String,
        /// The table it asked for.
        table: String,
        /// The tables it declared.
        declared: String,
    },
    /// No function of that name is registered.
    #[error("no function named `{0}` is registered")]
    UnknownFunction(String),
    /// A value could not be converted to or from its stored form.
    #[error("cannot serialize {what}: {message}")]
    Serialization {
        /// What was being converted.
        what: String,
        /// The serde error.
        message: String,
    },
    /// The instance id was reused with a different input.
    #[error("instance `{instance}` of `{function}` already exists with a different input")]
    InputMismatch {
        /// The function.
        function: String,
        /// The instance.
        instance: String,
    },
    /// The instance crashed (injected, or it timed out) before finishing; re-running it
    /// with the same instance id finishes it exactly once.
    #[error("instance `{instance}` of `{function}` crashed: {reason}")]
    Crashed {
        /// The function.
        function: String,
        /// The instance.
        instance: String,
        /// Why.
        reason: String,
    },
    /// A concurrent execution of the same instance logged another outcome at `step` (it
    /// read another value there, or took another path) before this execution's deferred
    /// log record for that step was durable. Nothing this execution did after reading it
    /// escaped; the platform runs the body again from the log at once.
    #[error(
        "execution of instance `{instance}` diverged from a concurrent one at step {step}: \
         it is run again from the log"
    )]
    Diverged {
        /// The instance.
        instance: String,
        /// The step logged differently.
        step: u64,
    },
    /// An execution of a sync callee that started without reading its intent (see
    /// [`crate::deferred`]) found, at its first durable effect, that the instance existed
    /// already (an earlier or concurrent execution created it). Nothing this execution did
    /// escaped; the platform runs the instance again from its intent and log at once.
    #[error(
        "execution of instance `{instance}` found the instance created by another execution \
         at its first effect: it is run again from the log"
    )]
    Superseded {
        /// The instance.
        instance: String,
    },
    /// The transaction was aborted: it died under wait-die (`wait_die`: an older transaction
    /// holds a lock it needs; retrying as a new transaction may succeed), or it was used in a
    /// way transactions do not support.
    #[error("transaction `{txn}` aborted: {reason}")]
    TxnAborted {
        /// The transaction id.
        txn: String,
        /// Why.
        reason: String,
        /// Whether it died under wait-die.
        wait_die: bool,
    },
    /// A logged operation failed; the function body sees this, and the platform reports the
    /// original error when the body returns.
    #[error("step {step} failed: {source}")]
    StepFailed {
        /// The step.
        step: u64,
        /// The original error.
        #[source]
        source: Box<BeldiError>,
    },
    /// An operation that is not supported where it was made (a `scan` inside a
    /// transaction, a nested transaction).
    #[error("{operation} is not supported {context}")]
    Unsupported {
        /// The operation.
        operation: String,
        /// Where it was made (`inside a transaction`, …).
        context: &'static str,
    },
    /// The instance ended in its terminal *failed* state: its body failed in a way that
    /// running it again cannot change (an undeclared table, an oversized value, a callee
    /// given an input of the wrong type…). The failure
    /// is stored as the instance's result, so every later execution, and its caller, gets
    /// this error; nothing retries it.
    #[error("instance `{instance}` of `{function}` failed for good: {message}")]
    Failed {
        /// The function.
        function: String,
        /// The instance.
        instance: String,
        /// What went wrong, as the original error said.
        message: String,
    },
    /// An async run event arrived later than the queue age the garbage collector's window
    /// assumes, for an instance with no intent: it may have finished and been collected,
    /// so the event creates nothing.
    #[error(
        "refused a run event of `{function}` instance `{instance}` sent {age:?} ago: older than the max queue age {max_queue_age:?}, and the instance does not exist"
    )]
    StaleEvent {
        /// The function.
        function: String,
        /// The instance.
        instance: String,
        /// How old the event was.
        age: std::time::Duration,
        /// The runtime's `max_queue_age`.
        max_queue_age: std::time::Duration,
    },
    /// The process hosting a function answered with an error this runtime has no kind for.
    #[error("function `{function}` failed remotely: {message}")]
    Remote {
        /// The function.
        function: String,
        /// What the remote said.
        message: String,
    },
    /// The namespace holds data in a stored format this runtime does not read.
    #[error(
        "namespace `{namespace}` holds data in stored format version {found}; this runtime reads and writes version {supported} only: run a runtime of the version that wrote it (nothing was written)"
    )]
    FormatVersion {
        /// The namespace.
        namespace: String,
        /// The version its marker says.
        found: String,
        /// The version this runtime supports.
        supported: i64,
    },
    /// A stored record does not have the expected shape.
    #[error("corrupt {what}: {message}")]
    Corrupt {
        /// Which record.
        what: String,
        /// What is wrong.
        message: String,
    },
}

impl BeldiError {
    /// Whether this is a transaction that died under wait-die (retrying it as a new
    /// transaction may succeed).
    pub fn is_wait_die(&self) -> bool {
        matches!(self, BeldiError::TxnAborted { wait_die: true, .. })
    }

    /// Whether this error, met by an instance's own operation, will be met again by every
    /// re-execution, so the instance ends failed instead of being restarted.
    pub fn is_terminal(&self) -> bool {
        match self {
            BeldiError::InvalidName { .. }
            | BeldiError::InvalidConfig { .. }
            | BeldiError::UnknownTable { .. }
            | BeldiError::UnknownFunction(_)
            | BeldiError::Serialization { .. }
            | BeldiError::InputMismatch { .. }
            | BeldiError::Unsupported { .. }
            | BeldiError::Failed { .. } => true,
            BeldiError::TxnAborted { wait_die, .. } => !wait_die,
            BeldiError::Store(e) => matches!(
                e,
                StoreError::ItemTooLarge { .. } | StoreError::Validation { .. }
            ),
            // A divergence from the log is a code change, fixed by deploying the code the
            // log was written with (or a compatible one): the instance stays unfinished, so
            // the intent collector resumes it once that code runs.
            BeldiError::NonDeterminism { .. }
            | BeldiError::StaleEvent { .. }
            | BeldiError::Diverged { .. }
            | BeldiError::Superseded { .. }
            | BeldiError::Crashed { .. }
            | BeldiError::StepFailed { .. }
            | BeldiError::Remote { .. }
            // A deployment matter: a runtime of the right version finishes the instance.
            | BeldiError::FormatVersion { .. }
            | BeldiError::Corrupt { .. } => false,
        }
    }

    /// Whether re-running the instance may succeed (crashes and transient store errors).
    pub fn is_retryable(&self) -> bool {
        match self {
            BeldiError::Crashed { .. }
            | BeldiError::Diverged { .. }
            | BeldiError::Superseded { .. } => true,
            BeldiError::Store(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// A ready-made error type for function bodies: any [`BeldiError`] converts into it (so `?`
/// works on logged operations), and it is stored as a plain message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

impl From<BeldiError> for UserError {
    fn from(e: BeldiError) -> Self {
        UserError(e.to_string())
    }
}

impl From<&str> for UserError {
    fn from(s: &str) -> Self {
        UserError(s.to_owned())
    }
}
