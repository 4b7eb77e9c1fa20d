use beldi::prelude::*;

mod tokio {
    pub mod fs {
        pub fn read(_p: &str) -> Vec<u8> {
            Vec::new()
        }
    }
}

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let _ = ctx;
    let _f = tokio::fs::read("data.bin");
    Ok(())
}

fn main() {}
