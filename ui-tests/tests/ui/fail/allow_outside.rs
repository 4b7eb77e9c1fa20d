use beldi::prelude::*;

#[beldi::allow(side_effect)]
fn plain() {}

fn main() {}
