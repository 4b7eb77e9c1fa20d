//! The inspector CLI (feature `cli`): a transaction crashed while holding a lock shows up as
//! a running instance, a held lock and a partial step log; `rerun` (with the application's
//! runtime) finishes it and frees the lock; every listing has `--json`; the `beldi` binary
//! says what is wrong with a wrong path, an empty store, an unknown instance or function.

#![cfg(feature = "cli")]

use std::process::Command;
use std::sync::Arc;

use beldi::cli::{Cli, CliError};
use beldi::inspect::InspectError;
use beldi::prelude::*;
use clap::Parser;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug)]
pub enum Op {
    Add(String, i64),
}

#[beldi::function(tables = ["accounts"])]
pub async fn ledger(ctx: &Ctx, op: Op) -> Result<i64, UserError> {
    let Op::Add(acct, amount) = op;
    let bal: i64 = ctx.read_as("accounts", &acct).await?.unwrap_or(0);
    ctx.write_as("accounts", &acct, &(bal + amount)).await?;
    Ok(bal + amount)
}

/// Adds `amount` to `acct` inside a transaction, then logs a side effect.
#[beldi::function]
pub async fn deposit(ctx: &Ctx, amount: i64) -> Result<i64, UserError> {
    let out: Result<i64, UserError> = #[beldi::txn]
    {
        let v = ledger.call(ctx, &Op::Add("acct1".into(), amount)).await??;
        Ok(v)
    };
    let stamp: u64 = ctx.side_effect(|| 7).await?;
    Ok(out? + stamp as i64 - 7)
}

async fn cli(args: &[&str], rt: Option<&Runtime>) -> Result<String, CliError> {
    let cli = Cli::try_parse_from(std::iter::once("beldi").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let mut out = Vec::new();
    beldi::cli::run(&cli, rt, &mut out).await?;
    Ok(String::from_utf8(out).unwrap())
}

/// `args` after the store options `at`.
fn with<'a>(at: &'a [String], args: &[&'a str]) -> Vec<&'a str> {
    at.iter()
        .map(String::as_str)
        .chain(args.iter().copied())
        .collect()
}

async fn json(args: &[&str], at: &[String]) -> serde_json::Value {
    let mut all = with(at, &["--json"]);
    all.extend(args);
    serde_json::from_str(&cli(&all, None).await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_transaction_is_seen_then_rerun_and_its_lock_freed() {
    let tmp = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(tmp.path()).unwrap());
    let at = [
        "--data-dir".to_owned(),
        tmp.path().to_str().unwrap().to_owned(),
    ];
    crashed_transaction(store, &at, "").await;
}

#[cfg(feature = "dynamodb")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crashed_transaction_is_seen_then_rerun_and_its_lock_freed_on_dynamodb() {
    let Ok(endpoint) = std::env::var("BELDI_DYNAMODB_ENDPOINT") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "BELDI_DYNAMODB_ENDPOINT must be set under CI=true: run the tests with scripts/test.sh"
            );
        }
        eprintln!("SKIPPED: set BELDI_DYNAMODB_ENDPOINT (scripts/dynamodb-local.sh start)");
        return;
    };
    let store: Arc<dyn Store> = Arc::new(beldi::dynamodb::DynamoDbStore::local(&endpoint).await);
    let ns = format!("cli{}_", std::process::id());
    let at = [
        "--endpoint".to_owned(),
        endpoint,
        "--namespace".to_owned(),
        ns.clone(),
    ];
    crashed_transaction(store, &at, &ns).await;
}

