//! The main job runs end to end and reports its invariant.

use std::process::Command;

#[test]
fn counter_job_passes_its_invariant_and_keeps_its_data_dir() {
    let dir = std::env::temp_dir().join(format!("beldi-main-job-test-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_beldi-examples"))
        .args([
            "counter",
            "--tasks",
            "8",
            "--increments",
            "25",
            "--durability",
            "process-crash",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("| invariant: counter = successes |       PASS |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("|                            200 |")
            || stdout.contains("| attempts                       |        200 |"),
        "{stdout}"
    );
    assert!(
        dir.join("beldi.sqlite3").exists(),
        "--data-dir keeps the store"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_arguments_get_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_beldi-examples"))
        .args(["counter", "--tasks", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--tasks (0)"), "{stderr}");
}
