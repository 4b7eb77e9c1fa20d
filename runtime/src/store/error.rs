//! The one error type of every [`Store`](super::Store) operation.

use super::value::Item;

/// What went wrong in a store operation. The kinds mirror DynamoDB's, so protocol code
/// handles both backends the same way.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The operation's condition evaluated to false; nothing was written.
    #[error("condition failed on table `{table}`, key {key}")]
    ConditionFailed {
        /// The table of the item.
        table: String,
        /// The item's key, rendered.
        key: String,
        /// The item as it was when the condition was checked, when the request asked for it
        /// (`None` also when the item did not exist).
        item: Option<Box<Item>>,
    },
    /// A multi-item transaction was cancelled; nothing was written.
    #[error("transaction cancelled: {}", describe_reasons(.reasons))]
    TransactionCancelled {
        /// One reason per item of the request, in request order.
        reasons: Vec<CancellationReason>,
    },
    /// A single-item operation conflicted with a concurrent transaction on the same item.
    /// Retryable.
    #[error("operation on table `{table}` conflicted with a concurrent transaction")]
    TransactionConflict {
        /// The table of the item.
        table: String,
    },
    /// The item would exceed DynamoDB's 400 KB item limit.
    #[error("item in table `{table}` is too large: {} bytes, the limit is {limit}", size.map_or("over the limit".to_owned(), |s| s.to_string()))]
    ItemTooLarge {
        /// The table of the item.
        table: String,
        /// The item's size as DynamoDB counts it, when known (an update's result is sized by
        /// the server on the DynamoDB backend).
        size: Option<usize>,
        /// The limit in bytes.
        limit: usize,
    },
    /// The request is malformed: `name` is the offending name or value.
    #[error("invalid `{name}`: {message}")]
    Validation {
        /// The offending table name, attribute name, path, key or value.
        name: String,
        /// What is wrong with it.
        message: String,
    },
    /// The table does not exist.
    #[error("table `{table}` does not exist")]
    TableNotFound {
        /// The missing table.
        table: String,
    },
    /// The request was rejected because of request rate; it was not applied. Retryable.
    #[error("throttled: {message}")]
    Throttled {
        /// The backend's message.
        message: String,
    },
    /// The backend did not answer properly (timeout, lost response, server error).
    /// The request may or may not have been applied. Retryable.
    #[error("backend unavailable, outcome unknown: {message}")]
    Unavailable {
        /// What happened.
        message: String,
    },
    /// A local I/O or engine failure of the backend.
    #[error("backend I/O error: {message}")]
    Io {
        /// What happened.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<std::sync::Arc<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// A validation error about `name`.
    pub fn validation(name: impl Into<String>, message: impl Into<String>) -> StoreError {
        StoreError::Validation {
            name: name.into(),
            message: message.into(),
        }
    }

    /// An I/O error with its source.
    pub fn io(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StoreError {
        StoreError::Io {
            message: message.into(),
            source: Some(std::sync::Arc::from(source.into())),
        }
    }

    /// Whether retrying the same request may succeed (throttling, conflicts, lost responses).
    /// A transaction cancelled only for conflicts or throttling is retryable too.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Throttled { .. }
            | StoreError::Unavailable { .. }
            | StoreError::TransactionConflict { .. } => true,
            StoreError::TransactionCancelled { reasons } => {
                reasons
                    .iter()
                    .any(|r| !matches!(r, CancellationReason::None))
                    && reasons.iter().all(|r| {
                        matches!(
                            r,
                            CancellationReason::None
                                | CancellationReason::TransactionConflict
                                | CancellationReason::Throttled
                        )
                    })
            }
            _ => false,
        }
    }

    /// Whether this is a failed condition of a single-item operation.
    pub fn is_condition_failed(&self) -> bool {
        matches!(self, StoreError::ConditionFailed { .. })
    }
}

/// Why one item of a transaction was or was not the cause of its cancellation.
#[derive(Debug, Clone, PartialEq)]
pub enum CancellationReason {
    /// This item was fine; another one cancelled the transaction.
    None,
    /// This item's condition failed. Holds the item as it was, when asked for.
    ConditionFailed {
        /// The current item, when the request asked for it and it exists.
        item: Option<Box<Item>>,
    },
    /// Another transaction or write was in progress on this item.
    TransactionConflict,
    /// Throttled on this item.
    Throttled,
    /// The item would exceed the item size limit.
    ItemTooLarge,
    /// Any other reason the backend gave.
    Other {
        /// The backend's code.
        code: String,
        /// The backend's message.
        message: String,
    },
}

fn describe_reasons(reasons: &[CancellationReason]) -> String {
    let failed: Vec<String> = reasons
        .iter()
        .enumerate()
        .filter(|(_, r)| !matches!(r, CancellationReason::None))
        .map(|(i, r)| {
            let what = match r {
                CancellationReason::None => "none".to_owned(),
                CancellationReason::ConditionFailed { .. } => "condition failed".to_owned(),
                CancellationReason::TransactionConflict => "transaction conflict".to_owned(),
                CancellationReason::Throttled => "throttled".to_owned(),
                CancellationReason::ItemTooLarge => "item too large".to_owned(),
                CancellationReason::Other { code, message } => format!("{code}: {message}"),
            };
            format!("item {i}: {what}")
        })
        .collect();
    failed.join("; ")
}
