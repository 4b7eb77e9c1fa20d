//! Setting a job up: the store it runs on (embedded, or DynamoDB / DynamoDB Local) and,
//! with `--platform lambda`, the Lambda deployment it sends requests to. What needs a
//! feature the binary was built without says so.

use std::path::PathBuf;
use std::sync::Arc;
#[cfg(feature = "dynamodb")]
use std::time::Duration;

use beldi::prelude::*;
use beldi::remote::Remote;

use super::cli::{AppArgs, Backend, DurabilityArg, StoreArgs};
use super::error::{JobError, usage};

/// Opens the store `args` names; returns it and, for a default embedded directory (a fresh
/// one under `$TMPDIR/beldi-runs/`), that directory, which the job removes at the end or
/// keeps for inspection.
pub(crate) async fn open_store(
    args: &StoreArgs,
    job: &str,
) -> Result<(Arc<dyn Store>, Option<PathBuf>), JobError> {
    match args.backend {
        Backend::Embedded => {
            if args.endpoint.is_some() {
                return Err(usage("--endpoint applies to --backend dynamodb only"));
            }
            let (dir, temp) = match &args.data_dir {
                Some(d) => (d.clone(), None),
                None => {
                    let d = default_dir(job);
                    (d.clone(), Some(d))
                }
            };
            let durability = match args.durability {
                DurabilityArg::Fsync => Durability::Fsync,
                DurabilityArg::ProcessCrash => Durability::ProcessCrash,
            };
            let opts = EmbeddedOptions {
                durability,
                ..Default::default()
            };
            let store =
                EmbeddedStore::open_with(&dir, opts).map_err(|source| JobError::OpenStore {
                    dir: dir.clone(),
                    source,
                })?;
            Ok((Arc::new(store), temp))
        }
        Backend::Dynamodb => {
            if args.data_dir.is_some() {
                return Err(usage("--data-dir applies to --backend embedded only"));
            }
            let endpoint = args
                .endpoint
                .clone()
                .ok_or_else(|| usage("--backend dynamodb needs --endpoint URL"))?;
            Ok((dynamodb_store(Some(endpoint)).await?, None))
        }
    }
}

static TEMP_DIRS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How long a job's default data directory is kept for inspection before a later run of
/// the same job removes it.
const KEEP_RUNS: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A fresh default data directory for `job`, under `$TMPDIR/beldi-runs/`; removes the ones
/// earlier runs of `job` left there more than a day ago.
fn default_dir(job: &str) -> PathBuf {
    let root = std::env::temp_dir().join("beldi-runs");
    if let Ok(entries) = std::fs::read_dir(&root) {
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > KEEP_RUNS);
            if old
                && e.file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{job}-"))
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    root.join(format!(
        "{job}-{ms}-{}-{}",
        std::process::id(),
        TEMP_DIRS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ))
}

/// DynamoDB at `endpoint` (DynamoDB Local), checked to answer; `None`: AWS's, from the
/// usual AWS settings.
pub(crate) async fn dynamodb_store(endpoint: Option<String>) -> Result<Arc<dyn Store>, JobError> {
    #[cfg(feature = "dynamodb")]
    {
        use beldi::dynamodb::{DynamoDbConfig, DynamoDbStore};
        let Some(endpoint) = endpoint else {
            return Ok(Arc::new(
                DynamoDbStore::connect(DynamoDbConfig::default()).await,
            ));
        };
        let mut cfg = DynamoDbConfig::local(endpoint.clone());
        cfg.max_attempts = Some(1);
        let probe = DynamoDbStore::connect(cfg).await;
        let unreachable = |message: String| JobError::Unreachable {
            what: format!("DynamoDB at {endpoint}"),
            message,
        };
        // One cheap request, so an unreachable endpoint is reported now, in one line.
        match tokio::time::timeout(
            Duration::from_secs(10),
            probe.describe_table("beldi-endpoint-probe"),
        )
        .await
        {
            Err(_) => return Err(unreachable("no answer in 10 s".into())),
            Ok(Err(StoreError::TableNotFound { .. })) | Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(unreachable(e.to_string())),
        }
        Ok(Arc::new(DynamoDbStore::local(endpoint).await))
    }
    #[cfg(not(feature = "dynamodb"))]
    {
        let _ = endpoint;
        Err(JobError::MissingFeature("dynamodb"))
    }
}

/// The Lambda deployment `args` names.
pub(crate) async fn lambda_remote(args: &AppArgs) -> Result<Arc<dyn Remote>, JobError> {
    #[cfg(feature = "lambda")]
    {
        use beldi::lambda::{FunctionNames, LambdaConfig, LambdaRemote};
        let names = FunctionNames::parse(&args.function_names)?;
        let remote = LambdaRemote::connect(LambdaConfig {
            endpoint: args.lambda_endpoint.clone(),
            names,
            invoke_timeout: Duration::from_secs(args.lambda_timeout),
        })
        .await;
        Ok(Arc::new(remote))
    }
    #[cfg(not(feature = "lambda"))]
    {
        let _ = args;
        Err(JobError::MissingFeature("lambda"))
    }
}

/// Checks that the deployment `remote` reaches hosts this runtime's functions, in the same
/// namespace and mode (else its results and this process's checks would be about different
/// tables).
pub(crate) async fn check_deployment(
    remote: &dyn beldi::remote::Remote,
    rt: &Runtime,
) -> Result<(), JobError> {
    let want = rt.describe();
    let got = remote
        .send(&beldi::remote::Envelope::Describe)
        .await
        .map_err(|e| JobError::Unreachable {
            what: "the deployment".into(),
            message: e.to_string(),
        })?
        .into_result("describe")
        .map_err(|e| JobError::Deployment(format!("the deployment cannot describe itself: {e}")))?;
    let field = |v: &beldi::store::AttrValue, k: &str| v.as_m().and_then(|m| m.get(k)).cloned();
    for k in ["namespace", "mode"] {
        if field(&got, k) != field(&want, k) {
            return Err(JobError::Deployment(format!(
                "the deployment's {k} is {:?}, this run's is {:?}: pass the deployment's (--namespace is its BELDI_NAMESPACE)",
                field(&got, k),
                field(&want, k)
            )));
        }
    }
    let hosted = field(&got, "functions");
    let hosted = hosted.as_ref().and_then(|v| v.as_l()).unwrap_or(&[]);
    for f in rt.function_names() {
        if !hosted.contains(&beldi::store::AttrValue::S(f.clone())) {
            return Err(JobError::Deployment(format!(
                "the deployment does not host function `{f}`"
            )));
        }
    }
    Ok(())
}
