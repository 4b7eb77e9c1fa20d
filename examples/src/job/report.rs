//! The summary tables the jobs print.

/// The header of a job's summary table.
pub(crate) fn table_header() {
    table_row("metric", "value".to_string());
    println!("|{}|{}|", "-".repeat(62), "-".repeat(30));
}

/// One row of a job's summary table.
pub(crate) fn table_row(name: &str, value: String) {
    println!("| {name:<60} | {value:>28} |");
}

pub(crate) fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}
