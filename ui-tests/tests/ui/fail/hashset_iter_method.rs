use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let s = std::collections::HashSet::<i64>::new();
    let _v: Vec<i64> = s.iter().copied().collect();
    Ok(())
}

fn main() {}
