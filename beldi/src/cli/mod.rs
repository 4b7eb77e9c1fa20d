//! The inspector (feature `cli`): what the `beldi` binary does, as a library, so an
//! application's own binary can offer it with its functions registered — which the
//! operator actions that run code (`rerun`, `collect`) need.
//!
//! ```text
//! beldi --data-dir DIR functions                 the functions the store holds
//! beldi --data-dir DIR instances [--function F] [--state S] [--limit N]
//! beldi --data-dir DIR show FUNCTION INSTANCE    input, result, step log, call tree
//! beldi --data-dir DIR locks                     keys locked, by whom, since when
//! beldi --data-dir DIR stats                     intents by state, log items, DAAL rows
//! beldi --data-dir DIR ui [--addr 127.0.0.1:7878]  the web UI (loopback by default)
//! beldi --data-dir DIR rerun FUNCTION INSTANCE   re-run an unfinished instance now
//! beldi --data-dir DIR collect | gc              one intent-collector / GC pass
//! ```
//! `--endpoint URL` (feature `dynamodb`) reads DynamoDB instead; `--namespace NS` selects
//! the namespace; `--json` prints any listing as JSON.
//!
//! From an application's binary, with its functions registered:
//! ```no_run
//! # async fn f(rt: beldi::Runtime) -> Result<(), beldi::cli::CliError> {
//! use clap::Parser;
//! let cli = beldi::cli::Cli::parse();
//! beldi::cli::run(&cli, Some(&rt), &mut std::io::stdout()).await
//! # }
//! ```

mod text;
mod ui;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use beldi_runtime::inspect::{InspectError, Inspector, InstanceFilter, InstanceState};
use beldi_runtime::platform::Rerun;
use beldi_runtime::store::{Store, StoreError};
use beldi_runtime::{BeldiError, Runtime};

pub use ui::serve;

/// The inspector's command line.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "beldi",
    version,
    about = "Inspect and operate a Beldi store: instances, step logs, call trees, locks, statistics; a local web UI"
)]
pub struct Cli {
    /// Where the store is.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print listings as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Which store the inspector reads.
#[derive(Clone, Debug, clap::Args)]
pub struct StoreArgs {
    /// The embedded store's data directory (what `--data-dir` of the application named).
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// A DynamoDB endpoint (DynamoDB Local's URL); needs the `dynamodb` feature.
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// The namespace the application's tables carry (empty by default).
    #[arg(long, global = true, default_value = "", value_name = "NS")]
    pub namespace: String,
}

/// An inspector command.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum Command {
    /// The functions the store holds, with their data tables.
    Functions,
    /// Instances by function and state, newest first, with their ages.
    Instances {
        /// Only this function's.
        #[arg(long, short)]
        function: Option<String>,
        /// Only in this state: running, done, failed or died.
        #[arg(long, short)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, short)]
        limit: Option<usize>,
    },
    /// One instance: input, result or error, its step log, the calls it made.
    Show {
        /// The function.
        function: String,
        /// The instance id.
        instance: String,
    },
    /// The locks held: key, holding transaction, since when.
    Locks,
    /// Instances by state, log items and DAAL chain sizes, per function.
    Stats,
    /// Serves the web UI (instances, one instance's timeline and call tree, locks, stats).
    Ui {
        /// The address to listen on (loopback by default; port 0 picks a free one).
        #[arg(long, default_value = "127.0.0.1:7878")]
        addr: SocketAddr,
    },
    /// Re-runs an unfinished instance now (or the caller that finishes it) and waits.
    /// Needs the application's code: run it from the application's binary.
    Rerun {
        /// The function.
        function: String,
        /// The instance id.
        instance: String,
    },
    /// Runs one intent-collector pass (restarts instances that stopped). Needs the
    /// application's code.
    Collect,
    /// Runs one garbage-collector pass with the windows safe for the functions registered.
    /// Needs the application's registrations.
    Gc,
}

