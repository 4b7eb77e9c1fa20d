//! The benchmark command runs end to end at smoke scale (so it never rots) and writes its
//! report and every plot. It asserts what was produced, never how fast anything was.

use std::process::Command;

#[test]
fn the_bench_command_writes_its_report_and_plots() {
    let out_dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "all".to_owned(),
        "--scale".into(),
        "smoke".into(),
        "--out".into(),
        out_dir.path().display().to_string(),
    ];
    #[cfg(feature = "dynamodb")]
    if let Some(endpoint) = beldi::dynamodb::test_endpoint() {
        args.push("--dynamodb".into());
        args.push(endpoint);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(out_dir.path().join("REPORT.md")).unwrap();
    for heading in [
        "## Per-operation cost",
        "## Applications, beldi vs baseline",
        "## GC and DAAL growth",
        "## Transactions under contention",
        "## Embedded store throughput",
        "- Machine: ",
    ] {
        assert!(report.contains(heading), "no `{heading}` in\n{report}");
    }
    #[cfg(feature = "dynamodb")]
    if std::env::var("BELDI_DYNAMODB_ENDPOINT").is_ok() {
        assert!(
            report.contains("| DynamoDB Local | fresh key | read |"),
            "{report}"
        );
    }
    // Every plot the report references exists and is a PNG.
    let mut plots = 0;
    for name in report
        .split("](")
        .skip(1)
        .filter_map(|s| s.split(')').next())
        .filter(|s| s.ends_with(".png"))
    {
        let bytes =
            std::fs::read(out_dir.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(bytes.starts_with(b"\x89PNG"), "{name} is not a PNG");
        plots += 1;
    }
    assert!(plots >= 12, "{plots} plots referenced");
    // One part again, twice: its section is replaced, the others are kept, and the header
    // notes the re-measurement once.
    for _ in 0..2 {
        let part = Command::new(env!("CARGO_BIN_EXE_bench"))
            .args(["store", "--scale", "smoke", "--out"])
            .arg(out_dir.path())
            .output()
            .unwrap();
        assert!(
            part.status.success(),
            "{}",
            String::from_utf8_lossy(&part.stderr)
        );
    }
    let again = std::fs::read_to_string(out_dir.path().join("REPORT.md")).unwrap();
    assert_eq!(
        again
            .matches("Re-measured on its own: `bench -- store")
            .count(),
        1,
        "{again}"
    );
    for heading in ["## Per-operation cost", "## Transactions under contention"] {
        assert_eq!(again.matches(heading).count(), 1, "{heading} in\n{again}");
    }
    assert_eq!(again.matches("## Embedded store throughput").count(), 1);
    assert!(again.contains("no group commit"), "{again}");
    // Bad input: an unknown part.
    let bad = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["everything"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
