use beldi::prelude::*;

#[beldi::function]
fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let _ = ctx;
    Ok(())
}

fn main() {}
