//! The store conformance suite: written once, instantiated for every backend with
//! [`conformance_suite!`], so both backends run exactly the same tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use beldi_runtime::store::*;

/// One test's view of a backend: a store and a unique table-name prefix.
pub struct Fixture {
    pub store: Arc<dyn Store>,
    pub prefix: String,
    pub _guard: Option<Box<dyn std::any::Any + Send + Sync>>,
}

impl Fixture {
    fn name(&self, t: &str) -> String {
        format!("{}{t}", self.prefix)
    }
    async fn table(&self, t: &str) -> String {
        let name = self.name(t);
        assert!(
            self.store
                .create_table(&TableSpec::new(&name, "pk"))
                .await
                .unwrap()
        );
        name
    }
    async fn sorted_table(&self, t: &str) -> String {
        let name = self.name(t);
        assert!(
            self.store
                .create_table(&TableSpec::new(&name, "pk").with_sort_key("sk"))
                .await
                .unwrap()
        );
        name
    }
}

/// Instantiates every conformance test for a backend. `$fixture` is an async fn taking the
/// test name and returning `Option<Fixture>` (`None`: backend unavailable outside CI).
#[macro_export]
macro_rules! conformance_suite {
    ($fixture:path) => {
        $crate::conformance_suite!(@tests $fixture;
            create_table_is_idempotent, all_value_types_round_trip, put_conditions,
            update_actions, update_creates_missing_item, condition_operators,
            update_path_errors, delete_conditions, query_prefix_pagination_and_order,
            scan_pagination, item_size_limit, transaction_applies_all,
            transaction_cancellation_reasons, transaction_limits, transaction_idempotency_token,
            bad_input_is_rejected, names_with_any_characters, binary_keys,
            concurrent_compare_and_set, list_tables_by_prefix, projections, batch_get_reads_in_order,
            batch_write_puts_and_deletes);
    };
    (@tests $fixture:path; $($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            let Some(fx) = $fixture(stringify!($name)).await else { return };
            conformance::$name(&fx).await;
        }
    )*};
}

pub fn item(pairs: &[(&str, AttrValue)]) -> Item {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn num(s: &str) -> AttrValue {
    AttrValue::N(Number::parse(s).unwrap())
}

pub async fn create_table_is_idempotent(fx: &Fixture) {
    let name = fx.name("idem");
    let spec = TableSpec::new(&name, "pk").with_sort_key("sk");
    assert!(
        fx.store.create_table(&spec).await.unwrap(),
        "first create creates"
    );
    assert!(
        !fx.store.create_table(&spec).await.unwrap(),
        "second create is a no-op"
    );
    assert_eq!(fx.store.describe_table(&name).await.unwrap(), spec);
    let err = fx
        .store
        .create_table(&TableSpec::new(&name, "other"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { name: n, .. } if *n == name),
        "{err}"
    );
    assert!(fx.store.delete_table(&name).await.unwrap());
    let err = fx
        .store
        .get(&name, &Key::with_sort("a", "b"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TableNotFound { .. }), "{err}");
}

pub async fn list_tables_by_prefix(fx: &Fixture) {
    let mine = fx.store.list_tables(&fx.prefix).await.unwrap();
    assert!(mine.is_empty(), "a fresh prefix has no tables: {mine:?}");
    // Created out of name order; listed in it, and only those under the prefix asked for.
    let b = fx.table("lt.b").await;
    let a = fx.table("lt.a").await;
    let other = fx.table("other").await;
    assert_eq!(
        fx.store.list_tables(&fx.name("lt.")).await.unwrap(),
        vec![a.clone(), b.clone()]
    );
    assert_eq!(
        fx.store.list_tables(&fx.prefix).await.unwrap(),
        vec![a.clone(), b.clone(), other.clone()]
    );
    let every = fx.store.list_tables("").await.unwrap();
    assert!(every.contains(&a) && every.contains(&other), "{every:?}");
    assert!(fx.store.delete_table(&b).await.unwrap());
    assert_eq!(
        fx.store.list_tables(&fx.name("lt.")).await.unwrap(),
        vec![a]
    );
    // A prefix that is a LIKE pattern elsewhere matches only itself.
    assert!(
        fx.store
            .list_tables(&fx.name("%"))
            .await
            .unwrap()
            .is_empty()
    );
}

fn map(pairs: &[(&str, AttrValue)]) -> AttrValue {
    AttrValue::M(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    )
}

pub async fn projections(fx: &Fixture) {
    let t = fx.sorted_table("proj").await;
    let row = |sk: &str| {
        item(&[
            ("pk", "a".into()),
            ("sk", sk.into()),
            ("V", num("1")),
            ("big", AttrValue::S("x".repeat(2000))),
            (
                "L",
                map(&[
                    ("e1", "w".into()),
                    ("e2", "d".into()),
                    ("odd key.[0]", "o".into()),
                ]),
            ),
            (
                "list",
                AttrValue::L(vec!["l0".into(), "l1".into(), "l2".into()]),
            ),
        ])
    };
    for sk in ["r0", "r1", "r2"] {
        fx.store.put(Put::new(&t, row(sk))).await.unwrap();
    }
    let key = Key::with_sort("a", "r1");
    let get = |paths: Vec<Path>| {
        let (store, t, key) = (fx.store.clone(), t.clone(), key.clone());
        async move { store.get_projected(&t, &key, &paths).await }
    };
    // Attributes and map entries: only those, inside their maps, with the key attributes.
    let got = get(vec![Path::attr("V"), Path::attr("L").key("e2")])
        .await
        .unwrap();
    assert_eq!(
        got,
        Some(item(&[
            ("pk", "a".into()),
            ("sk", "r1".into()),
            ("V", num("1")),
            ("L", map(&[("e2", "d".into())])),
        ]))
    );
    // A name with the characters of the path syntax is a name.
    let got = get(vec![Path::attr("L").key("odd key.[0]")])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.get("L"), Some(&map(&[("odd key.[0]", "o".into())])));
    // List elements, in index order; what is absent is left out, a map left empty too.
    let got = get(vec![
        Path::attr("list").index(2),
        Path::attr("list").index(0),
    ])
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        got.get("list"),
        Some(&AttrValue::L(vec!["l0".into(), "l2".into()]))
    );
    let got = get(vec![
        Path::attr("L").key("nope"),
        Path::attr("gone"),
        Path::attr("list").index(9),
    ])
    .await
    .unwrap();
    assert_eq!(got, Some(item(&[("pk", "a".into()), ("sk", "r1".into())])));
    // A missing item is none.
    assert_eq!(
        fx.store
            .get_projected(&t, &Key::with_sort("a", "zz"), &[Path::attr("V")])
            .await
            .unwrap(),
        None
    );
    // Bad projections are refused, naming what is wrong.
    let err = get(vec![]).await.unwrap_err();
    assert!(matches!(err, StoreError::Validation { .. }), "{err}");
    let err = get(vec![Path::attr("L"), Path::attr("L").key("e1")])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { message, .. } if message.contains("overlap")),
        "{err}"
    );
    // A projected query keeps its pages and their order.
    let mut q = Query::new(&t, "a")
        .limit(2)
        .project([Path::attr("L").key("e1")]);
    let mut seen = Vec::new();
    loop {
        let page = fx.store.query(q.clone()).await.unwrap();
        for i in &page.items {
            assert_eq!(i.get("L"), Some(&map(&[("e1", "w".into())])));
            assert!(i.get("big").is_none() && i.get("V").is_none());
            seen.push(i.get("sk").unwrap().as_s().unwrap().to_owned());
        }
        match page.last_key {
            Some(k) => q.start_after = Some(k),
            None => break,
        }
    }
    assert_eq!(seen, ["r0", "r1", "r2"]);
}

