//! The functions the benchmarks run, written with the macros like any user function: one
//! logged operation per instance (so an instance's cost minus an empty instance's is the
//! operation's), a hot-key writer, and a two-participant transaction.

use beldi::prelude::*;
use serde::{Deserialize, Serialize};

/// The operation an instance of [`bench_op`] makes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// Nothing: the cost of an instance itself.
    Empty,
    /// `read`.
    Read,
    /// `write`.
    Write,
    /// `cond_write` whose condition holds.
    CondWriteTrue,
    /// `cond_write` whose condition fails.
    CondWriteFalse,
    /// `scan` of a table of ten keys.
    Scan,
    /// A sync call of a function that does nothing.
    SyncInvoke,
    /// An async spawn of a function that does nothing.
    AsyncInvoke,
    /// A transaction writing two keys.
    Txn2Writes,
    /// A transaction writing one key here and one in a participant function.
    Txn2Functions,
}

impl OpKind {
    /// Every measured operation, in report order.
    pub const MEASURED: [OpKind; 9] = [
        OpKind::Read,
        OpKind::Write,
        OpKind::CondWriteTrue,
        OpKind::CondWriteFalse,
        OpKind::Scan,
        OpKind::SyncInvoke,
        OpKind::AsyncInvoke,
        OpKind::Txn2Writes,
        OpKind::Txn2Functions,
    ];
    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Empty => "empty instance",
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::CondWriteTrue => "cond_write (true)",
            OpKind::CondWriteFalse => "cond_write (false)",
            OpKind::Scan => "scan (10 keys)",
            OpKind::SyncInvoke => "sync invoke",
            OpKind::AsyncInvoke => "async invoke",
            OpKind::Txn2Writes => "txn of 2 writes",
            OpKind::Txn2Functions => "2-function txn",
        }
    }
    /// The prototype's storage round trips, counted from its code (the paper's reference
    /// notes), beyond the instance's own two intent writes.
    pub fn prototype(self) -> &'static str {
        match self {
            OpKind::Empty => "2 (intent writes)",
            OpKind::Read => "3",
            OpKind::Write => "2",
            OpKind::CondWriteTrue => "2",
            OpKind::CondWriteFalse => "3",
            OpKind::Scan => "1 + pages",
            OpKind::SyncInvoke => "1 + ~4 writes (callee intent, done, result)",
            OpKind::AsyncInvoke => "3 writes before firing",
            OpKind::Txn2Writes | OpKind::Txn2Functions => "not counted",
        }
    }
}

/// What one [`bench_op`] instance does, on which keys.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OpReq {
    /// The operation.
    pub kind: OpKind,
    /// Its key (the second key of a transaction is `key` + `-b`).
    pub key: String,
}

/// One logged operation per instance.
#[beldi::function(tables = ["t"])]
pub async fn bench_op(ctx: &Ctx, op: OpReq) -> Result<(), UserError> {
    let one = || vec![UpdateAction::set(Path::root(), 1)];
    match op.kind {
        OpKind::Empty => {}
        OpKind::Read => {
            ctx.read("t", &op.key).await?;
        }
        OpKind::Write => {
            ctx.write_as("t", &op.key, &1).await?;
        }
        OpKind::CondWriteTrue => {
            let cond = Condition::not_exists(Path::attr("never"));
            ctx.cond_write("t", &op.key, one(), cond).await?;
        }
        OpKind::CondWriteFalse => {
            let cond = Condition::exists(Path::attr("never"));
            ctx.cond_write("t", &op.key, one(), cond).await?;
        }
        OpKind::Scan => {
            ctx.scan("t").await?;
        }
        OpKind::SyncInvoke => {
            bench_noop.call(ctx, &()).await??;
        }
        OpKind::AsyncInvoke => {
            bench_noop.spawn(ctx, &()).await?;
        }
        OpKind::Txn2Writes => {
            let second = format!("{}-b", op.key);
            let done: Result<(), UserError> = #[beldi::txn]
            {
                ctx.write_as("t", &op.key, &1).await?;
                ctx.write_as("t", &second, &1).await?;
                Ok(())
            };
            done?;
        }
        OpKind::Txn2Functions => {
            let second = format!("{}-b", op.key);
            let done: Result<(), UserError> = #[beldi::txn]
            {
                ctx.write_as("t", &op.key, &1).await?;
                bench_part.call(ctx, &second).await??;
                Ok(())
            };
            done?;
        }
    }
    Ok(())
}

/// Writes `key` of its own table (the participant of the two-function transaction).
#[beldi::function(tables = ["t"])]
pub async fn bench_part(ctx: &Ctx, key: String) -> Result<(), UserError> {
    ctx.write_as("t", &key, &1).await?;
    Ok(())
}

/// Does nothing (the callee of the invoke benchmarks).
#[beldi::function]
pub async fn bench_noop(_ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    Ok(())
}

/// Adds one to a hot key (the GC experiment's writer).
#[beldi::function(tables = ["hot"])]
pub async fn bench_hot(ctx: &Ctx, key: String) -> Result<(), UserError> {
    ctx.update("hot", &key, vec![UpdateAction::add(Path::root(), 1)])
        .await?;
    Ok(())
}

/// Books one room of `hotel` (a transaction participant; rooms are unlimited, so every
/// abort is a conflict).
#[beldi::function(tables = ["rooms"])]
pub async fn bench_room(ctx: &Ctx, hotel: String) -> Result<(), UserError> {
    let n: i64 = ctx.read_as("rooms", &hotel).await?.unwrap_or(0);
    ctx.write_as("rooms", &hotel, &(n + 1)).await?;
    Ok(())
}

/// Books one seat of `flight` (the other participant).
#[beldi::function(tables = ["seats"])]
pub async fn bench_seat(ctx: &Ctx, flight: String) -> Result<(), UserError> {
    let n: i64 = ctx.read_as("seats", &flight).await?.unwrap_or(0);
    ctx.write_as("seats", &flight, &(n + 1)).await?;
    Ok(())
}

/// How a reservation attempt ended.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Committed.
    Committed,
    /// Died under wait-die (no retry).
    Aborted,
}

/// One attempt (no retry) to book a room and a seat in one transaction.
#[beldi::function]
pub async fn bench_reserve(ctx: &Ctx, req: (String, String)) -> Result<TxnOutcome, UserError> {
    let (hotel, flight) = req;
    let done: Result<(), BeldiError> = #[beldi::txn]
    {
        bench_room
            .call(ctx, &hotel)
            .await?
            .map_err(|e| ctx.abort(&e.0))?;
        bench_seat
            .call(ctx, &flight)
            .await?
            .map_err(|e| ctx.abort(&e.0))?;
        Ok(())
    };
    match done {
        Ok(()) => Ok(TxnOutcome::Committed),
        Err(e) if e.is_wait_die() => Ok(TxnOutcome::Aborted),
        Err(e) => Err(e.into()),
    }
}
