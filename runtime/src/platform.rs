//! The local platform (the default): runs registered functions in-process on tokio with
//! Lambda's semantics — no platform retries; a crash or a timeout loses the execution's
//! in-memory state and surfaces as [`BeldiError::Crashed`]; re-running the same instance id
//! finishes it exactly once.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use beldi_runtime::embedded::EmbeddedStore;
//! use beldi_runtime::error::UserError;
//! use beldi_runtime::platform::Runtime;
//! use beldi_runtime::store::{Path, UpdateAction};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let rt = Runtime::new(Arc::new(EmbeddedStore::open(dir.path()).unwrap()));
//! rt.register("visit", &["pages"], |ctx, page: String| async move {
//!     ctx.update("pages", &page, vec![UpdateAction::add(Path::root(), 1)]).await?;
//!     let n: Option<i64> = ctx.read_as("pages", &page).await?;
//!     Ok::<_, UserError>(n.unwrap_or(0))
//! }).unwrap();
//! rt.provision().await.unwrap();
//! let first = rt.invoke::<_, i64, UserError>("visit", "req-1", "home").await.unwrap();
//! // The same instance id again: the stored result, and no second increment.
//! let again = rt.invoke::<_, i64, UserError>("visit", "req-1", "home").await.unwrap();
//! assert_eq!((first, again), (Ok(1), Ok(1)));
//! # });
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::ctx::{CID_SEPARATOR, Ctx};
use crate::daal::DEFAULT_ROW_CAPACITY;
use crate::error::BeldiError;
use crate::fault::{CrashPoint, FaultPlan};
use crate::intent;
use crate::store::{AttrValue, Store};
use crate::tables::{SsfTables, validate_namespace};
use crate::value::{from_attr, to_attr};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
/// A registered body: input in, `{"ok": v}` or `{"err": e}` out.
type Handler =
    Arc<dyn Fn(Ctx, AttrValue) -> BoxFuture<Result<AttrValue, BeldiError>> + Send + Sync>;

struct Function {
    tables: SsfTables,
    handler: Handler,
    timeout: Duration,
}

/// Options of a [`Runtime`].
#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Prefix of every table name (lets several deployments or tests share one store).
    pub namespace: String,
    /// DAAL row capacity N (log entries per row).
    pub row_capacity: u64,
    /// Default execution timeout of a function (a timeout counts as a crash).
    pub timeout: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            namespace: String::new(),
            row_capacity: DEFAULT_ROW_CAPACITY,
            timeout: Duration::from_secs(60),
        }
    }
}

/// What one execution of an instance produced.
#[derive(Clone, Debug, PartialEq)]
pub struct Execution {
    /// The stored result: a map with `ok` or `err`.
    pub result: AttrValue,
    /// Steps the body allocated in this execution (0 when the stored result was returned
    /// without running the body).
    pub steps: u64,
    /// Whether the body ran (false: the instance was already done).
    pub ran: bool,
}

/// The local platform: a registry of functions and the machinery to run their instances.
/// Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    config: RuntimeConfig,
    functions: RwLock<HashMap<String, Arc<Function>>>,
}

/// Longest instance id. With the default row capacity of 1,000 entries, a DAAL row's log
/// map stays under about 145 KB even with ids this long, leaving more than 250 KB of the
/// 400 KB item for the value.
pub const MAX_INSTANCE_ID: usize = 128;

fn validate_instance(instance: &str) -> Result<(), BeldiError> {
    if instance.is_empty()
        || instance.len() > MAX_INSTANCE_ID
        || instance.contains(CID_SEPARATOR)
        || instance.chars().any(char::is_control)
    {
        return Err(BeldiError::InvalidName {
            what: "instance id",
            name: instance.to_owned(),
            message: format!(
                "must be 1 to {MAX_INSTANCE_ID} characters, without `{CID_SEPARATOR}` or control characters"
            ),
        });
    }
    Ok(())
}

impl Runtime {
    /// A runtime on `store` with default options.
    pub fn new(store: Arc<dyn Store>) -> Runtime {
        Runtime::with_config(store, RuntimeConfig::default())
            .expect("the default configuration is valid")
    }

