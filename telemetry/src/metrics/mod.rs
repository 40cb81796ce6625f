//! Prometheus metrics, one struct per role, each registering itself in a `prometheus::Registry`.
//!
//! Every name starts with `nija_`; `docs/metrics.md` lists them with their labels and cardinality,
//! and the dashboards and alert rules in `deploy/` use exactly these names (a test checks it).
//! Label values come from closed sets (job kinds, statuses, sell reasons, broker error classes),
//! except `account` (only the platform accounts and an allow-list, see [`AccountLabels`]) and
//! `worker` (one series per live worker).
//!
//! Money stays a decimal everywhere else; it becomes `f64` only here, at the edge, through
//! [`usd`], because the Prometheus data model has no other number type.

mod account;
mod broker;
mod coordinator;
mod worker;

pub use account::{AccountFigures, AccountLabels, AccountMetrics};
pub use broker::{BrokerMetrics, WaitReason};
pub use coordinator::CoordinatorMetrics;
pub use worker::{FenceRefusal, LeaseScope, WorkerMetrics};

use nija_proto::Usd;
use prometheus::{Encoder, IntGaugeVec, Opts, Registry, TextEncoder};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use crate::error::TelemetryError;

/// Buckets for job durations (seconds): jobs run from milliseconds to the deadline (60 s default).
const JOB_SECONDS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
];
/// Buckets for broker calls and order placement (seconds).
const BROKER_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The text exposition of everything in `registry` (what `/metrics` serves).
pub fn render(registry: &Registry) -> String {
    let mut buffer = Vec::new();
    // Encoding into a Vec fails only for metric families the registry itself rejected.
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut buffer) {
        tracing::error!(error = %e, "cannot encode metrics");
    }
    String::from_utf8_lossy(&buffer).into_owned()
}

/// A USD amount as a gauge value. The one place money leaves `Decimal`.
pub fn usd(value: Usd) -> f64 {
    decimal(value.value())
}

/// A decimal (ratio, count) as a gauge value.
pub fn decimal(value: Decimal) -> f64 {
    value.to_f64().unwrap_or(f64::NAN)
}

/// `nija_build_info{service, version} 1`: tells which process a series comes from, and is absent
/// when the process is down (the coordinator-down alert uses it).
fn register_build_info(registry: &Registry, service: &str) -> Result<(), TelemetryError> {
    let info = IntGaugeVec::new(
        Opts::new(
            "nija_build_info",
            "Always 1; labels name the service and its version.",
        ),
        &["service", "version"],
    )?;
    registry.register(Box::new(info.clone()))?;
    info.with_label_values(&[service, env!("CARGO_PKG_VERSION")])
        .set(1);
    Ok(())
}
