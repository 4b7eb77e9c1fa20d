use beldi::prelude::*;

#[beldi::function(name = "renamed", tables = ["a", "b"], timeout = "500ms")]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {

    Ok(())
}

fn main() {}
