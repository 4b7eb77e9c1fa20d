//! The registry of a [`Runtime`]: the functions it runs, their tables and timeouts, and the
//! functions declared with `#[beldi::function]` in the program ([`Registration`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Mode, Runtime};
use crate::collector::Longest;
use crate::ctx::Ctx;
use crate::error::BeldiError;
use crate::invocation::BoxFuture;
use crate::schema::Outcome;
use crate::store::AttrValue;
use crate::tables::SsfTables;
use crate::value::{from_attr, to_attr};

/// A registered body: input in, its [`Outcome`] (stored form) out.
type Handler =
    Arc<dyn Fn(Ctx, AttrValue) -> BoxFuture<Result<AttrValue, BeldiError>> + Send + Sync>;

/// Checks that an input deserializes into a function's input type.
type InputCheck = Arc<dyn Fn(&AttrValue) -> Result<(), BeldiError> + Send + Sync>;

/// A registered function.
#[derive(Clone)]
pub(crate) struct Function {
    pub(crate) tables: SsfTables,
    pub(crate) handler: Handler,
    /// Checks that an input deserializes, before anything is written for it.
    pub(crate) check_input: InputCheck,
    pub(crate) timeout: Duration,
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

impl Runtime {
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
                let outcome = match f(ctx, input).await {
                    Ok(o) => Outcome::Ok(to_attr(&o, &format!("output of `{fname}`"))?),
                    Err(e) => Outcome::Err(to_attr(&e, &format!("error of `{fname}`"))?),
                };
                Ok(outcome.to_attr())
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
        let timeout = self.inner.config.timeout;
        let function = Function {
            tables,
            handler,
            check_input,
            timeout,
        };
        map.insert(name.to_owned(), Arc::new(function));
        Ok(())
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
            timeout,
            ..(**f).clone()
        };
        map.insert(name.to_owned(), Arc::new(updated));
        Ok(())
    }

    /// The longest execution timeout of the registered functions (at least the runtime's
    /// default), and whose it is: what the intent collector's restart delay and the
    /// garbage collector's window must cover.
    pub fn longest_timeout(&self) -> Longest {
        let map = self
            .inner
            .functions
            .read()
            .unwrap_or_else(|e| e.into_inner());
        let mut longest = Longest {
            timeout: self.inner.config.timeout,
            function: None,
        };
        let mut names: Vec<&String> = map.keys().collect();
        names.sort();
        for name in names {
            let t = map[name].timeout;
            if t > longest.timeout {
                longest = Longest {
                    timeout: t,
                    function: Some(name.clone()),
                };
            }
        }
        longest
    }

    pub(crate) fn function(&self, name: &str) -> Result<Arc<Function>, BeldiError> {
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

    /// Checks, once per runtime, that the namespace's stored format is this runtime's
    /// ([`crate::format`]); every path that creates an intent asks first, so a runtime of
    /// another format writes nothing.
    pub(crate) async fn check_format(&self) -> Result<(), BeldiError> {
        use std::sync::atomic::Ordering;
        if self.inner.format_ok.load(Ordering::Relaxed) {
            return Ok(());
        }
        crate::format::check(&*self.inner.store, &self.inner.config.namespace).await?;
        self.inner.format_ok.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Creates every table the registered functions need (idempotent), and marks the
    /// namespace with this runtime's stored format (refusing one marked with another);
    /// returns the names of the tables this call created, sorted (the marker's table
    /// among them).
    pub async fn provision(&self) -> Result<Vec<String>, BeldiError> {
        let meta = crate::format::meta_table(&self.inner.config.namespace);
        let meta_created = self.inner.store.describe_table(&meta).await.is_err();
        crate::format::ensure(&*self.inner.store, &self.inner.config.namespace).await?;
        self.inner
            .format_ok
            .store(true, std::sync::atomic::Ordering::Relaxed);
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
        if meta_created {
            created.push(meta);
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
}
