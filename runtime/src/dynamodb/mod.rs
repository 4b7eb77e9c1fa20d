//! The Amazon DynamoDB backend (feature `dynamodb`), through `aws-sdk-dynamodb`.
//!
//! Typed conditions and update actions are rendered into DynamoDB expressions in which every
//! name and value is a placeholder (`#n0`, `:v0`), so names of any characters work. Every
//! read is strongly consistent. Every SDK error is mapped onto [`StoreError`]; transaction
//! cancellation reasons are kept, item by item.
//!
//! Table schemas are cached after the first use of a table (one `DescribeTable`), so keys
//! are validated client-side exactly as on the embedded backend.
//!
//! This module holds the configuration, the store and its [`Store`] impl; the rest is in
//! `convert` (values and items to and from the SDK's), `expr` (expressions), `error` (SDK
//! errors onto [`StoreError`]), `table` (table creation and deletion, the schema cache) and
//! `transact` (transactions).

mod batch;
mod convert;
mod error;
mod expr;
mod table;
mod transact;

use std::collections::HashMap;
use std::sync::RwLock;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::types::ReturnValue;

use crate::store::{
    BatchGet, BatchWrite, Delete, Item, Key, Page, Path, Put, Query, ReturnValues, Scan, Store,
    StoreError, TableSpec, TransactWrite, Update, validate,
};
use convert::{from_item, key_map, page, to_av, to_item};
use error::{map_sdk_err, map_write_err};
use expr::{Expr, on_fail};

/// The access key every local client uses: DynamoDB Local keeps one database per access
/// key and region, so all local clients must agree.
pub const LOCAL_ACCESS_KEY: &str = "beldilocal";
/// The region every local client uses.
pub const LOCAL_REGION: &str = "us-east-1";

/// The DynamoDB Local endpoint for tests, from `BELDI_DYNAMODB_ENDPOINT` (which
/// `scripts/test.sh` sets). When it is missing: under `CI=true` this panics (a suite that needs
/// DynamoDB must not pass by skipping); elsewhere it says so on stderr and returns `None`.
pub fn test_endpoint() -> Option<String> {
    match std::env::var("BELDI_DYNAMODB_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "BELDI_DYNAMODB_ENDPOINT is not set under CI=true: run the tests with scripts/test.sh"
            )
        }
        _ => {
            eprintln!(
                "SKIPPED: BELDI_DYNAMODB_ENDPOINT is not set; run scripts/test.sh to test against DynamoDB Local"
            );
            None
        }
    }
}

/// How to reach DynamoDB.
#[derive(Clone, Debug, Default)]
pub struct DynamoDbConfig {
    /// Endpoint URL (e.g. DynamoDB Local's `http://127.0.0.1:8000`); `None`: AWS's.
    pub endpoint: Option<String>,
    /// Region; `None`: from the environment / profile.
    pub region: Option<String>,
    /// Static credentials (access key, secret); `None`: the default credential chain.
    pub credentials: Option<(String, String)>,
    /// Maximum attempts per request by the SDK's retry policy (1 = no SDK retries).
    /// `None`: the SDK's default (3).
    pub max_attempts: Option<u32>,
}

impl DynamoDbConfig {
    /// The configuration of a DynamoDB Local at `endpoint`, with the project's fixed dummy
    /// credentials and region.
    pub fn local(endpoint: impl Into<String>) -> DynamoDbConfig {
        DynamoDbConfig {
            endpoint: Some(endpoint.into()),
            region: Some(LOCAL_REGION.to_owned()),
            credentials: Some((LOCAL_ACCESS_KEY.to_owned(), LOCAL_ACCESS_KEY.to_owned())),
            max_attempts: None,
        }
    }
}

/// A [`Store`] on Amazon DynamoDB (or DynamoDB Local).
pub struct DynamoDbStore {
    client: Client,
    specs: RwLock<HashMap<String, TableSpec>>,
}

impl DynamoDbStore {
    /// Connects with `cfg`, filling what it leaves out from the environment.
    pub async fn connect(cfg: DynamoDbConfig) -> DynamoDbStore {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(e) = &cfg.endpoint {
            loader = loader.endpoint_url(e);
        }
        if let Some(r) = &cfg.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some((id, secret)) = &cfg.credentials {
            loader = loader.credentials_provider(Credentials::new(
                id,
                secret,
                None,
                None,
                "beldi-static",
            ));
        }
        if let Some(n) = cfg.max_attempts {
            loader = loader.retry_config(
                aws_config::retry::RetryConfig::standard().with_max_attempts(n.max(1)),
            );
        }
        let shared = loader.load().await;
        DynamoDbStore::from_client(Client::new(&shared))
    }

