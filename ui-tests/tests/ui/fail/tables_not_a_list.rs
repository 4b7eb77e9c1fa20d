use beldi::prelude::*;

#[beldi::function(tables = "t")]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let _ = ctx;

    Ok(())
}

fn main() {}