pub async fn batch_get_reads_in_order(fx: &Fixture) {
    let t = fx.table("bget").await;
    for k in ["k1", "k2", "k3"] {
        fx.store
            .put(Put::new(
                &t,
                item(&[("pk", k.into()), ("v", k.into()), ("w", num("2"))]),
            ))
            .await
            .unwrap();
    }
    let keys = ["k3", "missing", "k1"].map(Key::new);
    let got = fx
        .store
        .batch_get(BatchGet::new(&t, keys.clone()))
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            Some(item(&[
                ("pk", "k3".into()),
                ("v", "k3".into()),
                ("w", num("2"))
            ])),
            None,
            Some(item(&[
                ("pk", "k1".into()),
                ("v", "k1".into()),
                ("w", num("2"))
            ])),
        ]
    );
    let got = fx
        .store
        .batch_get(BatchGet::new(&t, keys).project([Path::attr("w")]))
        .await
        .unwrap();
    assert_eq!(got[0], Some(item(&[("pk", "k3".into()), ("w", num("2"))])));
    // 100 keys in one call; 101, none, or one twice are refused.
    let many: Vec<Key> = (0..MAX_BATCH_GET)
        .map(|i| Key::new(format!("n{i}")))
        .collect();
    let got = fx
        .store
        .batch_get(BatchGet::new(&t, many.clone()))
        .await
        .unwrap();
    assert!(got.len() == MAX_BATCH_GET && got.iter().all(Option::is_none));
    let mut too_many = many;
    too_many.push(Key::new("one more"));
    for bad in [too_many, vec![], vec![Key::new("k1"), Key::new("k1")]] {
        let err = fx
            .store
            .batch_get(BatchGet::new(&t, bad))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Validation { .. }), "{err}");
    }
    let err = fx
        .store
        .batch_get(BatchGet::new(fx.name("no_such_table"), [Key::new("k")]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TableNotFound { .. }), "{err}");
}

