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
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::collector::{self, IcConfig, IcReport};
use crate::ctx::{CID_SEPARATOR, Ctx};
use crate::daal::DEFAULT_ROW_CAPACITY;
use crate::error::BeldiError;
use crate::fault::{CrashPoint, FaultPlan};
use crate::gc::{self, GcConfig, GcReport};
use crate::intent::{self, CallerRef};
use crate::remote::{Envelope, Remote};
use crate::store::{AttrValue, Store};
use crate::tables::{SsfTables, validate_namespace};
use crate::value::{from_attr, to_attr};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
/// A registered body: input in, `{"ok": v}` or `{"err": e}` out.
type Handler =
    Arc<dyn Fn(Ctx, AttrValue) -> BoxFuture<Result<AttrValue, BeldiError>> + Send + Sync>;

/// Checks that an input deserializes into a function's input type.
type InputCheck = Arc<dyn Fn(&AttrValue) -> Result<(), BeldiError> + Send + Sync>;

struct Function {
    tables: SsfTables,
    handler: Handler,
    /// Checks that an input deserializes, before anything is written for it.
    check_input: InputCheck,
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
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    trace: Mutex<Option<Vec<TracedExecution>>>,
    crashes: std::sync::atomic::AtomicU64,
    remote: RwLock<Option<Arc<dyn Remote>>>,
    /// Executions running in this process, by (function, instance).
    live: Mutex<HashMap<(String, String), usize>>,
}

