//! Invocations between functions: what the caller logs, and how callee instance ids are made.
//!
//! A **sync call** at step s of instance A: (1) put-if-absent A's log record `(A, s)` =
//! `call` of the callee function, with the callee's instance id; (2) run the callee, which
//! creates its own intent, runs, and stores its result in its own intent record; (3) add the
//! result to A's record. A re-execution of A finds the result in (1) and does not invoke
//! again; if A crashed between (2) and (3), it invokes again with the same callee id and the
//! callee returns its stored result. A crash of the callee fails A's step, and so A, up to
//! the root, whose re-execution re-drives the chain with the same ids.
//!
//! An **async call** (spawn): (1) as above with `spawn`; (2) the callee's runtime creates the
//! callee's intent (put-if-absent, exactly once) and runs it in the background. The caller
//! waits only for the intent to be durable, so the callee's intent collector is a sufficient
//! backstop. (The prototype had the caller write the callee's intent table directly.)
//!
//! No function writes another function's tables: the caller writes only its own log; the
//! callee only its own intent.
//!
//! Callee ids are UUIDs derived (v5) from the caller's function, instance and step
//! ([`crate::schema::callee_id`]): stable across the caller's re-executions without a round
//! trip to learn them.

use std::collections::BTreeMap;

use crate::schema::names::{CALL_RESULT, CALLEE};
use crate::schema::{LogRecord, StepKind};
use crate::store::AttrValue;

/// The caller's log record of a call or spawn.
pub(crate) fn call_record(kind: StepKind, function: &str, callee: &str) -> LogRecord {
    let mut m = BTreeMap::new();
    m.insert(CALLEE.to_owned(), AttrValue::S(callee.to_owned()));
    LogRecord::new(kind, function, Some(AttrValue::M(m)))
}

/// The result logged in a call record, if any.
pub fn logged_result(rec: &LogRecord) -> Option<AttrValue> {
    rec.field(CALL_RESULT).cloned()
}
