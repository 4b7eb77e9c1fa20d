//! The main job runs end to end and reports its invariants.

use std::process::{Command, Output};

/// Checks that the job succeeded and that each named invariant row says PASS; returns
/// its standard output.
fn assert_invariants_pass(out: &Output, invariants: &[&str]) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in invariants {
        let row = stdout
            .lines()
            .find(|l| l.contains(line))
            .unwrap_or_else(|| panic!("no `{line}` row in\n{stdout}"));
        assert!(row.contains("PASS"), "{row}");
    }
    stdout
}

#[test]
fn counter_job_passes_its_invariants_under_crashes_and_keeps_its_data_dir() {
    let dir = std::env::temp_dir().join(format!("beldi-main-job-test-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_beldi-examples"))
        .args([
            "counter",
            "--requests",
            "120",
            "--crash-rate",
            "0.3",
            "--row-capacity",
            "16",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = assert_invariants_pass(
        &out,
        &[
            "invariant: counter = requests",
            "invariant: each increment logged once",
            "invariant: duplicates agreed",
        ],
    );
    let crashes: u64 = stdout
        .lines()
        .find(|l| l.contains("crashes injected and recovered"))
        .and_then(|l| l.split('|').nth(2))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(crashes > 0, "crashes were injected: {stdout}");
    assert!(
        dir.join("beldi.sqlite3").exists(),
        "--data-dir keeps the store"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_get_a_clear_error() {
    let bin = env!("CARGO_BIN_EXE_beldi-examples");
    let out = Command::new(bin)
        .args(["counter", "--requests", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--requests (0)"));
    let out = Command::new(bin)
        .args(["counter", "--crash-rate", "1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--crash-rate must be between 0 and 1, got 1.5")
    );
}

/// Every app's invariant rows.
fn invariant_rows(app: &str) -> &'static [&'static str] {
    match app {
        "movie" => &[
            "invariant: every request finished",
            "invariant: every request's part counter is exactly 5",
            "invariant: exactly one stored review per request",
            "invariant: each review once in its user's and movie's list",
        ],
        "travel" => &[
            "invariant: every request finished",
            "invariant: no capacity below zero",
            "invariant: hotel bookings = flight bookings = orders",
            "invariant: every order returned by exactly one reservation",
            "invariant: no lock left held",
        ],
        _ => &[
            "invariant: every request finished",
            "invariant: each post stored once",
            "invariant: each post once in its author's timeline",
            "invariant: each post once in each reader's home timeline",
            "invariant: every short URL resolves to its URL",
        ],
    }
}

fn job(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_beldi-examples"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn every_app_job_passes_its_invariants_under_crashes() {
    for (app, extra) in [
        ("movie", &[][..]),
        ("social", &["--rate", "400"][..]),
        ("travel", &["--mix", "reserve-heavy", "--targets", "4"][..]),
    ] {
        let mut args = vec![app, "--requests", "80", "--crash-rate", "0.05"];
        args.extend_from_slice(extra);
        let stdout = assert_invariants_pass(&job(&args), invariant_rows(app));
        let crashes: u64 = stdout
            .lines()
            .find(|l| l.contains("crashes injected and recovered"))
            .and_then(|l| l.split('|').nth(2))
            .and_then(|v| v.split('/').next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no crash count in {stdout}"));
        assert!(crashes > 0, "{app}: crashes were injected: {stdout}");
        assert!(stdout.contains("latency p50 / p90 / p99"), "{stdout}");
        assert!(stdout.contains("round trips per request"), "{stdout}");
    }
}

#[test]
fn compare_prints_baseline_and_beldi_side_by_side() {
    let out = job(&["travel", "--mode", "compare", "--requests", "60"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    for row in [
        "| travel | baseline |",
        "| travel | beldi |",
        "| travel | **beldi / baseline** |",
    ] {
        assert!(stdout.contains(row), "no `{row}` in {stdout}");
    }
}

#[test]
fn bad_input_gets_a_clear_message_and_exit_code_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["hotel"], "unrecognized subcommand 'hotel'"),
        (&["movie", "--speed", "3"], "unexpected argument '--speed'"),
        (
            &["social", "--rate", "0"],
            "--rate must be a positive number of requests per second, got 0",
        ),
        (
            &["movie", "--crash-rate", "1.5"],
            "--crash-rate must be between 0 and 1, got 1.5",
        ),
        (
            &["travel", "--crash-rate", "-0.1"],
            "--crash-rate must be between 0 and 1, got -0.1",
        ),
        (
            &["movie", "--mix", "reserve-heavy"],
            "--mix reserve-heavy applies to the travel app only",
        ),
        (
            &["travel", "--targets", "0"],
            "--targets must be between 1 and 100, got 0",
        ),
        (
            &["travel", "--resume"],
            "--resume needs the --data-dir of the run it continues",
        ),
        (
            &["movie", "--backend", "dynamodb"],
            "--backend dynamodb needs --endpoint URL",
        ),
        #[cfg(feature = "dynamodb")]
        (
            &[
                "movie",
                "--backend",
                "dynamodb",
                "--endpoint",
                "http://127.0.0.1:9",
            ],
            "cannot reach DynamoDB at http://127.0.0.1:9",
        ),
    ];
    for (args, message) in cases {
        let out = job(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(message),
            "{args:?}: expected `{message}` in {stderr}"
        );
    }
}

#[test]
fn a_second_run_on_the_same_data_dir_needs_resume() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let args = ["social", "--requests", "20", "--data-dir", d];
    assert_invariants_pass(&job(&args), invariant_rows("social"));
    let again = job(&args);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("continue it with --resume"));
    // Resuming a finished run issues the same requests, which return their stored results.
    let mut resume = args.to_vec();
    resume.push("--resume");
    let stdout = assert_invariants_pass(&job(&resume), invariant_rows("social"));
    assert!(
        stdout.contains("requests finished before (resumed run)"),
        "{stdout}"
    );
}

/// Kills the job with SIGKILL at random moments of one run, resuming each time, then lets
/// the last resume finish: every invariant holds, no request lost or applied twice.
fn killed_and_resumed(app: &str, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut args: Vec<String> = [app, "--requests", "300", "--crash-rate", "0.02", "--resume"]
        .iter()
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
    args.push("--data-dir".into());
    args.push(dir.path().display().to_string());
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let mut moments = Vec::new();
    for round in 0..3u64 {
        let ms = 150 + (seed.wrapping_mul(round * 2 + 1).wrapping_mul(0x9e37_79b9) >> 7) % 600;
        moments.push(ms);
        let mut child = Command::new(env!("CARGO_BIN_EXE_beldi-examples"))
            .args(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(ms));
        child
            .kill()
            .unwrap_or_else(|e| panic!("{app}: kill after {ms} ms: {e}"));
        child.wait().unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_beldi-examples"))
        .args(&args)
        .output()
        .unwrap();
    let stdout = assert_invariants_pass(&out, invariant_rows(app));
    assert!(
        stdout.contains("| requests: "),
        "{app} killed at {moments:?} ms: {stdout}"
    );
}

#[test]
fn travel_job_killed_at_random_moments_resumes_to_all_invariants_passing() {
    killed_and_resumed("travel", &["--mix", "reserve-heavy", "--targets", "4"]);
}

#[test]
fn movie_job_killed_at_random_moments_resumes_to_all_invariants_passing() {
    killed_and_resumed("movie", &[]);
}
