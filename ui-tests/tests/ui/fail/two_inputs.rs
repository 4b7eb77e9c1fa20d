use beldi::prelude::*;

#[beldi::function]
async fn f(_ctx: &Ctx, a: i64, b: i64) -> Result<i64, UserError> {
    Ok(a + b)
}

fn main() {}