/// Counts an execution as running in this process while it lives.
struct LiveGuard {
    rt: Runtime,
    key: (String, String),
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut live = self.rt.inner.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = live.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                live.remove(&self.key);
            }
        }
    }
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
                background: Mutex::new(Vec::new()),
                trace: Mutex::new(None),
                crashes: std::sync::atomic::AtomicU64::new(0),
                remote: RwLock::new(None),
                live: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Sends every invocation this runtime's instances make (calls, spawns, commits and
    /// aborts, intent-collector restarts) through `remote` instead of running it in this
    /// process ([`crate::remote`]). Root requests given to this runtime still run here.
    pub fn set_remote(&self, remote: Arc<dyn Remote>) {
        *self.inner.remote.write().unwrap_or_else(|e| e.into_inner()) = Some(remote);
    }

    fn remote(&self) -> Option<Arc<dyn Remote>> {
        self.inner
            .remote
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs a callee instance: through the remote if there is one, else here.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn call_callee(
        &self,
        name: &str,
        instance: &str,
        input: AttrValue,
        caller: Option<CallerRef>,
        plan: FaultPlan,
        attempt: u32,
        txn: Option<crate::txn::TxnCtx>,
    ) -> Result<Execution, BeldiError> {
        let Some(remote) = self.remote() else {
            return self
                .run(name, instance, input, caller, plan, attempt, txn)
                .await;
        };
        let envelope = Envelope::Run {
            function: name.to_owned(),
            instance: instance.to_owned(),
            input,
            caller,
            txn,
            sent_at_ms: None,
        };
        crate::remote::execution(remote.send(&envelope).await?, name)
    }

    /// Starts an async callee instance: through the remote if there is one (register its
    /// intent, then post the run), else here.
    pub(crate) async fn start_callee(
        &self,
        name: &str,
        instance: &str,
        input: AttrValue,
        caller: CallerRef,
        plan: FaultPlan,
        attempt: u32,
    ) -> Result<(), BeldiError> {
        let Some(remote) = self.remote() else {
            return self
                .start(name, instance, input, Some(caller), plan, attempt)
                .await;
        };
        if self.inner.config.mode == Mode::Beldi {
            let register = Envelope::Register {
                function: name.to_owned(),
                instance: instance.to_owned(),
                input: input.clone(),
                caller: caller.clone(),
            };
            // Only the register that created the intent posts the run: a replayed spawn
            // finds the intent and starts no second copy (the intent collector is the
            // backstop if the first post was lost). A host that does not say (`null`)
            // is taken to have created it.
            let created = remote.send(&register).await?.into_result(name)?;
            if created == AttrValue::Bool(false) {
                return Ok(());
            }
        }
        let run = Envelope::Run {
            function: name.to_owned(),
            instance: instance.to_owned(),
            input,
            caller: Some(caller),
            txn: None,
            sent_at_ms: Some(crate::intent::now_ms()),
        };
        remote.post(&run).await
    }

    /// Creates the intent of async instance `instance` of `name` spawned by `caller`,
    /// unless it exists (the first half of a remote spawn); returns whether this call
    /// created it.
    pub async fn register_async(
        &self,
        name: &str,
        instance: &str,
        input: &AttrValue,
        caller: &CallerRef,
    ) -> Result<bool, BeldiError> {
        let f = self.function(name)?;
        if self.inner.config.mode == Mode::Baseline {
            return (f.check_input)(input).map(|_| true);
        }
        self.begin_intent(&f, instance, input, Some(caller), true, true)
            .await
            .map(|(_, created)| created)
    }

    /// Runs root request `instance` of `name` where the function lives: through the remote
    /// if this runtime has one, else here.
    pub async fn dispatch(
        &self,
        name: &str,
        instance: &str,
        input: AttrValue,
    ) -> Result<Execution, BeldiError> {
        self.call_callee(name, instance, input, None, FaultPlan::none(), 0, None)
            .await
    }

    /// Whether invocations go through a remote ([`Runtime::set_remote`]).
    pub fn has_remote(&self) -> bool {
        self.remote().is_some()
    }

    /// Runs an instance in this process (what a hosting process does with a
    /// [`Envelope::Run`]): `caller` and `txn` as the envelope says.
    #[allow(clippy::too_many_arguments)]
    pub async fn run_here(
        &self,
        name: &str,
        instance: &str,
        input: AttrValue,
        caller: Option<CallerRef>,
        plan: FaultPlan,
        attempt: u32,
        txn: Option<crate::txn::TxnCtx>,
    ) -> Result<Execution, BeldiError> {
        self.run(name, instance, input, caller, plan, attempt, txn)
            .await
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
        let what = format!("input of `{name}`");
        let check_input = Arc::new(move |v: &AttrValue| from_attr::<I>(v, &what).map(|_| ()));
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
                check_input,
                timeout: self.inner.config.timeout,
            }),
        );
        Ok(())
    }

    pub(crate) fn function_exists(&self, name: &str) -> Result<(), BeldiError> {
        self.function(name).map(|_| ())
    }

    /// Registers every function declared with `#[beldi::function]` in the program. Two
    /// declarations with the same name are an error naming both.
    pub fn register_all(&self) -> Result<usize, BeldiError> {
        self.register_where(|_| true)
    }

    /// Registers the functions declared with `#[beldi::function]` that `keep` selects.
    pub fn register_where(
        &self,
        keep: impl Fn(&Registration) -> bool,
    ) -> Result<usize, BeldiError> {
        let mut chosen: Vec<&Registration> = inventory::iter::<Registration>
            .into_iter()
            .filter(|r| keep(r))
            .collect();
        chosen.sort_by_key(|r| (r.name, r.path));
        if let Some(w) = chosen.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(BeldiError::InvalidName {
                what: "function name",
                name: w[0].name.to_owned(),
                message: format!("declared twice, at `{}` and `{}`", w[0].path, w[1].path),
            });
        }
        for reg in &chosen {
            (reg.register)(self)?;
        }
        Ok(chosen.len())
    }

    /// Sets the execution timeout of a registered function.
    pub fn set_timeout(&self, name: &str, timeout: Duration) -> Result<(), BeldiError> {
        let mut map = self
            .inner
            .functions
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let f = map
            .get(name)
            .ok_or_else(|| BeldiError::UnknownFunction(name.to_owned()))?;
        let updated = Function {
            tables: f.tables.clone(),
            handler: f.handler.clone(),
            check_input: f.check_input.clone(),
            timeout,
        };
        map.insert(name.to_owned(), Arc::new(updated));
        Ok(())
    }

    /// The longest execution timeout of the registered functions (at least the runtime's
    /// default), and whose it is: what the intent collector's restart delay and the
    /// garbage collector's window must cover.
    pub fn longest_timeout(&self) -> collector::Longest {
        let map = self
            .inner
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let mut longest = collector::Longest {
            timeout: self.inner.config.timeout,
            function: None,
        };
        let mut names: Vec<&String> = map.keys().collect();
        names.sort();
        for name in names {
            let t = map[name].timeout;
            if t > longest.timeout {
                longest = collector::Longest {
                    timeout: t,
                    function: Some(name.clone()),
                };
            }
        }
        longest
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

    /// Creates every table the registered functions need (idempotent); returns the names of
    /// the tables this call created, sorted.
    pub async fn provision(&self) -> Result<Vec<String>, BeldiError> {
        let functions: Vec<Arc<Function>> = self
            .inner
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let mut created = Vec::new();
        for f in functions {
            let specs = match self.inner.config.mode {
                Mode::Beldi => f.tables.specs(),
                Mode::Baseline => f.tables.plain_specs(),
            };
            for spec in specs {
                if self.inner.store.create_table(&spec).await? {
                    created.push(spec.name.clone());
                }
            }
        }
        created.sort();
        Ok(created)
    }

    /// The names of every registered function, sorted.
    pub fn function_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect();
        v.sort();
        v
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
        decode_result_of(name, instance, &exec.result)
    }

    /// One execution of root instance `instance` of `name` with `input`, under fault plan
    /// `plan` (`attempt` numbers executions for random crashes).
    pub async fn execute(
        &self,
        name: &str,
        instance: &str,
        input: AttrValue,
        plan: FaultPlan,
        attempt: u32,
    ) -> Result<Execution, BeldiError> {
        self.run(name, instance, input, None, plan, attempt, None)
            .await
    }

    /// Starts instance `instance` of `name` asynchronously: creates its intent (exactly
    /// once, by the callee's own runtime) and, if this call created it, runs it in the
    /// background. Returns once the intent is durable; the intent collector is the backstop
    /// if the background run is lost.
    pub async fn start(
        &self,
        name: &str,
        instance: &str,
        input: AttrValue,
        caller: Option<CallerRef>,
        plan: FaultPlan,
        attempt: u32,
    ) -> Result<(), BeldiError> {
        let f = self.function(name)?;
        if self.inner.config.mode == Mode::Baseline {
            (f.check_input)(&input)?;
            let (rt, name, instance) = (self.clone(), name.to_owned(), instance.to_owned());
            let handle = tokio::spawn(async move {
                if let Err(e) = rt.run_plain(&f, &name, &instance, input).await {
                    tracing::debug!("baseline async instance {instance} of {name} failed: {e}");
                }
            });
            self.keep_background(handle);
            return Ok(());
        }
        let (rec, created) = self
            .begin_intent(&f, instance, &input, caller.as_ref(), true, true)
            .await?;
        if created {
            let (rt, name, instance) = (self.clone(), name.to_owned(), instance.to_owned());
            let handle = tokio::spawn(async move {
                // The intent was just created: run from it, without creating it again.
                let begun = Begun {
                    f,
                    rec,
                    created: true,
                };
                if let Err(e) = rt
                    .run_begun(&name, &instance, input, begun, plan, attempt, None)
                    .await
                {
                    tracing::debug!("async instance {instance} of {name} did not finish: {e}");
                }
            });
            self.keep_background(handle);
        }
        Ok(())
    }

    /// Creates the intent of `instance` unless it exists (checking the input first, and
    /// that a repeat brings the same input); returns the intent and whether this created it.
    async fn begin_intent(
        &self,
        f: &Function,
        instance: &str,
        input: &AttrValue,
        caller: Option<&CallerRef>,
        is_async: bool,
        check_input: bool,
    ) -> Result<(intent::Intent, bool), BeldiError> {
        validate_instance(instance)?;
        if check_input {
            (f.check_input)(input)?;
        }
        let (rec, created) = intent::begin(
            &**self.store(),
            &f.tables.intent(),
            instance,
            input,
            caller,
            is_async,
        )
        .await?;
        if rec.input != *input {
            return Err(BeldiError::InputMismatch {
                function: f.tables.ssf().to_owned(),
                instance: instance.to_owned(),
            });
        }
        Ok((rec, created))
    }

    /// Remembers a background execution for [`Runtime::wait_background`], forgetting the
    /// ones that ended (a finished task's handle would keep its memory alive).
    fn keep_background(&self, handle: tokio::task::JoinHandle<()>) {
        let mut running = self
            .inner
            .background
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if running.len() >= 64 && running.len().is_power_of_two() {
            running.retain(|h| !h.is_finished());
        }
        running.push(handle);
    }

    fn count_live(&self, function: &str, instance: &str) -> LiveGuard {
        let key = (function.to_owned(), instance.to_owned());
        *self
            .inner
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_insert(0) += 1;
        LiveGuard {
            rt: self.clone(),
            key,
        }
    }

    /// Restarts, in the background, the instance that would finish `instance` of
    /// `function` if nothing runs it any more: the instance itself if it is a root or was
    /// started asynchronously, else the nearest such caller up its chain of sync callers.
    /// A contender for a lock held by a crashed transaction asks for this, so the lock is
    /// freed now rather than when the intent collector restarts the holder. Only on the
    /// local platform (with a remote, the hosting processes' collectors do it); nothing if
    /// an execution of it runs in this process. (If one runs in another process, this adds
    /// a concurrent duplicate, which the protocol makes harmless.)
    pub(crate) fn revive(&self, function: &str, instance: &str) {
        if self.has_remote() || self.inner.config.mode == Mode::Baseline {
            return;
        }
        let (rt, mut f, mut i) = (self.clone(), function.to_owned(), instance.to_owned());
        let handle = tokio::spawn(async move {
            for _hop in 0..32 {
                if rt.is_running_here(&f, &i) {
                    return;
                }
                let Ok(table) = rt.tables(&f).map(|t| t.intent()) else {
                    return;
                };
                let Ok(Some(it)) = intent::get(&**rt.store(), &table, &i).await else {
                    return;
                };
                if it.done {
                    return;
                }
                match &it.caller {
                    Some(c) if !c.is_async => {
                        (f, i) = (c.function.clone(), c.instance.clone());
                    }
                    _ => {
                        let rerun =
                            crate::collector::claim_rerun(&rt, &f, &table, it, FaultPlan::none());
                        if let Ok(Some(rerun)) = rerun.await
                            && let Err(e) = rerun.await
                        {
                            tracing::debug!("revived instance {i} of {f} did not finish: {e}");
                        }
                        return;
                    }
                }
            }
        });
        self.keep_background(handle);
    }

    /// Whether an execution of `instance` of `function` is running in this process now.
    /// The intent collector never restarts such an instance: the running execution
    /// finishes it, or ends (crashed, timed out) and is no longer running.
    pub fn is_running_here(&self, function: &str, instance: &str) -> bool {
        self.inner
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&(function.to_owned(), instance.to_owned()))
    }

    /// Whether every asynchronous execution started so far has ended.
    pub fn background_idle(&self) -> bool {
        self.inner
            .background
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .all(|h| h.is_finished())
    }

    /// Waits until every asynchronous execution started so far has ended (finished or
    /// crashed).
    pub async fn wait_background(&self) {
        loop {
            let handles: Vec<_> = std::mem::take(
                &mut *self
                    .inner
                    .background
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            );
            if handles.is_empty() {
                return;
            }
            for h in handles {
                let _ = h.await;
            }
        }
    }

    /// Crashes injected into executions of this runtime so far.
    pub fn injected_crashes(&self) -> u64 {
        self.inner.crashes.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Starts recording every finished execution (for the explorer).
    pub fn start_trace(&self) {
        *self.inner.trace.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
    }

    /// The executions recorded since [`Runtime::start_trace`].
    pub fn take_trace(&self) -> Vec<TracedExecution> {
        self.inner
            .trace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_default()
    }

    /// Runs the commit or abort of `txn` in function `name`, as the exactly-once instance
    /// `instance` (a sync callee of the function propagating it).
    pub(crate) fn run_txn(
        &self,
        name: &str,
        instance: &str,
        caller: CallerRef,
        txn: crate::txn::TxnCtx,
        plan: FaultPlan,
        attempt: u32,
    ) -> BoxFuture<Result<Execution, BeldiError>> {
        let input = AttrValue::S(format!("{:?} {}", txn.instruction, txn.id));
        let (rt, name, instance) = (self.clone(), name.to_owned(), instance.to_owned());
        // Boxed: commit propagation recurses through `run`.
        Box::pin(async move {
            rt.call_callee(
                &name,
                &instance,
                input,
                Some(caller),
                plan,
                attempt,
                Some(txn),
            )
            .await
        })
    }

    /// One execution of an instance, root or callee; `txn` is the transaction it runs in,
    /// or the commit or abort it is asked to do.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn run(
        &self,
        name: &str,
        instance: &str,
        input: AttrValue,
        caller: Option<CallerRef>,
        plan: FaultPlan,
        attempt: u32,
        txn: Option<crate::txn::TxnCtx>,
    ) -> Result<Execution, BeldiError> {
        let finishing = txn
            .as_ref()
            .is_some_and(|t| t.instruction != crate::txn::Instruction::Execute);
        let f = self.function(name)?;
        if self.inner.config.mode == Mode::Baseline {
            (f.check_input)(&input)?;
            return self.run_plain(&f, name, instance, input).await;
        }
        let is_async = caller.as_ref().is_some_and(|c| c.is_async);
        let (rec, created) = self
            .begin_intent(&f, instance, &input, caller.as_ref(), is_async, !finishing)
            .await?;
        let begun = Begun { f, rec, created };
        self.run_begun(name, instance, input, begun, plan, attempt, txn)
            .await
    }

    /// The rest of an execution, once its intent exists.
    #[allow(clippy::too_many_arguments)]
    async fn run_begun(
        &self,
        name: &str,
        instance: &str,
        input: AttrValue,
        begun: Begun,
        plan: FaultPlan,
        attempt: u32,
        txn: Option<crate::txn::TxnCtx>,
    ) -> Result<Execution, BeldiError> {
        let Begun { f, rec, created } = begun;
        let finishing = txn
            .as_ref()
            .filter(|t| t.instruction != crate::txn::Instruction::Execute)
            .cloned();
        let store = self.inner.store.clone();
        let intent_table = f.tables.intent();
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
        let _live = self.count_live(name, instance);
        if !created {
            intent::touch(&*store, &intent_table, instance).await?;
        }
        let crash = Arc::new(Notify::new());
        let ctx = Ctx::new(
            self.clone(),
            f.tables.clone(),
            instance.to_owned(),
            plan,
            attempt,
            crash.clone(),
            txn.filter(|_| finishing.is_none()),
        );
        let crashed = |reason: String| BeldiError::Crashed {
            function: name.to_owned(),
            instance: instance.to_owned(),
            reason,
        };
        // The body runs in its own task, like a Lambda in its own sandbox: a panic or a
        // crash loses its in-memory state and nothing else.
        let mut body = match finishing {
            // A commit or abort runs the transaction's own procedure, not the user's body.
            Some(t) => {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    let commit = t.instruction == crate::txn::Instruction::Commit;
                    ctx.txn_end(&t, commit).await?;
                    let mut m = std::collections::BTreeMap::new();
                    m.insert("ok".to_owned(), AttrValue::Null);
                    Ok(AttrValue::M(m))
                })
            }
            None => tokio::spawn((f.handler)(ctx.clone(), input)),
        };
        let out = tokio::select! {
            joined = &mut body => match joined {
                Ok(out) => out,
                Err(e) => return Err(crashed(lost_body(e))),
            },
            _ = crash.notified() => {
                body.abort();
                self.inner.crashes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let at = ctx.crashed_at().map_or("a crash point".to_owned(), |p| p.to_string());
                return Err(crashed(format!("injected crash {at}")));
            }
            _ = tokio::time::sleep(f.timeout) => {
                body.abort();
                return Err(crashed(format!("timed out after {:?}", f.timeout)));
            }
        };
        // A participant returns only once every call it made in the transaction settled
        // (its caller then decides on a complete picture).
        if let Some(t) = ctx.txn.clone()
            && let Some(e) = t.settle().await
        {
            return Err(e);
        }
        let result = match ctx.take_failure() {
            // A participant that died under wait-die finishes with that outcome as its
            // result: its caller turns it back into the death, and the instance is done
            // (so nothing is left to re-run or to leak).
            Some(BeldiError::TxnAborted {
                reason,
                wait_die: true,
                ..
            }) if ctx.txn.is_some() => {
                let mut m = std::collections::BTreeMap::new();
                m.insert(crate::txn::DIED.to_owned(), AttrValue::S(reason));
                AttrValue::M(m)
            }
            // A failure every re-execution would meet again: the instance ends failed, with
            // the error stored as its result (its caller gets it as `BeldiError::Failed`).
            Some(e) if e.is_terminal() => failed_result(&e),
            Some(e) => return Err(e),
            None => match out {
                Ok(v) => v,
                Err(e) if e.is_terminal() => failed_result(&e),
                Err(e) => return Err(e),
            },
        };
        let finish = async {
            ctx.maybe_crash(CrashPoint::BeforeDone).await;
            intent::finish(&*store, &intent_table, instance, &result).await
        };
        let stored = tokio::select! {
            r = finish => r?,
            _ = crash.notified() => {
                self.inner.crashes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return Err(crashed(format!("injected crash {}", CrashPoint::BeforeDone)));
            }
        };
        if let Some(trace) = self
            .inner
            .trace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            trace.push(TracedExecution {
                function: name.to_owned(),
                instance: instance.to_owned(),
                ops: ctx.ops(),
            });
        }
        Ok(Execution {
            result: stored,
            steps: ctx.steps(),
            ran: true,
        })
    }
}

