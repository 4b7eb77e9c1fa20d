//! Deferred logging: the log records of reads, scans and sync calls (with the callee's
//! result) stay in the execution until its next durable effect, and go to the store in one
//! transaction with that effect.
//!
//! A read costs one round trip (the read itself) instead of two, and a call's record costs
//! none of its own. What keeps this safe:
//!
//! - **No effect escapes on an unlogged input.** Every durable effect carries or follows
//!   the records deferred before it: a logged write puts them (put-if-absent) in the same
//!   transaction as its DAAL update and its own record ([`crate::logged::write`]); any other
//!   operation (a call, a spawn, a side effect, a transaction step) makes them durable first
//!   ([`flush`]). So whenever an effect is durable, so is every value it may depend on.
//! - **What was never logged was never used.** A crash loses only records no effect
//!   depended on; the re-execution reads again, as if the lost execution had not run that
//!   far. The records still deferred when the body returns are dropped: the stored result
//!   is what a re-execution returns from then on (and a duplicate adopts it).
//! - **A duplicate that read otherwise is discarded.** Two concurrent executions of one
//!   instance may read different values at the same step. The first to make its record
//!   durable wins; the other's put-if-absent fails on a different record and the execution
//!   stops with [`BeldiError::Diverged`] before any effect of it escapes (the failed put
//!   was in the same transaction as the effect, or before it). The platform then runs the
//!   body again from the log. A record that is already there with the same content is
//!   simply dropped from the deferred ones.
//!
//! Once an execution has diverged, every later flush fails the same way, so a body that
//! swallows the error cannot make another effect.
//!
//! **A sync callee's intent is deferred too.** An execution of a sync callee outside a
//! transaction starts without creating its intent (its caller re-drives it, so nothing
//! needs the intent before the callee has an effect): the intent's put-if-absent is
//! [`DeferredLog::defer_intent`]ed and rides with the first durable effect like a record,
//! or becomes the finished intent itself if the body has none (one round trip for the
//! whole callee). Such an execution cannot know whether an earlier one of the instance
//! exists; if one does, the put fails, the execution stops with
//! [`BeldiError::Superseded`] before any effect of it escapes, and the platform runs the
//! instance again the usual way (its intent read, its log prefetched). While the intent is
//! pending, [`DeferredLog::carried`] says not everything rides, so an operation that builds
//! its own transaction flushes first.

use std::sync::Mutex;

use crate::error::BeldiError;
use crate::log;
use crate::schema::{LogRecord, step_key};
use crate::store::{
    CancellationReason, Item, MAX_TRANSACTION_ITEMS, Put, Store, StoreError, TransactOp,
    TransactWrite,
};

/// Why an execution must stop before making another effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stopped {
    /// A concurrent execution logged another record at this step.
    Diverged(u64),
    /// The instance's intent existed when this execution's deferred one was put.
    Superseded,
}

/// The most deferred records one transaction carries (the rest go in further ones). Leaves
/// room for an effect's own items.
pub(crate) const MAX_CARRIED: usize = MAX_TRANSACTION_ITEMS - 4;

/// The most bytes of deferred records one transaction carries (DynamoDB allows 4 MB in all).
const MAX_CARRIED_BYTES: usize = 1024 * 1024;

/// One deferred record: the step and what it logs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Deferred {
    /// The step.
    pub(crate) step: u64,
    /// Its record.
    pub(crate) record: LogRecord,
}

/// The records an execution has not made durable yet, and whether it diverged.
#[derive(Debug, Default)]
pub(crate) struct DeferredLog {
    pending: Mutex<Vec<Deferred>>,
    /// The put-if-absent of the instance's intent, while it is deferred.
    intent: Mutex<Option<Put>>,
    /// Held by the one operation that carries the deferred intent at a time, so two
    /// concurrent operations of the execution never both put it (the second would find
    /// the first's and take it for another execution's).
    intent_gate: tokio::sync::Mutex<()>,
    stopped: Mutex<Option<Stopped>>,
}

