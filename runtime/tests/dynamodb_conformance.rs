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

pub fn endpoint() -> Option<String> {
    match std::env::var("BELDI_DYNAMODB_ENDPOINT") {
        Ok(e) if !e.is_empty() => Some(e),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "BELDI_DYNAMODB_ENDPOINT is not set under CI=true: run the tests with scripts/test.sh"
            )
        }
        _ => {
            eprintln!(
                "SKIPPED: BELDI_DYNAMODB_ENDPOINT is not set; run scripts/test.sh to test against DynamoDB Local"
            );
            None
        }
    }
}

async fn fixture(test: &str) -> Option<Fixture> {
    let endpoint = endpoint()?;
    let store = DynamoDbStore::local(endpoint).await;
    Some(Fixture {
        store: Arc::new(store),
        prefix: format!("{}_{test}_", run_id()),
        _guard: None,
    })
}

conformance_suite!(fixture);
