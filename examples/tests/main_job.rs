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

#[test]
fn travel_job_passes_its_invariants_under_crashes() {
    let out = Command::new(env!("CARGO_BIN_EXE_beldi-examples"))
        .args([
            "travel",
            "--requests",
            "150",
            "--mix",
            "reserve-heavy",
            "--targets",
            "4",
            "--crash-rate",
            "0.05",
        ])
        .output()
        .unwrap();
    assert_invariants_pass(
        &out,
        &[
            "invariant: every request finished",
            "invariant: bookings = orders, unlocked",
        ],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_beldi-examples"))
        .args(["travel", "--crash-rate", "2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--crash-rate must be between 0 and 1, got 2")
    );
}

#[test]
fn travel_job_killed_at_random_moments_resumes_to_all_invariants_passing() {
    let dir = std::env::temp_dir().join(format!("beldi-travel-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = |resume: bool| {
        let mut v: Vec<String> = [
            "travel",
            "--requests",
            "300",
            "--mix",
            "reserve-heavy",
            "--targets",
            "4",
            "--crash-rate",
            "0.02",
            "--data-dir",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push(dir.display().to_string());
        if resume {
            v.push("--resume".into());
        }
        v
    };
    // Kill the job with SIGKILL at several moments, resuming each time.
    for (round, ms) in [120u64, 400, 250].into_iter().enumerate() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_beldi-examples"))
            .args(args(round > 0))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(ms));
        let _ = child.kill();
        child.wait().unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_beldi-examples"))
        .args(args(true))
        .output()
        .unwrap();
    assert_invariants_pass(
        &out,
        &[
            "invariant: every request finished",
            "invariant: bookings = orders, unlocked",
        ],
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
