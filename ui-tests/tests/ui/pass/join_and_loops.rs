use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let (a, b) = tokio::join!(ctx.read("t", "a"), ctx.read("t", "b"));
    let _ = (a?, b?);
    for i in 0..3 {
        ctx.write_as("t", &format!("k{i}"), &i).await?;
    }
    let work = async {
        ctx.uuid().await
    };
    let _id = work.await?;
    Ok(())
}

fn main() {}
