//! The workflow suite on DynamoDB (DynamoDB Local in tests): the same tests as
//! `embedded_workflows.rs`. Needs `BELDI_DYNAMODB_ENDPOINT` (set by `scripts/test.sh`);
//! without it the tests fail under `CI=true` and are skipped, loudly, elsewhere.
#![cfg(feature = "dynamodb")]

mod protocol;
mod workflows;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use beldi_runtime::dynamodb::DynamoDbStore;
use protocol::Backend;

async fn backend(test: &str) -> Option<Backend> {
    let endpoint = match std::env::var("BELDI_DYNAMODB_ENDPOINT") {
        Ok(e) if !e.is_empty() => e,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "BELDI_DYNAMODB_ENDPOINT is not set under CI=true: run the tests with scripts/test.sh"
            )
        }
        _ => {
            eprintln!(
                "SKIPPED: BELDI_DYNAMODB_ENDPOINT is not set; run scripts/test.sh to test against DynamoDB Local"
            );
            return None;
        }
    };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let short: String = test
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect();
    Some(Backend::Shared {
        store: Arc::new(DynamoDbStore::local(endpoint).await),
        prefix: format!("w{}{short}", &run[..8]),
        counter: AtomicUsize::new(0),
    })
}

workflow_suite!(backend);
