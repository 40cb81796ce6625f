//! `nija`: the operator CLI. `nija up` starts the local stack; `status`, `pause` and `resume`
//! talk to the coordinator. Logs go to stderr; `--json` output to stdout.

mod ctl;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// nija: a safety control plane for trading accounts.
#[derive(Debug, Parser)]
#[command(name = "nija", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Start the local stack: nats-server, the exchange simulator, the coordinator, two workers.
    Up(up::UpArgs),
    /// The fleet: workers, accounts and their last results.
    Status(ctl::StatusArgs),
    /// Stop order placement (all accounts, or one with --account).
    Pause(ctl::PauseArgs),
    /// Resume order placement; --account also lifts a quarantine.
    Resume(ctl::PauseArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Cmd::Up(args) => up::up(args)
            .await
            .map_err(|error| ctl::Failure { code: 1, error }),
        Cmd::Status(args) => ctl::status(args).await,
        Cmd::Pause(args) => ctl::pause(args, true).await,
        Cmd::Resume(args) => ctl::pause(args, false).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("nija: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}
