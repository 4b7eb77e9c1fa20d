//! The inspector's view of a store: what an operator asks of a deployment without its
//! code — which functions it holds, their instances by state and age, one instance's input,
//! result, step log and call tree, the locks held, and how much the logs and DAAL chains
//! take. Built only on the [`Store`] trait and the stored record formats, so it reads an
//! embedded data directory or a DynamoDB namespace alike, while the application runs.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use crate::daal::Daal;
use crate::intent::{self, Intent};
use crate::schema::names::{CALL_RESULT, CALLEE};
use crate::schema::{CallerRef, Coordinator, Outcome};
use crate::store::{Store, StoreError, StoreExt};
use crate::tables::{SEPARATOR, validate_namespace};
use crate::value::to_json;

/// What the inspector could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The namespace is not one a runtime could have used.
    #[error("invalid namespace `{namespace}`: {message}")]
    InvalidNamespace {
        /// The namespace given.
        namespace: String,
        /// Why it is not valid.
        message: String,
    },
    /// The store holds no function's tables under the namespace.
    #[error(
        "no beldi functions in this store under namespace `{namespace}` (no `<function>.intent` table): is it the right data directory, endpoint and namespace, and has the application run?"
    )]
    Empty {
        /// The namespace looked in.
        namespace: String,
    },
    /// No function of that name has tables in the store.
    #[error("no function `{function}` in this store (functions: {known})")]
    UnknownFunction {
        /// The function asked for.
        function: String,
        /// The functions the store holds.
        known: String,
    },
    /// The function has no instance of that id.
    #[error("function `{function}` has no instance `{instance}`")]
    UnknownInstance {
        /// The function.
        function: String,
        /// The instance asked for.
        instance: String,
    },
    /// A state name that is not one of [`InstanceState`]'s.
    #[error("unknown instance state `{0}` (states: running, done, failed, died)")]
    UnknownState(String),
    /// A stored record does not have the shape its format says.
    #[error("corrupt {what}: {message}")]
    Corrupt {
        /// Which record.
        what: String,
        /// What is wrong with it.
        message: String,
    },
}

/// Where an instance stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceState {
    /// Started and not finished: executing now, or crashed and waiting for a client retry
    /// or the intent collector.
    Running,
    /// Finished: its body returned (`Ok` or `Err`; see [`ResultView`]).
    Done,
    /// Ended in the terminal failed state: every execution would meet the same failure.
    Failed,
    /// A transaction participant that died under wait-die (its caller retried or aborted).
    Died,
}

impl InstanceState {
    /// Every state, in listing order.
    pub const ALL: [InstanceState; 4] = [
        InstanceState::Running,
        InstanceState::Done,
        InstanceState::Failed,
        InstanceState::Died,
    ];
    /// The state's name.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Running => "running",
            InstanceState::Done => "done",
            InstanceState::Failed => "failed",
            InstanceState::Died => "died",
        }
    }
}

impl std::fmt::Display for InstanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for InstanceState {
    type Err = InspectError;
    fn from_str(s: &str) -> Result<InstanceState, InspectError> {
        InstanceState::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| InspectError::UnknownState(s.to_owned()))
    }
}

/// How a finished instance ended, with its value as JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResultView {
    /// `ok`, `err`, `died` or `failed`.
    pub kind: &'static str,
    /// The output, the error, the death's reason or the failure's description.
    pub value: serde_json::Value,
}

impl ResultView {
    fn of(outcome: &Outcome) -> ResultView {
        let (kind, value) = match outcome {
            Outcome::Ok(v) => ("ok", to_json(v)),
            Outcome::Err(e) => ("err", to_json(e)),
            Outcome::Died(why) => ("died", why.clone().into()),
            Outcome::Failed(m) => ("failed", m.clone().into()),
        };
        ResultView { kind, value }
    }
}

/// One instance, as a listing shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceSummary {
    /// The function.
    pub function: String,
    /// The instance id.
    pub instance: String,
    /// Where it stands.
    pub state: InstanceState,
    /// When its latest execution started (ms since the epoch).
    pub started_ms: i64,
    /// When it finished (ms since the epoch).
    pub done_ms: Option<i64>,
    /// Milliseconds since its latest execution started (at the time of the listing).
    pub age_ms: i64,
    /// Whether it was started asynchronously.
    pub is_async: bool,
    /// Who called it (`None`: a root request).
    pub caller: Option<CallerRef>,
    /// How many times the intent collector restarted it.
    pub restarts: u32,
    /// How it ended, once finished.
    pub result: Option<ResultView>,
}

