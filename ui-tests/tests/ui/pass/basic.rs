use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let v: Option<i64> = ctx.read_as("t", "k").await?;
    ctx.write_as("t", "k", &(v.unwrap_or(0) + 1)).await?;
    ctx.update("t", "n", vec![UpdateAction::add(Path::root(), 1)]).await?;
    let _taken = ctx.cond_write("t", "c", vec![UpdateAction::set(Path::root(), 1)], Condition::not_exists(Path::root())).await?;
    let _all = ctx.scan("t").await?;
    ctx.delete("t", "k").await?;
    Ok(())
}

fn main() {}
