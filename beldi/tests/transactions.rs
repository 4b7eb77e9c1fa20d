//! Transactions across functions, written with the macros: a bank transfer between two
//! banks under random crashes, the crash-point explorer over a three-participant transaction
//! (commit and abort), deadlocks under wait-die, opacity, and regression tests for the
//! prototype's transaction defects.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use beldi::prelude::*;
use beldi::store::AttrValue;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Op {
    Debit(String, i64),
    Credit(String, i64),
    Get(String),
}

/// One bank's part of a transfer (the same code serves both banks).
#[beldi::deterministic]
async fn apply(ctx: &Ctx, op: Op) -> Result<i64, UserError> {
    match op {
        Op::Debit(acct, amount) => {
            let bal: i64 = ctx.read_as("accounts", &acct).await?.unwrap_or(0);
            if bal < amount {
                return Ok(-1);
            }
            ctx.write_as("accounts", &acct, &(bal - amount)).await?;
            Ok(bal - amount)
        }
        Op::Credit(acct, amount) => {
            let bal: i64 = ctx.read_as("accounts", &acct).await?.unwrap_or(0);
            ctx.write_as("accounts", &acct, &(bal + amount)).await?;
            Ok(bal + amount)
        }
        Op::Get(acct) => Ok(ctx.read_as("accounts", &acct).await?.unwrap_or(0)),
    }
}

#[beldi::function(tables = ["accounts"])]
pub async fn bank_a(ctx: &Ctx, op: Op) -> Result<i64, UserError> {
    apply(ctx, op).await
}

#[beldi::function(tables = ["accounts"])]
pub async fn bank_b(ctx: &Ctx, op: Op) -> Result<i64, UserError> {
    apply(ctx, op).await
}

async fn at_bank(ctx: &Ctx, acct: &str, op: Op) -> Result<i64, UserError> {
    if acct.starts_with('a') {
        bank_a.call(ctx, &op).await?
    } else {
        bank_b.call(ctx, &op).await?
    }
}

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Transfer {
    pub from: String,
    pub to: String,
    pub amount: i64,
}

