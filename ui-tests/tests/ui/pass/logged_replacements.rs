use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let _now = ctx.now().await?;
    let _r: u64 = ctx.random().await?;
    let _id = ctx.uuid().await?;
    ctx.sleep(std::time::Duration::from_millis(1)).await?;
    let _home: Option<String> = ctx.side_effect(|| std::env::var("HOME").ok()).await?;
    Ok(())
}

fn main() {}
