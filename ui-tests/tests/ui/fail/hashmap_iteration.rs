use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let m: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for (k, v) in &m {
        ctx.write_as("t", k, v).await?;
    }
    Ok(())
}

fn main() {}
