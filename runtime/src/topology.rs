//! The streams, consumers and KV buckets of the wire map (DESIGN §5.1, `docs/architecture.md`).
//!
//! The coordinator creates or updates them idempotently at start ([`ensure_topology`]); workers and
//! the CLI only open them ([`open_topology`]), and a worker started before the coordinator waits
//! for them ([`wait_for_topology`]).

use std::time::Duration;

use async_nats::jetstream::Context;
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy, PullConsumer};
use async_nats::jetstream::kv;
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use nija_proto::Partition;
use nija_proto::names::{
    ACCOUNTS_BUCKET, BLACKLIST_BUCKET, CONTROL_BUCKET, DLQ_PREFIX, DLQ_STREAM, JOBS_PREFIX,
    JOBS_STREAM, LEASES_BUCKET, RESULTS_PREFIX, RESULTS_STREAM, TRACKER_BUCKET, partition_consumer,
    partition_jobs_filter,
};
use thiserror::Error;

/// The tunable parts of the topology (from `[worker]`, `[schedule]` and the stream settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologySettings {
    /// Job partitions: one durable pull consumer each.
    pub partitions: u16,
    /// How long a job may take; a job consumer's `ack_wait` is half of it.
    pub job_deadline: Duration,
    /// JetStream de-duplication window of the jobs and results streams (`Nats-Msg-Id`).
    pub duplicate_window: Duration,
    /// Age after which an unconsumed job is dropped (it is useless by then).
    pub jobs_max_age: Duration,
    /// Retention of results and dead letters.
    pub results_max_age: Duration,
    /// Deliveries of one job before the server gives up on it.
    pub max_deliver: i64,
    /// Stream and bucket replicas (3 on a cluster).
    pub replicas: usize,
}

impl Default for TopologySettings {
    fn default() -> Self {
        TopologySettings {
            partitions: 64,
            job_deadline: Duration::from_secs(60),
            duplicate_window: Duration::from_secs(10 * 60),
            jobs_max_age: Duration::from_secs(60 * 60),
            results_max_age: Duration::from_secs(30 * 24 * 60 * 60),
            max_deliver: 5,
            replicas: 1,
        }
    }
}

impl TopologySettings {
    /// A job consumer's `ack_wait`: half the job deadline (at least one second). A live worker
    /// sends in-progress acks every quarter deadline, so only the job of a dead or frozen worker
    /// is redelivered — early enough for another worker to finish it before its deadline.
    pub fn ack_wait(&self) -> Duration {
        (self.job_deadline / 2).max(Duration::from_secs(1))
    }
}

/// Handles on every stream bucket of the topology.
#[derive(Debug, Clone)]
pub struct Topology {
    pub js: Context,
    pub jobs: stream::Stream,
    pub results: stream::Stream,
    pub dlq: stream::Stream,
    pub blacklist: kv::Store,
    pub tracker: kv::Store,
    pub leases: kv::Store,
    pub control: kv::Store,
    pub accounts: kv::Store,
}

/// Why the topology could not be created or opened.
#[derive(Debug, Error)]
pub enum TopologyError {
    #[error(
        "cannot create or update {what} in JetStream: {source} (is JetStream enabled on the server, \
         and does this user have permission for the JetStream API?)"
    )]
    Setup {
        what: String,
        source: async_nats::Error,
    },
    #[error(
        "{what} does not exist yet: start the coordinator (it creates the streams and buckets) ({source})"
    )]
    Missing {
        what: String,
        source: async_nats::Error,
    },
}

fn setup_err(what: impl Into<String>) -> impl FnOnce(async_nats::Error) -> TopologyError {
    let what = what.into();
    move |source| TopologyError::Setup { what, source }
}

fn missing_err(what: impl Into<String>) -> impl FnOnce(async_nats::Error) -> TopologyError {
    let what = what.into();
    move |source| TopologyError::Missing { what, source }
}

/// The stream configurations, exposed so tests and the deployment check can compare them.
pub fn stream_configs(settings: &TopologySettings) -> [stream::Config; 3] {
    let base = |name: &str, subject: String| stream::Config {
        name: name.to_string(),
        subjects: vec![subject],
        storage: StorageType::File,
        num_replicas: settings.replicas,
        allow_direct: true,
        ..Default::default()
    };
    [
        stream::Config {
            retention: RetentionPolicy::WorkQueue,
            duplicate_window: settings.duplicate_window,
            max_age: settings.jobs_max_age,
            description: Some("nija jobs, one consumer per partition".into()),
            ..base(JOBS_STREAM, format!("{JOBS_PREFIX}.>"))
        },
        stream::Config {
            retention: RetentionPolicy::Limits,
            duplicate_window: settings.duplicate_window,
            max_age: settings.results_max_age,
            description: Some("nija job results".into()),
            ..base(RESULTS_STREAM, format!("{RESULTS_PREFIX}.>"))
        },
        stream::Config {
            retention: RetentionPolicy::Limits,
            max_age: settings.results_max_age,
            description: Some("nija dead letters: undecodable messages with their error".into()),
            ..base(DLQ_STREAM, format!("{DLQ_PREFIX}.>"))
        },
    ]
}

