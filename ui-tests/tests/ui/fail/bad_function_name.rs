use beldi::prelude::*;

#[beldi::function(name = "has space")]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {

    Ok(())
}

fn main() {}
