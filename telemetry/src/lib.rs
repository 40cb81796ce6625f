//! Logs, traces, metrics, health endpoints and task supervision for nija's processes.
//!
//! Every binary sets itself up through this crate, so the coordinator, the workers and the CLI log,
//! trace and export figures the same way:
//!
//! - [`logging`]: the `tracing` subscriber (env filter, JSON or text on stderr) and OTLP span export.
//! - [`propagation`]: W3C trace context in NATS headers, so a worker's span continues the
//!   coordinator's trace.
//! - [`metrics`]: one struct per role that registers itself in a `prometheus::Registry`; every name
//!   starts with `nija_` (the list and its cardinality are in `docs/metrics.md`).
//! - [`supervise`]: long-running tasks restarted with backoff, with liveness ticks.
//! - [`http`]: `/metrics`, `/healthz` (supervised tasks alive) and `/readyz` (a readiness callback).

pub mod error;
pub mod http;
pub mod logging;
pub mod metrics;
pub mod propagation;
pub mod supervise;

pub use error::TelemetryError;
pub use http::{HttpServer, Readiness, ready_always, router, serve, serve_router};
pub use logging::{LogFormat, TracingConfig, TracingGuard, init_tracing};
pub use metrics::{
    AccountFigures, AccountLabels, AccountMetrics, BrokerMetrics, CoordinatorMetrics, FenceRefusal,
    LeaseScope, WaitReason, WorkerMetrics, render,
};
pub use propagation::{current_trace_id, extract, inject, set_parent_from};
pub use supervise::{Following, Liveness, Next, Supervisor, SupervisorConfig, TaskHealth};
