//! # Beldi for Rust
//!
//! Fault-tolerant, transactional, stateful serverless workflows, after the OSDI 2020 system
//! Beldi: ordinary `async fn`s get exactly-once reads, writes and invocations across crashes,
//! and serializable transactions across functions, on AWS Lambda + DynamoDB or locally on an
//! embedded store with no server.
//!
//! What is here:
//!
//! - functions declared with `#[beldi::function]` (or registered on a [`Runtime`], the local
//!   platform) receive a [`Ctx`] whose `read`, `write`, `update`, `cond_write`, `delete`,
//!   `scan`, `call`, `spawn`, `side_effect`, `now`, `random`, `uuid` and `sleep` are logged
//!   and exactly-once across crashes and duplicate executions; `#[beldi::txn]` blocks and
//!   functions are serializable transactions across functions (wait-die locking); the
//!   macros reject non-logged side effects at compile time;
//! - the intent collector and the garbage collector ([`collector`], [`gc`]), a
//!   [`remote`] transport and the AWS Lambda platform (`lambda`, feature `lambda`);
//! - the [`explorer`], which crashes a workflow at every step boundary and checks your
//!   invariants, [`crash`] injection for your own tests, and [`inspect`] for checkers and
//!   operators (current values, locks, stored results, unfinished and failed instances);
//! - the [`store::Store`] abstraction (DynamoDB's data model and operations, with typed
//!   conditions and update actions), its two backends — [`embedded::EmbeddedStore`]
//!   (default, durable on local disk) and `dynamodb::DynamoDbStore` (feature `dynamodb`) —
//!   and the [`counting`] and [`faulty`] wrappers.
//!
//! An exactly-once function:
//!
//! ```
//! use std::sync::Arc;
//! use beldi::prelude::*;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let dir = tempfile::tempdir().unwrap();
//! let rt = Runtime::new(Arc::new(EmbeddedStore::open(dir.path())?));
//! rt.register("deposit", &["accounts"], |ctx: Ctx, (who, amount): (String, i64)| async move {
//!     ctx.update("accounts", &who, vec![UpdateAction::add(Path::root(), amount)]).await?;
//!     Ok::<_, UserError>(ctx.read_as::<i64>("accounts", &who).await?.unwrap_or(0))
//! })?;
//! rt.provision().await?;
//! // The request crashes after its write is durable...
//! let crash = FaultPlan::crash_at(CrashPoint::After(0));
//! let crashed = rt.invoke_with::<_, i64, UserError>("deposit", "req-7", &("alice", 30), crash, 0);
//! assert!(crashed.await.is_err());
//! // ...and its re-execution finishes it without depositing twice.
//! let balance = rt.invoke::<_, i64, UserError>("deposit", "req-7", &("alice", 30)).await?;
//! assert_eq!(balance, Ok(30));
//! # Ok::<(), BeldiError>(())
//! # }).unwrap();
//! ```
//!
//! The store underneath:
//!
//! ```
//! use beldi::prelude::*;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! # let dir = tempfile::tempdir().unwrap();
//! let store = EmbeddedStore::open(dir.path())?;
//! store.create_table(&TableSpec::new("accounts", "id")).await?;
//! // A conditional write: create the account only if it does not exist yet.
//! let mut alice = Item::new();
//! alice.insert("id".into(), "alice".into());
//! alice.insert("balance".into(), 100.into());
//! store.put(Put::new("accounts", alice).if_absent("id")).await?;
//! // Withdraw 30 only if the balance covers it.
//! store
//!     .update(
//!         Update::new("accounts", Key::new("alice"))
//!             .action(UpdateAction::add("balance", -30))
//!             .condition(Condition::Ge(Path::attr("balance"), 30.into())),
//!     )
//!     .await?;
//! let balance = store.get("accounts", &Key::new("alice")).await?.unwrap()["balance"].as_i64();
//! assert_eq!(balance, Some(70));
//! # Ok::<(), StoreError>(())
//! # }).unwrap();
//! ```

#![warn(missing_docs)]

pub use beldi_runtime::{
    BeldiError, CrashPoint, Ctx, Execution, FaultPlan, Handle, Invocation, Runtime, UserError,
};

/// Crash injection for your own tests: where an instance crashes ([`CrashPoint`]) and when
/// ([`FaultPlan`]); pass a plan to [`Handle::invoke_with`] or [`Runtime::invoke_with`].
pub use beldi_runtime::crash;
pub use beldi_runtime::{
    collector, counting, data, embedded, error, explorer, faulty, gc, inspect, platform, remote,
    store, telemetry, value,
};

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "dynamodb")]
pub use beldi_runtime::dynamodb;
#[cfg(feature = "lambda")]
pub use beldi_runtime::lambda;

/// The names most programs need.
pub mod prelude {
    pub use crate::collector::IcConfig;
    pub use crate::crash::{CrashPoint, FaultPlan};
    pub use crate::embedded::{CommitStats, Durability, EmbeddedOptions, EmbeddedStore};
    pub use crate::gc::GcConfig;
    pub use crate::platform::{Mode, Runtime, RuntimeConfig};
    pub use crate::store::{
        AttrValue, CancellationReason, Condition, ConditionCheck, Delete, Item, Key, KeyValue,
        Number, Path, Put, Query, ReturnValues, Scan, Store, StoreError, StoreExt, TableSpec,
        TransactOp, TransactWrite, Update, UpdateAction,
    };
    pub use crate::{BeldiError, Ctx, Handle, UserError};
}

/// Paths used by the code the macros generate. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use beldi_runtime;
    pub use beldi_runtime::inventory;
    pub use beldi_runtime::macro_support::{Handle, Registration, TxnEnd, txn_is_ok};
    pub use beldi_runtime::{BeldiError, Ctx, Runtime};
    pub use serde;
}

pub use beldi_macros::{allow, deterministic, function, txn};

/// The crate README's example, compiled and run as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctest;
