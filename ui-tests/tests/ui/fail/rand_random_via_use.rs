use beldi::prelude::*;

mod rand {
    pub fn random<T: Default>() -> T {
        T::default()
    }
}

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    use rand::random;
    let _x: u64 = random();
    Ok(())
}

fn main() {}
