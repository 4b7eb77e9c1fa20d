use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<bool, UserError> {
    let r: Result<(), UserError> = #[beldi::txn(retries = "many")]
    {
        ctx.write_as("t", "k", &1).await?;
        Ok(())
    };
    Ok(r.is_ok())
}

fn main() {}
