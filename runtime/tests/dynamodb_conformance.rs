//! The store conformance suite on DynamoDB (DynamoDB Local in tests): the same tests as
//! `embedded_conformance.rs`. Needs `BELDI_DYNAMODB_ENDPOINT` (set by `scripts/test.sh`);
//! without it the tests fail under `CI=true` and are skipped, loudly, elsewhere.
#![cfg(feature = "dynamodb")]

mod conformance;

use std::sync::Arc;
use std::sync::OnceLock;

use beldi_runtime::dynamodb::DynamoDbStore;
use conformance::Fixture;

/// A prefix unique to this test run, so runs against one DynamoDB Local never collide.
fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        format!(
            "r{}",
            uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .get(..10)
                .unwrap_or("0")
        )
    })
}

async fn fixture(test: &str) -> Option<Fixture> {
    let endpoint = beldi_runtime::dynamodb::test_endpoint()?;
    let store = DynamoDbStore::local(endpoint).await;
    Some(Fixture {
        store: Arc::new(store),
        prefix: format!("{}_{test}_", run_id()),
        _guard: None,
    })
}

conformance_suite!(fixture);
