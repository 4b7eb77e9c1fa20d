use beldi::prelude::*;

#[beldi::function(timeout = "10 parsecs")]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {

    Ok(())
}

fn main() {}
