use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let _s = std::fs::read_to_string("config.toml");
    Ok(())
}

fn main() {}
