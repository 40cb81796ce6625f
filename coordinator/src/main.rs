//! `nija-coordinator`: schedules jobs, aggregates results, supervises workers, answers the CLI.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nija_config::{Config, ProcessEnv};
use nija_coordinator::Settings;
use nija_telemetry::LogFormat;
use tokio_util::sync::CancellationToken;

/// The nija coordinator: schedules enforce and exit-sweep jobs for every account, aggregates
/// results, supervises workers through their heartbeats and answers `nija` control requests.
#[derive(Debug, Parser)]
#[command(name = "nija-coordinator", version)]
struct Args {
    /// The nija configuration file.
    #[arg(long, env = "NIJA_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// Log format on stderr: text or json (default: NIJA_LOG_FORMAT, else text).
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let _tracing = match nija_telemetry::init_tracing("nija-coordinator", args.log_format) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("nija-coordinator: {e}");
            return ExitCode::from(2);
        }
    };
    let loaded = match Config::load(&args.config, &ProcessEnv) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("nija-coordinator: {e}");
            return ExitCode::from(2);
        }
    };
    for warning in &loaded.warnings {
        tracing::warn!(key = warning.key(), "{warning}");
    }
    let settings = Settings::from_config(&loaded.config);
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        stop.cancel();
    });
    match nija_coordinator::run(settings, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "coordinator failed");
            eprintln!("nija-coordinator: {e}");
            ExitCode::from(3)
        }
    }
}

/// SIGINT or SIGTERM.
async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
