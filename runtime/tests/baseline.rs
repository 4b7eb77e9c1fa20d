//! Baseline mode: the same bodies on plain store operations, one round trip each, nothing
//! logged — and therefore no exactly-once.

use std::sync::Arc;

use beldi_runtime::counting::CountingStore;
use beldi_runtime::embedded::EmbeddedStore;
use beldi_runtime::platform::{Mode, RuntimeConfig};
use beldi_runtime::store::{Condition, OpKind, Path, Store, UpdateAction};
use beldi_runtime::{Runtime, UserError, data};

async fn runtime(
    mode: Mode,
) -> (
    Runtime,
    Arc<CountingStore<EmbeddedStore>>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CountingStore::new(EmbeddedStore::open(dir.path()).unwrap()));
    let cfg = RuntimeConfig {
        mode,
        ..Default::default()
    };
    let rt = Runtime::with_config(store.clone(), cfg).unwrap();
    rt.register("bump", &["n"], |ctx, key: String| async move {
        ctx.update("n", &key, vec![UpdateAction::add(Path::root(), 1)])
            .await?;
        let won = ctx
            .cond_write(
                "n",
                "flag",
                vec![UpdateAction::set(Path::root(), true)],
                Condition::not_exists(Path::root()),
            )
            .await?;
        let v: Option<i64> = ctx.read_as("n", &key).await?;
        let _logged_in_beldi_mode_only: u64 = ctx.random().await?;
        Ok::<_, UserError>((v.unwrap_or(0), won))
    })
    .unwrap();
    rt.register("outer", &[], |ctx, key: String| async move {
        let inner: Result<(i64, bool), UserError> = ctx.call("bump", &key).await?;
        ctx.spawn("bump", &format!("{key}-async")).await?;
        Ok::<_, UserError>(inner?.0)
    })
    .unwrap();
    rt.provision().await.unwrap();
    store.reset();
    (rt, store, dir)
}

#[tokio::test]
async fn baseline_operations_are_one_plain_round_trip_each() {
    let (rt, store, _dir) = runtime(Mode::Baseline).await;
    let got = rt
        .invoke::<_, (i64, bool), UserError>("bump", "r1", "k")
        .await
        .unwrap();
    assert_eq!(got, Ok((1, true)));
    let c = store.counts();
    // update + cond_write = 2 updates, read = 1 get; no put (no intent, no log), no query.
    assert_eq!(
        (
            c.get(OpKind::Update),
            c.get(OpKind::Get),
            c.get(OpKind::Put),
            c.get(OpKind::Query)
        ),
        (2, 1, 0, 0)
    );
    // The same request again is applied again: baseline has no exactly-once.
    let again = rt
        .invoke::<_, (i64, bool), UserError>("bump", "r1", "k")
        .await
        .unwrap();
    assert_eq!(again, Ok((2, false)));
    assert_eq!(
        data::current_value(&rt, "bump", "n", "k")
            .await
            .unwrap()
            .and_then(|v| v.as_i64()),
        Some(2)
    );
    // Only plain tables exist: no log, intent or DAAL tables were provisioned.
    let t = rt.tables("bump").unwrap();
    assert!(store.describe_table(&t.log()).await.is_err());
    assert!(store.describe_table(&t.plain("n").unwrap()).await.is_ok());
}

#[tokio::test]
async fn baseline_calls_and_spawns_run_the_callee_directly() {
    let (rt, _store, _dir) = runtime(Mode::Baseline).await;
    let got = rt
        .invoke::<_, i64, UserError>("outer", "r1", "k")
        .await
        .unwrap();
    assert_eq!(got, Ok(1));
    rt.wait_background().await;
    let values = data::current_values(&rt, "bump", "n").await.unwrap();
    let keys: Vec<&str> = values.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["flag", "k", "k-async"]);
    // Nothing for the intent collector to do.
    assert_eq!(
        rt.collect_intents(&Default::default()).await.unwrap(),
        Default::default()
    );
}

#[tokio::test]
async fn loaded_data_is_read_in_both_modes() {
    for mode in [Mode::Beldi, Mode::Baseline] {
        let (rt, _store, _dir) = runtime(mode).await;
        let items = vec![("k".to_owned(), 41.into())];
        assert_eq!(
            data::load(&rt, "bump", "n", items.clone()).await.unwrap(),
            1
        );
        // Loading again keeps the value that is there.
        assert_eq!(data::load(&rt, "bump", "n", items).await.unwrap(), 0);
        let got = rt
            .invoke::<_, (i64, bool), UserError>("bump", "r1", "k")
            .await
            .unwrap();
        assert_eq!(got, Ok((42, true)), "{mode:?}");
    }
}