impl Runtime {
    /// One baseline execution: the body on a context whose operations are plain store
    /// operations ([`crate::baseline`]); no intent, no log, no crash injection.
    async fn run_plain(
        &self,
        f: &Function,
        name: &str,
        instance: &str,
        input: AttrValue,
    ) -> Result<Execution, BeldiError> {
        let ctx = Ctx::new(
            self.clone(),
            f.tables.clone(),
            instance.to_owned(),
            FaultPlan::none(),
            0,
            Arc::new(Notify::new()),
            None,
        );
        let crashed = |reason: String| BeldiError::Crashed {
            function: name.to_owned(),
            instance: instance.to_owned(),
            reason,
        };
        let mut body = tokio::spawn((f.handler)(ctx.clone(), input));
        let out = tokio::select! {
            joined = &mut body => joined.map_err(|e| crashed(lost_body(e)))?,
            _ = tokio::time::sleep(f.timeout) => {
                body.abort();
                return Err(crashed(format!("timed out after {:?}", f.timeout)));
            }
        };
        if let Some(e) = ctx.take_failure() {
            return Err(e);
        }
        Ok(Execution {
            result: out?,
            steps: ctx.steps(),
            ran: true,
        })
    }
}

/// Why a body's task ended without a result: its panic message, or the join error.
fn lost_body(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return format!("the body task failed: {e}");
    }
    let payload = e.into_panic();
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".to_owned());
    format!("the body panicked: {msg}")
}