impl DeferredLog {
    /// Defers `record` of `step`.
    pub(crate) fn push(&self, step: u64, record: LogRecord) {
        self.lock().push(Deferred { step, record });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Deferred>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Defers the creation of the instance's intent: `put` (a put-if-absent) rides with
    /// the first durable effect.
    pub(crate) fn defer_intent(&self, put: Put) {
        *self.intent.lock().unwrap_or_else(|e| e.into_inner()) = Some(put);
    }

    /// While the intent is deferred, waits until no other operation carries it and returns
    /// the guard to hold while this one does (then [`DeferredLog::intent`] says whether it
    /// is still deferred); `None` once it is durable.
    pub(crate) async fn intent_gate(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        self.intent()?;
        Some(self.intent_gate.lock().await)
    }

    /// The deferred put of the instance's intent, if it is not durable yet.
    pub(crate) fn intent(&self) -> Option<Put> {
        self.intent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes the deferred put of the intent: it is durable, or the caller makes it so.
    pub(crate) fn take_intent(&self) -> Option<Put> {
        self.intent.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The deferred intent's put failed: the instance existed. Every later effect fails.
    pub(crate) fn superseded(&self, instance: &str) -> BeldiError {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = Some(Stopped::Superseded);
        self.take_intent();
        BeldiError::Superseded {
            instance: instance.to_owned(),
        }
    }

    /// Fails with [`BeldiError::Diverged`] if the execution diverged, or
    /// [`BeldiError::Superseded`] if its deferred intent found the instance.
    pub(crate) fn check(&self, instance: &str) -> Result<(), BeldiError> {
        let instance = instance.to_owned();
        match *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(Stopped::Diverged(step)) => Err(BeldiError::Diverged { instance, step }),
            Some(Stopped::Superseded) => Err(BeldiError::Superseded { instance }),
            None => Ok(()),
        }
    }

    /// The records a transaction can carry now, oldest first (within [`MAX_CARRIED`] and
    /// 1 MB), and whether that is all of them. Not all while the intent is deferred: an
    /// operation that carries records itself flushes first ([`flush`] puts the intent).
    pub(crate) fn carried(&self) -> (Vec<Deferred>, bool) {
        let (records, all) = self.carried_records();
        (records, all && self.intent().is_none())
    }

    /// [`DeferredLog::carried`], whether or not the intent is deferred (for a write, which
    /// carries the intent too).
    pub(crate) fn carried_records(&self) -> (Vec<Deferred>, bool) {
        let pending = self.lock();
        let mut out = Vec::new();
        let mut bytes = 0;
        for d in pending.iter() {
            let size = d
                .record
                .value
                .as_ref()
                .map_or(0, crate::store::validate::value_size);
            if out.len() == MAX_CARRIED || (!out.is_empty() && bytes + size > MAX_CARRIED_BYTES) {
                return (out, false);
            }
            bytes += size;
            out.push(d.clone());
        }
        (out, true)
    }

    /// The put-if-absent of each of `records` in log table `table`.
    pub(crate) fn puts(table: &str, instance: &str, records: &[Deferred]) -> Vec<Put> {
        records
            .iter()
            .map(|d| log::put_if_absent(table, instance, &step_key(d.step), &d.record))
            .collect()
    }

    /// `records` are durable: no longer deferred.
    pub(crate) fn settled(&self, records: &[Deferred]) {
        self.lock()
            .retain(|d| !records.iter().any(|r| r.step == d.step));
    }

    /// The put of deferred record `d` failed: the log holds `found` at its step. The same
    /// record (a twin, or a concurrent operation of this execution, made it durable): no
    /// longer deferred. Another one: the execution diverged.
    pub(crate) fn refused(
        &self,
        instance: &str,
        d: &Deferred,
        found: &LogRecord,
    ) -> Result<(), BeldiError> {
        if *found == d.record {
            self.settled(std::slice::from_ref(d));
            return Ok(());
        }
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = Some(Stopped::Diverged(d.step));
        Err(BeldiError::Diverged {
            instance: instance.to_owned(),
            step: d.step,
        })
    }
}

/// The record a refused put-if-absent of the record of `step` found: the item the store
/// returned, or (if it returned none) the one in the log.
pub(crate) async fn found(
    store: &dyn Store,
    table: &str,
    instance: &str,
    step: u64,
    item: Option<&Item>,
) -> Result<LogRecord, BeldiError> {
    if let Some(item) = item {
        return Ok(LogRecord::from_item(item));
    }
    log::get(store, table, instance, step)
        .await?
        .ok_or_else(|| BeldiError::Corrupt {
            what: format!("log of step {step}"),
            message: "a put-if-absent failed on no record".into(),
        })
}

/// Makes every deferred record of `instance` durable in log table `table`, and its intent if
/// that is deferred (a put for one item, a transaction per [`MAX_CARRIED`] for more);
/// returns whether there were any.
pub(crate) async fn flush(
    store: &dyn Store,
    table: &str,
    instance: &str,
    log: &DeferredLog,
) -> Result<bool, BeldiError> {
    let mut wrote = false;
    let mut busy = 0;
    loop {
        log.check(instance)?;
        if busy > 0 {
            if busy > 100 {
                return Err(StoreError::Unavailable {
                    message: format!("deferred log records of `{instance}` did not settle"),
                }
                .into());
            }
            tokio::time::sleep(std::time::Duration::from_millis(1 + busy % 8)).await;
        }
        let gate = log.intent_gate().await;
        let (records, _) = log.carried_records();
        let intent = log.intent();
        if records.is_empty() && intent.is_none() {
            return Ok(wrote);
        }
        // The intent first: index 0 of the transaction when it rides.
        let first = usize::from(intent.is_some());
        let mut puts: Vec<Put> = intent.into_iter().collect();
        puts.extend(DeferredLog::puts(table, instance, &records));
        let refused: Option<(usize, Option<Box<Item>>)> = if puts.len() == 1 {
            match store.put(puts.remove(0)).await {
                Ok(_) => None,
                Err(StoreError::ConditionFailed { item, .. }) => Some((0, item)),
                Err(e) => return Err(e.into()),
            }
        } else {
            let tx = puts
                .into_iter()
                .fold(TransactWrite::new(), |tx, p| tx.op(TransactOp::Put(p)));
            match store.transact_write(tx).await {
                Ok(()) => None,
                Err(StoreError::TransactionCancelled { reasons }) => {
                    match reasons.into_iter().enumerate().find_map(|(i, r)| match r {
                        CancellationReason::ConditionFailed { item } => Some((i, item)),
                        _ => None,
                    }) {
                        Some(r) => Some(r),
                        // A concurrent write of one of the records: try again.
                        None => {
                            busy += 1;
                            continue;
                        }
                    }
                }
                Err(StoreError::TransactionConflict { .. }) => {
                    busy += 1;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        };
        if refused.is_none() && first == 1 {
            log.take_intent();
        }
        drop(gate);
        match refused {
            None => {
                log.settled(&records);
                wrote = true;
            }
            Some((i, _)) if i < first => return Err(log.superseded(instance)),
            Some((i, item)) => {
                let d = &records[i - first];
                let got = found(store, table, instance, d.step, item.as_deref()).await?;
                log.refused(instance, d, &got)?;
            }
        }
    }
}
