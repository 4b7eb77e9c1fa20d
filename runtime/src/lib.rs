//! The runtime of Beldi for Rust: the [`Store`](store::Store) abstraction that every
//! protocol stands on, its backends and its wrappers.
//!
//! Users normally depend on the `beldi` facade crate, which re-exports this one.
//!
//! - [`store`]: the DynamoDB-shaped storage abstraction, its typed values, conditions and
//!   update actions, and the request validation shared by all backends.
//! - [`embedded`]: the default backend, durable on local disk (SQLite in WAL mode).
//! - `dynamodb` (feature `dynamodb`): Amazon DynamoDB through `aws-sdk-dynamodb`.
//! - [`counting`]: a wrapper counting round trips per operation kind.
//! - [`faults`]: a wrapper injecting seeded throttling, conflicts and lost responses.
#![warn(missing_docs)]

pub mod counting;
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
pub mod embedded;
pub mod faults;
pub mod store;
