use beldi::prelude::*;

mod uuid {
    pub struct Uuid;
    impl Uuid {
        pub fn new_v4() -> Uuid {
            Uuid
        }
    }
}

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let _id = uuid::Uuid::new_v4();
    Ok(())
}

fn main() {}