pub async fn batch_write_puts_and_deletes(fx: &Fixture) {
    let a = fx.table("bw_a").await;
    let b = fx.sorted_table("bw_b").await;
    fx.store
        .put(Put::new(&a, item(&[("pk", "old".into())])))
        .await
        .unwrap();
    fx.store
        .put(Put::new(
            &b,
            item(&[("pk", "p".into()), ("sk", "s1".into())]),
        ))
        .await
        .unwrap();
    let req = BatchWrite::new()
        .put(&a, item(&[("pk", "new".into()), ("v", num("7"))]))
        .delete(&a, Key::new("old"))
        .delete(&a, Key::new("never-was"))
        .delete(&b, Key::with_sort("p", "s1"))
        .put(&b, item(&[("pk", "p".into()), ("sk", "s2".into())]));
    fx.store.batch_write(req).await.unwrap();
    assert_eq!(
        fx.store.get(&a, &Key::new("new")).await.unwrap(),
        Some(item(&[("pk", "new".into()), ("v", num("7"))]))
    );
    assert_eq!(fx.store.get(&a, &Key::new("old")).await.unwrap(), None);
    assert_eq!(
        fx.store.get(&b, &Key::with_sort("p", "s1")).await.unwrap(),
        None
    );
    assert!(
        fx.store
            .get(&b, &Key::with_sort("p", "s2"))
            .await
            .unwrap()
            .is_some()
    );
    // 25 operations in one call; 26, none, one item twice, or a bad key are refused, and
    // nothing of a refused batch is applied.
    let full = (0..MAX_BATCH_WRITE).fold(BatchWrite::new(), |w, i| {
        w.put(&a, item(&[("pk", format!("m{i}").into())]))
    });
    fx.store.batch_write(full.clone()).await.unwrap();
    let over = full.put(&a, item(&[("pk", "over".into())]));
    let twice = BatchWrite::new()
        .put(&a, item(&[("pk", "t".into())]))
        .delete(&a, Key::new("t"));
    let bad_key = BatchWrite::new()
        .put(&a, item(&[("pk", "fine".into())]))
        .delete(&b, Key::new("no sort key"));
    for bad in [over, BatchWrite::new(), twice, bad_key] {
        let err = fx.store.batch_write(bad).await.unwrap_err();
        assert!(matches!(err, StoreError::Validation { .. }), "{err}");
    }
    for k in ["over", "t", "fine"] {
        assert_eq!(fx.store.get(&a, &Key::new(k)).await.unwrap(), None, "{k}");
    }
}

pub async fn all_value_types_round_trip(fx: &Fixture) {
    let t = fx.table("types").await;
    let mut m = BTreeMap::new();
    m.insert(
        "inner".to_string(),
        AttrValue::L(vec![1.into(), AttrValue::Null, "x".into()]),
    );
    m.insert("empty".to_string(), AttrValue::M(BTreeMap::new()));
    let it = item(&[
        ("pk", "k1".into()),
        ("s", "héllo wörld".into()),
        ("empty_s", "".into()),
        ("n_int", 42.into()),
        ("n_neg", num("-17.25")),
        ("n_big", num("12345678901234567890123456789012345678")),
        ("n_small", num("0.000000001")),
        ("b", AttrValue::B(vec![0, 1, 254, 255])),
        ("t", true.into()),
        ("f", false.into()),
        ("null", AttrValue::Null),
        (
            "l",
            AttrValue::L(vec!["a".into(), 2.into(), AttrValue::L(vec![])]),
        ),
        ("m", AttrValue::M(m)),
    ]);
    fx.store.put(Put::new(&t, it.clone())).await.unwrap();
    assert_eq!(fx.store.get(&t, &Key::new("k1")).await.unwrap(), Some(it));
    fx.store
        .put(Put::new(
            &t,
            item(&[("pk", "k2".into()), ("n", num("1.50"))]),
        ))
        .await
        .unwrap();
    let got = fx.store.get(&t, &Key::new("k2")).await.unwrap().unwrap();
    assert_eq!(got["n"], num("1.5"), "numbers are normalized");
    assert_eq!(fx.store.get(&t, &Key::new("missing")).await.unwrap(), None);
}

pub async fn put_conditions(fx: &Fixture) {
    let t = fx.table("putc").await;
    let first = item(&[("pk", "k".into()), ("v", 1.into())]);
    fx.store
        .put(Put::new(&t, first.clone()).if_absent("pk"))
        .await
        .unwrap();
    let err = fx
        .store
        .put(
            Put::new(&t, item(&[("pk", "k".into()), ("v", 2.into())]))
                .if_absent("pk")
                .return_item_on_failure(),
        )
        .await
        .unwrap_err();
    match &err {
        StoreError::ConditionFailed {
            table,
            item: Some(cur),
            ..
        } => {
            assert_eq!(table, &t);
            assert_eq!(**cur, first, "the current item comes back when asked");
        }
        other => panic!("expected ConditionFailed with the item, got {other:?}"),
    }
    let err = fx
        .store
        .put(Put::new(&t, item(&[("pk", "k".into()), ("v", 2.into())])).if_absent("pk"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ConditionFailed { item: None, .. }),
        "{err:?}"
    );
    // Replace with return of the old item.
    let old = fx
        .store
        .put(
            Put::new(&t, item(&[("pk", "k".into()), ("v", 3.into())]))
                .condition(Condition::eq("v", 1))
                .return_old(),
        )
        .await
        .unwrap();
    assert_eq!(old, Some(first));
    assert_eq!(
        fx.store.get(&t, &Key::new("k")).await.unwrap().unwrap()["v"],
        3.into()
    );
}

