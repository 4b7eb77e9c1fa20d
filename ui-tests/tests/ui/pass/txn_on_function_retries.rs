// `retries = N` on a whole-function transaction, with `#[beldi::txn]` written above or
// below `#[beldi::function]`, and a context taken by value.
use beldi::prelude::*;

#[beldi::txn(retries = 3)]
#[beldi::function(tables = ["t"])]
async fn above(ctx: &Ctx, n: i64) -> Result<(), UserError> {
    ctx.write_as("t", "k", &n).await?;
    Ok(())
}

#[beldi::function(tables = ["t"])]
#[beldi::txn(retries = 3)]
async fn below(ctx: Ctx, n: i64) -> Result<i64, UserError> {
    Ok(ctx.read_as("t", "k").await?.unwrap_or(n))
}

fn main() {
    let _ = (above, below);
}
