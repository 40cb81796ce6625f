//! `nija-worker`: the worker process. Logs go to stderr; SIGTERM/SIGINT drain it and exit 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use nija_config::{Config, ProcessEnv};
use nija_proto::WorkerId;
use tokio_util::sync::CancellationToken;

/// Executes nija's per-account jobs (enforce, normalize, exit sweep) for the partitions it leases.
#[derive(Debug, Parser)]
#[command(name = "nija-worker", version)]
struct Args {
    /// The nija TOML configuration (DESIGN §5).
    #[arg(long, env = "NIJA_CONFIG")]
    config: Option<PathBuf>,
    /// This worker's id (`[A-Za-z0-9_-]{1,64}`); default `<hostname>-<pid>`.
    #[arg(long, env = "NIJA_WORKER_ID")]
    worker_id: Option<String>,
    /// Log format: `text` or `json` (default: `NIJA_LOG_FORMAT`, else text).
    #[arg(long)]
    log_format: Option<String>,
}

fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "worker".to_string());
    let host: String = host
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(50)
        .collect();
    format!("{host}-{}", std::process::id())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let format = match args.log_format.as_deref().map(str::parse).transpose() {
        Ok(format) => format,
        Err(err) => {
            eprintln!("nija-worker: --log-format: {err}");
            return ExitCode::from(2);
        }
    };
    let _tracing = match nija_telemetry::init_tracing("nija-worker", format) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("nija-worker: cannot set up logging: {err}");
            return ExitCode::from(2);
        }
    };
    let loaded = match Config::load_located(args.config.as_deref(), &ProcessEnv) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("nija-worker: {err}");
            return ExitCode::from(2);
        }
    };
    for warning in &loaded.warnings {
        tracing::warn!(%warning, "configuration warning");
    }
    let id = args.worker_id.unwrap_or_else(default_worker_id);
    let id = match WorkerId::new(id) {
        Ok(id) => id,
        Err(err) => {
            eprintln!("nija-worker: --worker-id: {err}");
            return ExitCode::from(2);
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(on_signal(shutdown.clone()));
    match nija_worker::run(Arc::new(loaded.config), id, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "worker failed");
            eprintln!("nija-worker: {err}");
            ExitCode::from(3)
        }
    }
}

async fn on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    shutdown.cancel();
}
