//! Commit and abort: a function's part of a transaction finished exactly once, and
//! propagated to its participants.
//!
//! Commit: per written key, one logged DAAL write applies the buffered value and releases
//! the lock atomically; every other lock is released. Abort releases every lock (read locks
//! too). Then every participant is invoked with the same instruction, which does the same
//! in its own tables, recursively. Each DAAL write is an entry of the logged step the
//! decision was taken under, so a crash anywhere is finished by a re-execution.

use std::collections::HashSet;

use super::TxnCtx;
use super::shadow;
use crate::daal::{Daal, Entry};
use crate::engine::Engine;
use crate::error::BeldiError;
use crate::invocation::Invocation;
use crate::schema::names::{HOLDER, HOLDER_COORDINATOR, HOLDER_TS, VALUE};
use crate::schema::{CallerRef, Instruction, ShadowEntry, ids};
use crate::store::{AttrValue, Condition, Path, UpdateAction};

/// Finishes the function's part of a transaction (commit or abort) and propagates it to its
/// participants. `step` is the logged step this is done under.
pub(crate) async fn finish(
    e: &Engine,
    txn: &TxnCtx,
    step: u64,
    commit: bool,
) -> Result<(), BeldiError> {
    let entries = shadow::entries(e, txn).await?;
    let release = [
        UpdateAction::remove(HOLDER),
        UpdateAction::remove(HOLDER_TS),
        UpdateAction::remove(HOLDER_COORDINATOR),
    ];
    let mine = Condition::eq(HOLDER, txn.id.as_str());
    let written: HashSet<(&str, &str)> = entries
        .iter()
        .filter_map(|(entry, _)| match entry {
            ShadowEntry::Write { table, key } => Some((table.as_str(), key.as_str())),
            _ => None,
        })
        .collect();
    let mut participants = Vec::new();
    for (entry, item) in &entries {
        let (table, key, actions) = match (entry, commit) {
            (ShadowEntry::Participant { function }, _) => {
                participants.push(function.as_str());
                continue;
            }
            // Commit: apply the buffered value and release the lock, atomically.
            (ShadowEntry::Write { table, key }, true) => {
                let mut actions: Vec<UpdateAction> = release.to_vec();
                actions.push(match item.get(VALUE) {
                    Some(v) => UpdateAction::Set(Path::attr(VALUE), v.clone()),
                    None => UpdateAction::remove(VALUE),
                });
                (table, key, actions)
            }
            // A written key's lock goes with its write (commit) or its lock entry (abort).
            (ShadowEntry::Lock { table, key }, true)
                if written.contains(&(table.as_str(), key.as_str())) =>
            {
                continue;
            }
            (ShadowEntry::Write { .. }, false) | (ShadowEntry::Finished, _) => continue,
            // Every other lock, read locks included, is released.
            (ShadowEntry::Lock { table, key }, _) => (table, key, release.to_vec()),
        };
        let cid = ids::finish_entry_id(&e.instance, step, commit, table, key);
        Daal::new(&*e.store, &e.tables.data(table)?, e.row_capacity)
            .write(key, &cid, Entry::CondWrite(true), &actions, Some(&mine))
            .await?;
    }
    let instruction = if commit {
        Instruction::Commit
    } else {
        Instruction::Abort
    };
    for function in participants {
        let inv = Invocation {
            function: function.to_owned(),
            instance: ids::finish_id(e.function(), function, &e.instance, step),
            input: AttrValue::S(format!("{instruction:?} {}", txn.id)),
            caller: Some(CallerRef {
                function: e.function().to_owned(),
                instance: e.instance.clone(),
                step,
                is_async: false,
            }),
            txn: Some(txn.with(instruction)),
            plan: e.plan.clone(),
            attempt: e.attempt,
            trace: Some(crate::telemetry::outgoing(&e.trace)),
        };
        e.platform.call(inv).await?;
    }
    // This function's part is finished: say so (with when), so the garbage collector can
    // remove whatever a lagging copy of a participant buffers after this point.
    shadow::finish_marker(e, txn, crate::intent::now_ms()).await?;
    // The shadow entries are no longer needed (deleting them is idempotent).
    shadow::remove(e, txn, &entries).await
}
