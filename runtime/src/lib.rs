//! The runtime of Beldi for Rust. Users normally depend on the `beldi` facade crate,
//! which re-exports what a program needs from this one.
//!
//! # Layers
//!
//! Each module sits in one layer and uses only modules of its own layer or below; a test
//! (`tests/layering.rs`) fails when a module imports one above it, or when two modules
//! import each other.
//!
//! 0. **Storage**: [`store`] (the DynamoDB-shaped abstraction, typed values, conditions
//!    and actions, shared validation), its backends [`embedded`] (default, SQLite on local
//!    disk) and `dynamodb` (feature `dynamodb`), and the wrappers [`counting`] (round trips
//!    per operation kind) and [`faulty`] (seeded throttling, conflicts, lost responses).
//! 1. **Vocabulary**: [`value`] (serde ↔ stored values), [`error`], [`crash`] (crash
//!    plans), [`schema`] (every stored name, id format and record), [`tables`] (the tables
//!    of a function), [`telemetry`] (spans, the trace context, round trips per step).
//! 2. **Protocol records**: `daal` (the linked DAAL), `log` (the read/scan log), `intent`
//!    (intents), `invoke` (what a caller logs), [`format`] (the stored format's version),
//!    `deferred` (log records kept until the next durable effect carries them).
//! 3. **Platform handle**: `invocation` (an [`Invocation`], its [`Execution`], and the
//!    platform trait the protocol holds instead of the runtime).
//! 4. **Engine**: `engine` (the state of one execution: steps, crash plan, failure).
//! 5. **Data paths and collectors**: `logged`, `txn` (transactions; the wait-die rule is in
//!    `txn/lock.rs`), [`baseline`], [`collector`] (intent collector), [`gc`].
//! 6. **Calls**: `calls` (sync calls and spawns, in a transaction or not).
//! 7. **User API**: [`ctx`] ([`Ctx`]).
//! 8. **Transport**: [`remote`] (envelopes and the [`Remote`](remote::Remote) trait).
//! 9. **Platform**: [`platform`] ([`Runtime`]: registry, the one execution path, routing,
//!    hosting, background work).
//! 10. **Tools and edges**: `handle` ([`Handle`], a typed handle on a function, for bodies
//!     and clients), `macro_support` (what generated code calls), [`data`] (loading and
//!     reading data outside instances),
//!     [`inspect`] (what checkers and operators read), [`explorer`] (the crash-point
//!     explorer), `lambda` (feature `lambda`: AWS Lambda).
#![warn(missing_docs)]

pub mod baseline;
pub(crate) mod calls;
pub mod collector;
pub mod counting;
pub mod crash;
pub mod ctx;
pub(crate) mod daal;
pub mod data;
pub(crate) mod deferred;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod embedded;
pub(crate) mod engine;
pub mod error;
pub mod explorer;
pub mod faulty;
pub mod format;
pub mod gc;
pub(crate) mod handle;
pub mod inspect;
pub(crate) mod intent;
pub(crate) mod invocation;
pub(crate) mod invoke;
#[cfg(feature = "lambda")]
pub mod lambda;
pub(crate) mod log;
pub(crate) mod logged;
#[doc(hidden)]
pub mod macro_support;
pub mod platform;
pub mod remote;
pub mod schema;
pub mod store;
pub mod tables;
pub mod telemetry;
pub(crate) mod txn;
pub mod value;

#[doc(hidden)]
pub use inventory;

/// Protocol internals for the runtime's own white-box tests (the DAAL race and recovery
/// suites). Not a public API: programs and checkers use [`inspect`].
#[doc(hidden)]
pub mod __internals {
    pub use crate::daal::{Change, Daal, Entry, Row, WriteResult, row_id};
    pub use crate::intent::{Intent, all as intents, get as intent, now_ms};
}

pub use crash::{CrashPoint, FaultPlan};
pub use ctx::Ctx;
pub use error::{BeldiError, UserError};
pub use handle::Handle;
pub use invocation::{Execution, Invocation};
pub use platform::Runtime;
