//! The AWS Lambda platform (feature `lambda`): functions run in Lambda, invoke each other
//! through `aws-sdk-lambda`, and keep their state in DynamoDB.
//!
//! - [`LambdaRemote`] is the [`Remote`] a runtime inside a Lambda (or a client outside one)
//!   sends invocations through: a sync call is a `RequestResponse` invoke, an async spawn a
//!   `RequestResponse` register followed by an `Event` invoke. SDK retries are off: a lost
//!   invocation is re-run by the caller's re-execution or the intent collector, and a retry
//!   would duplicate work on platforms that report function errors as HTTP 500. A function
//!   error is a [`BeldiError::Crashed`].
//! - [`FunctionNames`] maps a registered function to its Lambda function: a prefix (one
//!   Lambda per function, e.g. `travel-prod-hotel`) or one Lambda hosting them all.
//! - [`serve`] is the Lambda entry point: it answers each invocation with
//!   [`remote::handle`], so one binary may host several functions, and the intent
//!   collector and GC (envelopes `{"beldi":"ic"}` and `{"beldi":"gc"}`, meant to be
//!   triggered on a schedule).
//! - [`runtime_from_env`] builds a runtime from the environment a deployment sets.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;

use crate::dynamodb::{DynamoDbConfig, DynamoDbStore, LOCAL_ACCESS_KEY, LOCAL_REGION};
use crate::error::BeldiError;
use crate::platform::{Runtime, RuntimeConfig};
use crate::remote::{Envelope, Remote, Reply};
use crate::store::AttrValue;

/// How registered functions map to Lambda function names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FunctionNames {
    /// One Lambda per function, named `prefix` + the function's name.
    Prefix(String),
    /// One Lambda, of this name, hosting every function.
    Single(String),
}

impl FunctionNames {
    /// The Lambda function that hosts registered function `function`.
    pub fn lambda_name(&self, function: &str) -> String {
        match self {
            FunctionNames::Prefix(p) => format!("{p}{function}"),
            FunctionNames::Single(name) => name.clone(),
        }
    }

    /// Parses `prefix:<p>` or `single:<name>` (the form of `BELDI_FUNCTION_NAMES`).
    pub fn parse(spec: &str) -> Result<FunctionNames, BeldiError> {
        let bad = |message: &str| BeldiError::InvalidConfig {
            setting: "function name mapping",
            value: spec.to_owned(),
            message: message.to_owned(),
        };
        match spec.split_once(':') {
            Some(("prefix", p)) => Ok(FunctionNames::Prefix(p.to_owned())),
            Some(("single", n)) if !n.is_empty() => Ok(FunctionNames::Single(n.to_owned())),
            Some(("single", _)) => Err(bad("`single:` needs the Lambda function's name")),
            _ => Err(bad("expected `prefix:<prefix>` or `single:<lambda name>`")),
        }
    }
}

/// How to reach Lambda.
#[derive(Clone, Debug)]
pub struct LambdaConfig {
    /// Endpoint URL (e.g. `cargo lambda watch`'s `http://127.0.0.1:9000`); `None`: AWS's.
    /// With an endpoint, the project's fixed local credentials and region are used.
    pub endpoint: Option<String>,
    /// Function name mapping.
    pub names: FunctionNames,
    /// Give up on a sync invocation after this long (it counts as lost: a crash). Set it
    /// above the callee's timeout. Some emulators never answer an invocation whose function
    /// process died; this is what turns that into a crash the caller can recover from.
    pub invoke_timeout: std::time::Duration,
}

/// Invocations through `aws-sdk-lambda`.
pub struct LambdaRemote {
    client: aws_sdk_lambda::Client,
    names: FunctionNames,
}

