use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn callee(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    ctx.write_as("t", "k", &1).await?;
    Ok(())
}

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), callee.call(ctx, &())).await;
    Ok(())
}

fn main() {}
