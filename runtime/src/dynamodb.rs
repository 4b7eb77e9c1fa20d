//! The Amazon DynamoDB backend (feature `dynamodb`), through `aws-sdk-dynamodb`.
//!
//! Typed conditions and update actions are rendered into DynamoDB expressions in which every
//! name and value is a placeholder (`#n0`, `:v0`), so names of any characters work. Every
//! read is strongly consistent. Every SDK error is mapped onto [`StoreError`]; transaction
//! cancellation reasons are kept, item by item.
//!
//! Table schemas are cached after the first use of a table (one `DescribeTable`), so keys
//! are validated client-side exactly as on the embedded backend.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    self as ddb, AttributeDefinition, AttributeValue as Av, BillingMode, KeySchemaElement,
    KeyType as DdbKeyType, ReturnValue, ReturnValuesOnConditionCheckFailure as OnFail,
    ScalarAttributeType, TableStatus, TransactWriteItem,
};

use crate::store::{
    AttrValue, CancellationReason, Condition, Delete, Item, Key, KeyAttr, KeyType, MAX_ITEM_SIZE,
    Number, Page, Path, PathElem, Put, Query, ReturnValues, Scan, Store, StoreError, TableSpec,
    TransactOp, TransactWrite, Update, UpdateAction, validate,
};

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

    async fn spec(&self, table: &str) -> Result<TableSpec, StoreError> {
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

    fn forget(&self, table: &str) {
        if let Ok(mut m) = self.specs.write() {
            m.remove(table);
        }
    }

    /// Drops the cached schema when the table turned out to be gone.
    fn seen<T>(&self, table: &str, r: Result<T, StoreError>) -> Result<T, StoreError> {
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

// ---- values -------------------------------------------------------------------------------

fn to_av(v: &AttrValue) -> Av {
    match v {
        AttrValue::S(s) => Av::S(s.clone()),
        AttrValue::N(n) => Av::N(n.to_string()),
        AttrValue::B(b) => Av::B(Blob::new(b.clone())),
        AttrValue::Bool(b) => Av::Bool(*b),
        AttrValue::Null => Av::Null(true),
        AttrValue::L(l) => Av::L(l.iter().map(to_av).collect()),
        AttrValue::M(m) => Av::M(m.iter().map(|(k, v)| (k.clone(), to_av(v))).collect()),
    }
}

fn from_av(v: &Av) -> Result<AttrValue, StoreError> {
    Ok(match v {
        Av::S(s) => AttrValue::S(s.clone()),
        Av::N(n) => AttrValue::N(Number::parse(n)?),
        Av::B(b) => AttrValue::B(b.as_ref().to_vec()),
        Av::Bool(b) => AttrValue::Bool(*b),
        Av::Null(_) => AttrValue::Null,
        Av::L(l) => AttrValue::L(l.iter().map(from_av).collect::<Result<_, _>>()?),
        Av::M(m) => AttrValue::M(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), from_av(v)?)))
                .collect::<Result<_, StoreError>>()?,
        ),
        other => {
            return Err(StoreError::validation(
                format!("{other:?}"),
                "DynamoDB returned a set type, which this store does not support",
            ));
        }
    })
}

fn to_item(item: &Item) -> HashMap<String, Av> {
    item.iter().map(|(k, v)| (k.clone(), to_av(v))).collect()
}

fn from_item(m: &HashMap<String, Av>) -> Result<Item, StoreError> {
    m.iter()
        .map(|(k, v)| Ok((k.clone(), from_av(v)?)))
        .collect()
}

fn key_map(spec: &TableSpec, key: &Key) -> HashMap<String, Av> {
    to_item(&spec.key_item(key))
}

// ---- expressions --------------------------------------------------------------------------

/// Renders typed conditions and actions into an expression with placeholders.
#[derive(Default)]
struct Expr {
    names: HashMap<String, String>,
    by_name: HashMap<String, String>,
    values: HashMap<String, Av>,
}