impl LambdaRemote {
    /// A client for `cfg`, with SDK retries disabled.
    pub async fn connect(cfg: LambdaConfig) -> LambdaRemote {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_timeout(cfg.invoke_timeout)
            .build();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .timeout_config(timeouts);
        if let Some(e) = &cfg.endpoint {
            loader = loader
                .endpoint_url(e)
                .region(aws_config::Region::new(LOCAL_REGION))
                .credentials_provider(aws_sdk_lambda::config::Credentials::new(
                    LOCAL_ACCESS_KEY,
                    LOCAL_ACCESS_KEY,
                    None,
                    None,
                    "beldi-local",
                ));
        }
        let shared = loader.load().await;
        LambdaRemote {
            client: aws_sdk_lambda::Client::new(&shared),
            names: cfg.names,
        }
    }

    /// Runs root request `instance` of `function` with `input` and returns its stored
    /// result (`{"ok": v}` or `{"err": e}`; decode it with
    /// [`crate::platform::decode_result`]). Sending the same instance again returns the
    /// same result.
    pub async fn invoke_root(
        &self,
        function: &str,
        instance: &str,
        input: AttrValue,
    ) -> Result<AttrValue, BeldiError> {
        let envelope = Envelope::Run {
            function: function.to_owned(),
            instance: instance.to_owned(),
            input,
            caller: None,
            txn: None,
            sent_at_ms: None,
            traceparent: crate::telemetry::current(),
            fresh: false,
        };
        self.send(&envelope).await?.into_result(function)
    }

    /// Sends any JSON payload to the Lambda hosting `function` and returns the raw reply
    /// (for tools and tests).
    pub async fn send_raw(
        &self,
        function: &str,
        payload: &serde_json::Value,
    ) -> Result<serde_json::Value, BeldiError> {
        let bytes = self.invoke(function, payload, true).await?;
        serde_json::from_slice(&bytes).map_err(|e| BeldiError::Remote {
            function: function.to_owned(),
            message: format!("the reply is not JSON: {e}"),
        })
    }

    /// One invocation; returns the reply payload (empty for `Event`).
    async fn invoke(
        &self,
        function: &str,
        payload: &serde_json::Value,
        sync: bool,
    ) -> Result<Vec<u8>, BeldiError> {
        let lambda = self.names.lambda_name(function);
        let lost = |reason: String| BeldiError::Crashed {
            function: function.to_owned(),
            instance: payload
                .get("instance")
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_owned(),
            reason,
        };
        let body = serde_json::to_vec(payload).map_err(|e| BeldiError::Serialization {
            what: format!("envelope for `{function}`"),
            message: e.to_string(),
        })?;
        let kind = if sync {
            InvocationType::RequestResponse
        } else {
            InvocationType::Event
        };
        let out = self
            .client
            .invoke()
            .function_name(&lambda)
            .invocation_type(kind)
            .payload(Blob::new(body))
            .send()
            .await
            .map_err(|e| {
                lost(format!(
                    "invocation of Lambda `{lambda}` failed: {}",
                    aws_sdk_lambda::error::DisplayErrorContext(&e)
                ))
            })?;
        let reply = out
            .payload()
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default();
        if let Some(kind) = out.function_error() {
            return Err(lost(format!(
                "Lambda `{lambda}` reported a function error ({kind}): {}",
                String::from_utf8_lossy(&reply)
            )));
        }
        Ok(reply)
    }
}

#[async_trait]
impl Remote for LambdaRemote {
    async fn send(&self, envelope: &Envelope) -> Result<Reply, BeldiError> {
        let function = envelope.function().unwrap_or("beldi-collector");
        let payload = envelope_json(envelope)?;
        let bytes = self.invoke(function, &payload, true).await?;
        serde_json::from_slice(&bytes).map_err(|e| BeldiError::Remote {
            function: function.to_owned(),
            message: format!(
                "the reply is not a beldi reply ({e}): {}",
                String::from_utf8_lossy(&bytes)
            ),
        })
    }

