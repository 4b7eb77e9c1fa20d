//! The `deploy-tables` job: creates an application's tables on DynamoDB.

use beldi::prelude::*;
use beldi_examples::app::App;

use super::cli::DeployArgs;
use super::error::JobError;
use super::setup::dynamodb_store;

/// Creates the tables of an app's functions (or all apps') on a DynamoDB endpoint.
pub(crate) async fn deploy_tables(args: DeployArgs) -> Result<bool, JobError> {
    let store = dynamodb_store(args.endpoint.clone()).await?;
    let config = RuntimeConfig {
        namespace: args.namespace.clone(),
        ..Default::default()
    };
    let rt = Runtime::with_config(store, config)?;
    let apps = args.app.map_or(App::ALL.to_vec(), |a| vec![a]);
    for app in &apps {
        app.register(&rt)?;
    }
    let created = rt.provision().await?;
    let all: usize = rt
        .function_names()
        .iter()
        .filter_map(|f| rt.tables(f).ok())
        .map(|t| t.specs().len())
        .sum();
    for t in &created {
        println!("created {t}");
    }
    println!(
        "{} tables created, {} already there, for {} functions of {} (namespace {:?})",
        created.len(),
        all - created.len(),
        rt.function_names().len(),
        apps.iter().map(|a| a.name()).collect::<Vec<_>>().join(", "),
        args.namespace
    );
    Ok(true)
}
