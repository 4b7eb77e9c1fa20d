use beldi::prelude::*;

mod chrono {
    pub struct Utc;
    impl Utc {
        pub fn now() -> u64 {
            0
        }
    }
}

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let _t = chrono::Utc::now();
    Ok(())
}

fn main() {}
