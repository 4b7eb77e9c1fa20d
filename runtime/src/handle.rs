//! [`Handle`]: a typed handle on a function, as `#[beldi::function]` generates it.

use crate::crash::FaultPlan;
use crate::ctx::Ctx;
use crate::error::BeldiError;
use crate::platform::Runtime;

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

    /// Invokes the function synchronously from a function body (see [`Ctx::call`]).
    pub fn call(
        &self,
        ctx: &Ctx,
        input: &I,
    ) -> impl std::future::Future<Output = Result<Result<O, E>, BeldiError>> + Send + 'static {
        ctx.call(self.name, input)
    }

    /// Starts the function asynchronously from a function body (see [`Ctx::spawn`]);
    /// returns the callee's instance id.
    pub fn spawn(
        &self,
        ctx: &Ctx,
        input: &I,
    ) -> impl std::future::Future<Output = Result<String, BeldiError>> + Send + 'static {
        ctx.spawn(self.name, input)
    }

    /// Runs the function as a root request with a client-chosen idempotency key; a repeat
    /// with the same key returns the stored result.
    pub async fn invoke(
        &self,
        rt: &Runtime,
        idempotency_key: &str,
        input: &I,
    ) -> Result<Result<O, E>, BeldiError> {
        rt.invoke(self.name, idempotency_key, input).await
    }

    /// [`Handle::invoke`] as one execution under the fault plan `plan` (crash injection,
    /// for tests): `attempt` numbers the execution for the plan's random crashes. A crash
    /// is [`BeldiError::Crashed`]; invoking again with the same key finishes the request.
    pub async fn invoke_with(
        &self,
        rt: &Runtime,
        idempotency_key: &str,
        input: &I,
        plan: FaultPlan,
        attempt: u32,
    ) -> Result<Result<O, E>, BeldiError> {
        rt.invoke_with(self.name, idempotency_key, input, plan, attempt)
            .await
    }
}
