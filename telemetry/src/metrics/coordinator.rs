//! The coordinator's figures: the job pipeline, worker liveness, control flags, and (through
//! [`AccountMetrics`]) the fleet's account figures aggregated from results.

use std::time::Duration;

use chrono::{DateTime, Utc};
use nija_proto::WorkerId;
use nija_proto::ids::JobKind;
use nija_proto::messages::{JobResult, ResultStatus};
use prometheus::{
    Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry,
};

use super::account::{AccountLabels, AccountMetrics};
use super::{JOB_SECONDS, register_build_info};
use crate::error::TelemetryError;

const STATUSES: [ResultStatus; 8] = [
    ResultStatus::Compliant,
    ResultStatus::Enforced,
    ResultStatus::Partial,
    ResultStatus::CapUnreachable,
    ResultStatus::RefusedByGuard,
    ResultStatus::Paused,
    ResultStatus::ObserveOnly,
    ResultStatus::Failed,
];

#[derive(Clone)]
pub struct CoordinatorMetrics {
    pub accounts: AccountMetrics,
    jobs_published: IntCounterVec,
    jobs_completed: IntCounterVec,
    jobs_failed: IntCounterVec,
    job_seconds: HistogramVec,
    jobs_in_flight: IntGauge,
    jobs_pending: IntGauge,
    job_stalls: IntCounterVec,
    dead_letters: IntCounterVec,
    dead_letter_messages: IntGauge,
    workers_alive: IntGauge,
    workers_lost: IntCounter,
    heartbeat_age: GaugeVec,
    quarantined: IntGauge,
    paused: IntGauge,
    observe_mode: IntGauge,
    scheduler_last_run: Gauge,
}