impl Expr {
    fn name(&mut self, n: &str) -> String {
        if let Some(p) = self.by_name.get(n) {
            return p.clone();
        }
        let p = format!("#n{}", self.by_name.len());
        self.by_name.insert(n.to_owned(), p.clone());
        self.names.insert(p.clone(), n.to_owned());
        p
    }
    fn value(&mut self, v: Av) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v);
        p
    }
    fn path(&mut self, path: &Path) -> String {
        let mut out = self.name(path.attr_name());
        for e in path.elems() {
            match e {
                PathElem::Key(k) => {
                    out.push('.');
                    out += &self.name(k);
                }
                PathElem::Index(i) => out += &format!("[{i}]"),
            }
        }
        out
    }
    fn cond(&mut self, c: &Condition) -> String {
        let mut cmp = |p: &Path, op: &str, v: &AttrValue| {
            let p = self.path(p);
            let v = self.value(to_av(v));
            format!("{p} {op} {v}")
        };
        match c {
            Condition::Exists(p) => format!("attribute_exists({})", self.path(p)),
            Condition::NotExists(p) => format!("attribute_not_exists({})", self.path(p)),
            Condition::Eq(p, v) => cmp(p, "=", v),
            Condition::Ne(p, v) => {
                let path = self.path(p);
                let v = self.value(to_av(v));
                format!("(attribute_exists({path}) AND {path} <> {v})")
            }
            Condition::Lt(p, v) => cmp(p, "<", v),
            Condition::Le(p, v) => cmp(p, "<=", v),
            Condition::Gt(p, v) => cmp(p, ">", v),
            Condition::Ge(p, v) => cmp(p, ">=", v),
            Condition::And(cs) => format!(
                "({})",
                cs.iter()
                    .map(|c| self.cond(c))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            ),
            Condition::Or(cs) => format!(
                "({})",
                cs.iter()
                    .map(|c| self.cond(c))
                    .collect::<Vec<_>>()
                    .join(" OR ")
            ),
            Condition::Not(c) => format!("(NOT {})", self.cond(c)),
        }
    }
    fn update(&mut self, actions: &[UpdateAction]) -> String {
        let mut sets = Vec::new();
        let mut removes = Vec::new();
        for a in actions {
            match a {
                UpdateAction::Set(p, v) => {
                    let (p, v) = (self.path(p), self.value(to_av(v)));
                    sets.push(format!("{p} = {v}"));
                }
                UpdateAction::SetIfNotExists(p, v) => {
                    let (p, v) = (self.path(p), self.value(to_av(v)));
                    sets.push(format!("{p} = if_not_exists({p}, {v})"));
                }
                UpdateAction::Add(p, n) => {
                    let p = self.path(p);
                    let zero = self.value(Av::N("0".into()));
                    let n = self.value(Av::N(n.to_string()));
                    sets.push(format!("{p} = if_not_exists({p}, {zero}) + {n}"));
                }
                UpdateAction::Append(p, vs) => {
                    let p = self.path(p);
                    let empty = self.value(Av::L(Vec::new()));
                    let vs = self.value(Av::L(vs.iter().map(to_av).collect()));
                    sets.push(format!(
                        "{p} = list_append(if_not_exists({p}, {empty}), {vs})"
                    ));
                }
                UpdateAction::Remove(p) => removes.push(self.path(p)),
            }
        }
        let mut out = String::new();
        if !sets.is_empty() {
            out += &format!("SET {}", sets.join(", "));
        }
        if !removes.is_empty() {
            if !out.is_empty() {
                out.push(' ');
            }
            out += &format!("REMOVE {}", removes.join(", "));
        }
        out
    }
    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }
    fn values(&self) -> Option<HashMap<String, Av>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn on_fail(want: bool) -> Option<OnFail> {
    want.then_some(OnFail::AllOld)
}

// ---- errors -------------------------------------------------------------------------------

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

fn map_sdk_err<E>(
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
trait CondFailed {
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

fn map_write_err<E>(
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

fn map_reason(r: &ddb::CancellationReason) -> Result<CancellationReason, StoreError> {
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

fn build_err(e: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::io("cannot build a DynamoDB transaction item", e)
}

#[async_trait]
impl Store for DynamoDbStore {
    fn backend_name(&self) -> &'static str {
        "dynamodb"
    }

    async fn create_table(&self, spec: &TableSpec) -> Result<bool, StoreError> {
        validate::table_spec(spec)?;
        let scalar = |t: KeyType| match t {
            KeyType::S => ScalarAttributeType::S,
            KeyType::B => ScalarAttributeType::B,
        };
        let mut req = self
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
                self.wait_active(&spec.name).await?;
                if let Ok(mut m) = self.specs.write() {
                    m.insert(spec.name.clone(), spec.clone());
                }
                Ok(true)
            }
            Err(SdkError::ServiceError(se))
                if se.err().code() == Some("ResourceInUseException") =>
            {
                self.forget(&spec.name);
                let existing = self.spec(&spec.name).await?;
                if &existing != spec {
                    return Err(StoreError::validation(
                        &spec.name,
                        format!("table exists with a different schema: {existing:?}"),
                    ));
                }
                self.wait_active(&spec.name).await?;
                Ok(false)
            }
            Err(e) => Err(map_sdk_err(&spec.name, e)),
        }
    }

    async fn delete_table(&self, name: &str) -> Result<bool, StoreError> {
        validate::table_name(name)?;
        self.forget(name);
        match self.client.delete_table().table_name(name).send().await {
            Ok(_) => Ok(true),
            Err(e) => match map_sdk_err(name, e) {
                StoreError::TableNotFound { .. } => Ok(false),
                other => Err(other),
            },
        }
    }

    async fn describe_table(&self, name: &str) -> Result<TableSpec, StoreError> {
        self.spec(name).await
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
        let out = self
            .client
            .query()
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
        Ok(Page {
            items: out
                .items()
                .iter()
                .map(from_item)
                .collect::<Result<_, _>>()?,
            last_key: out
                .last_evaluated_key()
                .map(|k| from_item(k).and_then(|i| spec.key_of(&i)))
                .transpose()?,
        })
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
        Ok(Page {
            items: out
                .items()
                .iter()
                .map(from_item)
                .collect::<Result<_, _>>()?,
            last_key: out
                .last_evaluated_key()
                .map(|k| from_item(k).and_then(|i| spec.key_of(&i)))
                .transpose()?,
        })
    }

    async fn transact_write(&self, req: TransactWrite) -> Result<(), StoreError> {
        validate::transaction(&req)?;
        let mut keys = Vec::with_capacity(req.ops.len());
        let mut items = Vec::with_capacity(req.ops.len());
        for op in &req.ops {
            let spec = self.spec(op.table()).await?;
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
        match self
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
                    keys.iter().for_each(|(t, _)| self.forget(t));
                }
                Err(err)
            }
        }
    }
}
