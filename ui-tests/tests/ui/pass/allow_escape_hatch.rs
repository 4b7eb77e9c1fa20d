use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    #[beldi::allow(side_effect)]
    let _started = std::time::Instant::now();
    Ok(())
}

fn main() {}
