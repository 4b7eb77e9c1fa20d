use beldi::prelude::*;

struct NotSerde;

#[beldi::function]
async fn f(_ctx: &Ctx, _a: NotSerde) -> Result<(), UserError> {
    Ok(())
}

fn main() {}
