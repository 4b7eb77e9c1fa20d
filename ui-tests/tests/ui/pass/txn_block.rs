use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<bool, UserError> {
    let booked: Result<(), UserError> = #[beldi::txn] {
        ctx.write_as("t", "k", &1).await?;
        Ok(())
    };
    Ok(booked.is_ok())
}

fn main() {}
