//! Durability of the embedded store against `kill -9`: a child process streams acknowledged
//! writes, the parent kills it mid-stream, reopens the directory and finds every write the
//! child acknowledged. Run for both durability settings.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use beldi_runtime::embedded::{Durability, EmbeddedOptions, EmbeddedStore};
use beldi_runtime::store::{AttrValue, Item, Key, Put, Store, TableSpec, Update, UpdateAction};

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

fn run_and_kill(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill9_child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(DIR_VAR, dir.path())
        .env(MODE_VAR, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
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
