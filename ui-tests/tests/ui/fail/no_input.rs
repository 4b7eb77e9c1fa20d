use beldi::prelude::*;

#[beldi::function]
async fn f(_ctx: &Ctx) -> Result<i64, UserError> {
    Ok(1)
}

fn main() {}
