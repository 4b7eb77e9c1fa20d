//! Group commit in the embedded store: concurrent write requests share a commit, and each
//! is still applied in arrival order against the state the earlier ones left, with its own
//! answer. Run for both durability settings.

use std::sync::Arc;

use beldi_runtime::embedded::{Durability, EmbeddedOptions, EmbeddedStore};
use beldi_runtime::store::{
    AttrValue, CancellationReason, Condition, Item, Key, Path, Put, Store, StoreError, StoreExt,
    TableSpec, TransactOp, TransactWrite, Update, UpdateAction,
};

/// Tests `<test>::fsync` and `<test>::process_crash`: the async fn `test` on a
/// multi-threaded runtime, once per durability setting.
macro_rules! on_both_durabilities {
    ($test:ident) => {
        mod $test {
            use beldi_runtime::embedded::Durability;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn fsync() {
                super::$test(Durability::Fsync).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn process_crash() {
                super::$test(Durability::ProcessCrash).await;
            }
        }
    };
}
fn open(dir: &std::path::Path, durability: Durability) -> EmbeddedStore {
    EmbeddedStore::open_with(
        dir,
        EmbeddedOptions {
            durability,
            ..EmbeddedOptions::default()
        },
    )
    .unwrap()
}

fn item(pk: &str, v: i64) -> Item {
    let mut i = Item::new();
    i.insert("pk".into(), AttrValue::S(pk.into()));
    i.insert("v".into(), v.into());
    i
}

async fn n_of(store: &EmbeddedStore, key: &str) -> Option<i64> {
    store
        .get("grp", &Key::new(key))
        .await
        .unwrap()
        .and_then(|i| i.get("n").and_then(AttrValue::as_i64))
}

/// 64 tasks increment one counter under a condition on its current value (a lost update
/// or a condition evaluated against stale state would end below the total), and 64 more
/// race to create one key (exactly one may win). Many requests shared commits.
async fn conditions_see_the_earlier_requests_of_their_group(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path(), durability));
    store
        .create_table(&TableSpec::new("grp", "pk"))
        .await
        .unwrap();
    let before = store.commit_stats();
    let mut tasks = Vec::new();
    for t in 0..64i64 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut refused = 0;
            for _ in 0..20 {
                // Read-modify-write: set n to what it was + 1, only if it still is that.
                loop {
                    let cur = n_of(&s, "counter").await;
                    let cond = match cur {
                        None => Condition::not_exists(Path::attr("pk")),
                        Some(n) => Condition::Eq(Path::attr("n"), n.into()),
                    };
                    let up = Update::new("grp", Key::new("counter"))
                        .action(UpdateAction::set("n", cur.unwrap_or(0) + 1))
                        .condition(cond);
                    match s.update(up).await {
                        Ok(_) => break,
                        Err(StoreError::ConditionFailed { .. }) => refused += 1,
                        Err(e) => panic!("task {t}: {e}"),
                    }
                }
            }
            let won = match s
                .put(
                    Put::new("grp", item("first", t))
                        .condition(Condition::not_exists(Path::attr("pk"))),
                )
                .await
            {
                Ok(_) => true,
                Err(StoreError::ConditionFailed { .. }) => false,
                Err(e) => panic!("task {t}: {e}"),
            };
            (t, won, refused)
        }));
    }
    let mut winners = Vec::new();
    let mut refusals = 0;
    for task in tasks {
        let (t, won, refused) = task.await.unwrap();
        refusals += refused;
        if won {
            winners.push(t);
        }
    }
    assert_eq!(
        n_of(&store, "counter").await,
        Some(64 * 20),
        "no lost update"
    );
    assert_eq!(winners.len(), 1, "exactly one creator: {winners:?}");
    let first = store.get("grp", &Key::new("first")).await.unwrap().unwrap();
    assert_eq!(first["v"], winners[0].into(), "the winner's item is stored");
    let stats = store.commit_stats().since(&before);
    assert_eq!(stats.requests, 64 * 20 + 64 + refusals as u64);
    assert!(
        stats.max_group() > 1 && stats.groups < stats.requests,
        "concurrent requests shared commits: {stats:?}"
    );
    if durability == Durability::Fsync {
        assert!(stats.syncs > 0 && stats.syncs <= stats.groups, "{stats:?}");
    } else {
        assert_eq!(stats.syncs, 0);
    }
}

on_both_durabilities!(conditions_see_the_earlier_requests_of_their_group);

