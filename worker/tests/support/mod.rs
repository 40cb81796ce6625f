//! A real nats-server, the coordinator's topology, an in-process simulator over real HTTP and a
//! worker running from the library: jobs go in through JetStream, results come out of it.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use chrono::Utc;
use futures::StreamExt;
use nija_config::{Config, MapEnv};
use nija_e2e::NatsServer;
use nija_proto::ids::JobKind;
use nija_proto::messages::{Job, JobResult, TriggeredBy, decode};
use nija_proto::{AccountId, JobId, WorkerId};
use nija_runtime::stores::{ControlStore, Publisher};
use nija_runtime::topology::{Topology, TopologySettings, ensure_topology};
use nija_sim::{Scenario, Sim, SimHandle, SimOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const JOB_DEADLINE: Duration = Duration::from_secs(15);

pub struct Harness {
    pub nats: NatsServer,
    pub sim: SimHandle,
    pub config: Config,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub topology: Topology,
    pub publisher: Publisher,
    pub control: ControlStore,
    results: async_nats::Subscriber,
    slots: AtomicU64,
    pub deadline: Duration,
    _dir: tempfile::TempDir,
}

pub struct RunningWorker {
    pub id: WorkerId,
    /// The worker's supervised tasks (what `/healthz` reports).
    pub supervisor: nija_telemetry::Supervisor,
    stop: CancellationToken,
    task: JoinHandle<Result<(), nija_worker::WorkerError>>,
}

impl RunningWorker {
    /// Stops the worker the way SIGTERM does and waits for it to drain.
    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

impl Harness {
    /// Starts NATS and a simulator seeded with `scenario` (prices frozen), writes the simulator's
    /// config and tunes it for tests (short intervals, no cooldown).
    pub async fn start(scenario: serde_json::Value) -> Harness {
        let scenario: Scenario = serde_json::from_value(scenario).unwrap();
        Harness::with_options(SimOptions::from_scenario(scenario), JOB_DEADLINE).await
    }

    /// A generated fleet of `accounts` accounts with about `positions` positions each.
    pub async fn start_generated(
        accounts: usize,
        positions: usize,
        seed: u64,
        deadline: Duration,
    ) -> Harness {
        Harness::with_options(SimOptions::generated(accounts, positions, seed), deadline).await
    }

    async fn with_options(mut options: SimOptions, deadline: Duration) -> Harness {
        let nats = NatsServer::start().unwrap();
        options.motion.frozen = true;
        let sim = Sim::start(options).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path: PathBuf = dir.path().join("nija.toml");
        sim.write_config(&path, &nats.url()).unwrap();
        let mut config = Config::load(&path, &MapEnv::new()).unwrap().config;
        config.worker.partitions = 4;
        config.worker.connect_cooldown = Duration::from_millis(50);
        config.worker.heartbeat_every = Duration::from_millis(200);
        config.worker.lease_ttl = Duration::from_secs(3);
        config.worker.price_cache_ttl = Duration::ZERO;
        config.schedule.job_deadline = deadline;

        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = jetstream::new(client.clone());
        let topology = ensure_topology(
            &js,
            &TopologySettings {
                partitions: config.worker.partitions,
                job_deadline: deadline,
                ..TopologySettings::default()
            },
        )
        .await
        .unwrap();
        let results = client.subscribe("nija.results.>").await.unwrap();
        Harness {
            publisher: Publisher::new(js.clone()),
            control: ControlStore::new(js.clone(), topology.control.clone()),
            nats,
            sim,
            config,
            client,
            js,
            topology,
            results,
            slots: AtomicU64::new(1),
            deadline,
            _dir: dir,
        }
    }

    pub fn account(id: &str) -> AccountId {
        AccountId::new(id).unwrap()
    }

    /// Starts a worker from the library with the harness's configuration.
    pub fn spawn_worker(&self, id: &str) -> RunningWorker {
        let stop = CancellationToken::new();
        let id = WorkerId::new(id).unwrap();
        let observability =
            nija_worker::context::Observability::register(&prometheus::Registry::new()).unwrap();
        let supervisor = observability.supervisor.clone();
        let task = tokio::spawn(nija_worker::run(
            Arc::new(self.config.clone()),
            id.clone(),
            observability,
            stop.clone(),
        ));
        RunningWorker {
            id,
            supervisor,
            stop,
            task,
        }
    }

    /// A job for `account` with a fresh schedule slot.
    pub fn job(&self, kind: JobKind, account: &str) -> Job {
        let account = Harness::account(account);
        let slot = self.slots.fetch_add(1, Ordering::Relaxed);
        Job {
            job_id: JobId::scheduled(kind, &account, slot),
            kind,
            partition: self.config.partition_of(&account),
            account,
            scheduled_at: Utc::now(),
            deadline: Utc::now() + chrono::Duration::from_std(self.deadline).unwrap(),
            triggered_by: TriggeredBy::Schedule,
            force: false,
            dry_run: false,
            max_positions: None,
        }
    }

    /// Publishes `job` the way the coordinator does (deduplicated by job id).
    pub async fn publish(&self, job: &Job) {
        self.publisher.job(job, None).await.unwrap();
    }

    /// Publishes `job` again as a new message (what a redelivery after a crash looks like).
    pub async fn republish(&self, job: &Job) {
        let subject = nija_proto::names::job_subject(job.partition, job.kind, &job.account);
        self.js
            .publish(subject, nija_proto::messages::encode(job).into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// Runs `job` and waits for its result.
    pub async fn run(&mut self, job: &Job) -> JobResult {
        self.publish(job).await;
        self.result_of(job).await
    }

    pub async fn result_of(&mut self, job: &Job) -> JobResult {
        let wait = self.deadline * 3;
        tokio::time::timeout(wait, async {
            while let Some(message) = self.results.next().await {
                let result: JobResult = decode(&message.payload).unwrap();
                if result.job_id == job.job_id {
                    return result;
                }
            }
            panic!("results subscription ended");
        })
        .await
        .unwrap_or_else(|_| panic!("no result for {} within {wait:?}", job.job_id))
    }

    /// Orders the simulator received for `account` (placed by nija, not external).
    pub fn orders(&self, account: &str) -> Vec<nija_sim::Order> {
        self.sim
            .admin()
            .orders(account)
            .unwrap()
            .into_iter()
            .filter(|o| o.source != nija_sim::OrderSource::External)
            .collect()
    }
}