/// The durable pull consumer of one partition.
pub fn partition_consumer_config(
    settings: &TopologySettings,
    partition: Partition,
) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(partition_consumer(partition)),
        description: Some(format!("nija jobs of partition {partition}")),
        filter_subject: partition_jobs_filter(partition),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: settings.ack_wait(),
        max_deliver: settings.max_deliver,
        num_replicas: settings.replicas,
        ..Default::default()
    }
}

const BUCKETS: [(&str, &str); 5] = [
    (BLACKLIST_BUCKET, "per-account dust blacklist"),
    (TRACKER_BUCKET, "per-account tracked positions"),
    (LEASES_BUCKET, "partition and account leases"),
    (CONTROL_BUCKET, "pause and quarantine flags"),
    (ACCOUNTS_BUCKET, "registered accounts"),
];

fn bucket_config(settings: &TopologySettings, name: &str, description: &str) -> kv::Config {
    kv::Config {
        bucket: name.to_string(),
        description: format!("nija: {description}"),
        history: 1,
        storage: StorageType::File,
        num_replicas: settings.replicas,
        ..Default::default()
    }
}

/// Creates or updates every stream, partition consumer and bucket. Safe to run on every start and
/// from several coordinators at once.
pub async fn ensure_topology(
    js: &Context,
    settings: &TopologySettings,
) -> Result<Topology, TopologyError> {
    for config in stream_configs(settings) {
        let name = config.name.clone();
        js.create_or_update_stream(config)
            .await
            .map_err(|e| setup_err(format!("stream {name}"))(e.into()))?;
    }
    for (name, description) in BUCKETS {
        js.create_or_update_key_value(bucket_config(settings, name, description))
            .await
            .map_err(|e| setup_err(format!("KV bucket {name}"))(e.into()))?;
    }
    let jobs = js
        .get_stream(JOBS_STREAM)
        .await
        .map_err(|e| setup_err(JOBS_STREAM)(e.into()))?;
    for n in 0..settings.partitions {
        let partition = Partition(n);
        jobs.create_consumer(partition_consumer_config(settings, partition))
            .await
            .map_err(|e| {
                setup_err(format!("consumer {}", partition_consumer(partition)))(e.into())
            })?;
    }
    tracing::info!(
        partitions = settings.partitions,
        "NATS topology ready (streams, consumers, KV buckets)"
    );
    open_topology(js).await
}

/// Opens the existing streams and buckets; fails with [`TopologyError::Missing`] if one is absent.
pub async fn open_topology(js: &Context) -> Result<Topology, TopologyError> {
    let stream = |name: &'static str| async move {
        js.get_stream(name)
            .await
            .map_err(|e| missing_err(format!("stream {name}"))(e.into()))
    };
    let bucket = |name: &'static str| async move {
        js.get_key_value(name)
            .await
            .map_err(|e| missing_err(format!("KV bucket {name}"))(e.into()))
    };
    Ok(Topology {
        js: js.clone(),
        jobs: stream(JOBS_STREAM).await?,
        results: stream(RESULTS_STREAM).await?,
        dlq: stream(DLQ_STREAM).await?,
        blacklist: bucket(BLACKLIST_BUCKET).await?,
        tracker: bucket(TRACKER_BUCKET).await?,
        leases: bucket(LEASES_BUCKET).await?,
        control: bucket(CONTROL_BUCKET).await?,
        accounts: bucket(ACCOUNTS_BUCKET).await?,
    })
}

/// Waits until the coordinator has created the topology, logging while it waits. Retries with a
/// growing pause up to `max_pause`; wrap it in a timeout to give up.
pub async fn wait_for_topology(js: &Context, max_pause: Duration) -> Topology {
    let mut pause = Duration::from_millis(100).min(max_pause);
    loop {
        match open_topology(js).await {
            Ok(topology) => return topology,
            Err(err) => {
                tracing::info!(error = %err, retry_in = ?pause, "waiting for the coordinator to create streams");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(max_pause);
            }
        }
    }
}

impl Topology {
    /// The durable consumer of one partition (created by the coordinator).
    pub async fn partition_consumer(
        &self,
        partition: Partition,
    ) -> Result<PullConsumer, TopologyError> {
        let name = partition_consumer(partition);
        self.jobs
            .get_consumer(&name)
            .await
            .map_err(|e| missing_err(format!("consumer {name}"))(e))
    }
}