pub async fn update_actions(fx: &Fixture) {
    let t = fx.table("upd").await;
    let k = Key::new("k");
    fx.store
        .put(Put::new(
            &t,
            item(&[
                ("pk", "k".into()),
                ("gone", "x".into()),
                ("logs", AttrValue::M(BTreeMap::new())),
                (
                    "list",
                    AttrValue::L(vec![1.into(), 2.into(), 3.into(), 4.into()]),
                ),
                ("keep", "same".into()),
            ]),
        ))
        .await
        .unwrap();
    let new = fx
        .store
        .update(
            Update::new(&t, k.clone())
                .action(UpdateAction::set("value", "v1"))
                .action(UpdateAction::set_map_entry("logs", "inst-1#7", true))
                .action(UpdateAction::add("count", 5))
                .action(UpdateAction::remove("gone"))
                .action(UpdateAction::append("appended", vec!["a".into()]))
                .action(UpdateAction::SetIfNotExists(
                    Path::attr("keep"),
                    "changed".into(),
                ))
                .action(UpdateAction::SetIfNotExists(
                    Path::attr("fresh"),
                    "set".into(),
                ))
                .action(UpdateAction::remove(Path::attr("list").index(0)))
                .action(UpdateAction::remove(Path::attr("list").index(2)))
                .returning(ReturnValues::AllNew),
        )
        .await
        .unwrap()
        .unwrap();
    let mut logs = BTreeMap::new();
    logs.insert("inst-1#7".to_string(), AttrValue::Bool(true));
    let expected = item(&[
        ("pk", "k".into()),
        ("value", "v1".into()),
        ("logs", AttrValue::M(logs)),
        ("count", 5.into()),
        ("appended", AttrValue::L(vec!["a".into()])),
        ("keep", "same".into()),
        ("fresh", "set".into()),
        ("list", AttrValue::L(vec![2.into(), 4.into()])),
    ]);
    assert_eq!(new, expected);
    let old = fx
        .store
        .update(
            Update::new(&t, k.clone())
                .action(UpdateAction::add("count", -7))
                .action(UpdateAction::append("appended", vec!["b".into(), 3.into()]))
                .action(UpdateAction::add(Path::attr("logs").key("n"), 1))
                .returning(ReturnValues::AllOld),
        )
        .await
        .unwrap();
    assert_eq!(old, Some(expected));
    let now = fx.store.get(&t, &k).await.unwrap().unwrap();
    assert_eq!(now["count"], (-2).into());
    assert_eq!(
        now["appended"],
        AttrValue::L(vec!["a".into(), "b".into(), 3.into()])
    );
    assert_eq!(now["logs"].as_m().unwrap()["n"], 1.into());
    let none = fx
        .store
        .update(Update::new(&t, k.clone()).action(UpdateAction::add("count", 1)))
        .await
        .unwrap();
    assert_eq!(none, None, "ReturnValues::None returns nothing");
    let err = fx
        .store
        .update(Update::new(&t, k.clone()).action(UpdateAction::add("value", 1)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Validation { .. }),
        "adding to a string: {err:?}"
    );
}

pub async fn update_creates_missing_item(fx: &Fixture) {
    let t = fx.sorted_table("upsert").await;
    let k = Key::with_sort("p", "s");
    let new = fx
        .store
        .update(
            Update::new(&t, k.clone())
                .action(UpdateAction::add("n", 1))
                .returning(ReturnValues::AllNew),
        )
        .await
        .unwrap();
    assert_eq!(
        new,
        Some(item(&[
            ("pk", "p".into()),
            ("sk", "s".into()),
            ("n", 1.into())
        ]))
    );
    let err = fx
        .store
        .update(
            Update::new(&t, Key::with_sort("p", "t"))
                .action(UpdateAction::add("n", 1))
                .condition(Condition::exists("pk")),
        )
        .await
        .unwrap_err();
    assert!(err.is_condition_failed(), "{err:?}");
    assert_eq!(
        fx.store.get(&t, &Key::with_sort("p", "t")).await.unwrap(),
        None,
        "no partial state"
    );
}

