use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
#[beldi::txn]
#[beldi::txn(retries = 2)]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    ctx.write_as("t", "k", &1).await?;
    Ok(())
}

fn main() {}
