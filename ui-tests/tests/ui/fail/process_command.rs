use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let _c = std::process::Command::new("ls");
    Ok(())
}

fn main() {}
