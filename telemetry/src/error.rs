//! Errors raised while setting telemetry up. Each says what failed and what the operator can do.

use std::net::SocketAddr;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum TelemetryError {
    #[error(
        "unknown log format {0:?}: use \"json\" or \"text\" (flag --log-format or NIJA_LOG_FORMAT)"
    )]
    LogFormat(String),
    #[error("a global tracing subscriber is already installed: call init_tracing once per process")]
    AlreadyInitialized,
    #[error(
        "cannot build the OTLP span exporter for {endpoint}: {message} \
         (check OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://127.0.0.1:4317)"
    )]
    Otlp { endpoint: String, message: String },
    #[error("cannot register metric: {0} (a metric of that name is already registered)")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot listen on {addr} for /metrics and health: {source} (check [http] listen)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}
