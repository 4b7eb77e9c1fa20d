//! Invocations between functions: what the caller logs, and how callee instance ids are made.
//!
//! A **sync call** at step s of instance A (outside a transaction): (1) make A's deferred
//! log records durable ([`crate::deferred`]: the callee's input may depend on them); (2) run
//! the callee under its derived id: it runs, and stores its result in its intent record;
//! (3) defer A's record `(A, s)` = `call` of the callee function, with the callee's id and
//! result, to A's next durable effect. Nothing is logged before the callee runs: a
//! re-execution of A that finds the record returns its result; one that does not (A
//! crashed before the record was durable) invokes again with the same callee id, and the
//! callee returns its stored result. A crash of the callee fails A's step, and so A, up to
//! the root, whose re-execution re-drives the chain with the same ids. (The garbage
//! collector keeps a sync callee until its caller's record of the call is logged or the
//! caller is done: see [`crate::gc`].) Inside a transaction the record is logged before the
//! call and the result added to it after, as before, so the coordinator knows its
//! participants.
//!
//! The callee's intent: a call from a *first* execution of A (one that created A's intent;
//! [`crate::invocation::Invocation::fresh`]) names a callee instance that exists only if a
//! duplicate of A made it, so the callee does not create its intent before it runs: the
//! intent's put-if-absent rides with the callee's first durable effect, or is the finished
//! intent when it has none (a call of a callee without effects is one round trip). If the
//! instance existed after all, that put fails before any effect of this execution escapes
//! and the callee runs again the usual way ([`crate::deferred`]). A call from a
//! re-execution of A reads (creates if absent) the callee's intent first, so a callee that
//! finished returns its stored result without running.
//!
//! An **async call** (spawn): (1) as above; (2) the callee's runtime creates the callee's
//! intent (put-if-absent, exactly once) and runs it in the background; (3) A's record of the
//! spawn is deferred to A's next durable effect. The caller waits only for the intent to be
//! durable, so the callee's intent collector is a sufficient backstop. A re-execution of A
//! that does not find the record spawns again, finds the intent and starts nothing (the
//! garbage collector keeps an async callee until its caller is done: see [`crate::gc`]).
//! (The prototype had the caller write the callee's intent table directly.)
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
