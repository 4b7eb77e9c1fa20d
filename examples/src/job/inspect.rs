//! `inspect`: the `beldi` inspector with an application's functions registered, so the
//! operator actions that run code (`rerun`, `collect`, `gc`) work on the application's data
//! too. Every listing the `beldi` binary has is here as well.

use beldi::prelude::*;
use beldi_examples::app::App;

use super::app::JOB_TIMEOUT;
use super::error::JobError;

/// The inspector's command line, for one application.
#[derive(clap::Args)]
pub(crate) struct InspectArgs {
    /// The application whose functions are registered (the data's).
    #[arg(long, value_enum)]
    app: App,
    #[command(flatten)]
    cli: beldi::cli::Cli,
}

pub(crate) async fn inspect(args: InspectArgs) -> Result<bool, JobError> {
    let store = beldi::cli::open_store(&args.cli.store).await?;
    let config = RuntimeConfig {
        namespace: args.cli.store.namespace.clone(),
        timeout: JOB_TIMEOUT,
        ..Default::default()
    };
    let rt = Runtime::with_config(store, config)?;
    args.app.register(&rt)?;
    beldi::cli::run(&args.cli, Some(&rt), &mut std::io::stdout()).await?;
    Ok(true)
}
