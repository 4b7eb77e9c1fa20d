use beldi::prelude::*;

#[beldi::deterministic]
fn price(qty: i64) -> i64 {
    let table = std::collections::BTreeMap::from([(1, 10), (2, 18)]);
    table.get(&qty).copied().unwrap_or(qty * 9)
}

fn main() {
    let _ = price(2);
}
