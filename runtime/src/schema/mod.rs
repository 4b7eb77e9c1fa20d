//! The stored format, in one place: every attribute name ([`names`]), every derived id
//! ([`ids`]), and the typed records the protocol keeps — step kinds ([`StepKind`]),
//! results ([`Outcome`]), log records ([`LogRecord`]), callers ([`CallerRef`]) and the
//! records of transactions ([`TxnCtx`], [`ShadowEntry`]).
//!
//! What is written here is read back by every later version of the runtime: a change of a
//! name or a form is a change of the stored format.

pub mod ids;
pub mod names;
mod ops;
mod outcome;
mod records;
mod txn;

pub use ids::{CID_SEPARATOR, MAX_INSTANCE_ID, callee_id, entry_id, step_key, validate_instance};
pub use ops::StepKind;
pub use outcome::{Outcome, decode_result};
pub use records::{CallerRef, LogRecord};
pub use txn::{Coordinator, Instruction, ShadowEntry, TxnCtx};
