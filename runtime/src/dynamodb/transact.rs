//! Transactions on DynamoDB: each operation of a [`TransactWrite`] becomes one
//! `TransactWriteItem` with its own expressions, and a cancellation keeps its reasons, item
//! by item.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{self as ddb, TransactWriteItem};

use super::DynamoDbStore;
use super::convert::{key_map, to_item};
use super::error::{build_err, map_reason, map_sdk_err};
use super::expr::{Expr, on_fail};
use crate::store::{CancellationReason, StoreError, TransactOp, TransactWrite, validate};

/// [`Store::transact_write`](crate::store::Store::transact_write) on DynamoDB.
pub(super) async fn write(store: &DynamoDbStore, req: TransactWrite) -> Result<(), StoreError> {
    validate::transaction(&req)?;
    let mut keys = Vec::with_capacity(req.ops.len());
    let mut items = Vec::with_capacity(req.ops.len());
    for op in &req.ops {
        let spec = store.spec(op.table()).await?;
        keys.push((spec.name.clone(), validate::transact_op(&spec, op)?));
        let mut ex = Expr::default();
        let item = match op {
            TransactOp::Put(p) => {
                let cond = p.condition.as_ref().map(|c| ex.cond(c));
                TransactWriteItem::builder().put(
                    ddb::Put::builder()
                        .table_name(&p.table)
                        .set_item(Some(to_item(&p.item)))
                        .set_condition_expression(cond)
                        .set_expression_attribute_names(ex.names())
                        .set_expression_attribute_values(ex.values())
                        .set_return_values_on_condition_check_failure(on_fail(
                            p.return_item_on_failure,
                        ))
                        .build()
                        .map_err(build_err)?,
                )
            }
            TransactOp::Update(u) => {
                let update = ex.update(&u.actions);
                let cond = u.condition.as_ref().map(|c| ex.cond(c));
                TransactWriteItem::builder().update(
                    ddb::Update::builder()
                        .table_name(&u.table)
                        .set_key(Some(key_map(&spec, &u.key)))
                        .update_expression(update)
                        .set_condition_expression(cond)
                        .set_expression_attribute_names(ex.names())
                        .set_expression_attribute_values(ex.values())
                        .set_return_values_on_condition_check_failure(on_fail(
                            u.return_item_on_failure,
                        ))
                        .build()
                        .map_err(build_err)?,
                )
            }
            TransactOp::Delete(d) => {
                let cond = d.condition.as_ref().map(|c| ex.cond(c));
                TransactWriteItem::builder().delete(
                    ddb::Delete::builder()
                        .table_name(&d.table)
                        .set_key(Some(key_map(&spec, &d.key)))
                        .set_condition_expression(cond)
                        .set_expression_attribute_names(ex.names())
                        .set_expression_attribute_values(ex.values())
                        .set_return_values_on_condition_check_failure(on_fail(
                            d.return_item_on_failure,
                        ))
                        .build()
                        .map_err(build_err)?,
                )
            }
            TransactOp::ConditionCheck(c) => {
                let cond = ex.cond(&c.condition);
                TransactWriteItem::builder().condition_check(
                    ddb::ConditionCheck::builder()
                        .table_name(&c.table)
                        .set_key(Some(key_map(&spec, &c.key)))
                        .condition_expression(cond)
                        .set_expression_attribute_names(ex.names())
                        .set_expression_attribute_values(ex.values())
                        .set_return_values_on_condition_check_failure(on_fail(
                            c.return_item_on_failure,
                        ))
                        .build()
                        .map_err(build_err)?,
                )
            }
        };
        items.push(item.build());
    }
    validate::distinct_items(&keys)?;
    let first = keys.first().map(|(t, _)| t.clone()).unwrap_or_default();
    match store
        .client
        .transact_write_items()
        .set_transact_items(Some(items))
        .set_client_request_token(req.client_token.clone())
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(SdkError::ServiceError(se))
            if matches!(
                se.err(),
                TransactWriteItemsError::TransactionCanceledException(_)
            ) =>
        {
            let TransactWriteItemsError::TransactionCanceledException(c) = se.err() else {
                unreachable!("matched above")
            };
            let mut reasons = c
                .cancellation_reasons()
                .iter()
                .map(map_reason)
                .collect::<Result<Vec<_>, _>>()?;
            // Keep one reason per item even if the service sent fewer.
            reasons.resize(req.ops.len(), CancellationReason::None);
            Err(StoreError::TransactionCancelled { reasons })
        }
        Err(e) => {
            let err = map_sdk_err(&first, e);
            if let StoreError::TableNotFound { .. } = &err {
                keys.iter().for_each(|(t, _)| store.forget(t));
            }
            Err(err)
        }
    }
}
