use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    use std::fs::File;
    let _f = File::open("data.bin");
    Ok(())
}

fn main() {}
