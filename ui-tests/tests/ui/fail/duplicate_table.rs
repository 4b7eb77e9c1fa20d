use beldi::prelude::*;

#[beldi::function(tables = ["t", "t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {

    Ok(())
}

fn main() {}
