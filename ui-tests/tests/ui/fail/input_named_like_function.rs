use beldi::prelude::*;

#[beldi::function(tables = ["rooms"])]
async fn hotel(ctx: &Ctx, hotel: String) -> Result<bool, UserError> {
    Ok(ctx.read("rooms", &hotel).await?.is_some())
}

fn main() {}
