//! The jobs of the main binary, one file each, over one setup module.
//!
//! - [`cli`]: the command-line options and their checks;
//! - [`setup`]: opening the store (embedded or DynamoDB) and reaching Lambda;
//! - [`app`]: one application run (`movie`, `travel`, `social`);
//! - [`compare`]: baseline vs beldi, side by side;
//! - [`counter`]: exactly-once increments under crashes and duplicates;
//! - [`deploy`]: creating an application's tables on DynamoDB;
//! - [`inspect`]: the `beldi` inspector with an application's functions registered;
//! - [`report`]: the summary tables they print; [`error`]: why a job could not run.

pub(crate) mod app;
pub(crate) mod cli;
pub(crate) mod compare;
pub(crate) mod counter;
pub(crate) mod deploy;
pub(crate) mod error;
pub(crate) mod inspect;
pub(crate) mod report;
pub(crate) mod setup;
