//! Durability of the embedded store against `kill -9`: a child process streams acknowledged
//! writes, the parent kills it mid-stream, reopens the directory and finds every write the
//! child acknowledged. Run for both durability settings.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use beldi_runtime::embedded::{Durability, EmbeddedOptions, EmbeddedStore};
use beldi_runtime::store::{
    AttrValue, Condition, Item, Key, Path, Put, Store, StoreError, TableSpec, TransactOp,
    TransactWrite, Update, UpdateAction,
};

const DIR_VAR: &str = "BELDI_KILL9_DIR";
const MODE_VAR: &str = "BELDI_KILL9_MODE";

fn options(mode: &str) -> EmbeddedOptions {
    EmbeddedOptions {
        durability: if mode == "fsync" {
            Durability::Fsync
        } else {
            Durability::ProcessCrash
        },
        ..EmbeddedOptions::default()
    }
}

/// The child: writes forever, printing `ack N` after each write is acknowledged.
/// Only runs when spawned by `acknowledged_writes_survive_kill9`.
#[tokio::test]
#[ignore = "helper process of acknowledged_writes_survive_kill9"]
async fn kill9_child_writer() {
    let (Ok(dir), Ok(mode)) = (std::env::var(DIR_VAR), std::env::var(MODE_VAR)) else {
        return;
    };
    let store = EmbeddedStore::open_with(&dir, options(&mode)).unwrap();
    store
        .create_table(&TableSpec::new("acks", "pk"))
        .await
        .unwrap();
    for i in 0u64.. {
        let mut item = Item::new();
        item.insert("pk".into(), AttrValue::S(format!("k{i}")));
        item.insert("payload".into(), AttrValue::S("x".repeat(200)));
        store.put(Put::new("acks", item)).await.unwrap();
        store
            .update(Update::new("acks", Key::new("counter")).action(UpdateAction::add("n", 1)))
            .await
            .unwrap();
        println!("ack {i}");
    }
}

/// This test binary run as the helper process `test` on `dir`, its stdout piped.
fn child(test: &str, dir: &std::path::Path, mode: &str, stderr: Stdio) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_VAR, dir)
        .env(MODE_VAR, mode)
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

fn run_and_kill(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = child("kill9_child_writer", dir.path(), mode, Stdio::null());
    let stdout = child.stdout.take().unwrap();
    let mut last_ack: Option<u64> = None;
    let started = Instant::now();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("ack ") {
            last_ack = Some(n.trim().parse().unwrap());
            // Kill mid-stream, once enough writes were acknowledged.
            if last_ack >= Some(150) || started.elapsed() > Duration::from_secs(20) {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
    }
    child.wait().unwrap();
    let last_ack = last_ack.expect("the child acknowledged no write");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = EmbeddedStore::open_with(dir.path(), options(mode)).unwrap();
        for i in 0..=last_ack {
            assert!(
                store
                    .get("acks", &Key::new(format!("k{i}")))
                    .await
                    .unwrap()
                    .is_some(),
                "{mode}: acknowledged write k{i} lost (last ack {last_ack})"
            );
        }
        let n = store
            .get("acks", &Key::new("counter"))
            .await
            .unwrap()
            .unwrap()["n"]
            .as_i64()
            .unwrap();
        assert!(
            n as u64 > last_ack,
            "{mode}: counter {n} behind the last ack {last_ack}"
        );
        // The store is fully usable after recovery.
        store
            .update(Update::new("acks", Key::new("counter")).action(UpdateAction::add("n", 1)))
            .await
            .unwrap();
        eprintln!(
            "{mode}: killed after ack {last_ack}; all {} acknowledged writes present",
            last_ack + 1
        );
    });
}

#[test]
fn acknowledged_writes_survive_kill9_fsync() {
    run_and_kill("fsync");
}

#[test]
fn acknowledged_writes_survive_kill9_process_crash_mode() {
    run_and_kill("process");
}

