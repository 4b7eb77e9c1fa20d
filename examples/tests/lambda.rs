//! End to end on a real Lambda runtime API: the travel app deployed as the `beldi-lambda`
//! binary under `cargo lambda watch` (started by `scripts/lambda-local.sh`, which
//! `scripts/test.sh` runs) on DynamoDB Local. The commands are the README's "Deploy to AWS"
//! ones. Needs `BELDI_DYNAMODB_ENDPOINT`, `BELDI_LAMBDA_ENDPOINT` and
//! `BELDI_LAMBDA_NAMESPACE`; without them the tests fail under `CI=true` and are skipped,
//! loudly, elsewhere.
#![cfg(feature = "lambda")]

use std::process::{Command, Output};
use std::time::{Duration, Instant};

struct Deployment {
    dynamodb: String,
    lambda: String,
    namespace: String,
}

fn deployment() -> Option<Deployment> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (
        var("BELDI_DYNAMODB_ENDPOINT"),
        var("BELDI_LAMBDA_ENDPOINT"),
        var("BELDI_LAMBDA_NAMESPACE"),
    ) {
        (Some(dynamodb), Some(lambda), Some(namespace)) => Some(Deployment {
            dynamodb,
            lambda,
            namespace,
        }),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "BELDI_DYNAMODB_ENDPOINT, BELDI_LAMBDA_ENDPOINT and BELDI_LAMBDA_NAMESPACE must be set under CI=true: run the tests with scripts/test.sh"
        ),
        _ => {
            eprintln!(
                "SKIPPED: no local Lambda deployment; run scripts/test.sh to test on cargo lambda watch"
            );
            None
        }
    }
}

fn job(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_beldi-examples"))
        .args(args)
        .output()
        .unwrap()
}

/// The pids of the running function processes (the `beldi-lambda` binaries cargo lambda
/// started).
fn function_processes() -> Vec<String> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let argv0 = cmd.split(|b| *b == 0).next().unwrap_or(&[]);
        if String::from_utf8_lossy(argv0).ends_with("/beldi-lambda") {
            pids.push(pid);
        }
    }
    pids
}

/// One test, so its parts never overlap: killing the function processes would also lose
/// the bad-payload invocations in flight (cargo lambda never answers an invocation whose
/// process died).
#[test]
fn lambda_end_to_end() {
    let Some(d) = deployment() else { return };
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(bad_payloads_get_structured_errors_and_write_nothing(&d));
    travel_on_lambda_survives_killed_function_processes(&d);
}

fn travel_on_lambda_survives_killed_function_processes(d: &Deployment) {
    // 1. Tables, as `deploy-tables` creates them for a deployment.
    let out = job(&[
        "deploy-tables",
        "--app",
        "travel",
        "--endpoint",
        &d.dynamodb,
        "--namespace",
        &d.namespace,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("tables created"), "{stdout}");
    // 2. Requests through aws-sdk-lambda, while every function process is killed once.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let run = Command::new(env!("CARGO_BIN_EXE_beldi-examples"))
        .args([
            "travel",
            "--platform",
            "lambda",
            "--lambda-endpoint",
            &d.lambda,
            "--function-names",
            "single:beldi-lambda",
            "--lambda-timeout",
            "15",
            "--backend",
            "dynamodb",
            "--endpoint",
            &d.dynamodb,
            "--namespace",
            &d.namespace,
            "--requests",
            "100",
            "--clients",
            "4",
            // Another seed per run: fresh request ids even on a deployment used before.
            "--seed",
            &seed,
            "--mix",
            "reserve-heavy",
            "--targets",
            "4",
            "--no-progress",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until requests are flowing, then kill every function process (SIGKILL).
    let t0 = Instant::now();
    while function_processes().len() < 2 && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let killed = function_processes();
    assert!(!killed.is_empty(), "no function process to kill");
    for pid in &killed {
        let _ = Command::new("sh")
            .args(["-c", &format!("kill -9 {pid}")])
            .status();
    }
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "killed {killed:?}\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 3. Every invariant holds, and killing the processes did lose invocations.
    for row in [
        "invariant: every request finished",
        "invariant: no capacity below zero",
        "invariant: hotel bookings = flight bookings = orders",
        "invariant: every order returned by exactly one reservation",
        "invariant: no lock left held",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.contains(row))
            .unwrap_or_else(|| panic!("no `{row}` in {stdout}"));
        assert!(line.contains("PASS"), "{line}\n{stdout}");
    }
    let lost: u64 = stdout
        .lines()
        .find(|l| l.contains("lost invocations, sent again"))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no lost-invocation count in {stdout}"));
    assert!(lost > 0, "killing {killed:?} lost no invocation: {stdout}");
}

async fn bad_payloads_get_structured_errors_and_write_nothing(d: &Deployment) {
    use beldi::lambda::{FunctionNames, LambdaConfig, LambdaRemote};
    let remote = LambdaRemote::connect(LambdaConfig {
        endpoint: Some(d.lambda.clone()),
        names: FunctionNames::Single("beldi-lambda".into()),
        invoke_timeout: Duration::from_secs(60),
    })
    .await;
    let error_kind = |v: &serde_json::Value| v["error"]["kind"].as_str().map(str::to_owned);
    let not_envelope = remote
        .send_raw("hotel", &serde_json::json!({"Records": []}))
        .await
        .unwrap();
    assert_eq!(
        error_kind(&not_envelope).as_deref(),
        Some("bad_envelope"),
        "{not_envelope}"
    );
    let unknown = remote
        .send_raw(
            "hotel",
            &serde_json::json!({"beldi": "run", "function": "spa", "instance": "x", "input": {"S": "h1"}}),
        )
        .await
        .unwrap();
    assert_eq!(
        error_kind(&unknown).as_deref(),
        Some("unknown_function"),
        "{unknown}"
    );
    assert_eq!(unknown["error"]["function"], "spa");
    // `hotel` takes a hotel id (a string); a number is refused before anything is written.
    let instance = format!("typed-wrong-{}", std::process::id());
    let wrong = remote
        .send_raw(
            "hotel",
            &serde_json::json!({"beldi": "run", "function": "hotel", "instance": instance, "input": {"N": "7"}}),
        )
        .await
        .unwrap();
    assert_eq!(error_kind(&wrong).as_deref(), Some("bad_input"), "{wrong}");
    let store = beldi::dynamodb::DynamoDbStore::local(d.dynamodb.clone()).await;
    let rt = beldi::Runtime::with_config(
        std::sync::Arc::new(store),
        beldi::platform::RuntimeConfig {
            namespace: d.namespace.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    beldi_examples::app::App::Travel.register(&rt).unwrap();
    rt.provision().await.unwrap();
    let written = beldi::inspect::exists(&rt, "hotel", &instance)
        .await
        .unwrap();
    assert!(
        !written,
        "an intent of `hotel` instance `{instance}` was written"
    );
}