/// A function declared with `#[beldi::function]`, collected with `inventory` so
/// [`Runtime::register_all`] finds every one in the program.
pub struct Registration {
    /// The function's name.
    pub name: &'static str,
    /// Where it is declared (`module::path::fn_name`), to tell apart two declarations of
    /// the same name (two versions of one function, say).
    pub path: &'static str,
    /// Its input type, as written.
    pub input: &'static str,
    /// Its output type, as written.
    pub output: &'static str,
    /// Its error type, as written.
    pub error: &'static str,
    /// Registers it on a runtime.
    pub register: fn(&Runtime) -> Result<(), BeldiError>,
}

inventory::collect!(Registration);

/// An execution whose intent exists: the function, its intent, and whether this
/// execution created it.
struct Begun {
    f: Arc<Function>,
    rec: intent::Intent,
    created: bool,
}

/// A periodic background task (intent collector or garbage collector). Stops when dropped.
pub struct BackgroundTask {
    handle: tokio::task::JoinHandle<()>,
    passes: Arc<std::sync::atomic::AtomicU64>,
}

impl BackgroundTask {
    /// Passes completed so far.
    pub fn passes(&self) -> u64 {
        self.passes.load(std::sync::atomic::Ordering::SeqCst)
    }
    /// Stops the task (a pass in progress is abandoned; passes are restartable).
    pub fn stop(self) {}
}

