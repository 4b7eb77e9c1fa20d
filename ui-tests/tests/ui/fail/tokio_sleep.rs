use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    Ok(())
}

fn main() {}
