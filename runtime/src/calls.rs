//! Calls between functions from a running instance: a sync `call` and an async `spawn`,
//! logged in the caller's log (see [`crate::invoke`] for the protocol), inside a
//! transaction or not.

use std::sync::Arc;

use crate::crash::CrashPoint;
use crate::engine::Engine;
use crate::error::BeldiError;
use crate::invocation::Invocation;
use crate::invoke::{call_record, logged_result};
use crate::schema::names::CALL_RESULT;
use crate::schema::{CallerRef, Instruction, LogRecord, Outcome, StepKind, TxnCtx, step_key};
use crate::store::{AttrValue, CancellationReason, StoreError, TransactOp, TransactWrite};
use crate::telemetry;
use crate::txn::{self, TxnState};
use crate::{deferred, log};

/// Logs a call of `function` at `step` in transaction `txn` and records `function` as a
/// participant of it, in one transaction (both are idempotent); returns the callee id, the
/// record in the log, and whether the participant's entry is recorded (not when the step
/// was logged already: an earlier execution may have logged it alone).
async fn participant_record(
    e: &Engine,
    txn: &TxnCtx,
    step: u64,
    function: &str,
) -> Result<(String, LogRecord, bool), BeldiError> {
    e.platform.tables(function)?;
    let callee = e.callee_id(step);
    if let Some(rec) = e.prefetched(step) {
        e.check_log(step, rec, StepKind::Call, function)?;
        return Ok((callee, rec.clone(), false));
    }
    let rec = call_record(StepKind::Call, function, &callee);
    let log_table = e.tables.log();
    let tx = TransactWrite::new()
        .op(TransactOp::Put(log::put_if_absent(
            &log_table,
            &e.instance,
            &step_key(step),
            &rec,
        )))
        .op(TransactOp::Put(txn::participant_put(e, txn, function)));
    // `Some`: the step was logged already (this item); `None`: a concurrent write of one of
    // the items cancelled the transaction.
    let refused = match e.store.transact_write(tx).await {
        Ok(()) => return Ok((callee, rec, true)),
        Err(StoreError::TransactionCancelled { reasons }) => match reasons.into_iter().next() {
            Some(CancellationReason::ConditionFailed { item }) => Some(item),
            _ => None,
        },
        Err(StoreError::TransactionConflict { .. }) => None,
        Err(err) => return Err(err.into()),
    };
    let got = match refused {
        Some(item) => {
            deferred::found(&*e.store, &log_table, &e.instance, step, item.as_deref()).await?
        }
        // One at a time instead.
        None => {
            e.log_step(step, StepKind::Call, function, rec.value)
                .await?
        }
    };
    e.check_log(step, &got, StepKind::Call, function)?;
    Ok((callee, got, false))
}

/// The invocation of `callee` of `function` with `input` that step `step` of this
/// execution makes (asynchronously if `is_async`), in transaction `txn` if any.
fn invocation(
    e: &Engine,
    step: u64,
    (function, callee): (&str, &str),
    input: AttrValue,
    is_async: bool,
    txn: Option<TxnCtx>,
) -> Invocation {
    // Exact when the call is made: a first execution created its intent (eagerly, or by
    // the flush every call makes first).
    let fresh = !is_async && txn.is_none() && e.is_first_execution();
    Invocation {
        function: function.to_owned(),
        instance: callee.to_owned(),
        input,
        caller: Some(CallerRef {
            function: e.function().to_owned(),
            instance: e.instance.clone(),
            step,
            is_async,
        }),
        txn,
        plan: e.plan.clone(),
        attempt: e.attempt,
        trace: Some(telemetry::outgoing(&e.trace)),
        fresh,
    }
}

