//! The HTTP endpoints every process serves on its `[http] listen` address.
//!
//! - `/metrics`: the Prometheus text format of the process's registry.
//! - `/healthz`: 200 while every supervised task ticks (the process is alive), else 503; the body
//!   lists the tasks. Liveness probes restart the process on 503.
//! - `/readyz`: 200 when the readiness callback passes (e.g. connected to NATS, streams exist),
//!   else 503 with the reason. Readiness probes stop routing to the process on 503.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::Registry;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::TelemetryError;
use crate::metrics::render;
use crate::supervise::Supervisor;

/// What a readiness check returns: `Err(reason)` when not ready.
pub type ReadinessFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
/// The readiness callback, called on every `/readyz`. It should answer quickly and bound its own
/// I/O (the probe's timeout is the orchestrator's).
pub type Readiness = Arc<dyn Fn() -> ReadinessFuture + Send + Sync>;

/// A readiness callback that is always ready (for processes with nothing to wait for).
pub fn ready_always() -> Readiness {
    Arc::new(|| Box::pin(async { Ok(()) }))
}

#[derive(Clone)]
struct AppState {
    registry: Registry,
    supervisor: Supervisor,
    readiness: Readiness,
}

/// The three routes, for a process that wants to add its own before serving.
pub fn router(registry: Registry, supervisor: Supervisor, readiness: Readiness) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState {
            registry,
            supervisor,
            readiness,
        })
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&state.registry),
    )
        .into_response()
}

async fn healthz(State(state): State<AppState>) -> Response {
    let tasks = state.supervisor.health();
    let healthy = tasks.iter().all(|t| t.alive);
    let (code, status) = if healthy {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy")
    };
    (
        code,
        axum::Json(json!({ "status": status, "tasks": tasks })),
    )
        .into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    match (state.readiness)().await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({ "status": "ready" }))).into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "not_ready", "reason": reason })),
        )
            .into_response(),
    }
}

/// A running endpoint server.
pub struct HttpServer {
    local_addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// The bound address (the real port when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, finishes requests in progress and waits for the server to end.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}

/// Binds `listen` and serves `/metrics`, `/healthz` and `/readyz` in a background task.
pub async fn serve(
    listen: SocketAddr,
    registry: Registry,
    supervisor: Supervisor,
    readiness: Readiness,
) -> Result<HttpServer, TelemetryError> {
    serve_router(listen, router(registry, supervisor, readiness)).await
}

/// Binds `listen` and serves `app` (built from [`router`]) in a background task.
pub async fn serve_router(listen: SocketAddr, app: Router) -> Result<HttpServer, TelemetryError> {
    let bind_error = |source| TelemetryError::Bind {
        addr: listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(bind_error)?;
    let local_addr = listener.local_addr().map_err(bind_error)?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, %local_addr, "metrics and health server stopped");
        }
    });
    tracing::info!(%local_addr, "serving /metrics, /healthz, /readyz");
    Ok(HttpServer {
        local_addr,
        shutdown,
        task,
    })
}