/// What the inspector could not do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// Reading the store failed, or what was asked for is not in it.
    #[error(transparent)]
    Inspect(#[from] InspectError),
    /// An operator action failed.
    #[error("{action} failed: {source}")]
    Action {
        /// The action.
        action: &'static str,
        /// Why.
        #[source]
        source: BeldiError,
    },
    /// The command line names no store, or two.
    #[error("{0}")]
    Usage(String),
    /// The data directory does not exist or holds no embedded store.
    #[error("no embedded store at {}: {message}", dir.display())]
    NoStore {
        /// The directory given.
        dir: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The store could not be opened.
    #[error("cannot open the store at {what}: {source}")]
    Open {
        /// Which store.
        what: String,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The action runs the application's code, which this binary does not have.
    #[error(
        "`{0}` runs the application's code, which the `beldi` binary does not have: run it from your application's binary with `beldi::cli::run(&cli, Some(&runtime), ..)` (for the examples: `cargo run -p beldi-examples -- inspect --app <APP> --data-dir DIR {0} ..`)"
    )]
    NeedsRuntime(&'static str),
    /// The binary was built without a feature the command line asks for.
    #[error("{what} needs the `{feature}` feature (build with --features {feature})")]
    MissingFeature {
        /// What was asked for.
        what: &'static str,
        /// The feature.
        feature: &'static str,
    },
    /// Writing the output or serving the UI failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// The process exit code for this error: 2 for a usage mistake, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::MissingFeature { .. } | CliError::NeedsRuntime(_) => 2,
            CliError::Inspect(InspectError::UnknownState(_)) => 2,
            _ => 1,
        }
    }
}

/// Opens the store `args` names (an existing embedded data directory, or DynamoDB).
pub async fn open_store(args: &StoreArgs) -> Result<Arc<dyn Store>, CliError> {
    match (&args.data_dir, &args.endpoint) {
        (Some(_), Some(_)) => Err(CliError::Usage(
            "give --data-dir or --endpoint, not both".into(),
        )),
        (None, None) => Err(CliError::Usage(
            "which store? give --data-dir DIR (embedded) or --endpoint URL (DynamoDB)".into(),
        )),
        (Some(dir), None) => {
            // Opening creates a store; an inspector must not create one where there is none.
            if !dir.is_dir() {
                return Err(CliError::NoStore {
                    dir: dir.clone(),
                    message: "no such directory".into(),
                });
            }
            if !dir.join(beldi_runtime::embedded::DB_FILE).is_file() {
                return Err(CliError::NoStore {
                    dir: dir.clone(),
                    message: format!(
                        "the directory holds no `{}`",
                        beldi_runtime::embedded::DB_FILE
                    ),
                });
            }
            let store = beldi_runtime::embedded::EmbeddedStore::open(dir).map_err(|source| {
                CliError::Open {
                    what: dir.display().to_string(),
                    source,
                }
            })?;
            Ok(Arc::new(store))
        }
        (None, Some(endpoint)) => dynamodb(endpoint).await,
    }
}

#[cfg(feature = "dynamodb")]
async fn dynamodb(endpoint: &str) -> Result<Arc<dyn Store>, CliError> {
    let mut cfg = beldi_runtime::dynamodb::DynamoDbConfig::local(endpoint);
    cfg.max_attempts = Some(2);
    Ok(Arc::new(
        beldi_runtime::dynamodb::DynamoDbStore::connect(cfg).await,
    ))
}

#[cfg(not(feature = "dynamodb"))]
async fn dynamodb(_endpoint: &str) -> Result<Arc<dyn Store>, CliError> {
    Err(CliError::MissingFeature {
        what: "--endpoint (DynamoDB)",
        feature: "dynamodb",
    })
}

