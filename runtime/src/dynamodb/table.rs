//! Tables on DynamoDB: creating and deleting them, and the schema cache (one
//! `DescribeTable` on a table's first use, dropped when the table turns out to be gone), so
//! keys are validated client-side exactly as on the embedded backend.

use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    self as ddb, AttributeDefinition, BillingMode, KeySchemaElement, KeyType as DdbKeyType,
    ScalarAttributeType, TableStatus,
};

use super::DynamoDbStore;
use super::error::{build_err, map_sdk_err};
use crate::store::{KeyAttr, KeyType, StoreError, TableSpec, validate};

/// [`Store::create_table`](crate::store::Store::create_table) on DynamoDB: waits until the
/// table is ACTIVE.
pub(super) async fn create(store: &DynamoDbStore, spec: &TableSpec) -> Result<bool, StoreError> {
    validate::table_spec(spec)?;
    let scalar = |t: KeyType| match t {
        KeyType::S => ScalarAttributeType::S,
        KeyType::B => ScalarAttributeType::B,
    };
    let mut req = store
        .client
        .create_table()
        .table_name(&spec.name)
        .billing_mode(BillingMode::PayPerRequest);
    for (attr, kt) in std::iter::once((&spec.partition_key, DdbKeyType::Hash))
        .chain(spec.sort_key.as_ref().map(|s| (s, DdbKeyType::Range)))
    {
        req = req
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(&attr.name)
                    .attribute_type(scalar(attr.key_type))
                    .build()
                    .map_err(build_err)?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(&attr.name)
                    .key_type(kt)
                    .build()
                    .map_err(build_err)?,
            );
    }
    match req.send().await {
        Ok(_) => {
            store.wait_active(&spec.name).await?;
            if let Ok(mut m) = store.specs.write() {
                m.insert(spec.name.clone(), spec.clone());
            }
            Ok(true)
        }
        Err(SdkError::ServiceError(se)) if se.err().code() == Some("ResourceInUseException") => {
            store.forget(&spec.name);
            let existing = store.spec(&spec.name).await?;
            if &existing != spec {
                return Err(StoreError::validation(
                    &spec.name,
                    format!("table exists with a different schema: {existing:?}"),
                ));
            }
            store.wait_active(&spec.name).await?;
            Ok(false)
        }
        Err(e) => Err(map_sdk_err(&spec.name, e)),
    }
}

/// [`Store::delete_table`](crate::store::Store::delete_table) on DynamoDB.
pub(super) async fn delete(store: &DynamoDbStore, name: &str) -> Result<bool, StoreError> {
    validate::table_name(name)?;
    store.forget(name);
    match store.client.delete_table().table_name(name).send().await {
        Ok(_) => Ok(true),
        Err(e) => match map_sdk_err(name, e) {
            StoreError::TableNotFound { .. } => Ok(false),
            other => Err(other),
        },
    }
}

/// [`Store::list_tables`](crate::store::Store::list_tables) on DynamoDB: `ListTables`,
/// every page, filtered by `prefix`.
pub(super) async fn list(store: &DynamoDbStore, prefix: &str) -> Result<Vec<String>, StoreError> {
    let mut names = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let out = store
            .client
            .list_tables()
            .set_exclusive_start_table_name(start.take())
            .send()
            .await
            .map_err(|e| map_sdk_err("(list tables)", e))?;
        names.extend(
            out.table_names()
                .iter()
                .filter(|n| n.starts_with(prefix))
                .cloned(),
        );
        match out.last_evaluated_table_name() {
            Some(last) => start = Some(last.to_owned()),
            None => break,
        }
    }
    names.sort();
    Ok(names)
}

impl DynamoDbStore {
    pub(super) async fn spec(&self, table: &str) -> Result<TableSpec, StoreError> {
        if let Some(s) = self.specs.read().ok().and_then(|m| m.get(table).cloned()) {
            return Ok(s);
        }
        validate::table_name(table)?;
        let out = self
            .client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| map_sdk_err(table, e))?;
        let desc = out.table().ok_or_else(|| StoreError::Unavailable {
            message: format!("DescribeTable of `{table}` returned no table"),
        })?;
        let spec = spec_from_description(table, desc)?;
        if let Ok(mut m) = self.specs.write() {
            m.insert(table.to_owned(), spec.clone());
        }
        Ok(spec)
    }

    pub(super) fn forget(&self, table: &str) {
        if let Ok(mut m) = self.specs.write() {
            m.remove(table);
        }
    }

    /// Drops the cached schema when the table turned out to be gone.
    pub(super) fn seen<T>(&self, table: &str, r: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(StoreError::TableNotFound { .. }) = &r {
            self.forget(table);
        }
        r
    }

    async fn wait_active(&self, table: &str) -> Result<(), StoreError> {
        for _ in 0..600 {
            let out = self
                .client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|e| map_sdk_err(table, e))?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(StoreError::Unavailable {
            message: format!("table `{table}` did not become ACTIVE within 60 s"),
        })
    }
}

fn spec_from_description(
    table: &str,
    desc: &ddb::TableDescription,
) -> Result<TableSpec, StoreError> {
    let ty = |name: &str| -> Result<KeyType, StoreError> {
        let def = desc
            .attribute_definitions()
            .iter()
            .find(|d| d.attribute_name() == name)
            .ok_or_else(|| {
                StoreError::validation(
                    name,
                    format!("table `{table}` has no definition for its key attribute"),
                )
            })?;
        match def.attribute_type() {
            ScalarAttributeType::S => Ok(KeyType::S),
            ScalarAttributeType::B => Ok(KeyType::B),
            other => Err(StoreError::validation(
                name,
                format!(
                    "key attribute of table `{table}` has type {other:?}; only S and B keys are supported"
                ),
            )),
        }
    };
    let mut pk = None;
    let mut sk = None;
    for k in desc.key_schema() {
        let attr = KeyAttr {
            name: k.attribute_name().to_owned(),
            key_type: ty(k.attribute_name())?,
        };
        match k.key_type() {
            DdbKeyType::Hash => pk = Some(attr),
            _ => sk = Some(attr),
        }
    }
    Ok(TableSpec {
        name: table.to_owned(),
        partition_key: pk
            .ok_or_else(|| StoreError::validation(table, "table has no partition key"))?,
        sort_key: sk,
    })
}