    async fn post(&self, envelope: &Envelope) -> Result<(), BeldiError> {
        let function = envelope.function().unwrap_or("beldi-collector");
        self.invoke(function, &envelope_json(envelope)?, false)
            .await
            .map(|_| ())
    }
}

fn envelope_json(envelope: &Envelope) -> Result<serde_json::Value, BeldiError> {
    serde_json::to_value(envelope).map_err(|e| BeldiError::Serialization {
        what: "envelope".into(),
        message: e.to_string(),
    })
}

/// The Lambda entry point: answers every invocation with [`remote::handle`] on `rt` (which
/// should have its functions registered and, to invoke others, a [`LambdaRemote`]). Never
/// fails an invocation for bad input: that is a structured error reply.
pub async fn serve(rt: Runtime) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| {
            let rt = rt.clone();
            async move {
                let reply = rt.host(event.payload).await;
                serde_json::to_value(&reply).map_err(lambda_runtime::Error::from)
            }
        },
    ))
    .await
}

/// Environment variables [`runtime_from_env`] reads.
pub mod env {
    /// DynamoDB endpoint URL (DynamoDB Local); unset: AWS's, from the usual AWS settings.
    pub const DYNAMODB_ENDPOINT: &str = "BELDI_DYNAMODB_ENDPOINT";
    /// Lambda endpoint URL (`cargo lambda watch`); unset: AWS's.
    pub const LAMBDA_ENDPOINT: &str = "BELDI_LAMBDA_ENDPOINT";
    /// Table name prefix.
    pub const NAMESPACE: &str = "BELDI_NAMESPACE";
    /// `prefix:<prefix>` or `single:<lambda name>` (default `prefix:`).
    pub const FUNCTION_NAMES: &str = "BELDI_FUNCTION_NAMES";
    /// Execution timeout of the hosted functions, in seconds (default 60); sync invocations
    /// they make give up 5 seconds after it.
    pub const TIMEOUT_SECS: &str = "BELDI_TIMEOUT_SECS";
}

/// A runtime as a deployment configures it through [`env`]: DynamoDB store, namespace, and a
/// [`LambdaRemote`] for the invocations it makes. Register the hosted functions on it, then
/// hand it to [`serve`].
pub async fn runtime_from_env() -> Result<Runtime, BeldiError> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let store = match var(env::DYNAMODB_ENDPOINT) {
        Some(e) => DynamoDbStore::connect(DynamoDbConfig::local(e)).await,
        None => DynamoDbStore::connect(DynamoDbConfig::default()).await,
    };
    let names = FunctionNames::parse(&var(env::FUNCTION_NAMES).unwrap_or("prefix:".into()))?;
    let timeout = match var(env::TIMEOUT_SECS) {
        None => 60,
        Some(t) => t.parse::<u64>().map_err(|e| BeldiError::InvalidConfig {
            setting: env::TIMEOUT_SECS,
            value: t.clone(),
            message: format!("not a number of seconds: {e}"),
        })?,
    };
    let config = RuntimeConfig {
        namespace: var(env::NAMESPACE).unwrap_or_default(),
        timeout: std::time::Duration::from_secs(timeout),
        ..Default::default()
    };
    let rt = Runtime::with_config(Arc::new(store), config)?;
    let remote = LambdaRemote::connect(LambdaConfig {
        endpoint: var(env::LAMBDA_ENDPOINT),
        names,
        invoke_timeout: std::time::Duration::from_secs(timeout + 5),
    })
    .await;
    rt.set_remote(Arc::new(remote));
    Ok(rt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_names_parse_and_map() {
        let p = FunctionNames::parse("prefix:travel-prod-").unwrap();
        assert_eq!(p.lambda_name("hotel"), "travel-prod-hotel");
        let s = FunctionNames::parse("single:beldi-lambda").unwrap();
        assert_eq!(s.lambda_name("hotel"), "beldi-lambda");
        for bad in ["single:", "hotel", "other:x"] {
            let e = FunctionNames::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