impl Drop for BackgroundTask {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

impl Runtime {
    fn periodic<F, Fut>(&self, every: Duration, what: &'static str, pass: F) -> BackgroundTask
    where
        F: Fn(Runtime) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), BeldiError>> + Send + 'static,
    {
        let passes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (rt, count) = (self.clone(), passes.clone());
        let handle = tokio::spawn(async move {
            loop {
                if let Err(e) = pass(rt.clone()).await {
                    tracing::warn!("{what} pass failed (will run again): {e}");
                }
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(every).await;
            }
        });
        BackgroundTask { handle, passes }
    }

    /// Runs the intent collector every `every` in the background.
    pub fn spawn_intent_collector(
        &self,
        cfg: IcConfig,
        every: Duration,
    ) -> Result<BackgroundTask, BeldiError> {
        cfg.validate(&self.longest_timeout())?;
        Ok(self.periodic(every, "intent collector", move |rt| {
            let cfg = cfg.clone();
            async move { rt.collect_intents(&cfg).await.map(|_| ()) }
        }))
    }

    /// Runs one pass of the intent collector now.
    /// (Nothing to do in baseline mode: there are no intents.) With a remote
    /// ([`Runtime::set_remote`]), the pass runs where the functions are, as the scheduled
    /// collector function would.
    pub async fn collect_intents(&self, cfg: &IcConfig) -> Result<IcReport, BeldiError> {
        if self.inner.config.mode == Mode::Baseline {
            return Ok(IcReport::default());
        }
        if let Some(remote) = self.remote() {
            let envelope = Envelope::Ic {
                restart_after_secs: Some(cfg.restart_after.as_secs()),
            };
            let reply = remote.send(&envelope).await?;
            return crate::remote::ic_report(&reply.into_result("intent collector")?);
        }
        collector::run_pass(self, cfg).await
    }

