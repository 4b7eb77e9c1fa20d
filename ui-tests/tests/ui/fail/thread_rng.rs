use beldi::prelude::*;

mod rand {
    pub fn thread_rng() -> u64 {
        4
    }
}

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let _r = rand::thread_rng();
    Ok(())
}

fn main() {}
