//! `nija-worker`: the worker process. Logs go to stderr; SIGTERM/SIGINT drain it and exit 0.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use nija_config::{Config, ProcessEnv, Role};
use nija_proto::WorkerId;
use nija_worker::context::Observability;
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
    /// Address of `/metrics`, `/healthz`, `/readyz` (overrides `[http] listen`; default
    /// `0.0.0.0:9465`; port 0 picks a free port, logged at start).
    #[arg(long, env = "NIJA_WORKER_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
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
    let registry = prometheus::Registry::new();
    let observability = match Observability::register(&registry) {
        Ok(o) => o,
        Err(err) => {
            eprintln!("nija-worker: metrics: {err}");
            return ExitCode::from(2);
        }
    };
    let listen = args
        .http_listen
        .unwrap_or_else(|| loaded.config.http_listen(Role::Worker));
    let http = serve_http(listen, registry, &observability).await;
    let shutdown = CancellationToken::new();
    tokio::spawn(on_signal(shutdown.clone()));
    let outcome = nija_worker::run(Arc::new(loaded.config), id, observability, shutdown).await;
    if let Some(http) = http {
        http.shutdown().await;
    }
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "worker failed");
            eprintln!("nija-worker: {err}");
            ExitCode::from(3)
        }
    }
}

/// Serves the health and metrics endpoints. A taken port is logged, not fatal: the worker's job
/// (keeping accounts safe) matters more than its figures.
async fn serve_http(
    listen: SocketAddr,
    registry: prometheus::Registry,
    observability: &Observability,
) -> Option<nija_telemetry::HttpServer> {
    let supervisor = observability.supervisor.clone();
    let ready = observability.ready.clone();
    let readiness: nija_telemetry::Readiness = Arc::new(move || {
        let ready = ready.load(std::sync::atomic::Ordering::Relaxed);
        Box::pin(async move {
            if ready {
                Ok(())
            } else {
                Err("not connected to NATS with the topology, or draining".to_string())
            }
        })
    });
    match nija_telemetry::serve(listen, registry, supervisor, readiness).await {
        Ok(server) => {
            tracing::info!(listen = %server.local_addr(), "metrics and health endpoints up");
            Some(server)
        }
        Err(err) => {
            tracing::error!(error = %err, "metrics and health endpoints not served");
            None
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
