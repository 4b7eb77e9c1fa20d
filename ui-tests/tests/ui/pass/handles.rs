use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
pub async fn callee(ctx: &Ctx, n: i64) -> Result<i64, UserError> {
    ctx.write_as("t", "n", &n).await?;
    Ok(n * 2)
}

#[beldi::function]
pub async fn caller(ctx: &Ctx, n: i64) -> Result<String, UserError> {
    let doubled = callee.call(ctx, &n).await??;
    let id = callee.spawn(ctx, &doubled).await?;
    Ok(id)
}

async fn client(rt: &Runtime) -> Result<(), BeldiError> {
    let _r: Result<String, UserError> = caller.invoke(rt, "key-1", &4).await?;
    Ok(())
}

fn main() {
    let _ = client;
}
