use beldi::prelude::*;

#[beldi::function(name = orders)]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let _ = ctx;

    Ok(())
}

fn main() {}
