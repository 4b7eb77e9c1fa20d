//! The guarantee-holes suite on DynamoDB (DynamoDB Local in tests): the same tests as
//! `embedded_holes.rs`. Needs `BELDI_DYNAMODB_ENDPOINT` (set by `scripts/test.sh`); without
//! it the tests fail under `CI=true` and are skipped, loudly, elsewhere.
#![cfg(feature = "dynamodb")]

mod holes;
mod protocol;

use protocol::Backend;

async fn backend(test: &str) -> Option<Backend> {
    Backend::dynamodb('h', test).await
}

holes_suite!(backend);
