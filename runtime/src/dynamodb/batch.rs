//! Projected reads and batches on DynamoDB: `GetItem` with a `ProjectionExpression`,
//! `BatchGetItem` and `BatchWriteItem`. A batch's unprocessed part (DynamoDB returns it
//! when throttled) is sent again with backoff until nothing is left, so a batch either
//! applies whole or fails with an error.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeValue as Av, DeleteRequest, KeysAndAttributes, PutRequest, WriteRequest,
};

use super::DynamoDbStore;
use super::convert::{from_item, key_map, to_item};
use super::error::{build_err, map_sdk_err};
use super::expr::Expr;
use crate::store::{
    BatchGet, BatchWrite, BatchWriteOp, Item, Key, Path, StoreError, TableSpec, validate,
};

/// Sends of one batch's unprocessed part before giving up.
const MAX_SENDS: u32 = 12;

async fn backoff(send: u32) {
    tokio::time::sleep(Duration::from_millis((5u64 << send.min(8)).min(1000))).await;
}

/// [`Store::get_projected`](crate::store::Store::get_projected) on DynamoDB.
pub(super) async fn get_projected(
    store: &DynamoDbStore,
    table: &str,
    key: &Key,
    projection: &[Path],
) -> Result<Option<Item>, StoreError> {
    let spec = store.spec(table).await?;
    validate::key(&spec, key)?;
    validate::projection(projection)?;
    let mut ex = Expr::default();
    let proj = ex.projection(projection, &spec.key_names());
    let out = store
        .client
        .get_item()
        .table_name(table)
        .set_key(Some(key_map(&spec, key)))
        .consistent_read(true)
        .projection_expression(proj)
        .set_expression_attribute_names(ex.names())
        .send()
        .await
        .map_err(|e| map_sdk_err(table, e));
    let out = store.seen(table, out)?;
    // An item with none of the attributes asked for still has its key (always projected).
    out.item().map(from_item).transpose()
}

/// [`Store::batch_get`](crate::store::Store::batch_get) on DynamoDB.
pub(super) async fn batch_get(
    store: &DynamoDbStore,
    req: BatchGet,
) -> Result<Vec<Option<Item>>, StoreError> {
    let spec = store.spec(&req.table).await?;
    validate::batch_get(&spec, &req)?;
    let mut ex = Expr::default();
    let proj = req
        .projection
        .as_ref()
        .map(|p| ex.projection(p, &spec.key_names()));
    let mut pending: Vec<HashMap<String, Av>> =
        req.keys.iter().map(|k| key_map(&spec, k)).collect();
    let mut found: HashMap<Key, Item> = HashMap::new();
    for send in 0..MAX_SENDS {
        let ask = KeysAndAttributes::builder()
            .set_keys(Some(std::mem::take(&mut pending)))
            .consistent_read(true)
            .set_projection_expression(proj.clone())
            .set_expression_attribute_names(ex.names())
            .build()
            .map_err(build_err)?;
        let out = store
            .client
            .batch_get_item()
            .request_items(&req.table, ask)
            .send()
            .await
            .map_err(|e| map_sdk_err(&req.table, e));
        let out = store.seen(&req.table, out)?;
        for raw in out
            .responses()
            .and_then(|r| r.get(&req.table))
            .into_iter()
            .flatten()
        {
            let item = from_item(raw)?;
            found.insert(spec.key_of(&item)?, item);
        }
        pending = out
            .unprocessed_keys()
            .and_then(|u| u.get(&req.table))
            .map(|k| k.keys().to_vec())
            .unwrap_or_default();
        if pending.is_empty() {
            return Ok(req.keys.iter().map(|k| found.remove(k)).collect());
        }
        backoff(send).await;
    }
    Err(unprocessed("batch get", &req.table, pending.len()))
}

/// [`Store::batch_write`](crate::store::Store::batch_write) on DynamoDB.
pub(super) async fn batch_write(store: &DynamoDbStore, req: BatchWrite) -> Result<(), StoreError> {
    validate::batch_write(&req)?;
    let mut keys = Vec::with_capacity(req.ops.len());
    let mut specs: HashMap<String, TableSpec> = HashMap::new();
    for op in &req.ops {
        let spec = store.spec(op.table()).await?;
        keys.push((spec.name.clone(), validate::batch_op(&spec, op)?));
        specs.insert(spec.name.clone(), spec);
    }
    validate::distinct_items(&keys)?;
    let mut pending: HashMap<String, Vec<WriteRequest>> = HashMap::new();
    for op in &req.ops {
        let w = match op {
            BatchWriteOp::Put { item, .. } => WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(to_item(item)))
                        .build()
                        .map_err(build_err)?,
                )
                .build(),
            BatchWriteOp::Delete { table, key } => WriteRequest::builder()
                .delete_request(
                    DeleteRequest::builder()
                        .set_key(Some(key_map(&specs[table], key)))
                        .build()
                        .map_err(build_err)?,
                )
                .build(),
        };
        pending.entry(op.table().to_owned()).or_default().push(w);
    }
    let first = req.ops[0].table().to_owned();
    for send in 0..MAX_SENDS {
        let out = store
            .client
            .batch_write_item()
            .set_request_items(Some(std::mem::take(&mut pending)))
            .send()
            .await
            .map_err(|e| map_sdk_err(&first, e));
        let out = store.seen(&first, out)?;
        pending = out.unprocessed_items().cloned().unwrap_or_default();
        pending.retain(|_, v| !v.is_empty());
        if pending.is_empty() {
            return Ok(());
        }
        backoff(send).await;
    }
    Err(unprocessed(
        "batch write",
        &first,
        pending.values().map(Vec::len).sum(),
    ))
}

fn unprocessed(what: &str, table: &str, left: usize) -> StoreError {
    StoreError::Throttled {
        message: format!(
            "{what} on `{table}`: {left} items still unprocessed after {MAX_SENDS} sends"
        ),
    }
}
