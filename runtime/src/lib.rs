//! The runtime of Beldi for Rust: the [`Store`](store::Store) abstraction that every
//! protocol stands on, its backends and its wrappers.
//!
//! Users normally depend on the `beldi` facade crate, which re-exports this one.
//!
//! - [`store`]: the DynamoDB-shaped storage abstraction, its typed values, conditions and
//!   update actions, and the request validation shared by all backends.
//! - [`embedded`]: the default backend, durable on local disk (SQLite in WAL mode).
//! - `dynamodb` (feature `dynamodb`): Amazon DynamoDB through `aws-sdk-dynamodb`.
//! - `lambda` (feature `lambda`): the AWS Lambda platform (entry point, invoker); with
//!   [`remote`], the envelopes any transport carries.
//! - [`counting`]: a wrapper counting round trips per operation kind.
//! - [`faults`]: a wrapper injecting seeded throttling, conflicts and lost responses.
//!
//! The protocol, one module per concept: [`tables`] (the tables of an SSF), [`daal`] (the
//! linked DAAL), [`log`] (the read/scan log), [`intent`] (intents), [`ctx`] (logged
//! operations and step identity), [`platform`] (the local platform), [`fault`] (crash
//! injection), [`baseline`] (the same functions without fault tolerance, for overhead
//! measurements), [`data`] (loading and reading a function's data outside instances) and
//! [`explorer`] (the crash-point explorer).
#![warn(missing_docs)]

pub mod baseline;
pub mod collector;
pub mod counting;
pub mod ctx;
pub mod daal;
pub mod data;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod embedded;
pub mod error;
pub mod explorer;
pub mod fault;
pub mod faults;
pub mod gc;
pub mod intent;
pub mod invoke;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod log;
pub mod platform;
pub mod remote;
pub mod store;
pub mod tables;
pub mod txn;
pub mod value;

#[doc(hidden)]
pub use inventory;

pub use ctx::Ctx;
pub use error::{BeldiError, UserError};
pub use platform::Runtime;