pub async fn condition_operators(fx: &Fixture) {
    let t = fx.table("conds").await;
    let mut logs = BTreeMap::new();
    logs.insert("a-1".to_string(), AttrValue::Bool(true));
    fx.store
        .put(Put::new(
            &t,
            item(&[
                ("pk", "k".into()),
                ("n", 5.into()),
                ("s", "m".into()),
                ("logs", AttrValue::M(logs)),
            ]),
        ))
        .await
        .unwrap();
    let cases: Vec<(Condition, bool)> = vec![
        (Condition::exists("n"), true),
        (Condition::exists("zz"), false),
        (Condition::not_exists("zz"), true),
        (Condition::eq("n", 5), true),
        (Condition::eq("n", 6), false),
        (Condition::eq("n", "5"), false),
        (Condition::Ne(Path::attr("n"), 6.into()), true),
        (Condition::lt("n", 6), true),
        (Condition::lt("n", 5), false),
        (Condition::Le(Path::attr("n"), 5.into()), true),
        (Condition::Gt(Path::attr("n"), num("4.99")), true),
        (Condition::Ge(Path::attr("n"), 6.into()), false),
        (Condition::lt("s", "n"), true),
        (Condition::lt("s", 100), false),
        (Condition::map_entry_exists("logs", "a-1"), true),
        (Condition::map_entry_exists("logs", "a-2"), false),
        (Condition::map_entry_not_exists("logs", "a-2"), true),
        (Condition::eq("n", 5).and(Condition::exists("s")), true),
        (Condition::eq("n", 5).and(Condition::exists("zz")), false),
        (Condition::eq("n", 6).or(Condition::exists("s")), true),
        (Condition::exists("zz").not(), true),
        (Condition::eq("n", 5).not(), false),
    ];
    for (i, (cond, expected)) in cases.into_iter().enumerate() {
        let res = fx
            .store
            .update(
                Update::new(&t, Key::new("k"))
                    .action(UpdateAction::add("hits", 1))
                    .condition(cond.clone()),
            )
            .await;
        match (res, expected) {
            (Ok(_), true) => {}
            (Err(e), false) if e.is_condition_failed() => {}
            (other, _) => panic!("case {i} {cond:?}: expected {expected}, got {other:?}"),
        }
    }
}

pub async fn update_path_errors(fx: &Fixture) {
    let t = fx.table("paths").await;
    fx.store
        .put(Put::new(
            &t,
            item(&[("pk", "k".into()), ("s", "str".into())]),
        ))
        .await
        .unwrap();
    // Setting below a missing parent is invalid on both backends.
    let err = fx
        .store
        .update(
            Update::new(&t, Key::new("k"))
                .action(UpdateAction::set(Path::attr("missing").key("x"), 1)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Validation { .. }), "{err:?}");
    // Two actions on overlapping paths.
    let err = fx
        .store
        .update(
            Update::new(&t, Key::new("k"))
                .action(UpdateAction::set("m", AttrValue::M(BTreeMap::new())))
                .action(UpdateAction::set(Path::attr("m").key("x"), 1)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { message, .. } if message.contains("overlapping")),
        "{err:?}"
    );
    // Updating a key attribute.
    let err = fx
        .store
        .update(Update::new(&t, Key::new("k")).action(UpdateAction::set("pk", "other")))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { name, .. } if name == "pk"),
        "{err:?}"
    );
    // No actions.
    let err = fx
        .store
        .update(Update::new(&t, Key::new("k")))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Validation { .. }), "{err:?}");
    // A malformed path string.
    let err = Path::parse("a..b").unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { name, .. } if name == "a..b"),
        "{err:?}"
    );
    let err = fx
        .store
        .update(Update::new(&t, Key::new("k")).action(UpdateAction::set(Path::attr(""), 1)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { message, .. } if message.contains("malformed")),
        "{err:?}"
    );
    assert_eq!(
        fx.store.get(&t, &Key::new("k")).await.unwrap(),
        Some(item(&[("pk", "k".into()), ("s", "str".into())])),
        "rejected updates leave the item unchanged"
    );
}

pub async fn delete_conditions(fx: &Fixture) {
    let t = fx.table("del").await;
    let it = item(&[("pk", "k".into()), ("v", 1.into())]);
    fx.store.put(Put::new(&t, it.clone())).await.unwrap();
    let err = fx
        .store
        .delete(
            Delete::new(&t, Key::new("k"))
                .condition(Condition::eq("v", 2))
                .return_item_on_failure(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::ConditionFailed { item: Some(i), .. } if **i == it),
        "{err:?}"
    );
    let old = fx
        .store
        .delete(
            Delete::new(&t, Key::new("k"))
                .condition(Condition::eq("v", 1))
                .return_old(),
        )
        .await
        .unwrap();
    assert_eq!(old, Some(it));
    assert_eq!(fx.store.get(&t, &Key::new("k")).await.unwrap(), None);
    assert_eq!(
        fx.store
            .delete(Delete::new(&t, Key::new("k")).return_old())
            .await
            .unwrap(),
        None,
        "deleting nothing is fine"
    );
    let err = fx
        .store
        .delete(Delete::new(&t, Key::new("k")).condition(Condition::exists("pk")))
        .await
        .unwrap_err();
    assert!(err.is_condition_failed(), "{err:?}");
}

