//! The counting and fault-injecting store wrappers.

use beldi_runtime::counting::CountingStore;
use beldi_runtime::embedded::EmbeddedStore;
use beldi_runtime::faulty::{FaultConfig, FaultyStore};
use beldi_runtime::store::*;

fn item(pk: &str) -> Item {
    let mut i = Item::new();
    i.insert("pk".into(), pk.into());
    i
}

#[tokio::test]
async fn counting_store_counts_every_round_trip_by_kind() {
    let dir = tempfile::tempdir().unwrap();
    let store = CountingStore::new(EmbeddedStore::open(dir.path()).unwrap());
    store
        .create_table(&TableSpec::new("cnt", "pk"))
        .await
        .unwrap();
    store.put(Put::new("cnt", item("a"))).await.unwrap();
    store
        .put(Put::new("cnt", item("a")).if_absent("pk"))
        .await
        .unwrap_err(); // failed calls count too
    store.get("cnt", &Key::new("a")).await.unwrap();
    store
        .update(Update::new("cnt", Key::new("a")).action(UpdateAction::add("n", 1)))
        .await
        .unwrap();
    let before = store.counts();
    store.query(Query::new("cnt", "a")).await.unwrap();
    store.scan(Scan::new("cnt")).await.unwrap();
    store
        .delete(Delete::new("cnt", Key::new("a")))
        .await
        .unwrap();
    store
        .transact_write(TransactWrite::new().op(TransactOp::Put(Put::new("cnt", item("b")))))
        .await
        .unwrap();
    let c = store.counts();
    assert_eq!(
        [
            OpKind::Get,
            OpKind::Put,
            OpKind::Update,
            OpKind::Delete,
            OpKind::Query,
            OpKind::Scan,
            OpKind::TransactWrite,
            OpKind::Admin
        ]
        .map(|k| c.get(k)),
        [1, 2, 1, 1, 1, 1, 1, 1]
    );
    assert_eq!(c.total_data(), 8);
    assert_eq!(c.writes(), 5);
    let d = c.since(&before);
    assert_eq!(d.total_data(), 4);
    assert_eq!(
        d.to_string(),
        "delete=1 query=1 scan=1 transact_write=1 total=4 read=12B written=4B"
    );
    // Bytes are DynamoDB item sizes: `{pk: "a"}` is 3, `{pk: "a", n: 1}` 6; an update
    // writes its key and its values, a delete its key.
    assert_eq!((c.bytes_read(), c.bytes_written()), (3 + 12, 3 + 3 + 3 + 4));
    store
        .put(
            Put::new("cnt", item("b"))
                .if_absent("pk")
                .return_item_on_failure(),
        )
        .await
        .unwrap_err();
    let failed = store.counts().since(&c);
    assert_eq!(
        (failed.bytes_read(), failed.bytes_written()),
        (3, 3),
        "the item a failed condition returns is read"
    );
    // A projected get counts as a get; batches as their own kinds (a batch write writes).
    let before = store.counts();
    store
        .get_projected("cnt", &Key::new("b"), &[Path::attr("pk")])
        .await
        .unwrap();
    store
        .batch_get(BatchGet::new("cnt", [Key::new("a"), Key::new("b")]))
        .await
        .unwrap();
    store
        .batch_write(BatchWrite::new().delete("cnt", Key::new("b")))
        .await
        .unwrap();
    let d = store.counts().since(&before);
    assert_eq!(
        OpKind::ALL.map(|k| d.get(k)),
        [1, 0, 0, 0, 0, 0, 0, 1, 1, 0]
    );
    assert_eq!((d.total_data(), d.writes()), (3, 1));
    store.reset();
    assert_eq!(store.counts().total_data(), 0);
}