    /// A store on DynamoDB Local at `endpoint` (see [`DynamoDbConfig::local`]).
    pub async fn local(endpoint: impl Into<String>) -> DynamoDbStore {
        DynamoDbStore::connect(DynamoDbConfig::local(endpoint)).await
    }

    /// A store using an existing SDK client.
    pub fn from_client(client: Client) -> DynamoDbStore {
        DynamoDbStore {
            client,
            specs: RwLock::new(HashMap::new()),
        }
    }

    /// The SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

#[async_trait]
impl Store for DynamoDbStore {
    fn backend_name(&self) -> &'static str {
        "dynamodb"
    }

    async fn create_table(&self, spec: &TableSpec) -> Result<bool, StoreError> {
        table::create(self, spec).await
    }

    async fn delete_table(&self, name: &str) -> Result<bool, StoreError> {
        table::delete(self, name).await
    }

    async fn describe_table(&self, name: &str) -> Result<TableSpec, StoreError> {
        self.spec(name).await
    }

    async fn list_tables(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        table::list(self, prefix).await
    }

    async fn get(&self, table: &str, key: &Key) -> Result<Option<Item>, StoreError> {
        let spec = self.spec(table).await?;
        validate::key(&spec, key)?;
        let out = self
            .client
            .get_item()
            .table_name(table)
            .set_key(Some(key_map(&spec, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| map_sdk_err(table, e));
        let out = self.seen(table, out)?;
        out.item().map(from_item).transpose()
    }

    async fn get_projected(
        &self,
        table: &str,
        key: &Key,
        projection: &[Path],
    ) -> Result<Option<Item>, StoreError> {
        batch::get_projected(self, table, key, projection).await
    }

    async fn batch_get(&self, req: BatchGet) -> Result<Vec<Option<Item>>, StoreError> {
        batch::batch_get(self, req).await
    }

    async fn batch_write(&self, req: BatchWrite) -> Result<(), StoreError> {
        batch::batch_write(self, req).await
    }

    async fn put(&self, req: Put) -> Result<Option<Item>, StoreError> {
        let spec = self.spec(&req.table).await?;
        let key = validate::put(&spec, &req)?;
        let mut ex = Expr::default();
        let cond = req.condition.as_ref().map(|c| ex.cond(c));
        let out = self
            .client
            .put_item()
            .table_name(&req.table)
            .set_item(Some(to_item(&req.item)))
            .set_condition_expression(cond)
            .set_expression_attribute_names(ex.names())
            .set_expression_attribute_values(ex.values())
            .return_values(match req.return_values {
                ReturnValues::AllOld => ReturnValue::AllOld,
                _ => ReturnValue::None,
            })
            .set_return_values_on_condition_check_failure(on_fail(req.return_item_on_failure))
            .send()
            .await
            .map_err(|e| map_write_err(&req.table, &key, e));
        let out = self.seen(&req.table, out)?;
        match req.return_values {
            ReturnValues::AllOld => out.attributes().map(from_item).transpose(),
            _ => Ok(None),
        }
    }

    async fn update(&self, req: Update) -> Result<Option<Item>, StoreError> {
        let spec = self.spec(&req.table).await?;
        validate::update(&spec, &req)?;
        let mut ex = Expr::default();
        let update = ex.update(&req.actions);
        let cond = req.condition.as_ref().map(|c| ex.cond(c));
        let out = self
            .client
            .update_item()
            .table_name(&req.table)
            .set_key(Some(key_map(&spec, &req.key)))
            .update_expression(update)
            .set_condition_expression(cond)
            .set_expression_attribute_names(ex.names())
            .set_expression_attribute_values(ex.values())
            .return_values(match req.return_values {
                ReturnValues::None => ReturnValue::None,
                ReturnValues::AllOld => ReturnValue::AllOld,
                ReturnValues::AllNew => ReturnValue::AllNew,
            })
            .set_return_values_on_condition_check_failure(on_fail(req.return_item_on_failure))
            .send()
            .await
            .map_err(|e| map_write_err(&req.table, &req.key, e));
        let out = self.seen(&req.table, out)?;
        match req.return_values {
            ReturnValues::None => Ok(None),
            _ => out.attributes().map(from_item).transpose(),
        }
    }

    async fn delete(&self, req: Delete) -> Result<Option<Item>, StoreError> {
        let spec = self.spec(&req.table).await?;
        validate::key(&spec, &req.key)?;
        if let Some(c) = &req.condition {
            c.validate()?;
        }
        let mut ex = Expr::default();
        let cond = req.condition.as_ref().map(|c| ex.cond(c));
        let out = self
            .client
            .delete_item()
            .table_name(&req.table)
            .set_key(Some(key_map(&spec, &req.key)))
            .set_condition_expression(cond)
            .set_expression_attribute_names(ex.names())
            .set_expression_attribute_values(ex.values())
            .return_values(match req.return_values {
                ReturnValues::AllOld => ReturnValue::AllOld,
                _ => ReturnValue::None,
            })
            .set_return_values_on_condition_check_failure(on_fail(req.return_item_on_failure))
            .send()
            .await
            .map_err(|e| map_write_err(&req.table, &req.key, e));
        let out = self.seen(&req.table, out)?;
        match req.return_values {
            ReturnValues::AllOld => out.attributes().map(from_item).transpose(),
            _ => Ok(None),
        }
    }

    async fn query(&self, req: Query) -> Result<Page, StoreError> {
        let spec = self.spec(&req.table).await?;
        validate::partition(&spec, &req.partition)?;
        if req.limit == Some(0) {
            return Err(StoreError::validation(
                "query limit 0",
                "a page limit must be at least 1",
            ));
        }
        let mut ex = Expr::default();
        let pk = ex.name(&spec.partition_key.name);
        let pv = ex.value(to_av(&req.partition.to_attr()));
        let mut key_cond = format!("{pk} = {pv}");
        if let Some(prefix) = &req.sort_prefix {
            let sk = spec.sort_key.as_ref().ok_or_else(|| {
                StoreError::validation(
                    &req.table,
                    "the table has no sort key to match a prefix against",
                )
            })?;
            if prefix.key_type() != sk.key_type {
                return Err(StoreError::validation(
                    &sk.name,
                    "sort key prefix has the wrong type",
                ));
            }
            let skn = ex.name(&sk.name);
            let sv = ex.value(to_av(&prefix.to_attr()));
            key_cond += &format!(" AND begins_with({skn}, {sv})");
        }
        if let Some(k) = &req.start_after {
            validate::key(&spec, k)?;
        }
        let projection = match &req.projection {
            Some(p) => {
                validate::projection(p)?;
                Some(ex.projection(p, &spec.key_names()))
            }
            None => None,
        };
        let out = self
            .client
            .query()
            .set_projection_expression(projection)
            .table_name(&req.table)
            .key_condition_expression(key_cond)
            .set_expression_attribute_names(ex.names())
            .set_expression_attribute_values(ex.values())
            .consistent_read(true)
            .scan_index_forward(!req.descending)
            .set_limit(req.limit.map(|l| l.min(i32::MAX as usize) as i32))
            .set_exclusive_start_key(req.start_after.as_ref().map(|k| key_map(&spec, k)))
            .send()
            .await
            .map_err(|e| map_sdk_err(&req.table, e));
        let out = self.seen(&req.table, out)?;
        page(&spec, out.items(), out.last_evaluated_key())
    }

    async fn scan(&self, req: Scan) -> Result<Page, StoreError> {
        let spec = self.spec(&req.table).await?;
        if req.limit == Some(0) {
            return Err(StoreError::validation(
                "scan limit 0",
                "a page limit must be at least 1",
            ));
        }
        if let Some(k) = &req.start_after {
            validate::key(&spec, k)?;
        }
        let out = self
            .client
            .scan()
            .table_name(&req.table)
            .consistent_read(true)
            .set_limit(req.limit.map(|l| l.min(i32::MAX as usize) as i32))
            .set_exclusive_start_key(req.start_after.as_ref().map(|k| key_map(&spec, k)))
            .send()
            .await
            .map_err(|e| map_sdk_err(&req.table, e));
        let out = self.seen(&req.table, out)?;
        page(&spec, out.items(), out.last_evaluated_key())
    }

    async fn transact_write(&self, req: TransactWrite) -> Result<(), StoreError> {
        transact::write(self, req).await
    }
}