#[tokio::test]
async fn reopening_recovers_tables_and_items() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store
            .create_table(&TableSpec::new("kept", "pk").with_sort_key("sk"))
            .await
            .unwrap();
        let mut item = Item::new();
        item.insert("pk".into(), "a".into());
        item.insert("sk".into(), "b".into());
        item.insert("v".into(), 7.into());
        store.put(Put::new("kept", item)).await.unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    assert_eq!(
        store.describe_table("kept").await.unwrap(),
        TableSpec::new("kept", "pk").with_sort_key("sk")
    );
    let got = store
        .get("kept", &Key::with_sort("a", "b"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got["v"], 7.into());
}

#[tokio::test]
async fn two_handles_on_one_directory_share_state() {
    // Two independent opens behave like two processes sharing the database.
    let dir = tempfile::tempdir().unwrap();
    let a = EmbeddedStore::open(dir.path()).unwrap();
    let b = EmbeddedStore::open(dir.path()).unwrap();
    a.create_table(&TableSpec::new("shared", "pk"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for store in [a.clone(), b.clone(), a.clone(), b.clone()] {
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                store
                    .update(Update::new("shared", Key::new("c")).action(UpdateAction::add("n", 1)))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = b.get("shared", &Key::new("c")).await.unwrap().unwrap()["n"]
        .as_i64()
        .unwrap();
    assert_eq!(n, 200);
}

/// Tasks of the group-commit child: each keeps one request in flight at a time.
const GROUP_TASKS: usize = 32;

/// Step `i` of task `t` in the group-commit child: even tasks write a transaction of three
/// items (`a<t>-<i>`, `b<t>-<i>` and the task's counter `c<t>` set to `i + 1` if it is `i`);
/// odd tasks make only the conditional counter update.
fn group_step(t: usize, i: i64) -> TransactWrite {
    let counter = Update::new("groups", Key::new(format!("c{t}")))
        .action(UpdateAction::set("n", i + 1))
        .condition(if i == 0 {
            Condition::not_exists(Path::attr("pk"))
        } else {
            Condition::Eq(Path::attr("n"), i.into())
        });
    let mut tx = TransactWrite::new().op(TransactOp::Update(counter));
    if t.is_multiple_of(2) {
        for side in ["a", "b"] {
            let mut item = Item::new();
            item.insert("pk".into(), AttrValue::S(format!("{side}{t}-{i}")));
            item.insert("v".into(), i.into());
            tx = tx.op(TransactOp::Put(Put::new("groups", item)));
        }
    }
    tx
}

/// The child of the group-commit test: 32 tasks write concurrently, so requests share
/// commits, printing `ack <task> <step>` after each acknowledged one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process of acknowledged_groups_survive_kill9"]
async fn kill9_child_groups() {
    let (Ok(dir), Ok(mode)) = (std::env::var(DIR_VAR), std::env::var(MODE_VAR)) else {
        return;
    };
    let store = EmbeddedStore::open_with(&dir, options(&mode)).unwrap();
    store
        .create_table(&TableSpec::new("groups", "pk"))
        .await
        .unwrap();
    let monitor = store.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let s = monitor.commit_stats();
            println!("groups {} {}", s.groups, s.requests);
        }
    });
    let mut tasks = Vec::new();
    for t in 0..GROUP_TASKS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0i64.. {
                let req = group_step(t, i);
                if t.is_multiple_of(2) {
                    store.transact_write(req).await.unwrap();
                } else if let Some(TransactOp::Update(u)) = req.ops.into_iter().next() {
                    store.update(u).await.unwrap();
                }
                println!("ack {t} {i}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn run_and_kill_groups(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = child("kill9_child_groups", dir.path(), mode, Stdio::null());
    let stdout = child.stdout.take().unwrap();
    let mut acked: Vec<Option<i64>> = vec![None; GROUP_TASKS];
    let mut total = 0;
    let mut groups = (0u64, 0u64);
    let started = Instant::now();
    let mut killed = false;
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        match words.next() {
            Some("ack") => {}
            Some("groups") => {
                let mut n = words.map(|w| w.parse::<u64>().unwrap());
                groups = (n.next().unwrap(), n.next().unwrap());
                continue;
            }
            _ => continue,
        }
        let (Some(t), Some(i)) = (words.next(), words.next()) else {
            continue;
        };
        let (t, i): (usize, i64) = (t.parse().unwrap(), i.parse().unwrap());
        acked[t] = Some(i);
        total += 1;
        // Kill in the middle of many concurrent groups, then read to the end of the pipe:
        // what the child acknowledged before it died is still in it.
        if !killed && (total >= 3000 || started.elapsed() > Duration::from_secs(20)) {
            child.kill().unwrap(); // SIGKILL
            killed = true;
        }
    }
    child.wait().unwrap();
    assert!(
        total > GROUP_TASKS,
        "{mode}: the child acknowledged only {total} writes"
    );
    assert!(
        groups.1 > 2 * groups.0,
        "{mode}: the child's requests did not share commits: {groups:?} (groups, requests)"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = EmbeddedStore::open_with(dir.path(), options(mode)).unwrap();
        let get = |k: String| {
            let store = store.clone();
            async move { store.get("groups", &Key::new(k)).await.unwrap() }
        };
        for (t, last) in acked.iter().enumerate() {
            let n = get(format!("c{t}"))
                .await
                .map_or(0, |c| c["n"].as_i64().unwrap());
            let acked_steps = last.map_or(0, |i| i + 1);
            // Every acknowledged step applied; at most the one in flight besides.
            assert!(
                n == acked_steps || n == acked_steps + 1,
                "{mode}: task {t} acknowledged {acked_steps} steps, its counter is at {n}"
            );
            if t.is_multiple_of(2) {
                // Whole transactions or nothing: the items of every applied step, none of
                // a step not applied.
                for i in 0..n + 2 {
                    let (a, b) = (
                        get(format!("a{t}-{i}")).await,
                        get(format!("b{t}-{i}")).await,
                    );
                    let applied = i < n;
                    assert_eq!(
                        (a.is_some(), b.is_some()),
                        (applied, applied),
                        "{mode}: task {t} step {i} (counter {n}) partly applied"
                    );
                }
            }
        }
        // The store is fully usable after recovery.
        store
            .transact_write(group_step(
                0,
                get("c0".into())
                    .await
                    .map_or(0, |c| c["n"].as_i64().unwrap()),
            ))
            .await
            .unwrap();
        eprintln!(
            "{mode}: killed after {total} acknowledged writes, {} commit groups of {} requests seen",
            groups.0, groups.1
        );
    });
}

