//! Mapping of SDK errors onto [`StoreError`]: error codes by kind, the item a failed
//! condition returned, and a cancelled transaction's reasons, item by item.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{self as ddb, AttributeValue as Av};

use super::convert::from_item;
use crate::store::{CancellationReason, Key, MAX_ITEM_SIZE, StoreError};

fn map_code(table: &str, code: &str, message: &str) -> StoreError {
    let message = message.to_owned();
    match code {
        "ResourceNotFoundException" => StoreError::TableNotFound {
            table: table.to_owned(),
        },
        "ConditionalCheckFailedException" => StoreError::ConditionFailed {
            table: table.to_owned(),
            key: String::new(),
            item: None,
        },
        "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "RequestLimitExceeded" => StoreError::Throttled { message },
        "TransactionConflictException" | "TransactionInProgressException" => {
            StoreError::TransactionConflict {
                table: table.to_owned(),
            }
        }
        "InternalServerError" | "ServiceUnavailable" | "ServiceUnavailableException" => {
            StoreError::Unavailable { message }
        }
        "ValidationException" if message.contains("Item size") && message.contains("exceeded") => {
            StoreError::ItemTooLarge {
                table: table.to_owned(),
                size: None,
                limit: MAX_ITEM_SIZE,
            }
        }
        "ValidationException"
        | "IdempotentParameterMismatchException"
        | "SerializationException" => StoreError::validation(table, message),
        "" => StoreError::Unavailable { message },
        other => StoreError::Io {
            message: format!("DynamoDB error {other}: {message}"),
            source: None,
        },
    }
}

pub(super) fn map_sdk_err<E>(
    table: &str,
    err: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            map_code(table, e.code().unwrap_or(""), e.message().unwrap_or(""))
        }
        SdkError::ConstructionFailure(_) => {
            StoreError::io("cannot build the DynamoDB request", err)
        }
        // Timeouts, connection failures and unreadable responses: the outcome is unknown.
        _ => StoreError::Unavailable {
            message: format!(
                "DynamoDB request failed: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&err)
            ),
        },
    }
}

/// The condition-failure item of the single-item write errors.
pub(super) trait CondFailed {
    fn cond_failed(&self) -> Option<Option<&HashMap<String, Av>>>;
}
macro_rules! cond_failed {
    ($($t:ident),*) => {$(
        impl CondFailed for $t {
            fn cond_failed(&self) -> Option<Option<&HashMap<String, Av>>> {
                match self {
                    $t::ConditionalCheckFailedException(c) => Some(c.item()),
                    _ => None,
                }
            }
        }
    )*};
}
cond_failed!(PutItemError, UpdateItemError, DeleteItemError);

pub(super) fn map_write_err<E>(
    table: &str,
    key: &Key,
    err: SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> StoreError
where
    E: CondFailed + ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if let SdkError::ServiceError(se) = &err
        && let Some(item) = se.err().cond_failed()
    {
        return StoreError::ConditionFailed {
            table: table.to_owned(),
            key: key.to_string(),
            item: match item.map(from_item).transpose() {
                Ok(i) => i.map(Box::new),
                Err(e) => return e,
            },
        };
    }
    map_sdk_err(table, err)
}

pub(super) fn map_reason(r: &ddb::CancellationReason) -> Result<CancellationReason, StoreError> {
    let code = r.code().unwrap_or("None");
    Ok(match code {
        "None" => CancellationReason::None,
        "ConditionalCheckFailed" => CancellationReason::ConditionFailed {
            item: r.item().map(from_item).transpose()?.map(Box::new),
        },
        "TransactionConflict" => CancellationReason::TransactionConflict,
        "ProvisionedThroughputExceeded" | "ThrottlingError" | "RequestLimitExceeded" => {
            CancellationReason::Throttled
        }
        "ValidationError" if r.message().is_some_and(|m| m.contains("Item size")) => {
            CancellationReason::ItemTooLarge
        }
        other => CancellationReason::Other {
            code: other.to_owned(),
            message: r.message().unwrap_or("").to_owned(),
        },
    })
}

pub(super) fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::io("cannot build a DynamoDB transaction item", e)
}
