use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    tokio::select! {
        _ = ctx.read("t", "a") => {}
        _ = ctx.read("t", "b") => {}
    }
    Ok(())
}

fn main() {}
