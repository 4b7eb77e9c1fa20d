use beldi::prelude::*;

#[beldi::deterministic]
fn stamp() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

fn main() {
    let _ = stamp();
}
