use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: Ctx, key: String) -> Result<Option<i64>, UserError> {
    Ok(ctx.read_as("t", &key).await?)
}

fn main() {}