impl CoordinatorMetrics {
    /// Registers everything, `nija_build_info{service="coordinator"}` included.
    pub fn register(
        registry: &Registry,
        labels: AccountLabels,
    ) -> Result<CoordinatorMetrics, TelemetryError> {
        register_build_info(registry, "coordinator")?;
        let counter = |name: &str, help: &str, label_names: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), label_names)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, TelemetryError>(c)
        };
        let int_gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, TelemetryError>(g)
        };
        let job_seconds = HistogramVec::new(
            HistogramOpts::new(
                "nija_job_duration_seconds",
                "How long workers took to run jobs (result finished_at - started_at).",
            )
            .buckets(JOB_SECONDS.to_vec()),
            &["kind"],
        )?;
        registry.register(Box::new(job_seconds.clone()))?;
        let heartbeat_age = GaugeVec::new(
            Opts::new(
                "nija_worker_heartbeat_age_seconds",
                "Seconds since the worker's last heartbeat (series removed when it is forgotten).",
            ),
            &["worker"],
        )?;
        registry.register(Box::new(heartbeat_age.clone()))?;
        let scheduler_last_run = Gauge::new(
            "nija_scheduler_last_run_timestamp_seconds",
            "When the scheduler last ran a pass (Unix seconds); stops moving when it is stuck.",
        )?;
        registry.register(Box::new(scheduler_last_run.clone()))?;

        let metrics = CoordinatorMetrics {
            accounts: AccountMetrics::register(registry, labels)?,
            jobs_published: counter(
                "nija_jobs_published_total",
                "Jobs published to the jobs stream.",
                &["kind"],
            )?,
            jobs_completed: counter(
                "nija_jobs_completed_total",
                "Job results received, by status.",
                &["kind", "status"],
            )?,
            jobs_failed: counter(
                "nija_jobs_failed_total",
                "Job results with status failed or partial.",
                &["kind"],
            )?,
            job_seconds,
            jobs_in_flight: int_gauge(
                "nija_jobs_in_flight",
                "Jobs published whose result has not arrived yet.",
            )?,
            jobs_pending: int_gauge(
                "nija_jobs_pending",
                "Messages waiting in the job consumers (sum of num_pending).",
            )?,
            job_stalls: counter(
                "nija_job_stalls_total",
                "Jobs past their deadline without a result.",
                &["kind"],
            )?,
            dead_letters: counter(
                "nija_dead_letters_total",
                "Messages this process could not process and sent to the dead-letter stream.",
                &["kind"],
            )?,
            dead_letter_messages: int_gauge(
                "nija_dead_letter_messages",
                "Messages held in the dead-letter stream.",
            )?,
            workers_alive: int_gauge(
                "nija_workers_alive",
                "Workers whose heartbeat is recent (three missed heartbeats mark one dead).",
            )?,
            workers_lost: {
                let c = IntCounter::new(
                    "nija_workers_lost_total",
                    "Workers declared dead after missed heartbeats (a drained worker that left is not lost).",
                )?;
                registry.register(Box::new(c.clone()))?;
                c
            },
            heartbeat_age,
            quarantined: int_gauge(
                "nija_quarantined_accounts",
                "Accounts quarantined after repeated credential failures.",
            )?,
            paused: int_gauge(
                "nija_paused",
                "1 while the global kill switch is on (nija pause).",
            )?,
            observe_mode: int_gauge(
                "nija_observe_mode",
                "1 while the global mode is observe (no orders placed).",
            )?,
            scheduler_last_run,
        };
        for kind in JobKind::ALL {
            let k = kind.as_str();
            metrics.jobs_published.with_label_values(&[k]);
            metrics.jobs_failed.with_label_values(&[k]);
            metrics.job_stalls.with_label_values(&[k]);
            metrics.dead_letters.with_label_values(&[k]);
            for status in STATUSES {
                metrics
                    .jobs_completed
                    .with_label_values(&[k, status.as_str()]);
            }
        }
        Ok(metrics)
    }

    pub fn job_published(&self, kind: JobKind) {
        self.jobs_published
            .with_label_values(&[kind.as_str()])
            .inc();
    }

    /// Counts a result and feeds its account figures to [`AccountMetrics`].
    pub fn job_result(&self, result: &JobResult) {
        let kind = result.kind.as_str();
        self.jobs_completed
            .with_label_values(&[kind, result.status.as_str()])
            .inc();
        if !result.status.is_success() {
            self.jobs_failed.with_label_values(&[kind]).inc();
        }
        if let Ok(took) = (result.finished_at - result.started_at).to_std() {
            self.job_seconds
                .with_label_values(&[kind])
                .observe(took.as_secs_f64());
        }
        self.accounts.record_result(result);
    }

    /// Takes a result read back at start-up (rebuilding state from the results stream): the
    /// account figures only. Counters are left alone, so a restart does not count history again.
    pub fn restore_result(&self, result: &JobResult) {
        self.accounts.restore_result(result);
    }

    pub fn set_jobs_in_flight(&self, count: u64) {
        self.jobs_in_flight.set(clamp(count));
    }

    pub fn set_jobs_pending(&self, count: u64) {
        self.jobs_pending.set(clamp(count));
    }

    pub fn job_stalled(&self, kind: JobKind) {
        self.job_stalls.with_label_values(&[kind.as_str()]).inc();
    }

    /// A message the coordinator itself dead-lettered (an undecodable result); `kind` is `None`
    /// when the subject names no known job kind.
    pub fn dead_lettered(&self, kind: Option<JobKind>) {
        let kind = kind.map_or("unknown", JobKind::as_str);
        self.dead_letters.with_label_values(&[kind]).inc();
    }

    pub fn set_dead_letter_messages(&self, count: u64) {
        self.dead_letter_messages.set(clamp(count));
    }

    pub fn set_workers_alive(&self, count: u64) {
        self.workers_alive.set(clamp(count));
    }

    pub fn set_heartbeat_age(&self, worker: &WorkerId, age: Duration) {
        self.heartbeat_age
            .with_label_values(&[worker.as_str()])
            .set(age.as_secs_f64());
    }

    /// A worker declared dead after missed heartbeats (not one that drained and left). The
    /// heartbeat-missing alert fires on this, so the worker's age series may be forgotten at once.
    pub fn worker_lost(&self) {
        self.workers_lost.inc();
    }

    /// Drops a worker's series (after it left gracefully or stayed dead long enough).
    pub fn forget_worker(&self, worker: &WorkerId) {
        let _ = self.heartbeat_age.remove_label_values(&[worker.as_str()]);
    }

    pub fn set_quarantined_accounts(&self, count: u64) {
        self.quarantined.set(clamp(count));
    }

    pub fn set_paused(&self, paused: bool) {
        self.paused.set(i64::from(paused));
    }

    pub fn set_observe_mode(&self, observe: bool) {
        self.observe_mode.set(i64::from(observe));
    }

    pub fn scheduler_ran(&self, at: DateTime<Utc>) {
        self.scheduler_last_run
            .set(at.timestamp_millis() as f64 / 1000.0);
    }
}

pub(super) fn clamp(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}
