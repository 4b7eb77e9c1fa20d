//! Why a job could not run (exit code 2): bad input, or a broken environment.

use std::path::PathBuf;

use beldi::prelude::{BeldiError, StoreError};

/// Why a job could not run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JobError {
    /// A command-line option (or a combination of them) is not valid.
    #[error("{0}")]
    Usage(String),
    /// The runtime refused or failed (a bad configuration, a store error, a crash that a
    /// retry could not finish).
    #[error(transparent)]
    Beldi(#[from] BeldiError),
    /// The embedded store could not be opened.
    #[error("cannot open the store in {}: {source}", dir.display())]
    OpenStore {
        /// Its directory.
        dir: PathBuf,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// A service (DynamoDB, a Lambda deployment) could not be reached.
    #[error("cannot reach {what}: {message}")]
    Unreachable {
        /// What.
        what: String,
        /// Why.
        message: String,
    },
    /// The deployment is not the one this run is for.
    #[error("{0}")]
    Deployment(String),
    /// A request failed in a way the job does not retry.
    #[error("request {request}: {message}")]
    Request {
        /// The request id.
        request: String,
        /// What happened.
        message: String,
    },
    /// The workload driver failed.
    #[error(transparent)]
    Driver(#[from] beldi_examples::driver::DriverError),
    /// A request's task ended without an outcome (it panicked).
    #[error("a request task ended without an outcome: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The inspector could not do what was asked.
    #[error(transparent)]
    Inspect(#[from] beldi::cli::CliError),
    /// The binary lacks a feature the options need.
    #[cfg_attr(all(feature = "dynamodb", feature = "lambda"), allow(dead_code))]
    #[error("this binary was built without the `{0}` feature; rebuild with `--features {0}`")]
    MissingFeature(&'static str),
}

/// A [`JobError::Usage`] with `message`.
pub(crate) fn usage(message: impl Into<String>) -> JobError {
    JobError::Usage(message.into())
}