/// A logged sync call of `function` with `input` at `step`, in transaction `txn` if any;
/// the callee's stored result.
pub(crate) async fn call(
    e: &Engine,
    txn: Option<&Arc<TxnState>>,
    step: u64,
    function: &str,
    input: AttrValue,
) -> Result<AttrValue, BeldiError> {
    let Some(t) = txn else {
        return call_deferred(e, step, function, input).await;
    };
    // What the callee does to this function's keys (it may be a participant of this
    // function) is not known to this execution.
    t.forget_views();
    let (callee, got, entered) = participant_record(e, &t.ctx, step, function).await?;
    if let Some(r) = logged_result(&got) {
        if Outcome::death(&r).is_some() {
            t.mark_replayed_death();
        }
        return unless_died(txn, r);
    }
    if !entered {
        txn::add_participant(e, &t.ctx, function).await?;
    }
    let in_txn = Some(t.ctx.with(Instruction::Execute));
    let inv = invocation(e, step, (function, &callee), input, false, in_txn);
    // A participant call runs to its end whatever the body does with this future.
    let exec = t.track(e.platform.call(inv)).await?;
    e.maybe_crash(CrashPoint::Inside(step)).await;
    let logged =
        log::set_call_result(&*e.store, &e.tables.log(), &e.instance, step, &exec.result).await?;
    unless_died(txn, logged)
}

/// A sync call outside a transaction: nothing is logged before the callee runs (its id is
/// derived from this step, so a re-execution calls the same instance, which finishes once
/// and then returns its stored result); the record of the call, with the result, is
/// deferred to this execution's next durable effect ([`crate::deferred`]).
async fn call_deferred(
    e: &Engine,
    step: u64,
    function: &str,
    input: AttrValue,
) -> Result<AttrValue, BeldiError> {
    e.platform.tables(function)?;
    let callee = e.callee_id(step);
    if let Some(rec) = e.prefetched(step) {
        e.check_log(step, rec, StepKind::Call, function)?;
        if let Some(r) = logged_result(rec) {
            return Ok(r);
        }
    }
    let inv = invocation(e, step, (function, &callee), input, false, None);
    let exec = e.platform.call(inv).await?;
    e.maybe_crash(CrashPoint::Inside(step)).await;
    let mut rec = call_record(StepKind::Call, function, &callee);
    if let Some(AttrValue::M(m)) = &mut rec.value {
        m.insert(CALL_RESULT.to_owned(), exec.result);
    }
    let got = e.defer_step(step, StepKind::Call, function, rec.value)?;
    logged_result(&got).ok_or_else(|| BeldiError::Corrupt {
        what: format!("call record of step {step}"),
        message: "no result".into(),
    })
}

/// A callee's result, or the wait-die death it reports.
fn unless_died(txn: Option<&Arc<TxnState>>, result: AttrValue) -> Result<AttrValue, BeldiError> {
    match Outcome::death(&result) {
        Some(reason) => Err(BeldiError::TxnAborted {
            txn: txn.map(|t| t.ctx.id.clone()).unwrap_or_default(),
            reason: reason.to_owned(),
            wait_die: true,
        }),
        None => Ok(result),
    }
}

/// A logged async spawn of `function` with `input` at `step`; the callee's instance id once
/// its intent is durable. The callee's intent is created first (put-if-absent, so a
/// re-execution that spawns again starts nothing), then the record of the spawn is
/// deferred to this execution's next durable effect ([`crate::deferred`]): a record in
/// the log means the callee exists, and a replay that finds it starts nothing.
pub(crate) async fn spawn(
    e: &Engine,
    step: u64,
    function: &str,
    input: AttrValue,
) -> Result<String, BeldiError> {
    e.platform.tables(function)?;
    let callee = e.callee_id(step);
    if let Some(rec) = e.prefetched(step) {
        e.check_log(step, rec, StepKind::Spawn, function)?;
        return Ok(callee);
    }
    let inv = invocation(e, step, (function, &callee), input, true, None);
    e.platform.start(inv).await?;
    e.maybe_crash(CrashPoint::Inside(step)).await;
    let rec = call_record(StepKind::Spawn, function, &callee);
    e.defer_step(step, StepKind::Spawn, function, rec.value)?;
    Ok(callee)
}
