use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    #[beldi::allow(everything)]
    let _t = std::time::SystemTime::now();
    Ok(())
}

fn main() {}
