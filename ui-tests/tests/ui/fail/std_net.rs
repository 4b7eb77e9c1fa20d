use beldi::prelude::*;

#[beldi::function(tables = ["t"])]
async fn f(ctx: &Ctx, _input: ()) -> Result<(), UserError> {
    let _c = std::net::TcpStream::connect("127.0.0.1:80");
    Ok(())
}

fn main() {}
