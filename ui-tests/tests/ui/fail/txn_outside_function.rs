use beldi::prelude::*;

#[beldi::txn]
fn plain() {}

fn main() {}
