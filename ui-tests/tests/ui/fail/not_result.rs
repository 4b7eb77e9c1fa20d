use beldi::prelude::*;

#[beldi::function]
async fn f(_ctx: &Ctx, a: i64) -> i64 {
    a
}

fn main() {}