/// One logged step of an instance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepView {
    /// The step number (`None` for a record under a key of another form).
    pub step: Option<u64>,
    /// The record's sort key in the log table.
    pub key: String,
    /// The step's kind (`read`, `write`, `call`, …; `lock` for a lock outcome).
    pub kind: String,
    /// Its target: `table/key`, a table, or a function.
    pub target: String,
    /// The logged value, as JSON.
    pub value: Option<serde_json::Value>,
    /// For a call or spawn: the callee's instance id.
    pub callee: Option<String>,
}

/// An instance and what it called, recursively.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CallNode {
    /// The function.
    pub function: String,
    /// The instance id.
    pub instance: String,
    /// Where it stands.
    pub state: InstanceState,
    /// The caller's step that made this call (`None` for the root of the tree).
    pub step: Option<u64>,
    /// Whether the call was asynchronous.
    pub is_async: bool,
    /// The instances it called, by step.
    pub calls: Vec<CallNode>,
}

/// Everything about one instance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InstanceDetail {
    /// What a listing shows.
    pub summary: InstanceSummary,
    /// Its input, as JSON.
    pub input: serde_json::Value,
    /// Its step log, in step order (empty once the garbage collector took it).
    pub steps: Vec<StepView>,
    /// The tree of calls it made, across functions.
    pub calls: CallNode,
}

/// A lock held on a key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LockView {
    /// The function owning the table.
    pub function: String,
    /// The data table.
    pub table: String,
    /// The key.
    pub key: String,
    /// The holding transaction's id.
    pub holder: String,
    /// The holder's start time (ms since the epoch; its wait-die age).
    pub since_ms: Option<i64>,
    /// Milliseconds since then, at the time of the listing.
    pub held_ms: Option<i64>,
    /// The function and instance that began the holding transaction.
    pub coordinator: Option<Coordinator>,
}

/// One function's tables and what they hold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunctionStats {
    /// The function.
    pub function: String,
    /// Its instances, by state.
    pub instances: BTreeMap<InstanceState, usize>,
    /// Items in its log table.
    pub log_items: usize,
    /// Its data tables.
    pub tables: Vec<TableStats>,
}

/// What a data table's DAAL chains take.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableStats {
    /// The data table.
    pub table: String,
    /// Keys in it.
    pub keys: usize,
    /// DAAL rows in all (the GC unlinks and deletes collected ones).
    pub rows: usize,
    /// The most rows one key's chain has.
    pub max_rows_per_key: usize,
    /// Log entries in its rows.
    pub entries: usize,
}

/// A function found in the store, with its data tables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FunctionInfo {
    /// The function.
    pub name: String,
    /// Its data tables (beldi mode; a baseline run's plain tables are not listed).
    pub tables: Vec<String>,
}

/// Which instances a listing shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceFilter {
    /// Only this function's.
    pub function: Option<String>,
    /// Only in this state.
    pub state: Option<InstanceState>,
    /// At most this many, newest first (`None`: all).
    pub limit: Option<usize>,
}

/// Reads a store's functions, instances, logs and locks (see the module docs).
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use std::sync::Arc;
/// use beldi_runtime::embedded::EmbeddedStore;
/// use beldi_runtime::inspect::{InspectError, Inspector};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
/// let inspector = Inspector::new(store, "").unwrap();
/// // Nothing has run here yet: the inspector says so instead of listing nothing.
/// assert!(matches!(inspector.functions().await, Err(InspectError::Empty { .. })));
/// # });
/// ```
#[derive(Clone)]
pub struct Inspector {
    store: Arc<dyn Store>,
    namespace: String,
}

impl Inspector {
    /// An inspector of the functions under `namespace` (`""`: the default) in `store`.
    pub fn new(store: Arc<dyn Store>, namespace: &str) -> Result<Inspector, InspectError> {
        validate_namespace(namespace).map_err(|e| InspectError::InvalidNamespace {
            namespace: namespace.to_owned(),
            message: e.to_string(),
        })?;
        Ok(Inspector {
            store,
            namespace: namespace.to_owned(),
        })
    }