pub async fn query_prefix_pagination_and_order(fx: &Fixture) {
    let t = fx.sorted_table("query").await;
    for i in 0..25 {
        for p in ["a", "b"] {
            let sk = format!("row#{i:03}");
            fx.store
                .put(Put::new(
                    &t,
                    item(&[("pk", p.into()), ("sk", sk.into()), ("i", i.into())]),
                ))
                .await
                .unwrap();
        }
    }
    fx.store
        .put(Put::new(
            &t,
            item(&[("pk", "a".into()), ("sk", "other".into())]),
        ))
        .await
        .unwrap();
    fx.store
        .put(Put::new(
            &t,
            item(&[("pk", "a".into()), ("sk", "row".into())]),
        ))
        .await
        .unwrap();
    let all = fx.store.query_all(Query::new(&t, "a")).await.unwrap();
    assert_eq!(all.len(), 27);
    let mut pages = 0;
    let mut got = Vec::new();
    let mut q = Query::new(&t, "a").sort_prefix("row#").limit(7);
    loop {
        let page = fx.store.query(q.clone()).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 7);
        got.extend(page.items.iter().map(|i| i["i"].as_i64().unwrap()));
        match page.last_key {
            Some(k) => q = q.start_after(Some(k)),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(
        got,
        (0..25).collect::<Vec<_>>(),
        "ascending sort-key order, prefix only"
    );
    assert!(
        pages >= 4,
        "25 items in pages of 7 take at least 4 pages, took {pages}"
    );
    let desc = fx
        .store
        .query_all(
            Query::new(&t, "b")
                .sort_prefix("row#01")
                .descending()
                .limit(3),
        )
        .await
        .unwrap();
    let desc: Vec<i64> = desc.iter().map(|i| i["i"].as_i64().unwrap()).collect();
    assert_eq!(desc, (10..20).rev().collect::<Vec<_>>());
    assert!(
        fx.store
            .query_all(Query::new(&t, "nobody"))
            .await
            .unwrap()
            .is_empty()
    );
    let err = fx
        .store
        .query(Query::new(&t, "a").limit(0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Validation { .. }), "{err:?}");
}

pub async fn scan_pagination(fx: &Fixture) {
    let t = fx.table("scan").await;
    for i in 0..23 {
        fx.store
            .put(Put::new(
                &t,
                item(&[("pk", format!("k{i}").into()), ("i", i.into())]),
            ))
            .await
            .unwrap();
    }
    let mut req = Scan::new(&t).limit(5);
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = fx.store.scan(req.clone()).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 5);
        seen.extend(page.items.iter().map(|i| i["i"].as_i64().unwrap()));
        match page.last_key {
            Some(k) => req = req.start_after(Some(k)),
            None => break,
        }
        assert!(pages < 20);
    }
    seen.sort();
    assert_eq!(seen, (0..23).collect::<Vec<_>>(), "every item exactly once");
    assert!(pages >= 5);
    assert_eq!(fx.store.scan_all(&t).await.unwrap().len(), 23);
}

pub async fn item_size_limit(fx: &Fixture) {
    let t = fx.table("size").await;
    let under = item(&[
        ("pk", "k".into()),
        ("blob", AttrValue::B(vec![7; 399 * 1024])),
    ]);
    fx.store.put(Put::new(&t, under)).await.unwrap();
    let over = item(&[
        ("pk", "k2".into()),
        ("blob", AttrValue::B(vec![7; 401 * 1024])),
    ]);
    let err = fx.store.put(Put::new(&t, over)).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::ItemTooLarge { table, .. } if *table == t),
        "{err:?}"
    );
    assert_eq!(fx.store.get(&t, &Key::new("k2")).await.unwrap(), None);
    // An update that grows the item past the limit.
    let err = fx
        .store
        .update(
            Update::new(&t, Key::new("k"))
                .action(UpdateAction::set("more", AttrValue::B(vec![1; 2 * 1024]))),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ItemTooLarge { .. }), "{err:?}");
    let cur = fx.store.get(&t, &Key::new("k")).await.unwrap().unwrap();
    assert!(
        !cur.contains_key("more"),
        "the oversized update was not applied"
    );
}

pub async fn transaction_applies_all(fx: &Fixture) {
    let a = fx.table("txa").await;
    let b = fx.sorted_table("txb").await;
    fx.store
        .put(Put::new(
            &a,
            item(&[("pk", "x".into()), ("bal", 10.into())]),
        ))
        .await
        .unwrap();
    fx.store
        .put(Put::new(&a, item(&[("pk", "gone".into())])))
        .await
        .unwrap();
    fx.store
        .put(Put::new(
            &a,
            item(&[("pk", "lock".into()), ("holder", "t1".into())]),
        ))
        .await
        .unwrap();
    let tx = TransactWrite::new()
        .op(TransactOp::Update(
            Update::new(&a, Key::new("x"))
                .action(UpdateAction::add("bal", -3))
                .condition(Condition::Ge(Path::attr("bal"), 3.into())),
        ))
        .op(TransactOp::Put(
            Put::new(
                &b,
                item(&[("pk", "y".into()), ("sk", "1".into()), ("bal", 3.into())]),
            )
            .if_absent("pk"),
        ))
        .op(TransactOp::Delete(
            Delete::new(&a, Key::new("gone")).condition(Condition::exists("pk")),
        ))
        .op(TransactOp::ConditionCheck(ConditionCheck {
            table: a.clone(),
            key: Key::new("lock"),
            condition: Condition::eq("holder", "t1"),
            return_item_on_failure: false,
        }));
    fx.store.transact_write(tx).await.unwrap();
    assert_eq!(
        fx.store.get(&a, &Key::new("x")).await.unwrap().unwrap()["bal"],
        7.into()
    );
    assert_eq!(
        fx.store
            .get(&b, &Key::with_sort("y", "1"))
            .await
            .unwrap()
            .unwrap()["bal"],
        3.into()
    );
    assert_eq!(fx.store.get(&a, &Key::new("gone")).await.unwrap(), None);
}

