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
//! Callee ids are UUIDs derived (v5) from the caller's function, instance and step: stable
//! across the caller's re-executions without a round trip to learn them.

use std::collections::BTreeMap;

use crate::log::{CALL_RESULT, LogRecord};
use crate::store::AttrValue;

/// The instance id of the callee of `function`'s instance `instance` at `step`.
pub fn callee_id(function: &str, instance: &str, step: u64) -> String {
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x6265_6c64_6921_4c6f_6761_6c6c_6564_2121);
    uuid::Uuid::new_v5(
        &NAMESPACE,
        format!("{function}\u{0}{instance}\u{0}{step}").as_bytes(),
    )
    .to_string()
}

/// The caller's log record of a call or spawn.
pub(crate) fn call_record(kind: &str, function: &str, callee: &str) -> LogRecord {
    let mut m = BTreeMap::new();
    m.insert("callee".to_owned(), AttrValue::S(callee.to_owned()));
    LogRecord {
        kind: kind.to_owned(),
        target: function.to_owned(),
        value: Some(AttrValue::M(m)),
    }
}

/// The result logged in a call record, if any.
pub fn logged_result(rec: &LogRecord) -> Option<AttrValue> {
    rec.value.as_ref()?.as_m()?.get(CALL_RESULT).cloned()
}

/// The types a [`Handle`] carries (input by reference; output and error by value).
type HandleTypes<I, O, E> = fn(&I) -> (O, E);

/// A typed handle on a function, as `#[beldi::function]` generates it: invoke the function
/// without strings and with checked input and output types.
pub struct Handle<I: ?Sized, O, E> {
    name: &'static str,
    _types: std::marker::PhantomData<HandleTypes<I, O, E>>,
}

impl<I: ?Sized, O, E> Clone for Handle<I, O, E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<I: ?Sized, O, E> Copy for Handle<I, O, E> {}

impl<I, O, E> Handle<I, O, E>
where
    I: serde::Serialize + ?Sized,
    O: serde::de::DeserializeOwned,
    E: serde::de::DeserializeOwned,
{
    /// The handle of the function registered as `name`.
    pub const fn new(name: &'static str) -> Self {
        Handle {
            name,
            _types: std::marker::PhantomData,
        }
    }

    /// The function's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Invokes the function synchronously from a function body (see [`crate::Ctx::call`]).
    pub fn call(
        &self,
        ctx: &crate::Ctx,
        input: &I,
    ) -> impl std::future::Future<Output = Result<Result<O, E>, crate::BeldiError>> + Send + 'static
    {
        ctx.call(self.name, input)
    }

    /// Starts the function asynchronously from a function body (see [`crate::Ctx::spawn`]);
    /// returns the callee's instance id.
    pub fn spawn(
        &self,
        ctx: &crate::Ctx,
        input: &I,
    ) -> impl std::future::Future<Output = Result<String, crate::BeldiError>> + Send + 'static {
        ctx.spawn(self.name, input)
    }

    /// Runs the function as a root request with a client-chosen idempotency key; a repeat
    /// with the same key returns the stored result.
    pub async fn invoke(
        &self,
        rt: &crate::Runtime,
        idempotency_key: &str,
        input: &I,
    ) -> Result<Result<O, E>, crate::BeldiError> {
        rt.invoke(self.name, idempotency_key, input).await
    }
}
