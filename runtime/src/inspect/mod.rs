//! What invariant checkers and operators read, without touching protocol internals: the
//! current value of a key, the lock on it, the stored result of an instance, the
//! instances that have not finished or have failed — and, without a runtime or the code,
//! the [`Inspector`]: a store's functions, instances, step logs, call trees and locks.

mod view;

/// Milliseconds since the Unix epoch (the clock ages and lock times are read against).
pub use crate::intent::now_ms;

pub use view::{
    CallNode, FunctionInfo, FunctionStats, InspectError, Inspector, InstanceDetail, InstanceFilter,
    InstanceState, InstanceSummary, LockView, ResultView, StepView, TableStats,
};

use crate::daal::Daal;
use crate::error::BeldiError;
use crate::platform::{Mode, Runtime};
pub use crate::schema::Outcome;
use crate::store::AttrValue;

pub use crate::data::{current_value, current_values, open_transaction_items};
pub use crate::explorer::unfinished;

/// The transaction holding the lock of `key` in table `table` of `function`, if any.
pub async fn lock_holder(
    rt: &Runtime,
    function: &str,
    table: &str,
    key: &str,
) -> Result<Option<String>, BeldiError> {
    if rt.config().mode == Mode::Baseline {
        return Ok(None);
    }
    let t = rt.tables(function)?.data(table)?;
    let tail = Daal::new(&**rt.store(), &t, rt.config().row_capacity)
        .tail(key)
        .await?;
    Ok(tail.and_then(|r| r.holder().and_then(AttrValue::as_s).map(str::to_owned)))
}

/// The stored result of `instance` of `function`: `None` while it has not finished (or
/// never started).
pub async fn stored_result(
    rt: &Runtime,
    function: &str,
    instance: &str,
) -> Result<Option<Outcome>, BeldiError> {
    let table = rt.tables(function)?.intent();
    let Some(it) = crate::intent::get(&**rt.store(), &table, instance).await? else {
        return Ok(None);
    };
    match it.result {
        Some(r) if it.done => Ok(Some(Outcome::from_attr(
            &r,
            &format!("result of `{function}` instance `{instance}`"),
        )?)),
        _ => Ok(None),
    }
}

/// Every instance of `function` that has started, with whether it is done.
pub async fn instances(rt: &Runtime, function: &str) -> Result<Vec<(String, bool)>, BeldiError> {
    let table = rt.tables(function)?.intent();
    Ok(crate::intent::all(&**rt.store(), &table)
        .await?
        .into_iter()
        .map(|it| (it.instance, it.done))
        .collect())
}

/// Every instance of every registered function that ended failed for good: function,
/// instance and the failure's description.
pub async fn failed(rt: &Runtime) -> Result<Vec<(String, String, String)>, BeldiError> {
    let mut out = Vec::new();
    for f in rt.function_names() {
        for (instance, outcome) in results(rt, &f).await? {
            if let Outcome::Failed(message) = outcome {
                out.push((f.clone(), instance, message));
            }
        }
    }
    Ok(out)
}

pub use crate::schema::decode_result;

/// Every key of table `table` of `function` whose lock is held, with the holding
/// transaction.
pub async fn locks(
    rt: &Runtime,
    function: &str,
    table: &str,
) -> Result<Vec<(String, String)>, BeldiError> {
    if rt.config().mode == Mode::Baseline {
        return Ok(Vec::new());
    }
    let t = rt.tables(function)?.data(table)?;
    let tails = Daal::new(&**rt.store(), &t, rt.config().row_capacity)
        .tails()
        .await?;
    Ok(tails
        .into_iter()
        .filter_map(|(k, row)| Some((k, row.holder()?.as_s()?.to_owned())))
        .collect())
}

/// The finished instances of `function`, with their stored results, by instance id.
pub async fn results(rt: &Runtime, function: &str) -> Result<Vec<(String, Outcome)>, BeldiError> {
    let table = rt.tables(function)?.intent();
    let mut out = Vec::new();
    for it in crate::intent::all(&**rt.store(), &table).await? {
        if let (true, Some(r)) = (it.done, &it.result) {
            let what = format!("result of `{function}` instance `{}`", it.instance);
            out.push((it.instance.clone(), Outcome::from_attr(r, &what)?));
        }
    }
    Ok(out)
}

/// Whether `instance` of `function` has started (its intent exists), finished or not.
pub async fn exists(rt: &Runtime, function: &str, instance: &str) -> Result<bool, BeldiError> {
    let table = rt.tables(function)?.intent();
    Ok(crate::intent::get(&**rt.store(), &table, instance)
        .await?
        .is_some())
}

/// The storage a key takes: the rows of its chain and the log entries they hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Chain {
    /// Rows in the chain (the GC unlinks and deletes collected ones).
    pub rows: usize,
    /// Log entries in its rows.
    pub entries: usize,
    /// Its current value.
    pub value: Option<AttrValue>,
}

/// The chain of `key` in table `table` of `function`.
pub async fn chain(
    rt: &Runtime,
    function: &str,
    table: &str,
    key: &str,
) -> Result<Chain, BeldiError> {
    let t = rt.tables(function)?.data(table)?;
    let rows = Daal::new(&**rt.store(), &t, rt.config().row_capacity)
        .rows(key)
        .await?;
    Ok(Chain {
        rows: rows.len(),
        entries: rows.iter().map(|r| r.log_len()).sum(),
        value: rows.last().and_then(|r| r.value()).cloned(),
    })
}
