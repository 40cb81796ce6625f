//! A worker's figures: jobs it ran, leases, the order fence, dead letters and (through
//! [`BrokerMetrics`]) its broker calls.

use nija_proto::ids::JobKind;
use nija_proto::messages::ResultStatus;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use super::broker::BrokerMetrics;
use super::coordinator::clamp;
use super::register_build_info;
use crate::error::TelemetryError;

/// Which lease was taken over from an owner whose lease had expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseScope {
    Partition,
    Account,
}

impl LeaseScope {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseScope::Partition => "partition",
            LeaseScope::Account => "account",
        }
    }
}

/// Why the fence checked before an order refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FenceRefusal {
    LeaseLost,
    Paused,
    Quarantined,
}

impl FenceRefusal {
    pub fn as_str(self) -> &'static str {
        match self {
            FenceRefusal::LeaseLost => "lease_lost",
            FenceRefusal::Paused => "paused",
            FenceRefusal::Quarantined => "quarantined",
        }
    }
}

#[derive(Clone)]
pub struct WorkerMetrics {
    pub broker: BrokerMetrics,
    jobs: IntCounterVec,
    jobs_in_flight: IntGauge,
    dead_letters: IntCounterVec,
    lease_takeovers: IntCounterVec,
    fence_refusals: IntCounterVec,
    partitions: IntGauge,
    accounts: IntGauge,
    heartbeats: IntCounter,
}

impl WorkerMetrics {
    /// Registers everything, `nija_build_info{service="worker"}` and [`BrokerMetrics`] included.
    pub fn register(registry: &Registry) -> Result<WorkerMetrics, TelemetryError> {
        register_build_info(registry, "worker")?;
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, TelemetryError>(c)
        };
        let int_gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, TelemetryError>(g)
        };
        let heartbeats = IntCounter::new("nija_heartbeats_sent_total", "Heartbeats published.")?;
        registry.register(Box::new(heartbeats.clone()))?;
        let metrics = WorkerMetrics {
            broker: BrokerMetrics::register(registry)?,
            jobs: counter(
                "nija_worker_jobs_total",
                "Jobs this worker ran to a result, by status.",
                &["kind", "status"],
            )?,
            jobs_in_flight: int_gauge(
                "nija_worker_jobs_in_flight",
                "Jobs this worker is running now.",
            )?,
            dead_letters: counter(
                "nija_dead_letters_total",
                "Messages this process could not process and sent to the dead-letter stream.",
                &["kind"],
            )?,
            lease_takeovers: counter(
                "nija_lease_takeovers_total",
                "Leases taken over from an owner whose lease had expired.",
                &["scope"],
            )?,
            fence_refusals: counter(
                "nija_order_fence_refusals_total",
                "Orders not placed because the check just before placing failed.",
                &["reason"],
            )?,
            partitions: int_gauge("nija_worker_partitions", "Partitions this worker holds.")?,
            accounts: int_gauge(
                "nija_worker_accounts",
                "Accounts whose lease and broker session this worker holds.",
            )?,
            heartbeats,
        };
        for kind in JobKind::ALL {
            metrics.dead_letters.with_label_values(&[kind.as_str()]);
        }
        for scope in [LeaseScope::Partition, LeaseScope::Account] {
            metrics.lease_takeovers.with_label_values(&[scope.as_str()]);
        }
        for reason in [
            FenceRefusal::LeaseLost,
            FenceRefusal::Paused,
            FenceRefusal::Quarantined,
        ] {
            metrics.fence_refusals.with_label_values(&[reason.as_str()]);
        }
        Ok(metrics)
    }

    pub fn job_started(&self) {
        self.jobs_in_flight.inc();
    }

    pub fn job_finished(&self, kind: JobKind, status: ResultStatus) {
        self.jobs_in_flight.dec();
        self.jobs
            .with_label_values(&[kind.as_str(), status.as_str()])
            .inc();
    }

    /// A message dead-lettered; `kind` is `None` when the subject names no known job kind.
    pub fn dead_lettered(&self, kind: Option<JobKind>) {
        let kind = kind.map_or("unknown", JobKind::as_str);
        self.dead_letters.with_label_values(&[kind]).inc();
    }

    pub fn lease_taken_over(&self, scope: LeaseScope) {
        self.lease_takeovers
            .with_label_values(&[scope.as_str()])
            .inc();
    }

    pub fn fence_refused(&self, reason: FenceRefusal) {
        self.fence_refusals
            .with_label_values(&[reason.as_str()])
            .inc();
    }

    pub fn set_partitions_held(&self, count: u64) {
        self.partitions.set(clamp(count));
    }

    pub fn set_accounts_held(&self, count: u64) {
        self.accounts.set(clamp(count));
    }

    pub fn heartbeat_sent(&self) {
        self.heartbeats.inc();
    }
}
