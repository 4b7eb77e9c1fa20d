//! The AWS Lambda binary of the examples: hosts every function of the three applications,
//! the intent collector (`{"beldi":"ic"}`) and the garbage collector (`{"beldi":"gc"}`).
//! Deploy it once per function (`BELDI_FUNCTION_NAMES=prefix:<stack>-`) or once for all
//! (`single:<name>`); configuration comes from the environment (see
//! `beldi::lambda::env`). Build with `--features lambda`.

use beldi_examples::app::App;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let rt = beldi::lambda::runtime_from_env().await?;
    for app in App::ALL {
        app.register(&rt)?;
    }
    beldi::lambda::serve(rt).await
}