#[test]
fn acknowledged_groups_survive_kill9_fsync() {
    run_and_kill_groups("fsync");
}

#[test]
fn acknowledged_groups_survive_kill9_process_crash_mode() {
    run_and_kill_groups("process");
}

/// Two OS processes on one directory, each with many concurrent writers, increment shared
/// counters by read-modify-write under a condition: no increment is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process of two_processes_share_one_directory"]
async fn shared_dir_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let store = EmbeddedStore::open(&dir).unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let key = Key::new(format!("k{}", t % 4));
            for _ in 0..25 {
                loop {
                    let cur = store.get("shared", &key).await.unwrap();
                    let n = cur.as_ref().map_or(0, |c| c["n"].as_i64().unwrap());
                    let up = Update::new("shared", key.clone())
                        .action(UpdateAction::set("n", n + 1))
                        .condition(match cur {
                            None => Condition::not_exists(Path::attr("pk")),
                            Some(_) => Condition::Eq(Path::attr("n"), n.into()),
                        });
                    match store.update(up).await {
                        Ok(_) => break,
                        Err(StoreError::ConditionFailed { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!("done");
}

#[test]
fn two_processes_share_one_directory() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        EmbeddedStore::open(dir.path())
            .unwrap()
            .create_table(&TableSpec::new("shared", "pk"))
            .await
            .unwrap();
    });
    let children: Vec<_> = (0..2)
        .map(|_| child("shared_dir_child", dir.path(), "fsync", Stdio::inherit()))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a child failed");
        assert!(String::from_utf8_lossy(&out.stdout).contains("done"));
    }
    rt.block_on(async {
        let store = EmbeddedStore::open(dir.path()).unwrap();
        for k in 0..4 {
            let n = store
                .get("shared", &Key::new(format!("k{k}")))
                .await
                .unwrap()
                .unwrap()["n"]
                .as_i64()
                .unwrap();
            // 2 processes × 4 tasks per key × 25 increments.
            assert_eq!(n, 200, "key k{k}: increments lost across processes");
        }
    });
}
