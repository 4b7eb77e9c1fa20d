//! # Beldi for Rust
//!
//! Fault-tolerant, transactional, stateful serverless workflows, after the OSDI 2020 system
//! Beldi: ordinary `async fn`s get exactly-once reads, writes and invocations across crashes,
//! and serializable transactions across functions, on AWS Lambda + DynamoDB or locally on an
//! embedded store with no server.
//!
//! This release provides the foundation every protocol stands on: the [`store::Store`]
//! abstraction (DynamoDB's data model and operations, with typed conditions and update
//! actions), its two backends — [`embedded::EmbeddedStore`] (default, durable on local disk)
//! and `dynamodb::DynamoDbStore` (feature `dynamodb`) — and the [`counting`] and [`faults`]
//! wrappers.
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

pub use beldi_runtime::{counting, embedded, faults, store};

#[cfg(feature = "dynamodb")]
pub use beldi_runtime::dynamodb;

/// The names most programs need.
pub mod prelude {
    pub use crate::embedded::{Durability, EmbeddedOptions, EmbeddedStore};
    pub use crate::store::{
        AttrValue, CancellationReason, Condition, ConditionCheck, Delete, Item, Key, KeyValue,
        Number, Path, Put, Query, ReturnValues, Scan, Store, StoreError, StoreExt, TableSpec,
        TransactOp, TransactWrite, Update, UpdateAction,
    };
}

/// Paths used by the code the macros generate. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use beldi_runtime;
}