pub async fn transaction_cancellation_reasons(fx: &Fixture) {
    let a = fx.table("txr").await;
    let lock = item(&[("pk", "lock".into()), ("holder", "t2".into())]);
    fx.store.put(Put::new(&a, lock.clone())).await.unwrap();
    fx.store
        .put(Put::new(
            &a,
            item(&[("pk", "x".into()), ("bal", 10.into())]),
        ))
        .await
        .unwrap();
    let tx = TransactWrite::new()
        .op(TransactOp::Update(
            Update::new(&a, Key::new("x")).action(UpdateAction::add("bal", -3)),
        ))
        .op(TransactOp::Put(Put::new(&a, item(&[("pk", "new".into())]))))
        .op(TransactOp::ConditionCheck(ConditionCheck {
            table: a.clone(),
            key: Key::new("lock"),
            condition: Condition::eq("holder", "t1"),
            return_item_on_failure: true,
        }));
    let err = fx.store.transact_write(tx).await.unwrap_err();
    match &err {
        StoreError::TransactionCancelled { reasons } => {
            assert_eq!(reasons.len(), 3);
            assert_eq!(reasons[0], CancellationReason::None);
            assert_eq!(reasons[1], CancellationReason::None);
            assert_eq!(
                reasons[2],
                CancellationReason::ConditionFailed {
                    item: Some(Box::new(lock))
                }
            );
        }
        other => panic!("expected TransactionCancelled, got {other:?}"),
    }
    assert!(!err.is_retryable(), "a failed condition is not retryable");
    assert_eq!(
        fx.store.get(&a, &Key::new("x")).await.unwrap().unwrap()["bal"],
        10.into(),
        "all or nothing"
    );
    assert_eq!(
        fx.store.get(&a, &Key::new("new")).await.unwrap(),
        None,
        "all or nothing"
    );
}

pub async fn transaction_limits(fx: &Fixture) {
    let a = fx.table("txl").await;
    let put = |i: usize| TransactOp::Put(Put::new(&a, item(&[("pk", format!("k{i}").into())])));
    let err = fx
        .store
        .transact_write(TransactWrite {
            ops: (0..101).map(put).collect(),
            client_token: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { name, .. } if name == "101 items"),
        "{err:?}"
    );
    let err = fx
        .store
        .transact_write(TransactWrite::new())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Validation { .. }), "{err:?}");
    let err = fx
        .store
        .transact_write(TransactWrite::new().op(put(1)).op(TransactOp::Update(
            Update::new(&a, Key::new("k1")).action(UpdateAction::add("n", 1)),
        )))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { message, .. } if message.contains("more than one operation")),
        "{err:?}"
    );
    assert!(
        fx.store.scan_all(&a).await.unwrap().is_empty(),
        "rejected transactions write nothing"
    );
    fx.store
        .transact_write(TransactWrite {
            ops: (0..100).map(put).collect(),
            client_token: None,
        })
        .await
        .unwrap();
    assert_eq!(fx.store.scan_all(&a).await.unwrap().len(), 100);
}

pub async fn transaction_idempotency_token(fx: &Fixture) {
    let a = fx.table("txt").await;
    let token = format!(
        "tok-{}",
        std::process::id() as u64 * 1_000_003 + rand_suffix()
    );
    let tx = TransactWrite::new()
        .op(TransactOp::Update(
            Update::new(&a, Key::new("c")).action(UpdateAction::add("n", 1)),
        ))
        .op(TransactOp::Update(
            Update::new(&a, Key::new("d")).action(UpdateAction::add("n", 1)),
        ))
        .client_token(&token);
    fx.store.transact_write(tx.clone()).await.unwrap();
    fx.store.transact_write(tx).await.unwrap();
    assert_eq!(
        fx.store.get(&a, &Key::new("c")).await.unwrap().unwrap()["n"],
        1.into(),
        "a retried token applies once"
    );
    let other = TransactWrite::new()
        .op(TransactOp::Update(
            Update::new(&a, Key::new("c")).action(UpdateAction::add("n", 5)),
        ))
        .client_token(&token);
    let err = fx.store.transact_write(other).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Validation { .. }),
        "a token reused for another request: {err:?}"
    );
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}