/// Runs `cli`, printing to `out`. `runtime`: the application's runtime, on the store the
/// command line names, for the actions that run its code (`None`: they say so, and the
/// store is opened from the command line).
pub async fn run(
    cli: &Cli,
    runtime: Option<&Runtime>,
    out: &mut (dyn Write + Send),
) -> Result<(), CliError> {
    let store = match runtime {
        Some(rt) => rt.store().clone(),
        None => open_store(&cli.store).await?,
    };
    let inspector = Inspector::new(store, &cli.store.namespace)?;
    let json = cli.json;
    let text = match &cli.command {
        Command::Functions => {
            let f = inspector.functions().await?;
            if json {
                to_json(&f)
            } else {
                text::functions(&f)
            }
        }
        Command::Instances {
            function,
            state,
            limit,
        } => {
            let filter = InstanceFilter {
                function: function.clone(),
                state: state
                    .as_deref()
                    .map(str::parse::<InstanceState>)
                    .transpose()?,
                limit: *limit,
            };
            let list = inspector.instances(&filter).await?;
            if json {
                to_json(&list)
            } else {
                text::instances(&list)
            }
        }
        Command::Show { function, instance } => {
            let d = inspector.instance(function, instance).await?;
            if json {
                to_json(&d)
            } else {
                text::instance(&d)
            }
        }
        Command::Locks => {
            let l = inspector.locks().await?;
            if json { to_json(&l) } else { text::locks(&l) }
        }
        Command::Stats => {
            let s = inspector.stats().await?;
            if json { to_json(&s) } else { text::stats(&s) }
        }
        Command::Ui { addr } => {
            // Fails now, with the inspector's message, on a store with nothing to show.
            inspector.functions().await?;
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| CliError::Io {
                    what: format!("listening on {addr}"),
                    source,
                })?;
            let local = listener.local_addr().map_err(|source| CliError::Io {
                what: "reading the listening address".into(),
                source,
            })?;
            print(
                out,
                &format!("beldi ui: serving http://{local}/ (Ctrl-C stops)\n"),
            )?;
            tokio::select! {
                r = serve(listener, inspector) => r?,
                _ = tokio::signal::ctrl_c() => {}
            }
            return Ok(());
        }
        Command::Rerun { function, instance } => {
            let rt = runtime.ok_or(CliError::NeedsRuntime("rerun"))?;
            let done = rt
                .rerun(function, instance)
                .await
                .map_err(|source| CliError::Action {
                    action: "rerun",
                    source,
                })?;
            text::rerun(&done)
        }
        Command::Collect => {
            let rt = runtime.ok_or(CliError::NeedsRuntime("collect"))?;
            let cfg = beldi_runtime::collector::IcConfig::for_longest(&rt.longest_timeout());
            let report = rt
                .collect_intents(&cfg)
                .await
                .map_err(|source| CliError::Action {
                    action: "intent collector pass",
                    source,
                })?;
            if json {
                to_json(&report)
            } else {
                format!("{report:#?}\n")
            }
        }
        Command::Gc => {
            let rt = runtime.ok_or(CliError::NeedsRuntime("gc"))?;
            let cfg = beldi_runtime::gc::GcConfig::safe(
                rt.longest_timeout().timeout,
                rt.config().max_queue_age,
            );
            let report = rt
                .collect_garbage(&cfg)
                .await
                .map_err(|source| CliError::Action {
                    action: "garbage collector pass",
                    source,
                })?;
            if json {
                to_json(&report)
            } else {
                format!("{report:#?}\n")
            }
        }
    };
    print(out, &text)
}

fn print(out: &mut (dyn Write + Send), text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|source| CliError::Io {
            what: "writing the output".into(),
            source,
        })
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    let mut s =
        serde_json::to_string_pretty(v).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

/// What [`Rerun`] says, in a line.
fn rerun_line(r: &Rerun) -> String {
    match r {
        Rerun::Finished { function, instance } => {
            format!("re-ran `{function}` instance `{instance}`: it finished")
        }
        Rerun::Done { function, instance } => {
            format!("`{function}` instance `{instance}` is done: nothing to re-run")
        }
        Rerun::RunningHere { function, instance } => {
            format!("`{function}` instance `{instance}` is running in this process")
        }
        Rerun::Claimed { function, instance } => {
            format!("`{function}` instance `{instance}` was restarted by someone else meanwhile")
        }
        Rerun::NotStarted { function, instance } => {
            format!(
                "`{function}` instance `{instance}` has no intent (never started, or collected)"
            )
        }
    }
}
