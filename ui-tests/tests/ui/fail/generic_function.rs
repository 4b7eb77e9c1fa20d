use beldi::prelude::*;

#[beldi::function]
async fn f<T: serde::de::DeserializeOwned>(_ctx: &Ctx, _a: T) -> Result<(), UserError> {
    Ok(())
}

fn main() {}
