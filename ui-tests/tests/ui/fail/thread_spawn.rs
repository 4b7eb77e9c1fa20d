use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    std::thread::spawn(|| {});
    Ok(())
}

fn main() {}