async fn faulty(cfg: FaultConfig) -> (tempfile::TempDir, FaultyStore<EmbeddedStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = FaultyStore::try_new(EmbeddedStore::open(dir.path()).unwrap(), cfg).unwrap();
    store
        .create_table(&TableSpec::new("flt", "pk"))
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn throttled_writes_are_not_applied_and_are_retryable() {
    let (_d, store) = faulty(FaultConfig {
        seed: 1,
        throttle: 0.5,
        ..Default::default()
    })
    .await;
    let mut applied = 0;
    for i in 0..200 {
        match store
            .update(Update::new("flt", Key::new("c")).action(UpdateAction::add("n", 1)))
            .await
        {
            Ok(_) => applied += 1,
            Err(e @ StoreError::Throttled { .. }) => assert!(e.is_retryable()),
            Err(e) => panic!("call {i}: unexpected {e:?}"),
        }
    }
    let n = store
        .inner()
        .get("flt", &Key::new("c"))
        .await
        .unwrap()
        .unwrap()["n"]
        .as_i64()
        .unwrap();
    assert_eq!(
        n, applied,
        "only the calls that were not throttled took effect"
    );
    assert_eq!(store.injected().throttled, 200 - applied as u64);
    assert!(
        (60..140).contains(&applied),
        "about half throttled at rate 0.5, got {applied} applied"
    );
}

#[tokio::test]
async fn lost_responses_are_applied_but_reported_unavailable() {
    let (_d, store) = faulty(FaultConfig {
        seed: 2,
        lost_response: 0.3,
        ..Default::default()
    })
    .await;
    let mut lost = 0;
    for _ in 0..100 {
        match store
            .update(Update::new("flt", Key::new("c")).action(UpdateAction::add("n", 1)))
            .await
        {
            Ok(_) => {}
            Err(e @ StoreError::Unavailable { .. }) => {
                assert!(e.is_retryable());
                lost += 1;
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    let n = store
        .inner()
        .get("flt", &Key::new("c"))
        .await
        .unwrap()
        .unwrap()["n"]
        .as_i64()
        .unwrap();
    assert_eq!(n, 100, "a lost response still applied the write");
    assert!(lost > 0);
    assert_eq!(store.injected().lost_responses, lost);
}

#[tokio::test]
async fn conflicts_cancel_transactions_with_a_conflict_reason() {
    let (_d, store) = faulty(FaultConfig {
        seed: 3,
        conflict: 0.5,
        ..Default::default()
    })
    .await;
    let mut committed = 0;
    let mut conflicts = 0;
    for i in 0..60 {
        let tx = TransactWrite::new()
            .op(TransactOp::Update(
                Update::new("flt", Key::new("a")).action(UpdateAction::add("n", 1)),
            ))
            .op(TransactOp::Update(
                Update::new("flt", Key::new("b")).action(UpdateAction::add("n", 1)),
            ));
        match store.transact_write(tx).await {
            Ok(()) => committed += 1,
            Err(StoreError::TransactionCancelled { reasons }) => {
                assert_eq!(reasons.len(), 2, "call {i}");
                assert_eq!(
                    reasons
                        .iter()
                        .filter(|r| **r == CancellationReason::TransactionConflict)
                        .count(),
                    1
                );
                assert!(StoreError::TransactionCancelled { reasons }.is_retryable());
                conflicts += 1;
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
        match store.put(Put::new("flt", item(&format!("p{i}")))).await {
            Ok(_) => {}
            Err(e @ StoreError::TransactionConflict { .. }) => assert!(e.is_retryable()),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    for k in ["a", "b"] {
        let n = store
            .inner()
            .get("flt", &Key::new(k))
            .await
            .unwrap()
            .unwrap()["n"]
            .as_i64()
            .unwrap();
        assert_eq!(
            n, committed,
            "cancelled transactions applied nothing to {k}"
        );
    }
    assert!(conflicts > 0 && committed > 0);
}

#[tokio::test]
async fn same_seed_same_faults() {
    async fn outcomes(seed: u64) -> Vec<bool> {
        let (_d, store) = faulty(FaultConfig {
            seed,
            throttle: 0.3,
            ..Default::default()
        })
        .await;
        let mut v = Vec::new();
        for _ in 0..50 {
            v.push(store.get("flt", &Key::new("x")).await.is_ok());
        }
        v
    }
    assert_eq!(outcomes(9).await, outcomes(9).await);
    assert_ne!(outcomes(9).await, outcomes(10).await);
}

#[tokio::test]
async fn fault_rates_out_of_range_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let err = FaultyStore::try_new(
        EmbeddedStore::open(dir.path()).unwrap(),
        FaultConfig {
            throttle: 1.5,
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(
        matches!(&err, StoreError::Validation { name, .. } if name == "throttle"),
        "{err:?}"
    );
}