pub async fn bad_input_is_rejected(fx: &Fixture) {
    let t = fx.sorted_table("bad").await;
    let unknown = fx.name("nosuchtable");
    let err = fx.store.get(&unknown, &Key::new("k")).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::TableNotFound { table } if *table == unknown),
        "{err:?}"
    );
    let err = fx
        .store
        .put(Put::new(&unknown, item(&[("pk", "k".into())])))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::TableNotFound { .. }), "{err:?}");
    let err = fx
        .store
        .get(&t, &Key::with_sort("", "s"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { name, message } if name == "pk" && message.contains("empty")),
        "{err:?}"
    );
    let err = fx
        .store
        .get(&t, &Key::with_sort("p", "x".repeat(1025)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { name, message } if name == "sk" && message.contains("1025 bytes")),
        "{err:?}"
    );
    let err = fx
        .store
        .get(&t, &Key::with_sort("x".repeat(2049), "s"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { name, .. } if name == "pk"),
        "{err:?}"
    );
    let err = fx.store.get(&t, &Key::new("p")).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { name, .. } if name == "sk"),
        "missing sort key: {err:?}"
    );
    let err = fx
        .store
        .get(&t, &Key::with_sort(vec![1u8], "s"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { name, .. } if name == "pk"),
        "wrong key type: {err:?}"
    );
    let err = fx
        .store
        .put(Put::new(&t, item(&[("pk", "p".into())])))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { name, .. } if name == "sk"),
        "item without sort key: {err:?}"
    );
    let err = fx
        .store
        .put(Put::new(&t, item(&[("pk", 5.into()), ("sk", "s".into())])))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { name, .. } if name == "pk"),
        "numeric key: {err:?}"
    );
    let err = fx
        .store
        .create_table(&TableSpec::new("a b", "pk"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { name, .. } if name == "a b"),
        "{err:?}"
    );
    let err = fx
        .store
        .create_table(&TableSpec::new("ab", "pk"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Validation { name, .. } if name == "ab"),
        "{err:?}"
    );
    assert!(
        fx.store.scan_all(&t).await.unwrap().is_empty(),
        "no partial state"
    );
}

pub async fn names_with_any_characters(fx: &Fixture) {
    let t = fx.table("names-with.dots_and-dashes").await;
    let weird = ["a-b", "a.b", "with space", "#hash", ":colon", "ünï", "x[0]"];
    let mut it = item(&[("pk", "k-1.2".into()), ("m", AttrValue::M(BTreeMap::new()))]);
    for (i, n) in weird.iter().enumerate() {
        it.insert(n.to_string(), i.into());
    }
    fx.store.put(Put::new(&t, it.clone())).await.unwrap();
    for n in weird {
        fx.store
            .update(
                Update::new(&t, Key::new("k-1.2"))
                    .action(UpdateAction::add(Path::attr(n), 100))
                    .action(UpdateAction::set_map_entry("m", n, n))
                    .condition(
                        Condition::exists(Path::attr(n))
                            .and(Condition::map_entry_not_exists("m", n)),
                    ),
            )
            .await
            .unwrap();
    }
    let got = fx.store.get(&t, &Key::new("k-1.2")).await.unwrap().unwrap();
    for (i, n) in weird.iter().enumerate() {
        assert_eq!(got[*n], (100 + i as i64).into(), "attribute {n:?}");
        assert_eq!(
            got["m"].as_m().unwrap()[*n],
            AttrValue::S(n.to_string()),
            "map key {n:?}"
        );
    }
}

pub async fn binary_keys(fx: &Fixture) {
    let name = fx.name("bin");
    let spec = TableSpec::new(&name, "pk")
        .with_sort_key("sk")
        .with_key_types(KeyType::B, Some(KeyType::B));
    fx.store.create_table(&spec).await.unwrap();
    for s in [vec![2u8], vec![0u8, 255], vec![255u8], vec![0u8, 1]] {
        fx.store
            .put(Put::new(
                &name,
                item(&[("pk", AttrValue::B(vec![9])), ("sk", AttrValue::B(s))]),
            ))
            .await
            .unwrap();
    }
    let got: Vec<Vec<u8>> = fx
        .store
        .query_all(Query::new(&name, vec![9u8]).sort_prefix(vec![0u8]))
        .await
        .unwrap()
        .iter()
        .map(|i| i["sk"].as_b().unwrap().to_vec())
        .collect();
    assert_eq!(
        got,
        vec![vec![0u8, 1], vec![0u8, 255]],
        "unsigned byte order"
    );
}

pub async fn concurrent_compare_and_set(fx: &Fixture) {
    let t = fx.table("cas").await;
    fx.store
        .put(Put::new(&t, item(&[("pk", "ctr".into()), ("n", 0.into())])))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = fx.store.clone();
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let mut successes = 0u64;
            let mut failures = 0u64;
            for _ in 0..15 {
                let cur = store.get(&t, &Key::new("ctr")).await.unwrap().unwrap()["n"]
                    .as_i64()
                    .unwrap();
                match store
                    .update(
                        Update::new(&t, Key::new("ctr"))
                            .action(UpdateAction::set("n", cur + 1))
                            .condition(Condition::eq("n", cur)),
                    )
                    .await
                {
                    Ok(_) => successes += 1,
                    Err(e) if e.is_condition_failed() => failures += 1,
                    Err(e) => panic!("unexpected error {e:?}"),
                }
            }
            (successes, failures)
        }));
    }
    let mut total = 0;
    let mut lost = 0;
    for t in tasks {
        let (s, f) = t.await.unwrap();
        total += s;
        lost += f;
    }
    let n = fx.store.get(&t, &Key::new("ctr")).await.unwrap().unwrap()["n"]
        .as_i64()
        .unwrap();
    assert_eq!(
        n as u64, total,
        "final value = number of successful compare-and-sets"
    );
    assert_eq!(total + lost, 16 * 15);
    assert!(total > 0);
}