    /// A runtime on `store`.
    pub fn with_config(
        store: Arc<dyn Store>,
        config: RuntimeConfig,
    ) -> Result<Runtime, BeldiError> {
        validate_namespace(&config.namespace)?;
        if config.row_capacity == 0 {
            return Err(BeldiError::InvalidName {
                what: "row capacity",
                name: "0".into(),
                message: "must be at least 1".into(),
            });
        }
        Ok(Runtime {
            inner: Arc::new(Inner {
                store,
                config,
                functions: RwLock::new(HashMap::new()),
            }),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Registers function `name` owning the data tables `tables`, with body `f`. The body's
    /// input, output and error are serde types; its error must absorb [`BeldiError`] so it
    /// can use `?` on logged operations.
    pub fn register<I, O, E, F, Fut>(
        &self,
        name: &str,
        tables: &[&str],
        f: F,
    ) -> Result<(), BeldiError>
    where
        I: DeserializeOwned + Send + 'static,
        O: Serialize + Send + 'static,
        E: Serialize + Send + 'static,
        F: Fn(Ctx, I) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<O, E>> + Send + 'static,
    {
        let tables = SsfTables::new(&self.inner.config.namespace, name, tables)?;
        let f = Arc::new(f);
        let fname = name.to_owned();
        let handler: Handler = Arc::new(move |ctx: Ctx, input: AttrValue| {
            let f = f.clone();
            let fname = fname.clone();
            Box::pin(async move {
                let input: I = from_attr(&input, &format!("input of `{fname}`"))?;
                let mut out = std::collections::BTreeMap::new();
                match f(ctx, input).await {
                    Ok(o) => out.insert(
                        "ok".to_owned(),
                        to_attr(&o, &format!("output of `{fname}`"))?,
                    ),
                    Err(e) => out.insert(
                        "err".to_owned(),
                        to_attr(&e, &format!("error of `{fname}`"))?,
                    ),
                };
                Ok(AttrValue::M(out))
            })
        });
        let mut map = self
            .inner
            .functions
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if map.contains_key(name) {
            return Err(BeldiError::InvalidName {
                what: "function name",
                name: name.to_owned(),
                message: "registered twice".into(),
            });
        }
        map.insert(
            name.to_owned(),
            Arc::new(Function {
                tables,
                handler,
                timeout: self.inner.config.timeout,
            }),
        );
        Ok(())
    }

    fn function(&self, name: &str) -> Result<Arc<Function>, BeldiError> {
        self.inner
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| BeldiError::UnknownFunction(name.to_owned()))
    }

    /// The tables of a registered function.
    pub fn tables(&self, name: &str) -> Result<SsfTables, BeldiError> {
        Ok(self.function(name)?.tables.clone())
    }

    /// Creates every table the registered functions need (idempotent).
    pub async fn provision(&self) -> Result<(), BeldiError> {
        let functions: Vec<Arc<Function>> = self
            .inner
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for f in functions {
            for spec in f.tables.specs() {
                self.inner.store.create_table(&spec).await?;
            }
        }
        Ok(())
    }

    /// Runs instance `instance` of `name` as a root (client) request and decodes its result.
    /// Running the same instance id again returns the stored result.
    pub async fn invoke<I, O, E>(
        &self,
        name: &str,
        instance: &str,
        input: &I,
    ) -> Result<Result<O, E>, BeldiError>
    where
        I: Serialize + ?Sized,
        O: DeserializeOwned,
        E: DeserializeOwned,
    {
        let input = to_attr(input, &format!("input of `{name}`"))?;
        let exec = self
            .execute(name, instance, input, FaultPlan::none(), 0)
            .await?;
        decode_result(name, &exec.result)
    }

    /// One execution of instance `instance` of `name` with `input`, under fault plan `plan`
    /// (`attempt` numbers executions for random crashes).
    pub async fn execute(
        &self,
        name: &str,
        instance: &str,
        input: AttrValue,
        plan: FaultPlan,
        attempt: u32,
    ) -> Result<Execution, BeldiError> {
        validate_instance(instance)?;
        let f = self.function(name)?;
        let store = self.inner.store.clone();
        let intent_table = f.tables.intent();
        let rec = intent::begin(&*store, &intent_table, instance, &input, None, false).await?;
        if rec.input != input {
            return Err(BeldiError::InputMismatch {
                function: name.to_owned(),
                instance: instance.to_owned(),
            });
        }
        if rec.done {
            let result = rec.result.ok_or_else(|| BeldiError::Corrupt {
                what: format!("intent of `{name}` instance `{instance}`"),
                message: "done without a result".into(),
            })?;
            return Ok(Execution {
                result,
                steps: 0,
                ran: false,
            });
        }
        let crash = Arc::new(Notify::new());
        let ctx = Ctx::new(
            store.clone(),
            f.tables.clone(),
            instance.to_owned(),
            self.inner.config.row_capacity,
            plan,
            attempt,
            crash.clone(),
        );
        let crashed = |reason: String| BeldiError::Crashed {
            function: name.to_owned(),
            instance: instance.to_owned(),
            reason,
        };
        let body = (f.handler)(ctx.clone(), input);
        let run = async {
            tokio::select! {
                out = body => Some(out),
                _ = crash.notified() => None,
            }
        };
        let out = match tokio::time::timeout(f.timeout, run).await {
            Err(_) => return Err(crashed(format!("timed out after {:?}", f.timeout))),
            Ok(None) => {
                let at = ctx
                    .crashed_at()
                    .map_or("a crash point".to_owned(), |p| p.to_string());
                return Err(crashed(format!("injected crash {at}")));
            }
            Ok(Some(out)) => out,
        };
        if let Some(e) = ctx.take_failure() {
            return Err(e);
        }
        let result = out?;
        let finish = async {
            ctx.maybe_crash(CrashPoint::BeforeDone).await;
            intent::finish(&*store, &intent_table, instance, &result).await
        };
        let stored = tokio::select! {
            r = finish => r?,
            _ = crash.notified() => return Err(crashed(format!("injected crash {}", CrashPoint::BeforeDone))),
        };
        Ok(Execution {
            result: stored,
            steps: ctx.steps(),
            ran: true,
        })
    }
}

/// Decodes a stored `{"ok": v}` / `{"err": e}` result.
pub fn decode_result<O: DeserializeOwned, E: DeserializeOwned>(
    name: &str,
    result: &AttrValue,
) -> Result<Result<O, E>, BeldiError> {
    let m = result.as_m().ok_or_else(|| BeldiError::Corrupt {
        what: format!("result of `{name}`"),
        message: "not a map".into(),
    })?;
    if let Some(v) = m.get("ok") {
        return Ok(Ok(from_attr(v, &format!("output of `{name}`"))?));
    }
    if let Some(e) = m.get("err") {
        return Ok(Err(from_attr(e, &format!("error of `{name}`"))?));
    }
    Err(BeldiError::Corrupt {
        what: format!("result of `{name}`"),
        message: "neither ok nor err".into(),
    })
}
