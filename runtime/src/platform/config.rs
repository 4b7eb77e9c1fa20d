//! The options of a [`Runtime`](super::Runtime), and their checks.

use std::time::Duration;

use crate::daal::DEFAULT_ROW_CAPACITY;
use crate::error::BeldiError;
use crate::tables::validate_namespace;

/// Options of a [`Runtime`](super::Runtime).
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Prefix of every table name (lets several deployments or tests share one store).
    pub namespace: String,
    /// DAAL row capacity N (log entries per row).
    pub row_capacity: u64,
    /// Default execution timeout of a function (a timeout counts as a crash).
    pub timeout: Duration,
    /// The longest an async start may wait before it runs (queue age); the local platform
    /// starts at once, a cloud queue may not.
    pub max_queue_age: Duration,
    /// Fault-tolerant (the default) or baseline (no logging; see [`crate::baseline`]).
    pub mode: Mode,
    /// Longest an older transaction waits for one lock held by a younger one before it
    /// gives up (and aborts, to be retried).
    pub lock_wait: Duration,
}

/// How a runtime runs functions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Exactly-once, logged, transactional: the protocol.
    #[default]
    Beldi,
    /// The same bodies on plain store operations, with no logging and no guarantees: the
    /// baseline that overhead is measured against ([`crate::baseline`]).
    Baseline,
}

impl Mode {
    /// `beldi` or `baseline`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Beldi => "beldi",
            Mode::Baseline => "baseline",
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            namespace: String::new(),
            row_capacity: DEFAULT_ROW_CAPACITY,
            timeout: Duration::from_secs(60),
            max_queue_age: Duration::from_secs(60),
            mode: Mode::Beldi,
            lock_wait: Duration::from_secs(10),
        }
    }
}

impl RuntimeConfig {
    /// Checks the options: a valid namespace and a row capacity of at least 1.
    pub fn validate(&self) -> Result<(), BeldiError> {
        validate_namespace(&self.namespace)?;
        if self.row_capacity == 0 {
            return Err(BeldiError::InvalidConfig {
                setting: "row_capacity",
                value: "0".into(),
                message: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}