    /// Runs the garbage collector every `every` in the background. Its windows must be safe
    /// for this runtime's timeout and async queue age ([`GcConfig::validate`]).
    pub fn spawn_garbage_collector(
        &self,
        cfg: GcConfig,
        every: Duration,
    ) -> Result<BackgroundTask, BeldiError> {
        cfg.validate(&self.longest_timeout(), self.inner.config.max_queue_age)?;
        Ok(self.periodic(every, "garbage collector", move |rt| {
            let cfg = cfg.clone();
            async move { rt.collect_garbage(&cfg).await.map(|_| ()) }
        }))
    }

    /// Runs one pass of the garbage collector now, with the windows given (not validated:
    /// tests and tools may use short ones on purpose).
    /// (Nothing to do in baseline mode: there are no logs.)
    pub async fn collect_garbage(&self, cfg: &GcConfig) -> Result<GcReport, BeldiError> {
        if self.inner.config.mode == Mode::Baseline {
            return Ok(GcReport::default());
        }
        gc::run_pass(self, cfg).await
    }
}

/// A finished execution recorded by [`Runtime::start_trace`].
#[derive(Clone, Debug, PartialEq)]
pub struct TracedExecution {
    /// The function.
    pub function: String,
    /// The instance.
    pub instance: String,
    /// Its logged operations: step and kind, in step order.
    pub ops: Vec<(u64, &'static str)>,
}

/// The key of a stored result that records a terminal failure.
pub const FAILED: &str = "failed";

/// The stored result of an instance that failed for good with `e`.
fn failed_result(e: &BeldiError) -> AttrValue {
    let mut m = std::collections::BTreeMap::new();
    m.insert(FAILED.to_owned(), AttrValue::S(e.to_string()));
    AttrValue::M(m)
}

/// Decodes a stored `{"ok": v}` / `{"err": e}` result; a terminal failure
/// (`{"failed": message}`) is [`BeldiError::Failed`] of instance `instance`.
pub fn decode_result<O: DeserializeOwned, E: DeserializeOwned>(
    name: &str,
    result: &AttrValue,
) -> Result<Result<O, E>, BeldiError> {
    decode_result_of(name, "", result)
}

/// [`decode_result`] naming the instance in a terminal failure.
pub fn decode_result_of<O: DeserializeOwned, E: DeserializeOwned>(
    name: &str,
    instance: &str,
    result: &AttrValue,
) -> Result<Result<O, E>, BeldiError> {
    let m = result.as_m().ok_or_else(|| BeldiError::Corrupt {
        what: format!("result of `{name}`"),
        message: "not a map".into(),
    })?;
    if let Some(f) = m.get(FAILED) {
        return Err(BeldiError::Failed {
            function: name.to_owned(),
            instance: instance.to_owned(),
            message: f.as_s().unwrap_or("").to_owned(),
        });
    }
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
