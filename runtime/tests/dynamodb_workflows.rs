//! The workflow suite on DynamoDB (DynamoDB Local in tests): the same tests as
//! `embedded_workflows.rs`. Needs `BELDI_DYNAMODB_ENDPOINT` (set by `scripts/test.sh`);
//! without it the tests fail under `CI=true` and are skipped, loudly, elsewhere.
#![cfg(feature = "dynamodb")]

mod protocol;
mod workflows;

use protocol::Backend;

async fn backend(test: &str) -> Option<Backend> {
    Backend::dynamodb('w', test).await
}

workflow_suite!(backend);