    /// The store read.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The namespace read.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Every function with tables in the store (it has an intent table), by name.
    pub async fn functions(&self) -> Result<Vec<FunctionInfo>, InspectError> {
        // `<ns><function>.intent` marks a function; `<ns><function>.data.<table>` its tables.
        let mut found: BTreeMap<String, (bool, Vec<String>)> = BTreeMap::new();
        for name in self.store.list_tables(&self.namespace).await? {
            let mut parts = name[self.namespace.len()..].splitn(3, SEPARATOR);
            let (Some(function), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let entry = found.entry(function.to_owned()).or_default();
            match (kind, parts.next()) {
                ("intent", None) => entry.0 = true,
                ("data", Some(table)) => entry.1.push(table.to_owned()),
                _ => {}
            }
        }
        let functions: Vec<FunctionInfo> = found
            .into_iter()
            .filter(|(_, (has_intent, _))| *has_intent)
            .map(|(name, (_, tables))| FunctionInfo { name, tables })
            .collect();
        if functions.is_empty() {
            return Err(InspectError::Empty {
                namespace: self.namespace.clone(),
            });
        }
        Ok(functions)
    }

    /// The function `name`, or an error naming the ones there are.
    async fn function(&self, name: &str) -> Result<FunctionInfo, InspectError> {
        let all = self.functions().await?;
        let known = all
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        all.into_iter()
            .find(|f| f.name == name)
            .ok_or_else(|| InspectError::UnknownFunction {
                function: name.to_owned(),
                known,
            })
    }

    fn table(&self, function: &str, kind: &str) -> String {
        format!("{}{function}{SEPARATOR}{kind}", self.namespace)
    }

    async fn intents(&self, function: &str) -> Result<Vec<Intent>, InspectError> {
        Ok(intent::all(&*self.store, &self.table(function, "intent")).await?)
    }

    /// The instances `filter` asks for, newest first.
    pub async fn instances(
        &self,
        filter: &InstanceFilter,
    ) -> Result<Vec<InstanceSummary>, InspectError> {
        let functions = match &filter.function {
            Some(f) => vec![self.function(f).await?],
            None => self.functions().await?,
        };
        let now = intent::now_ms();
        let mut out = Vec::new();
        for f in &functions {
            for it in self.intents(&f.name).await? {
                let s = summary(&f.name, &it, now)?;
                if filter.state.is_none_or(|st| st == s.state) {
                    out.push(s);
                }
            }
        }
        out.sort_by(|a, b| {
            (b.started_ms, &a.function, &a.instance).cmp(&(a.started_ms, &b.function, &b.instance))
        });
        if let Some(n) = filter.limit {
            out.truncate(n);
        }
        Ok(out)
    }

    /// Everything about `instance` of `function`: its intent, its step log and its call tree.
    pub async fn instance(
        &self,
        function: &str,
        instance: &str,
    ) -> Result<InstanceDetail, InspectError> {
        self.function(function).await?;
        let it = intent::get(&*self.store, &self.table(function, "intent"), instance)
            .await?
            .ok_or_else(|| InspectError::UnknownInstance {
                function: function.to_owned(),
                instance: instance.to_owned(),
            })?;
        let summary = summary(function, &it, intent::now_ms())?;
        let mut records: Vec<_> =
            crate::log::all(&*self.store, &self.table(function, "log"), instance)
                .await?
                .into_iter()
                .collect();
        records.sort_by(|a, b| a.0.cmp(&b.0));
        let steps = records
            .into_iter()
            .map(|(key, rec)| StepView {
                step: key
                    .get(..16)
                    .and_then(|hex| u64::from_str_radix(hex, 16).ok()),
                callee: rec.field(CALLEE).and_then(|v| v.as_s()).map(str::to_owned),
                value: rec.value.as_ref().map(|v| {
                    // A call's logged value holds its result in stored form; show it decoded.
                    let mut j = to_json(v);
                    if let (Some(r), Some(obj)) = (rec.field(CALL_RESULT), j.as_object_mut())
                        && let Ok(o) = Outcome::from_attr(r, "a logged call result")
                    {
                        obj.insert(
                            CALL_RESULT.to_owned(),
                            serde_json::to_value(ResultView::of(&o)).unwrap_or_default(),
                        );
                    }
                    j
                }),
                key,
                kind: rec.kind,
                target: rec.target,
            })
            .collect();
        let calls = self.call_tree(function, instance).await?;
        Ok(InstanceDetail {
            input: to_json(&it.input),
            summary,
            steps,
            calls,
        })
    }

    /// The tree of calls `instance` of `function` made, across functions (from the callees'
    /// intents, which name their caller).
    pub async fn call_tree(
        &self,
        function: &str,
        instance: &str,
    ) -> Result<CallNode, InspectError> {
        let now = intent::now_ms();
        let mut by_caller: HashMap<(String, String), Vec<(CallerRef, InstanceSummary)>> =
            HashMap::new();
        let mut root = None;
        for f in self.functions().await? {
            for it in self.intents(&f.name).await? {
                let s = summary(&f.name, &it, now)?;
                if f.name == function && it.instance == instance {
                    root = Some(s.clone());
                }
                if let Some(c) = &it.caller {
                    by_caller
                        .entry((c.function.clone(), c.instance.clone()))
                        .or_default()
                        .push((c.clone(), s));
                }
            }
        }
        let root = root.ok_or_else(|| InspectError::UnknownInstance {
            function: function.to_owned(),
            instance: instance.to_owned(),
        })?;
        fn build(
            s: &InstanceSummary,
            step: Option<u64>,
            is_async: bool,
            by_caller: &HashMap<(String, String), Vec<(CallerRef, InstanceSummary)>>,
            depth: usize,
        ) -> CallNode {
            let mut calls: Vec<CallNode> = match by_caller
                .get(&(s.function.clone(), s.instance.clone()))
            {
                // Ids are derived from the caller's, so a cycle cannot occur; the depth
                // bound only guards against a corrupted store.
                Some(children) if depth < 64 => children
                    .iter()
                    .map(|(c, child)| build(child, Some(c.step), c.is_async, by_caller, depth + 1))
                    .collect(),
                _ => Vec::new(),
            };
            calls.sort_by(|a, b| (a.step, &a.function).cmp(&(b.step, &b.function)));
            CallNode {
                function: s.function.clone(),
                instance: s.instance.clone(),
                state: s.state,
                step,
                is_async,
                calls,
            }
        }
        Ok(build(&root, None, root.is_async, &by_caller, 0))
    }

    /// Every lock held, by function, table and key.
    pub async fn locks(&self) -> Result<Vec<LockView>, InspectError> {
        let now = intent::now_ms();
        let mut out = Vec::new();
        for f in self.functions().await? {
            for t in &f.tables {
                let name = self.table(&f.name, &format!("data{SEPARATOR}{t}"));
                let tails = Daal::new(&*self.store, &name, 1).tails().await?;
                for (key, row) in tails {
                    if let Some(holder) = row.holder().and_then(|h| h.as_s()) {
                        out.push(LockView {
                            function: f.name.clone(),
                            table: t.clone(),
                            key,
                            holder: holder.to_owned(),
                            since_ms: row.holder_since(),
                            held_ms: row.holder_since().map(|t| now.saturating_sub(t)),
                            coordinator: row.holder_coordinator(),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Instances by state, log items and DAAL chain sizes, per function.
    pub async fn stats(&self) -> Result<Vec<FunctionStats>, InspectError> {
        let now = intent::now_ms();
        let mut out = Vec::new();
        for f in self.functions().await? {
            let mut instances: BTreeMap<InstanceState, usize> =
                InstanceState::ALL.into_iter().map(|s| (s, 0)).collect();
            for it in self.intents(&f.name).await? {
                *instances
                    .entry(summary(&f.name, &it, now)?.state)
                    .or_default() += 1;
            }
            let log_items = self
                .store
                .scan_all(&self.table(&f.name, "log"))
                .await?
                .len();
            let mut tables = Vec::new();
            for t in &f.tables {
                let name = self.table(&f.name, &format!("data{SEPARATOR}{t}"));
                let chains = Daal::new(&*self.store, &name, 1).all_rows().await?;
                tables.push(TableStats {
                    table: t.clone(),
                    keys: chains.len(),
                    rows: chains.values().map(Vec::len).sum(),
                    max_rows_per_key: chains.values().map(Vec::len).max().unwrap_or(0),
                    entries: chains
                        .values()
                        .flat_map(|rows| rows.iter().map(|r| r.log_len()))
                        .sum(),
                });
            }
            out.push(FunctionStats {
                function: f.name,
                instances,
                log_items,
                tables,
            });
        }
        Ok(out)
    }
}

/// What a listing shows of an intent.
fn summary(function: &str, it: &Intent, now: i64) -> Result<InstanceSummary, InspectError> {
    let outcome = match (&it.result, it.done) {
        (Some(r), true) => {
            Some(
                Outcome::from_attr(r, "stored result").map_err(|e| InspectError::Corrupt {
                    what: format!("result of `{function}` instance `{}`", it.instance),
                    message: e.to_string(),
                })?,
            )
        }
        _ => None,
    };
    let state = match &outcome {
        None => InstanceState::Running,
        Some(Outcome::Ok(_) | Outcome::Err(_)) => InstanceState::Done,
        Some(Outcome::Failed(_)) => InstanceState::Failed,
        Some(Outcome::Died(_)) => InstanceState::Died,
    };
    Ok(InstanceSummary {
        function: function.to_owned(),
        instance: it.instance.clone(),
        state,
        started_ms: it.start_ms,
        done_ms: it.done_ms,
        age_ms: now.saturating_sub(it.start_ms),
        is_async: it.is_async,
        caller: it.caller.clone(),
        restarts: it.restarts,
        result: outcome.as_ref().map(ResultView::of),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_from_their_names() {
        for s in InstanceState::ALL {
            assert_eq!(s.as_str().parse::<InstanceState>().ok(), Some(s));
        }
        let err = "asleep".parse::<InstanceState>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown instance state `asleep` (states: running, done, failed, died)"
        );
    }
}
