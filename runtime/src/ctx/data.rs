//! The data capability of [`Ctx`]: reads, writes and scans of the function's own tables,
//! each on the context's data path.

use std::future::Future;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Ctx, DataPath};
use crate::daal::Entry;
use crate::engine::WriteOp;
use crate::error::BeldiError;
use crate::schema::StepKind;
use crate::store::{AttrValue, Condition, Path, UpdateAction};
use crate::telemetry;
use crate::value::{from_attr, to_attr};
use crate::{baseline, logged, txn};

impl Ctx {
    /// Whether a data operation of this context makes the deferred log records durable
    /// first: not on the logged path or in a transaction, where a read or scan defers its
    /// own record or carries them with the lock it takes, and a write carries them in its
    /// transaction ([`crate::deferred`]).
    fn flushes(&self) -> bool {
        matches!(self.path, DataPath::Baseline)
    }

    /// Reads the current value of `key` in the function's table `table` (`None`: no value).
    /// Logged: a re-execution returns the same value.
    pub fn read(
        &self,
        table: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<AttrValue>, BeldiError>> + Send + 'static {
        let step = self.alloc();
        let (this, table, key) = (self.clone(), table.to_owned(), key.to_owned());
        async move {
            let e = &*this.engine;
            let op = async {
                e.note(step, StepKind::Read);
                match &this.path {
                    DataPath::Logged => logged::read(e, step, &table, &key).await,
                    DataPath::Txn(t) => txn::read(e, t, step, &table, &key).await,
                    DataPath::Baseline => baseline::read(e, &table, &key).await,
                }
            };
            let span = telemetry::step_span(step, StepKind::Read, format_args!("{table}/{key}"));
            this.step(step, this.flushes(), span, op).await
        }
    }

    /// [`Ctx::read`], deserialized into `T`.
    pub fn read_as<T: DeserializeOwned>(
        &self,
        table: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<T>, BeldiError>> + Send + 'static {
        let fut = self.read(table, key);
        let what = format!("value of `{table}/{key}`");
        async move { fut.await?.map(|v| from_attr(&v, &what)).transpose() }
    }

    /// Sets the whole value of `key`.
    pub fn write(
        &self,
        table: &str,
        key: &str,
        value: AttrValue,
    ) -> impl Future<Output = Result<(), BeldiError>> + Send + 'static {
        self.update(table, key, vec![UpdateAction::Set(Path::root(), value)])
    }

    /// [`Ctx::write`] of a serde value.
    pub fn write_as<T: Serialize + ?Sized>(
        &self,
        table: &str,
        key: &str,
        value: &T,
    ) -> impl Future<Output = Result<(), BeldiError>> + Send + 'static {
        let value = to_attr(value, &format!("value of `{table}/{key}`"));
        let actions = value.map(|v| vec![UpdateAction::Set(Path::root(), v)]);
        let fut = self.write_step(table, key, Entry::Write, actions, None);
        async move { fut.await.map(|_| ()) }
    }

    /// Applies `actions` to the value of `key`. Paths are relative to the value
    /// ([`Path::root`] is the whole value; `Path::attr("cap")` its field `cap`).
    pub fn update(
        &self,
        table: &str,
        key: &str,
        actions: Vec<UpdateAction>,
    ) -> impl Future<Output = Result<(), BeldiError>> + Send + 'static {
        let fut = self.write_step(table, key, Entry::Write, Ok(actions), None);
        async move { fut.await.map(|_| ()) }
    }

    /// Applies `actions` only if `cond` (paths relative to the value) holds; returns whether
    /// it held. Logged: a re-execution returns the same boolean and applies nothing.
    pub fn cond_write(
        &self,
        table: &str,
        key: &str,
        actions: Vec<UpdateAction>,
        cond: Condition,
    ) -> impl Future<Output = Result<bool, BeldiError>> + Send + 'static {
        self.write_step(table, key, Entry::CondWrite(true), Ok(actions), Some(cond))
    }

    /// Removes the value of `key` (a later read returns `None`).
    pub fn delete(
        &self,
        table: &str,
        key: &str,
    ) -> impl Future<Output = Result<(), BeldiError>> + Send + 'static {
        let actions = vec![UpdateAction::Remove(Path::root())];
        let fut = self.write_step(table, key, Entry::Delete, Ok(actions), None);
        async move { fut.await.map(|_| ()) }
    }

    /// One write step: `actions` (or why they could not be made) under `cond`.
    fn write_step(
        &self,
        table: &str,
        key: &str,
        entry: Entry,
        actions: Result<Vec<UpdateAction>, BeldiError>,
        cond: Option<Condition>,
    ) -> impl Future<Output = Result<bool, BeldiError>> + Send + 'static {
        let step = self.alloc();
        let (this, table, key) = (self.clone(), table.to_owned(), key.to_owned());
        async move {
            let e = &*this.engine;
            let op = async {
                let actions = actions?;
                e.note(step, entry.kind());
                let op = WriteOp {
                    table: &table,
                    key: &key,
                    entry,
                    actions: &actions,
                    cond: cond.as_ref(),
                };
                match &this.path {
                    DataPath::Logged => logged::write(e, step, op).await,
                    DataPath::Txn(t) => txn::write(e, t, step, op).await,
                    DataPath::Baseline => baseline::write(e, op).await,
                }
            };
            let span = telemetry::step_span(step, entry.kind(), format_args!("{table}/{key}"));
            this.step(step, this.flushes(), span, op).await
        }
    }

    /// The current values of every key of `table`, ordered by key. Logged as one list.
    pub fn scan(
        &self,
        table: &str,
    ) -> impl Future<Output = Result<Vec<(String, AttrValue)>, BeldiError>> + Send + 'static {
        let step = self.alloc();
        let (this, table) = (self.clone(), table.to_owned());
        async move {
            let e = &*this.engine;
            let op = async {
                e.note(step, StepKind::Scan);
                match &this.path {
                    DataPath::Logged => logged::scan(e, step, &table).await,
                    DataPath::Txn(_) => Err(BeldiError::Unsupported {
                        operation: format!("`scan` of `{table}`"),
                        context: "inside a transaction",
                    }),
                    DataPath::Baseline => baseline::scan(e, &table).await,
                }
            };
            let span = telemetry::step_span(step, StepKind::Scan, format_args!("{table}"));
            this.step(step, this.flushes(), span, op).await
        }
    }
}
