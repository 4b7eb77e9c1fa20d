use beldi::prelude::*;

#[beldi::function(tables = ["a.b"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {

    Ok(())
}

fn main() {}