/// Moves money between accounts of either bank, atomically; `Ok(false)` when funds are
/// short (the transaction aborted).
#[beldi::function]
pub async fn transfer(ctx: &Ctx, t: Transfer) -> Result<bool, UserError> {
    let done: Result<(), UserError> = #[beldi::txn(retries = 500)]
    {
        if at_bank(ctx, &t.from, Op::Debit(t.from.clone(), t.amount)).await? < 0 {
            return Err(UserError("insufficient funds".into()));
        }
        at_bank(ctx, &t.to, Op::Credit(t.to.clone(), t.amount)).await?;
        Ok(())
    };
    match done {
        Ok(()) => Ok(true),
        Err(e) if e.0 == "insufficient funds" => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads several accounts inside one transaction: must always see a consistent total.
#[beldi::function]
pub async fn audit(ctx: &Ctx, accounts: Vec<String>) -> Result<i64, UserError> {
    let sum: Result<i64, UserError> = #[beldi::txn(retries = 500)]
    {
        let mut total = 0;
        for a in &accounts {
            total += at_bank(ctx, a, Op::Get(a.clone())).await?;
        }
        Ok(total)
    };
    sum
}

fn accounts() -> Vec<String> {
    (0..10)
        .map(|i| format!("a{i}"))
        .chain((0..10).map(|i| format!("b{i}")))
        .collect()
}

async fn runtime_on(store: Arc<dyn Store>, namespace: String) -> Runtime {
    let rt = Runtime::with_config(
        store,
        RuntimeConfig {
            namespace,
            ..Default::default()
        },
    )
    .unwrap();
    rt.register_all().unwrap();
    rt.provision().await.unwrap();
    for acct in accounts() {
        let f = if acct.starts_with('a') {
            "bank_a"
        } else {
            "bank_b"
        };
        let t = rt.tables(f).unwrap().data("accounts").unwrap();
        let v = beldi::value::to_attr(&100i64, "seed").unwrap();
        beldi_runtime::__internals::Daal::new(&**rt.store(), &t, rt.config().row_capacity)
            .write(
                &acct,
                "seed#0",
                beldi_runtime::__internals::Entry::Write,
                &[UpdateAction::set("V", v)],
                None,
            )
            .await
            .unwrap();
    }
    rt
}

async fn embedded(dir: &std::path::Path) -> Runtime {
    let opts = EmbeddedOptions {
        durability: Durability::ProcessCrash,
        ..Default::default()
    };
    runtime_on(
        Arc::new(EmbeddedStore::open_with(dir, opts).unwrap()),
        String::new(),
    )
    .await
}

async fn balances(rt: &Runtime) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for f in ["bank_a", "bank_b"] {
        for (k, v) in beldi::explorer::current_values(rt, f, "accounts")
            .await
            .unwrap()
        {
            out.insert(k, v.as_i64().unwrap());
        }
    }
    out
}

/// No lock held on any tail row, and no buffered write left, in any function.
async fn no_locks_left(rt: &Runtime) -> Result<(), String> {
    for f in rt.function_names() {
        let tables = rt.tables(&f).map_err(|e| e.to_string())?;
        for t in tables.data_tables() {
            let data = tables.data(t).map_err(|e| e.to_string())?;
            let daal = beldi_runtime::__internals::Daal::new(
                &**rt.store(),
                &data,
                rt.config().row_capacity,
            );
            for (k, row) in daal.tails().await.map_err(|e| e.to_string())? {
                if let Some(h) = row.holder() {
                    return Err(format!("{f}/{t}/{k} still locked by {h:?}"));
                }
            }
        }
        let shadow = beldi::data::open_transaction_items(rt, &f)
            .await
            .map_err(|e| e.to_string())?;
        if !shadow.is_empty() {
            return Err(format!("{f}: {} buffered entries left", shadow.len()));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bank_transfers_under_random_crashes_keep_money_constant() {
    let dir = tempfile::tempdir().unwrap();
    let rt = embedded(dir.path()).await;
    let n = 1000;
    let accts = accounts();
    let transfers: Vec<Transfer> = (0..n)
        .map(|i| {
            let x = (i * 7919 + 13) % 20;
            let y = (i * 104729 + 7) % 19;
            let y = if y >= x { y + 1 } else { y };
            Transfer {
                from: accts[x].clone(),
                to: accts[y].clone(),
                amount: 1 + (i as i64 * 31) % 60,
            }
        })
        .collect();
    let crashes = Arc::new(AtomicUsize::new(0));
    let sem = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = Vec::new();
    for (i, t) in transfers.iter().cloned().enumerate() {
        let (rt, sem, crashes) = (rt.clone(), sem.clone(), crashes.clone());
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let input = beldi::value::to_attr(&t, "t").unwrap();
            let mut last = String::new();
            for attempt in 0..200 {
                // Crashes in the first executions of every transfer; later ones run clean, so
                // long retried transactions finish.
                let plan = if attempt < 4 {
                    FaultPlan::random(99, 0.01)
                } else {
                    FaultPlan::none()
                };
                match rt
                    .execute("transfer", &format!("tx{i}"), input.clone(), plan, attempt)
                    .await
                {
                    Ok(e) => {
                        return beldi::inspect::decode_result::<bool, UserError>(
                            "transfer",
                            &format!("tx{i}"),
                            &e.result,
                        )
                        .unwrap();
                    }
                    Err(e @ BeldiError::Crashed { .. }) => {
                        crashes.fetch_add(1, Ordering::SeqCst);
                        last = e.to_string();
                    }
                    Err(e) => panic!("transfer {i}: {e}"),
                }
            }
            panic!("transfer {i} never finished: {last}");
        }));
    }
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    assert_eq!(beldi::explorer::quiesce(&rt, 20).await.unwrap(), 0);
    let finals = balances(&rt).await;
    let mut expected: BTreeMap<String, i64> = accts.iter().map(|a| (a.clone(), 100)).collect();
    let (mut committed, mut short, mut aborted) = (0, 0, 0);
    for (t, o) in transfers.iter().zip(&outcomes) {
        match o {
            Ok(true) => {
                committed += 1;
                *expected.get_mut(&t.from).unwrap() -= t.amount;
                *expected.get_mut(&t.to).unwrap() += t.amount;
            }
            Ok(false) => short += 1,
            Err(_) => aborted += 1,
        }
    }
    println!(
        "bank: {n} transfers, {committed} committed, {short} short of funds, {aborted} aborted by wait-die, {} crashes injected",
        crashes.load(Ordering::SeqCst)
    );
    assert_eq!(finals.values().sum::<i64>(), 2000, "money is conserved");
    assert!(
        finals.values().all(|b| *b >= 0),
        "no account negative: {finals:?}"
    );
    assert_eq!(
        finals, expected,
        "every committed transfer applied exactly once, every other not at all"
    );
    assert!(crashes.load(Ordering::SeqCst) > 50);
    assert!(committed > n / 2);
    no_locks_left(&rt).await.unwrap();
    let open = beldi::explorer::unfinished(&rt).await.unwrap();
    assert!(
        open.is_empty(),
        "every instance, died participants included, is done: {open:?}"
    );
}

/// Three participants; `fail` makes the last one refuse, so the transaction aborts.
#[beldi::function(tables = ["p"])]
pub async fn part_one(ctx: &Ctx, v: i64) -> Result<bool, UserError> {
    ctx.write_as("p", "k", &v).await?;
    Ok(true)
}
#[beldi::function(tables = ["p"])]
pub async fn part_two(ctx: &Ctx, v: i64) -> Result<bool, UserError> {
    let old: i64 = ctx.read_as("p", "k").await?.unwrap_or(0);
    ctx.write_as("p", "k", &(old + v)).await?;
    Ok(true)
}
#[beldi::function(tables = ["p"])]
pub async fn part_three(ctx: &Ctx, v: i64) -> Result<bool, UserError> {
    let _seen: Option<i64> = ctx.read_as("p", "guard").await?;
    if v < 0 {
        return Ok(false);
    }
    ctx.write_as("p", "k-with-dashes.and.dots", &v).await?;
    Ok(true)
}

#[beldi::function]
pub async fn three_way(ctx: &Ctx, v: i64) -> Result<bool, UserError> {
    let r: Result<(), UserError> = #[beldi::txn]
    {
        part_one.call(ctx, &v).await??;
        part_two.call(ctx, &v).await??;
        part_two.call(ctx, &1).await??; // the same function twice: both writes commit
        if !part_three.call(ctx, &v).await?? {
            return Err(UserError("refused".into()));
        }
        Ok(())
    };
    Ok(r.is_ok())
}

async fn check_three(rt: &Runtime, v: i64) -> Result<(), String> {
    let get = async |f: &str, k: &str| {
        beldi::explorer::current_value(rt, f, "p", k)
            .await
            .map_err(|e| e.to_string())
    };
    let want: [(&str, &str, Option<AttrValue>); 3] = if v >= 0 {
        [
            ("part_one", "k", Some(v.into())),
            ("part_two", "k", Some((v + 1).into())),
            ("part_three", "k-with-dashes.and.dots", Some(v.into())),
        ]
    } else {
        [
            ("part_one", "k", None),
            ("part_two", "k", None),
            ("part_three", "k-with-dashes.and.dots", None),
        ]
    };
    for (f, k, w) in want {
        let got = get(f, k).await?;
        if got != w {
            return Err(format!("{f}/{k} = {got:?}, expected {w:?}"));
        }
    }
    no_locks_left(rt).await
}

async fn explore_three(
    make_store: impl AsyncFn(usize) -> (Arc<dyn Store>, String),
    v: i64,
    label: &str,
) {
    let n = AtomicUsize::new(0);
    let report = beldi::explorer::explore(
        "three_way",
        &v,
        async || {
            let (store, ns) = make_store(n.fetch_add(1, Ordering::SeqCst)).await;
            Ok(runtime_on(store, ns).await)
        },
        async |rt: &Runtime| check_three(rt, v).await,
    )
    .await
    .unwrap();
    println!(
        "[{label}] three-participant transaction ({}): {} instances, {} crash points, {} violations",
        if v >= 0 { "commit" } else { "abort" },
        report.instances,
        report.crash_points,
        report.failures.len()
    );
    assert!(report.failures.is_empty(), "{:#?}", report.failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn explorer_over_a_three_participant_transaction() {
    let base = tempfile::tempdir().unwrap();
    for v in [5, -5] {
        let make = async |i: usize| -> (Arc<dyn Store>, String) {
            let opts = EmbeddedOptions {
                durability: Durability::ProcessCrash,
                ..Default::default()
            };
            let s: Arc<dyn Store> = Arc::new(
                EmbeddedStore::open_with(base.path().join(format!("{v}_{i}")), opts).unwrap(),
            );
            (s, String::new())
        };
        explore_three(make, v, "embedded").await;
    }
}

#[cfg(feature = "dynamodb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn explorer_over_a_three_participant_transaction_on_dynamodb() {
    let Some(endpoint) = beldi::dynamodb::test_endpoint() else {
        return;
    };
    let store: Arc<dyn Store> = Arc::new(beldi::dynamodb::DynamoDbStore::local(endpoint).await);
    let run = format!(
        "x{}{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let make =
        async |i: usize| -> (Arc<dyn Store>, String) { (store.clone(), format!("{run}_{i}_")) };
    explore_three(make, 5, "dynamodb").await;
    let make =
        async |i: usize| -> (Arc<dyn Store>, String) { (store.clone(), format!("{run}_ab{i}_")) };
    explore_three(make, -5, "dynamodb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opposite_lock_orders_always_finish() {
    let dir = tempfile::tempdir().unwrap();
    let rt = embedded(dir.path()).await;
    for round in 0..20 {
        let t1 = Transfer {
            from: "a0".into(),
            to: "b0".into(),
            amount: 3,
        };
        let t2 = Transfer {
            from: "b0".into(),
            to: "a0".into(),
            amount: 5,
        };
        let (k1, k2) = (format!("fwd{round}"), format!("back{round}"));
        let (r1, r2) = tokio::join!(
            transfer.invoke(&rt, &k1, &t1),
            transfer.invoke(&rt, &k2, &t2)
        );
        assert_eq!(
            (r1.unwrap(), r2.unwrap()),
            (Ok(true), Ok(true)),
            "round {round}: both finish"
        );
    }
    let b = balances(&rt).await;
    assert_eq!((b["a0"], b["b0"]), (100 + 20 * 2, 100 - 20 * 2));
    no_locks_left(&rt).await.unwrap();
}

/// `transfer` as a whole-function transaction: `#[beldi::txn(retries = N)]` on the function
/// instead of on a block; `Err` (funds short) aborts it.
#[beldi::txn(retries = 500)]
#[beldi::function]
pub async fn transfer_whole(ctx: &Ctx, t: Transfer) -> Result<(), UserError> {
    if at_bank(ctx, &t.from, Op::Debit(t.from.clone(), t.amount)).await? < 0 {
        return Err(UserError("insufficient funds".into()));
    }
    at_bank(ctx, &t.to, Op::Credit(t.to.clone(), t.amount)).await?;
    Ok(())
}

/// `opposite_lock_orders_always_finish` with the retries on a whole-function transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn opposite_lock_orders_always_finish_with_function_level_retries() {
    let dir = tempfile::tempdir().unwrap();
    let rt = embedded(dir.path()).await;
    for round in 0..20 {
        let t1 = Transfer {
            from: "a0".into(),
            to: "b0".into(),
            amount: 3,
        };
        let t2 = Transfer {
            from: "b0".into(),
            to: "a0".into(),
            amount: 5,
        };
        let (k1, k2) = (format!("fwd{round}"), format!("back{round}"));
        let (r1, r2) = tokio::join!(
            transfer_whole.invoke(&rt, &k1, &t1),
            transfer_whole.invoke(&rt, &k2, &t2)
        );
        assert_eq!(
            (r1.unwrap(), r2.unwrap()),
            (Ok(()), Ok(())),
            "round {round}: both finish"
        );
    }
    let b = balances(&rt).await;
    assert_eq!((b["a0"], b["b0"]), (100 + 20 * 2, 100 - 20 * 2));
    no_locks_left(&rt).await.unwrap();
}

/// How many times `hot_retried`'s body ran: once per attempt of its transaction.
static HOT_RETRIED_RUNS: AtomicUsize = AtomicUsize::new(0);
/// How many times `hot_once`'s body ran.
static HOT_ONCE_RUNS: AtomicUsize = AtomicUsize::new(0);

/// Writes `hot` in a whole-function transaction that runs again after a wait-die death.
#[beldi::txn(retries = 500)]
#[beldi::function(tables = ["h"])]
pub async fn hot_retried(ctx: &Ctx, v: i64) -> Result<i64, UserError> {
    #[beldi::allow(side_effect)]
    let _run = HOT_RETRIED_RUNS.fetch_add(1, Ordering::SeqCst);
    ctx.write_as("h", "hot", &v).await?;
    Ok(v)
}

/// `hot_retried` without retries.
#[beldi::txn]
#[beldi::function(tables = ["h"])]
pub async fn hot_once(ctx: &Ctx, v: i64) -> Result<i64, UserError> {
    #[beldi::allow(side_effect)]
    let _run = HOT_ONCE_RUNS.fetch_add(1, Ordering::SeqCst);
    ctx.write_as("h", "hot", &v).await?;
    Ok(v)
}

/// Sets (`Some`: the holder's id) or clears the lock of `function`'s key `h/hot` by hand.
async fn set_hot_lock(rt: &Runtime, function: &str, holder: Option<&str>) {
    let t = rt.tables(function).unwrap().data("h").unwrap();
    let daal = beldi_runtime::__internals::Daal::new(&**rt.store(), &t, rt.config().row_capacity);
    let (entry, actions) = match holder {
        // The holder (`H`) started 1 ms after the epoch (`HT`): older than any transaction
        // the test begins.
        Some(h) => (
            "hold#0",
            vec![UpdateAction::set("H", h), UpdateAction::set("HT", 1)],
        ),
        None => (
            "release#0",
            vec![UpdateAction::remove("H"), UpdateAction::remove("HT")],
        ),
    };
    daal.write(
        "hot",
        entry,
        beldi_runtime::__internals::Entry::Write,
        &actions,
        None,
    )
    .await
    .unwrap();
}

/// A `#[beldi::txn(retries = N)]` function whose transaction dies under wait-die (an older
/// transaction holds its key) runs its body again, and commits once the key is free;
/// without `retries`, the first death is its result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_level_transaction_retries_after_a_wait_die_death() {
    let dir = tempfile::tempdir().unwrap();
    let rt = embedded(dir.path()).await;
    set_hot_lock(&rt, "hot_once", Some("older")).await;
    set_hot_lock(&rt, "hot_retried", Some("older")).await;

    let out = hot_once.invoke(&rt, "once", &1).await.unwrap();
    let err = out.expect_err("no retries: the death is the result");
    assert!(
        err.0.contains("wait-die") && err.0.contains("older"),
        "died under wait-die: {err:?}"
    );
    assert_eq!(HOT_ONCE_RUNS.load(Ordering::SeqCst), 1, "one attempt");

    let run = tokio::spawn({
        let rt = rt.clone();
        async move { hot_retried.invoke(&rt, "retried", &7).await }
    });
    let waited = std::time::Instant::now();
    while HOT_RETRIED_RUNS.load(Ordering::SeqCst) < 3 {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(20),
            "the transaction is not retried"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    set_hot_lock(&rt, "hot_retried", None).await;
    assert_eq!(run.await.unwrap().unwrap(), Ok(7));
    assert!(HOT_RETRIED_RUNS.load(Ordering::SeqCst) >= 3);
    assert_eq!(
        beldi::explorer::current_value(&rt, "hot_retried", "h", "hot")
            .await
            .unwrap(),
        Some(7.into()),
        "the last attempt committed"
    );
    set_hot_lock(&rt, "hot_once", None).await;
    no_locks_left(&rt).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundred_concurrent_transactions_finish_and_audits_see_consistent_totals() {
    let dir = tempfile::tempdir().unwrap();
    let rt = embedded(dir.path()).await;
    let hot: Vec<String> = ["a1", "a2", "a3", "b1", "b2", "b3"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut tasks = Vec::new();
    for i in 0..100usize {
        let (rt, hot) = (rt.clone(), hot.clone());
        tasks.push(tokio::spawn(async move {
            if i % 4 == 3 {
                (
                    None,
                    Some(audit.invoke(&rt, &format!("audit{i}"), &hot).await.unwrap()),
                )
            } else {
                let (x, y) = (i % 6, (i * 5 + 1) % 6);
                let y = if x == y { (y + 1) % 6 } else { y };
                let t = Transfer {
                    from: hot[x].clone(),
                    to: hot[y].clone(),
                    amount: 1 + (i as i64 % 9),
                };
                (
                    Some(transfer.invoke(&rt, &format!("t{i}"), &t).await.unwrap()),
                    None,
                )
            }
        }));
    }
    let mut audits = 0;
    for t in tasks {
        match t.await.unwrap() {
            (Some(r), _) => assert!(
                r.is_ok(),
                "every transfer finishes with the retry policy: {r:?}"
            ),
            (_, Some(sum)) => {
                assert_eq!(sum, Ok(600), "an audit saw a partial transfer");
                audits += 1;
            }
            _ => unreachable!(),
        }
    }
    assert_eq!(audits, 25);
    let b = balances(&rt).await;
    assert_eq!(hot.iter().map(|a| b[a]).sum::<i64>(), 600);
    no_locks_left(&rt).await.unwrap();
    let open = beldi::explorer::unfinished(&rt).await.unwrap();
    assert!(
        open.is_empty(),
        "every instance, died participants included, is done: {open:?}"
    );
}

/// Regressions of the prototype's transaction defects (DESIGN.md §4).
#[beldi::function(tables = ["r"])]
pub async fn reg_store(ctx: &Ctx, op: (String, String, i64)) -> Result<i64, UserError> {
    let (kind, key, v) = op;
    match kind.as_str() {
        "read" => Ok(ctx.read_as("r", &key).await?.unwrap_or(0)),
        _ => {
            ctx.write_as("r", &key, &v).await?;
            Ok(v)
        }
    }
}

#[beldi::function]
pub async fn reg_txn(ctx: &Ctx, plan: Vec<(String, String, i64)>) -> Result<bool, UserError> {
    let r: Result<(), UserError> = #[beldi::txn]
    {
        for op in &plan {
            if op.0 == "abort" {
                return Err(UserError("abort".into()));
            }
            reg_store.call(ctx, op).await??;
        }
        Ok(())
    };
    Ok(r.is_ok())
}

#[tokio::test]
async fn prototype_defects_stay_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let rt = Runtime::with_config(
        store,
        RuntimeConfig {
            row_capacity: 3,
            ..Default::default()
        },
    )
    .unwrap();
    rt.register_all().unwrap();
    rt.provision().await.unwrap();
    let op = |k: &str, key: &str, v: i64| (k.to_owned(), key.to_owned(), v);
    // Abort released no locks; read-only locks leaked.
    let out = reg_txn
        .invoke(
            &rt,
            "abort",
            &vec![op("write", "w", 1), op("read", "r", 0), op("abort", "", 0)],
        )
        .await
        .unwrap();
    assert_eq!(out, Ok(false));
    no_locks_left(&rt).await.unwrap();
    assert_eq!(
        beldi::explorer::current_value(&rt, "reg_store", "r", "w")
            .await
            .unwrap(),
        None,
        "aborted write invisible"
    );
    let out = reg_txn
        .invoke(&rt, "readonly", &vec![op("read", "r", 0)])
        .await
        .unwrap();
    assert_eq!(out, Ok(true));
    no_locks_left(&rt).await.unwrap();
    // Invoking the same function twice kept both participants' writes; keys with `-`.
    let out = reg_txn
        .invoke(
            &rt,
            "twice",
            &vec![op("write", "x-1", 1), op("write", "y-2-z", 2)],
        )
        .await
        .unwrap();
    assert_eq!(out, Ok(true));
    assert_eq!(
        beldi::explorer::current_value(&rt, "reg_store", "r", "x-1")
            .await
            .unwrap(),
        Some(1.into())
    );
    assert_eq!(
        beldi::explorer::current_value(&rt, "reg_store", "r", "y-2-z")
            .await
            .unwrap(),
        Some(2.into())
    );
    // Row append dropped the lock: hold a lock while plain writes fill rows (capacity 3).
    let t = rt.tables("reg_store").unwrap().data("r").unwrap();
    let daal = beldi_runtime::__internals::Daal::new(&**rt.store(), &t, 3);
    let holder = [
        UpdateAction::set("H", "someone"),
        UpdateAction::set("HT", 1),
    ];
    daal.write(
        "hot",
        "h#0",
        beldi_runtime::__internals::Entry::Write,
        &holder,
        None,
    )
    .await
    .unwrap();
    for i in 1..8 {
        daal.write(
            "hot",
            &format!("h#{i}"),
            beldi_runtime::__internals::Entry::Write,
            &[UpdateAction::set("V", i)],
            None,
        )
        .await
        .unwrap();
    }
    let tail = daal.tail("hot").await.unwrap().unwrap();
    assert!(
        daal.rows("hot").await.unwrap().len() >= 3,
        "rows were appended"
    );
    assert_eq!(
        tail.holder(),
        Some(&AttrValue::S("someone".into())),
        "the lock survived the appends"
    );
    // Failed conditional writes count toward fullness: no row outgrows its capacity.
    for i in 0..10 {
        let never = beldi::store::Condition::eq("V", "never");
        daal.write(
            "cw",
            &format!("c#{i}"),
            beldi_runtime::__internals::Entry::CondWrite(true),
            &[UpdateAction::set("V", 1)],
            Some(&never),
        )
        .await
        .unwrap();
    }
    for r in daal.rows("cw").await.unwrap() {
        assert!(
            r.0["L"].as_m().unwrap().len() <= 3,
            "row {} overfilled",
            r.id()
        );
    }
}
