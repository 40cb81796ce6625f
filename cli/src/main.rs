//! `nija`: the operator CLI. `nija up` starts the local stack; every other command talks to the
//! coordinator over NATS (see `commands`). Logs go to stderr; `--json` output to stdout.

mod commands;
mod report;
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
    Status(commands::status::StatusArgs),
    /// Stop order placement (all accounts, or one with --account).
    Pause(commands::pause::PauseArgs),
    /// Resume order placement; --account also lifts a quarantine.
    Resume(commands::pause::PauseArgs),
    /// Enforce one account's cap now and print the result (--dry-run: the plan only).
    Enforce(commands::enforce::EnforceArgs),
    /// Normalize accounts to their cap and write a report (JSON + Markdown).
    Normalize(commands::normalize::NormalizeArgs),
    /// List or change an account's blacklist.
    Blacklist(commands::blacklist::BlacklistArgs),
    /// Register a strategy-opened position (source nija_strategy).
    Track(commands::track::TrackArgs),
    /// Check a configuration file.
    Config(commands::config::ConfigArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Cmd::Up(args) => up::up(args)
            .await
            .map_err(|error| commands::Failure { code: 1, error }),
        Cmd::Status(args) => commands::status::run(args).await,
        Cmd::Pause(args) => commands::pause::run(args, true).await,
        Cmd::Resume(args) => commands::pause::run(args, false).await,
        Cmd::Enforce(args) => commands::enforce::run(args).await,
        Cmd::Normalize(args) => commands::normalize::run(args).await,
        Cmd::Blacklist(args) => commands::blacklist::run(args).await,
        Cmd::Track(args) => commands::track::run(args).await,
        Cmd::Config(args) => commands::config::run(args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("nija: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}
