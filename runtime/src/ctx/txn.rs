//! The transaction capability of [`Ctx`], and the state of a `#[beldi::txn]` block across
//! its attempts (what the generated code drives through [`crate::macro_support`]).

use std::time::Duration;

use super::{Ctx, DataPath};
use crate::error::BeldiError;
use crate::intent::now_ms;
use crate::schema::{Coordinator, Instruction, StepKind, TxnCtx, ids};
use crate::store::AttrValue;
use crate::telemetry;
use crate::txn::{TxnState, died};

/// How a transaction attempt ended (used by the code `#[beldi::txn]` generates).
#[doc(hidden)]
pub enum TxnEnd {
    /// Committed, or aborted because the block returned `Err`: the block's value stands.
    Done,
    /// Died under wait-die and may run again as a new transaction.
    Retry,
    /// Died under wait-die with no retry left, or failed to finish.
    Failed(BeldiError),
}

/// The state of one `#[beldi::txn]` block across its attempts (used by generated code).
#[doc(hidden)]
pub struct TxnBlock {
    at: Ctx,
    retries: u32,
    attempt: u32,
    first_ts: Option<i64>,
    nested: bool,
}

impl TxnBlock {
    /// Begins the next attempt: a logged step; returns the context inside the transaction.
    pub async fn begin(&mut self) -> Result<Ctx, BeldiError> {
        if self.at.baseline() {
            // Baseline mode: the block runs as plain code, with no locks and no rollback.
            let mut c = self.at.clone();
            c.site = None;
            return Ok(c);
        }
        if self.nested {
            return Err(BeldiError::Unsupported {
                operation: "a transaction block".into(),
                context: "inside a transaction (nested transactions)",
            });
        }
        // A retry keeps the first attempt's start time, so it ages and cannot starve.
        let c = self.at.txn_begin(self.first_ts).await?;
        self.first_ts = c.txn().map(|t| t.ctx.ts);
        Ok(c)
    }

    /// Commits (`ok` and not died) or aborts the attempt, as a logged step.
    pub async fn end(&mut self, inside: &Ctx, ok: bool) -> TxnEnd {
        if inside.baseline() {
            return TxnEnd::Done;
        }
        let Some(state) = inside.txn().cloned() else {
            return TxnEnd::Failed(BeldiError::Unsupported {
                operation: "ending a transaction block".into(),
                context: "on a context outside a transaction",
            });
        };
        // Every participant call must have settled before the decision, also one whose
        // future the body dropped (`try_join!` after another call failed, say): a callee
        // still running could take locks after an abort released them, or buffer writes a
        // commit would miss.
        if let Some(e) = state.settle().await {
            return TxnEnd::Failed(e);
        }
        // An execution that already failed (a crash of a participant, a store error) will be
        // re-executed: it must not decide the transaction's fate now.
        if let Some(e) = inside.engine.failed() {
            return TxnEnd::Failed(e);
        }
        let death = state.died();
        if let Err(e) = self.at.txn_end(&state.ctx, ok && death.is_none()).await {
            return TxnEnd::Failed(e);
        }
        match death {
            None => TxnEnd::Done,
            Some(_) if self.attempt < self.retries => {
                self.attempt += 1;
                // Back off before the next attempt: the older holder needs time to finish.
                // Not for a death replayed from the log: the execution that met it backed
                // off already, and a replay of many deaths must not spend its timeout
                // sleeping them again.
                if !state.death_replayed() {
                    let ms = 2u64 << self.attempt.min(5);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                TxnEnd::Retry
            }
            Some(why) => TxnEnd::Failed(died(&state.ctx, why)),
        }
    }
}

/// `Result::is_ok`, as a function so generated code does not need the type spelled out.
#[doc(hidden)]
pub fn __is_ok<T, E>(r: &Result<T, E>) -> bool {
    r.is_ok()
}

impl Ctx {
    /// An explicit abort: the error to return from a `#[beldi::txn]` block to abort its
    /// transaction (`return Err(ctx.abort("sold out").into())`). Returning any `Err` from the
    /// block aborts too; this one says why in the transaction's terms.
    pub fn abort(&self, reason: &str) -> BeldiError {
        BeldiError::TxnAborted {
            txn: self.txn().map(|t| t.ctx.id.clone()).unwrap_or_default(),
            reason: reason.to_owned(),
            wait_die: false,
        }
    }

    /// Starts a `#[beldi::txn]` block at call site `site` (used by generated code).
    #[doc(hidden)]
    pub fn __txn_block(&self, site: u32, retries: u32) -> TxnBlock {
        TxnBlock {
            at: self.__site(site),
            retries,
            attempt: 0,
            first_ts: None,
            nested: self.in_transaction(),
        }
    }

    /// Begins a transaction at this context's next step: its id derived from the instance
    /// and step, its start time logged.
    async fn txn_begin(&self, ts: Option<i64>) -> Result<Ctx, BeldiError> {
        let step = self.alloc();
        let e = &*self.engine;
        let span = telemetry::step_span(step, StepKind::TxnBegin, format_args!(""));
        let ts = self
            .step(step, false, span, async {
                e.note(step, StepKind::TxnBegin);
                let now = AttrValue::from(ts.unwrap_or_else(now_ms));
                // Deferred: the first lock the transaction takes makes it durable (nothing
                // durable depends on a start time before that).
                let got = e.defer_step(step, StepKind::TxnBegin, "", Some(now))?;
                got.value
                    .as_ref()
                    .and_then(AttrValue::as_i64)
                    .ok_or_else(|| BeldiError::Corrupt {
                        what: format!("transaction start of step {step}"),
                        message: "no start time".into(),
                    })
            })
            .await?;
        let state = TxnState::coordinator(TxnCtx {
            id: ids::txn_id(self.function(), &e.instance, step),
            ts,
            instruction: Instruction::Execute,
            coordinator: Some(Coordinator {
                function: self.function().to_owned(),
                instance: e.instance.clone(),
            }),
        });
        Ok(Ctx::new(self.engine.clone(), DataPath::Txn(state)))
    }

    /// Commits or aborts, as a logged step of this context: the coordinator's end of a
    /// transaction block, and the procedure a participant runs when asked to commit or abort.
    pub(crate) async fn txn_end(&self, txn: &TxnCtx, commit: bool) -> Result<(), BeldiError> {
        let kind = if commit {
            StepKind::Commit
        } else {
            StepKind::Abort
        };
        let step = self.alloc();
        let e = &*self.engine;
        let span = telemetry::step_span(step, kind, format_args!("{}", txn.id));
        // The decision is logged (with the finish, when it can be: [`crate::txn::end`]): a
        // replay that reaches this step decides the same.
        self.step(step, false, span, async move {
            e.note(step, kind);
            crate::txn::end(e, txn, step, commit).await
        })
        .await
    }
}
