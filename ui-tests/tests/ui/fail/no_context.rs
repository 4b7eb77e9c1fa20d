use beldi::prelude::*;

#[beldi::function]
async fn f(input: i64) -> Result<i64, UserError> {
    Ok(input)
}

fn main() {}
