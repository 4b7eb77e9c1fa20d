//! The command-line options of the main binary's jobs, and their checks.

use std::path::PathBuf;

use beldi_examples::app::{App, Mix, Workload};
use beldi_examples::driver::Load;
use clap::ValueEnum;

use super::error::{JobError, usage};

#[derive(clap::Args, Clone)]
pub(crate) struct DeployArgs {
    /// The application (default: all three).
    #[arg(long, value_enum)]
    pub(crate) app: Option<App>,
    /// DynamoDB endpoint URL (DynamoDB Local); default: AWS's, from the usual AWS settings.
    #[arg(long)]
    pub(crate) endpoint: Option<String>,
    /// Table name prefix (the deployment's `BELDI_NAMESPACE`).
    #[arg(long, default_value = "")]
    pub(crate) namespace: String,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub(crate) enum PlatformArg {
    /// Functions run in this process.
    Local,
    /// Requests go to AWS Lambda (or `cargo lambda watch`, with --lambda-endpoint); the
    /// functions run there, on DynamoDB (--backend dynamodb). Needs the `lambda` feature.
    Lambda,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub(crate) enum ModeArg {
    /// Fault-tolerant: logged, exactly-once, transactional.
    Beldi,
    /// The same functions on plain store operations: no logging, no guarantees.
    Baseline,
    /// Baseline, then beldi, on the same workload (no crashes); prints both side by side.
    Compare,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum DurabilityArg {
    /// fsync on every commit (survives power loss).
    Fsync,
    /// No fsync (survives the process being killed, not a machine crash).
    ProcessCrash,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum Backend {
    /// The embedded store on local disk.
    Embedded,
    /// DynamoDB (or DynamoDB Local, with --endpoint); needs the `dynamodb` feature.
    Dynamodb,
}

/// Where the data lives.
#[derive(clap::Args, Clone)]
pub(crate) struct StoreArgs {
    /// Storage backend.
    #[arg(long, value_enum, default_value_t = Backend::Embedded)]
    pub(crate) backend: Backend,
    /// DynamoDB endpoint URL (with --backend dynamodb), e.g. DynamoDB Local's.
    #[arg(long)]
    pub(crate) endpoint: Option<String>,
    /// Directory of the embedded store (kept); default: a fresh directory under
    /// `$TMPDIR/beldi-runs/`, kept for inspection by an application job (the summary prints
    /// the commands; a later run removes it after a day) and removed at the end otherwise.
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Durability of the embedded store.
    #[arg(long, value_enum, default_value_t = DurabilityArg::ProcessCrash)]
    pub(crate) durability: DurabilityArg,
}

#[derive(clap::Args, Clone)]
pub(crate) struct AppArgs {
    /// Client requests.
    #[arg(long, default_value_t = 1000)]
    pub(crate) requests: u32,
    /// Closed loop: clients, each sending its next request when the last one returned.
    #[arg(long, default_value_t = 16)]
    pub(crate) clients: usize,
    /// Open loop instead: requests per second, sent on schedule whatever the latency.
    #[arg(long, conflicts_with = "clients", allow_negative_numbers = true)]
    pub(crate) rate: Option<f64>,
    /// Probability of a crash at each step boundary of a request and of its callees, in the
    /// first three executions of each request (0–1; beldi mode only).
    #[arg(long, default_value_t = 0.02, allow_negative_numbers = true)]
    pub(crate) crash_rate: f64,
    /// Seed of the data set, the requests and the crash injection.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Request mix (`reserve-heavy`: travel only).
    #[arg(long, value_enum, default_value_t = Mix::Paper)]
    pub(crate) mix: Mix,
    /// Travel: hotels and flights the reservations spread over (fewer: more contention).
    #[arg(long, default_value_t = 100)]
    pub(crate) targets: usize,
    /// beldi, baseline, or compare (both, side by side).
    #[arg(long, value_enum, default_value_t = ModeArg::Beldi)]
    pub(crate) mode: ModeArg,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Table name prefix (DynamoDB: lets runs share an endpoint; default: a fresh one per
    /// run, so `--resume` on DynamoDB needs the namespace of the run it continues).
    #[arg(long)]
    pub(crate) namespace: Option<String>,
    /// Continue a run that was killed: requests the run had started are finished first by
    /// the intent collector, then every request is issued again with the same id (finished
    /// ones return their stored results). Use the same options and `--data-dir`. On a store
    /// with no run yet (killed before it began), starts one.
    #[arg(long)]
    pub(crate) resume: bool,
    /// Do not draw a progress bar.
    #[arg(long)]
    pub(crate) no_progress: bool,
    /// Where the functions run.
    #[arg(long, value_enum, default_value_t = PlatformArg::Local)]
    pub(crate) platform: PlatformArg,
    /// Lambda endpoint URL (with --platform lambda), e.g. `cargo lambda watch`'s.
    #[arg(long)]
    pub(crate) lambda_endpoint: Option<String>,
    /// Lambda function names (with --platform lambda): `prefix:<p>` (one Lambda per
    /// function) or `single:<name>` (one Lambda hosting them all).
    #[arg(long, default_value = "prefix:")]
    pub(crate) function_names: String,
    /// Seconds to wait for a request's Lambda invocation before counting it lost and sending
    /// it again (with --platform lambda; more than the functions' timeout).
    #[arg(long, default_value_t = 70)]
    pub(crate) lambda_timeout: u64,
}

impl AppArgs {
    pub(crate) fn workload(&self) -> Workload {
        Workload {
            seed: self.seed,
            requests: self.requests,
            mix: self.mix,
            targets: self.targets,
        }
    }

    pub(crate) fn load(&self) -> Load {
        match self.rate {
            Some(rate) => Load::Open { rate },
            None => Load::Closed {
                clients: self.clients,
            },
        }
    }

    pub(crate) fn validate(&self, app: App) -> Result<(), JobError> {
        if self.requests == 0 || self.clients == 0 {
            return Err(usage(format!(
                "--requests ({}) and --clients ({}) must be at least 1",
                self.requests, self.clients
            )));
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(usage(format!(
                "--rate must be a positive number of requests per second, got {rate}"
            )));
        }
        if !(0.0..=1.0).contains(&self.crash_rate) {
            return Err(usage(format!(
                "--crash-rate must be between 0 and 1, got {}",
                self.crash_rate
            )));
        }
        if self.crash_rate >= 0.95 {
            return Err(usage(format!(
                "--crash-rate {} would almost never let a request finish; use less than 0.95",
                self.crash_rate
            )));
        }
        if self.platform == PlatformArg::Lambda {
            if self.store.backend != Backend::Dynamodb {
                return Err(usage(
                    "--platform lambda keeps its state in DynamoDB: add --backend dynamodb --endpoint URL",
                ));
            }
            if self.namespace.is_none() {
                return Err(usage(
                    "--platform lambda needs the --namespace the deployed functions use (their BELDI_NAMESPACE)",
                ));
            }
        } else if self.lambda_endpoint.is_some() {
            return Err(usage("--lambda-endpoint applies to --platform lambda only"));
        }
        if self.resume && self.mode == ModeArg::Compare {
            return Err(usage(
                "--resume continues one run; it cannot be used with --mode compare",
            ));
        }
        if self.resume && self.store.backend == Backend::Embedded && self.store.data_dir.is_none() {
            return Err(usage(
                "--resume needs the --data-dir of the run it continues",
            ));
        }
        if self.resume && self.store.backend == Backend::Dynamodb && self.namespace.is_none() {
            return Err(usage(
                "--resume on DynamoDB needs the --namespace of the run it continues",
            ));
        }
        app.validate(&self.workload()).map_err(usage)
    }
}
