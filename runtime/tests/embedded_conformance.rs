//! The store conformance suite on the embedded backend.

mod conformance;

use std::sync::Arc;

use beldi_runtime::embedded::EmbeddedStore;
use conformance::Fixture;

async fn fixture(_test: &str) -> Option<Fixture> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = EmbeddedStore::open(dir.path()).expect("open embedded store");
    Some(Fixture {
        store: Arc::new(store),
        prefix: "t_".into(),
        _guard: Some(Box::new(dir)),
    })
}

conformance_suite!(fixture);
