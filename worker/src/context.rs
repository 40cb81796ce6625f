//! What every part of a running worker shares: its identity, the configuration, NATS handles, the
//! state views, the sessions and the market cache.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use nija_config::Config;
use nija_proto::WorkerId;
use nija_proto::state::{BlacklistEntry, TrackedPosition};
use nija_runtime::lease::Leases;
use nija_runtime::stores::{AccountSymbolMap, ControlState, ControlStore, Publisher};
use nija_runtime::topology::Topology;
use tokio::sync::{Semaphore, watch};

use nija_telemetry::WorkerMetrics;

use crate::market::MarketCache;
use crate::session::Sessions;
use crate::state::StateView;

/// What the process exposes about a worker: its metrics, its supervised tasks (for `/healthz`)
/// and whether it is ready to work.
#[derive(Clone)]
pub struct Observability {
    pub metrics: WorkerMetrics,
    pub supervisor: nija_telemetry::Supervisor,
    /// Set once the worker is connected, has the topology and runs its loops.
    pub ready: Arc<std::sync::atomic::AtomicBool>,
}

impl Observability {
    /// Registers the worker's metrics in `registry`.
    pub fn register(
        registry: &prometheus::Registry,
    ) -> Result<Observability, nija_telemetry::TelemetryError> {
        Ok(Observability {
            metrics: WorkerMetrics::register(registry)?,
            supervisor: nija_telemetry::Supervisor::new(registry, Default::default())?,
            ready: Arc::default(),
        })
    }
}

/// Forwards the broker crate's retries and rate-limit waits to the worker's metrics.
pub struct BrokerMetricsObserver(pub nija_telemetry::BrokerMetrics);

impl nija_brokers::BrokerObserver for BrokerMetricsObserver {
    fn retried(&self, broker: &str) {
        self.0.retry(broker);
    }

    fn rate_limited(&self, broker: nija_brokers::BrokerKind, waited: Duration) {
        self.0.waited(
            broker.as_str(),
            nija_telemetry::WaitReason::RateLimit,
            waited,
        );
    }
}

/// Shared by every task of one worker.
pub struct Context {
    pub id: WorkerId,
    pub started_at: DateTime<Utc>,
    pub config: Arc<Config>,
    pub client: async_nats::Client,
    pub topology: Topology,
    pub leases: Leases,
    pub publisher: Publisher,
    pub control: ControlStore,
    /// The live view of the control flags (watched).
    pub control_view: watch::Receiver<Arc<ControlState>>,
    pub blacklist: StateView<BlacklistEntry>,
    pub tracker: StateView<TrackedPosition>,
    pub blacklist_store: AccountSymbolMap<BlacklistEntry>,
    pub tracker_store: AccountSymbolMap<TrackedPosition>,
    pub sessions: Sessions,
    /// Where account credentials held in Kubernetes Secrets are read (in-cluster by default).
    pub k8s_api: nija_brokers::K8sApiSettings,
    pub market: MarketCache,
    pub metrics: WorkerMetrics,
    /// Bounds the jobs in flight (`[worker] concurrency`).
    pub permits: Arc<Semaphore>,
    pub jobs_in_flight: AtomicU32,
    /// Bounds concurrent liquidation-history reads (each is a short-lived stream consumer).
    pub history_loads: Semaphore,
    /// Partitions whose pull loop runs (they share the job slots).
    pub pulling: AtomicU32,
    last_job_finished: AtomicI64,
}

impl Context {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: WorkerId,
        config: Arc<Config>,
        client: async_nats::Client,
        topology: Topology,
        control_view: watch::Receiver<Arc<ControlState>>,
        blacklist: StateView<BlacklistEntry>,
        tracker: StateView<TrackedPosition>,
        metrics: WorkerMetrics,
    ) -> Context {
        let js = topology.js.clone();
        Context {
            leases: Leases::new(topology.leases.clone(), id.clone(), config.worker.lease_ttl),
            publisher: Publisher::new(js.clone()),
            control: ControlStore::new(js.clone(), topology.control.clone()),
            blacklist_store: AccountSymbolMap::new(js.clone(), topology.blacklist.clone()),
            tracker_store: AccountSymbolMap::new(js, topology.tracker.clone()),
            market: MarketCache::new(config.worker.price_cache_ttl),
            permits: Arc::new(Semaphore::new(config.worker.concurrency.max(1) as usize)),
            sessions: Sessions::default(),
            k8s_api: nija_brokers::K8sApiSettings::default(),
            metrics,
            jobs_in_flight: AtomicU32::new(0),
            pulling: AtomicU32::new(0),
            history_loads: Semaphore::new(16),
            last_job_finished: AtomicI64::new(0),
            started_at: Utc::now(),
            id,
            config,
            client,
            topology,
            control_view,
            blacklist,
            tracker,
        }
    }

    pub fn job_deadline(&self) -> Duration {
        self.config.schedule.job_deadline
    }

    pub fn job_finished(&self, at: DateTime<Utc>) {
        self.last_job_finished
            .store(at.timestamp_millis(), Ordering::Relaxed);
    }

    pub fn last_job_finished(&self) -> Option<DateTime<Utc>> {
        match self.last_job_finished.load(Ordering::Relaxed) {
            0 => None,
            ms => Utc.timestamp_millis_opt(ms).single(),
        }
    }
}
