use beldi::prelude::*;

#[beldi::txn(retries = "many")]
#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    ctx.write_as("t", "k", &1).await?;
    Ok(())
}

fn main() {}