/// The scenario on `store`, which the inspector reaches with the options `at`.
async fn crashed_transaction(store: Arc<dyn Store>, at: &[String], namespace: &str) {
    let config = RuntimeConfig {
        namespace: namespace.to_owned(),
        ..Default::default()
    };
    let rt = Runtime::with_config(store, config).unwrap();
    rt.register_all().unwrap();
    rt.provision().await.unwrap();

    // Learn deposit's steps from a clean run: the call inside the transaction.
    rt.start_trace();
    let r: Result<i64, UserError> = deposit.invoke(&rt, "d1", &5).await.unwrap();
    assert_eq!(r, Ok(5));
    let trace = rt.take_trace();
    let ops = &trace
        .iter()
        .find(|t| t.function == "deposit" && t.instance == "d1")
        .unwrap()
        .ops;
    let call = ops
        .iter()
        .find(|(_, k)| k.as_str() == "call")
        .map(|(s, _)| *s)
        .unwrap();

    // d2 crashes right after its call: the callee holds the lock, nobody finishes it.
    let crashed = deposit
        .invoke_with(
            &rt,
            "d2",
            &10,
            FaultPlan::crash_instance("d2", CrashPoint::After(call)),
            0,
        )
        .await;
    assert!(
        matches!(crashed, Err(BeldiError::Crashed { .. })),
        "{crashed:?}"
    );

    let running = json(&["instances", "--state", "running"], at).await;
    let running: Vec<(&str, &str)> = running
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["function"].as_str().unwrap(),
                s["instance"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(running.contains(&("deposit", "d2")), "{running:?}");
    let locks = json(&["locks"], at).await;
    let locks = locks.as_array().unwrap();
    assert_eq!(locks.len(), 1, "{locks:?}");
    assert_eq!(
        (&locks[0]["function"], &locks[0]["table"], &locks[0]["key"]),
        (&"ledger".into(), &"accounts".into(), &"acct1".into())
    );
    assert_eq!(locks[0]["coordinator"]["instance"], "d2");
    assert!(locks[0]["held_ms"].as_i64().unwrap() >= 0);
    let text = cli(&with(at, &["locks"]), None).await.unwrap();
    assert!(
        text.contains("acct1") && text.contains("deposit/d2"),
        "{text}"
    );

    let shown = json(&["show", "deposit", "d2"], at).await;
    let kinds: Vec<&str> = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["txn_begin", "call"], "the log stops at the crash");
    assert_eq!(shown["summary"]["state"], "running");
    assert_eq!(shown["calls"]["calls"][0]["function"], "ledger");
    let text = cli(&with(at, &["show", "deposit", "d2"]), None)
        .await
        .unwrap();
    assert!(
        text.contains("(not finished)") && text.contains("txn_begin"),
        "{text}"
    );

    // The binary has no code to run: it says so, and what to do instead.
    let err = cli(&with(at, &["rerun", "deposit", "d2"]), None)
        .await
        .unwrap_err();
    assert!(matches!(err, CliError::NeedsRuntime("rerun")), "{err}");
    assert_eq!(err.exit_code(), 2);

    // With the application's runtime it re-runs d2, which commits and frees the lock.
    let said = cli(&["rerun", "deposit", "d2"], Some(&rt)).await.unwrap();
    assert_eq!(said, "re-ran `deposit` instance `d2`: it finished\n");
    assert_eq!(json(&["locks"], at).await, serde_json::json!([]));
    assert_eq!(
        cli(&with(at, &["instances", "--state", "running"]), None)
            .await
            .unwrap(),
        "no instances match\n"
    );
    let shown = json(&["show", "deposit", "d2"], at).await;
    assert_eq!(
        shown["summary"]["result"],
        serde_json::json!({"kind": "ok", "value": 15})
    );
    let said = cli(&["rerun", "deposit", "d2"], Some(&rt)).await.unwrap();
    assert!(said.contains("is done: nothing to re-run"), "{said}");

    // The listings as JSON, against what the inspector holds.
    let stats = json(&["stats"], at).await;
    let deposit_stats = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == "deposit")
        .unwrap();
    assert_eq!(deposit_stats["instances"]["done"], 2);
    assert!(deposit_stats["log_items"].as_u64().unwrap() >= 6);
    let ledger_stats = stats
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == "ledger")
        .unwrap();
    assert_eq!(ledger_stats["tables"][0]["keys"], 1);
    let functions = json(&["functions"], at).await;
    assert_eq!(
        functions,
        serde_json::json!([
            {"name": "deposit", "tables": []},
            {"name": "ledger", "tables": ["accounts"]}
        ])
    );
    let collect = cli(&["--json", "collect"], Some(&rt)).await.unwrap();
    let collect: serde_json::Value = serde_json::from_str(&collect).unwrap();
    assert_eq!(collect["pending"], 0);
    let gc = cli(&["--json", "gc"], Some(&rt)).await.unwrap();
    let gc: serde_json::Value = serde_json::from_str(&gc).unwrap();
    assert_eq!(gc["instances"], 0, "nothing is old enough to collect: {gc}");
}

#[tokio::test]
async fn bad_input_gets_a_message_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let err = cli(
        &["--data-dir", missing.to_str().unwrap(), "instances"],
        None,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("no such directory"), "{err}");
    let err = cli(
        &["--data-dir", tmp.path().to_str().unwrap(), "instances"],
        None,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("holds no `beldi.sqlite3`"),
        "{err}"
    );
    assert!(
        !tmp.path().join("beldi.sqlite3").exists(),
        "the inspector creates no store"
    );

    // An empty store, then one with a function: unknown function, instance, state.
    let store: Arc<dyn Store> = Arc::new(EmbeddedStore::open(tmp.path()).unwrap());
    let dir = tmp.path().to_str().unwrap();
    let err = cli(&["--data-dir", dir, "stats"], None).await.unwrap_err();
    assert!(
        matches!(err, CliError::Inspect(InspectError::Empty { .. })),
        "{err}"
    );
    let rt = Runtime::new(store);
    rt.register_all().unwrap();
    rt.provision().await.unwrap();
    let err = cli(&["--data-dir", dir, "show", "ledger", "x"], None)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "function `ledger` has no instance `x`");
    let err = cli(&["--data-dir", dir, "instances", "-f", "nope"], None)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no function `nope` in this store (functions: deposit, ledger)"
    );
    let err = cli(&["--data-dir", dir, "instances", "-s", "asleep"], None)
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    let err = cli(&["instances"], None).await.unwrap_err();
    assert!(err.to_string().contains("which store?"), "{err}");

    // The binary prints the message and exits 1 (2 for a usage mistake).
    let out = Command::new(env!("CARGO_BIN_EXE_beldi"))
        .args(["--data-dir", dir, "show", "ledger", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "beldi: function `ledger` has no instance `x`\n"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_beldi"))
        .args(["--data-dir", dir, "--json", "functions"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f[1]["name"], "ledger");
}
