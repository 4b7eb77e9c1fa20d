use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    use std::time::SystemTime;
    let _t = SystemTime::now();
    Ok(())
}

fn main() {}
