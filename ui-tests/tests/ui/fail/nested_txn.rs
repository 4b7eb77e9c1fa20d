use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let r: Result<(), UserError> = #[beldi::txn] {
        let inner: Result<(), UserError> = #[beldi::txn] {
            ctx.write_as("t", "k", &1).await?;
            Ok(())
        };
        inner
    };
    r
}

fn main() {}
