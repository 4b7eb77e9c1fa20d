use beldi::prelude::*;

#[beldi::function(tables = ["t"], retries = 3)]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {

    Ok(())
}

fn main() {}
