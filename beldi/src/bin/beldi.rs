//! `beldi`: inspect a Beldi store — its functions, instances by state, one instance's step
//! log and call tree, the locks held, statistics — and serve the local web UI. See
//! `beldi --help` and [`beldi::cli`].

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = beldi::cli::Cli::parse();
    match beldi::cli::run(&cli, None, &mut std::io::stdout()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("beldi: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
