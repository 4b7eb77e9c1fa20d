use beldi::prelude::*;

mod reqwest {
    pub fn get(_url: &str) -> u16 {
        200
    }
}

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let _r = reqwest::get("http://example.invalid");
    Ok(())
}

fn main() {}
