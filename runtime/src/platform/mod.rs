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
//!
//! The files: [`config`](RuntimeConfig) (options), `registry` (functions and their
//! tables), `execute` (the one execution path: intent, body under crash plan and timeout,
//! outcome), `route` (here or through the remote; the doors in), `host` (what a hosting
//! process does with an envelope), `background` (async runs, revivals, the collectors) and
//! `trace` (what tools see).

mod background;
mod config;
mod execute;
mod host;
mod registry;
mod route;
mod trace;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::error::BeldiError;
use crate::invocation::{BoxFuture, Execution, Invocation, Platform, PlatformHandle};
use crate::remote::Remote;
use crate::store::Store;
use crate::tables::SsfTables;

pub use background::{BackgroundTask, Rerun};
pub use config::{Mode, RuntimeConfig};
pub use registry::Registration;
pub use trace::TracedExecution;

/// The local platform: a registry of functions and the machinery to run their instances.
/// Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    config: RuntimeConfig,
    functions: RwLock<HashMap<String, Arc<registry::Function>>>,
    background: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    trace: Mutex<Option<Vec<TracedExecution>>>,
    crashes: std::sync::atomic::AtomicU64,
    remote: RwLock<Option<Arc<dyn Remote>>>,
    /// Executions running in this process, by (function, instance).
    live: Mutex<HashMap<(String, String), usize>>,
    /// Whether the namespace's stored format was found to be this runtime's.
    format_ok: std::sync::atomic::AtomicBool,
    /// Where keys' DAAL tails were last seen (so a logged write goes straight there).
    tails: crate::daal::TailHints,
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
        config.validate()?;
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
                format_ok: std::sync::atomic::AtomicBool::new(false),
                tails: Default::default(),
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

    /// Whether invocations go through a remote ([`Runtime::set_remote`]).
    pub fn has_remote(&self) -> bool {
        self.remote().is_some()
    }

    /// The handle the protocol modules hold on this runtime.
    pub(crate) fn handle(&self) -> PlatformHandle {
        PlatformHandle::new(self.clone())
    }
}

impl Platform for Runtime {
    fn store(&self) -> &Arc<dyn Store> {
        Runtime::store(self)
    }
    fn tables(&self, function: &str) -> Result<SsfTables, BeldiError> {
        Runtime::tables(self, function)
    }
    fn function_names(&self) -> Vec<String> {
        Runtime::function_names(self)
    }
    fn is_running_here(&self, function: &str, instance: &str) -> bool {
        Runtime::is_running_here(self, function, instance)
    }
    fn call(&self, inv: Invocation) -> BoxFuture<Result<Execution, BeldiError>> {
        let rt = self.clone();
        // Boxed: commit propagation recurses through here.
        Box::pin(async move { Runtime::call(&rt, inv).await })
    }
    fn start(&self, inv: Invocation) -> BoxFuture<Result<(), BeldiError>> {
        let rt = self.clone();
        Box::pin(async move { rt.start_callee(inv).await })
    }
    fn revive(&self, function: &str, instance: &str) {
        Runtime::revive(self, function, instance)
    }
    fn tail_hints(&self) -> &crate::daal::TailHints {
        &self.inner.tails
    }
}
