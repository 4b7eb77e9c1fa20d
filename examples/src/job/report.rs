//! The summary tables the jobs print.

use beldi::store::OpKind;

/// The header of a job's summary table.
pub(crate) fn table_header() {
    table_row("metric", "value".to_string());
    println!("|{}|{}|", "-".repeat(62), "-".repeat(30));
}

/// One row of a job's summary table.
pub(crate) fn table_row(name: &str, value: String) {
    println!("| {name:<60} | {value:>28} |");
}

/// The store operations that touch data (what "round trips per request" counts).
pub(crate) const DATA_KINDS: [OpKind; 7] = [
    OpKind::Get,
    OpKind::Put,
    OpKind::Update,
    OpKind::Delete,
    OpKind::Query,
    OpKind::Scan,
    OpKind::TransactWrite,
];

pub(crate) fn pass(ok: bool) -> &'static str {
    if ok { "PASS" } else { "FAIL" }
}