/// In one burst, transactions that cancel, puts whose condition fails and writes to a
/// missing table are refused one by one; every other request of the burst is applied.
async fn a_refused_request_leaves_the_rest_of_its_group_applied(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path(), durability));
    store
        .create_table(&TableSpec::new("grp", "pk"))
        .await
        .unwrap();
    for k in 0..32 {
        store
            .put(Put::new("grp", item(&format!("taken{k}"), -1)))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for k in 0..32i64 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let fresh = s.put(Put::new("grp", item(&format!("fresh{k}"), k)));
            let taken = s.put(
                Put::new("grp", item(&format!("taken{k}"), k))
                    .condition(Condition::not_exists(Path::attr("pk"))),
            );
            // Cancels: its second item exists already.
            let cancelled = s.transact_write(
                TransactWrite::new()
                    .op(TransactOp::Put(Put::new(
                        "grp",
                        item(&format!("pair{k}"), k),
                    )))
                    .op(TransactOp::Put(
                        Put::new("grp", item(&format!("taken{k}"), k))
                            .condition(Condition::not_exists(Path::attr("pk"))),
                    )),
            );
            let applied = s.transact_write(
                TransactWrite::new()
                    .op(TransactOp::Put(Put::new("grp", item(&format!("a{k}"), k))))
                    .op(TransactOp::Put(Put::new("grp", item(&format!("b{k}"), k)))),
            );
            let missing = s.put(Put::new("nosuch", item("x", k)));
            let (f, t, c, a, m) = tokio::join!(fresh, taken, cancelled, applied, missing);
            f.unwrap();
            assert!(
                matches!(t, Err(StoreError::ConditionFailed { .. })),
                "{t:?}"
            );
            match c {
                Err(StoreError::TransactionCancelled { reasons }) => {
                    assert!(matches!(reasons[0], CancellationReason::None));
                    assert!(matches!(
                        reasons[1],
                        CancellationReason::ConditionFailed { .. }
                    ));
                }
                other => panic!("{other:?}"),
            }
            a.unwrap();
            assert!(matches!(m, Err(StoreError::TableNotFound { .. })), "{m:?}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let v = |i: Option<Item>| i.map(|i| i["v"].clone());
    for k in 0..32i64 {
        let get = |p: String| {
            let s = store.clone();
            async move { s.get("grp", &Key::new(p)).await.unwrap() }
        };
        assert_eq!(v(get(format!("fresh{k}")).await), Some(k.into()));
        assert_eq!(v(get(format!("taken{k}")).await), Some((-1).into()));
        assert_eq!(
            get(format!("pair{k}")).await,
            None,
            "a cancelled transaction wrote"
        );
        assert_eq!(v(get(format!("a{k}")).await), Some(k.into()));
        assert_eq!(v(get(format!("b{k}")).await), Some(k.into()));
    }
    // And it all is what a reopened store finds.
    drop(store);
    let again = open(dir.path(), durability);
    let n = again.scan_all("grp").await.unwrap().len();
    assert_eq!(n, 32 + 32 + 64, "taken, fresh and a/b items");
}

on_both_durabilities!(a_refused_request_leaves_the_rest_of_its_group_applied);

/// A request alone is answered at once, on a store used from a single-threaded runtime.
#[tokio::test]
async fn a_lone_request_commits_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), Durability::Fsync);
    store
        .create_table(&TableSpec::new("grp", "pk"))
        .await
        .unwrap();
    for i in 0..5 {
        store.put(Put::new("grp", item("k", i))).await.unwrap();
    }
    let stats = store.commit_stats();
    assert_eq!((stats.groups, stats.requests, stats.max_group()), (6, 6, 1));
    assert_eq!(stats.syncs, 6, "each lone commit synced before its answer");
}

/// With `group_commit: false` every request is committed (and synced) alone, however many
/// are in flight: the baseline the benchmark compares against.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_group_commit_every_request_commits_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        EmbeddedStore::open_with(
            dir.path(),
            EmbeddedOptions {
                group_commit: false,
                ..EmbeddedOptions::default()
            },
        )
        .unwrap(),
    );
    store
        .create_table(&TableSpec::new("grp", "pk"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                s.put(Put::new("grp", item(&format!("k{t}-{i}"), i)))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = store.commit_stats();
    assert_eq!(stats.requests, 161);
    assert_eq!(
        (stats.groups, stats.max_group(), stats.syncs),
        (161, 1, 161)
    );
    assert_eq!(store.scan_all("grp").await.unwrap().len(), 160);
}

/// The writer keeps the items it wrote last; another handle's (another process's) commits
/// in between must not let it act on a stale copy.
#[tokio::test]
async fn a_write_sees_what_another_handle_committed_since() {
    let dir = tempfile::tempdir().unwrap();
    let a = open(dir.path(), Durability::Fsync);
    let b = open(dir.path(), Durability::Fsync);
    a.create_table(&TableSpec::new("grp", "pk")).await.unwrap();
    let set_if = |n: i64, then: i64| {
        Update::new("grp", Key::new("k"))
            .action(UpdateAction::set("n", then))
            .condition(Condition::Eq(Path::attr("n"), n.into()))
    };
    a.update(Update::new("grp", Key::new("k")).action(UpdateAction::set("n", 1)))
        .await
        .unwrap();
    for round in 0..20 {
        let n = 1 + 2 * round;
        // b moves the item on; a's next conditional write must see b's value.
        b.update(set_if(n, n + 1)).await.unwrap();
        a.update(set_if(n + 1, n + 2))
            .await
            .unwrap_or_else(|e| panic!("round {round}: a acted on a stale item: {e}"));
        assert!(matches!(
            a.update(set_if(n, n + 5)).await,
            Err(StoreError::ConditionFailed { .. })
        ));
    }
    // A delete by b, then a put-if-absent by a.
    b.delete(beldi_runtime::store::Delete::new("grp", Key::new("k")))
        .await
        .unwrap();
    a.put(Put::new("grp", item("k", 0)).condition(Condition::not_exists(Path::attr("pk"))))
        .await
        .expect("a saw the delete");
    assert_eq!(n_of(&b, "k").await, None, "the new item has no n");
}
