//! A running worker: connect, wait for the coordinator's topology, follow the control flags and
//! state buckets, beat, claim partitions, renew leases — until told to stop, then drain.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use chrono::Utc;
use nija_config::Config;
use nija_proto::WorkerId;
use nija_proto::messages::{Heartbeat, encode};
use nija_proto::names::heartbeat_subject;
use nija_runtime::connect::{ConnectError, NatsSettings, connect_patiently};
use nija_runtime::stores::{ControlStore, StoreError};
use nija_runtime::topology::wait_for_topology;
use nija_telemetry::Liveness;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::context::{BrokerMetricsObserver, Context, Observability};
use crate::membership::Membership;
use crate::partitions::Partitions;
use crate::state::{StateError, StateView};

/// Why a worker could not start.
#[derive(Debug, Error)]
pub enum WorkerError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("cannot follow the control flags: {0}")]
    Control(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
}

/// How long to keep trying to reach NATS at start-up.
const CONNECT_PATIENCE: Duration = Duration::from_secs(60);

fn nats_settings(config: &Config) -> NatsSettings {
    let mut settings = NatsSettings::new(config.nats.urls.clone());
    settings.creds = config.nats.creds.clone();
    settings.nkey = config.nats.nkey.clone();
    settings.tls_ca = config.nats.tls_ca.clone();
    settings.tls_cert = config.nats.tls_cert.clone();
    settings.tls_key = config.nats.tls_key.clone();
    settings
}

/// Runs a worker until `shutdown` is cancelled, then stops pulling, lets in-flight jobs finish
/// (within a job deadline), releases every lease and returns.
pub async fn run(
    config: Arc<Config>,
    id: WorkerId,
    observability: Observability,
    shutdown: CancellationToken,
) -> Result<(), WorkerError> {
    let client = connect_patiently(
        &nats_settings(&config),
        &format!("nija-worker-{id}"),
        CONNECT_PATIENCE,
    )
    .await?;
    let js = jetstream::new(client.clone());
    let topology = tokio::select! {
        topology = wait_for_topology(&js, Duration::from_secs(2)) => topology,
        _ = shutdown.cancelled() => return Ok(()),
    };
    let control_view = ControlStore::new(js.clone(), topology.control.clone())
        .watch()
        .await?;
    let blacklist = StateView::start(topology.blacklist.clone()).await?;
    let tracker = StateView::start(topology.tracker.clone()).await?;
    let heartbeat_every = config.worker.heartbeat_every;
    let membership = Membership::new(id.clone(), heartbeat_every);
    let ctx = Arc::new(Context::new(
        id.clone(),
        config.clone(),
        client.clone(),
        topology,
        control_view,
        blacklist,
        tracker,
        observability.metrics.clone(),
    ));
    // Process-wide: the last worker started in a process gets the broker crate's counts.
    nija_brokers::set_observer(Arc::new(BrokerMetricsObserver(
        observability.metrics.broker.clone(),
    )));
    let partitions = Arc::new(Partitions::new(ctx.clone()));
    tracing::info!(
        worker = %id,
        partitions = config.worker.partitions,
        concurrency = config.worker.concurrency,
        lease_ttl = ?config.worker.lease_ttl,
        heartbeat_every = ?heartbeat_every,
        "worker ready"
    );

    observability
        .ready
        .store(true, std::sync::atomic::Ordering::Relaxed);
    // The long-running tasks run supervised (restarted with backoff, `/healthz` fails when one
    // stops ticking). They go on while draining; `supervisor.shutdown()` ends them.
    let supervisor = observability.supervisor.clone();
    let tasks = [
        supervisor.supervise("membership", {
            let (membership, client) = (membership.clone(), client.clone());
            move |live| {
                let (membership, client) = (membership.clone(), client.clone());
                async move { membership.follow(client, live).await }
            }
        }),
        supervisor.supervise("heartbeat", {
            let (ctx, partitions) = (ctx.clone(), partitions.clone());
            move |live| beat(ctx.clone(), partitions.clone(), live)
        }),
        supervisor.supervise("account-leases", {
            let ctx = ctx.clone();
            move |live| renew_accounts(ctx.clone(), live)
        }),
    ];
    publish_heartbeat(&ctx, &partitions, false).await;

    // Claiming and rebalancing partitions; the gate, set at shutdown, stops it before the drain
    // (taking the lock waits for a tick under way).
    let claiming = Arc::new(tokio::sync::Mutex::new(true));
    let tick_every = heartbeat_every
        .min(ctx.leases.renew_every())
        .max(Duration::from_millis(50));
    let manager = supervisor.supervise("partitions", {
        let (partitions, membership, claiming) =
            (partitions.clone(), membership.clone(), claiming.clone());
        move |live| {
            manage_partitions(
                partitions.clone(),
                membership.clone(),
                claiming.clone(),
                tick_every,
                live,
            )
        }
    });
    shutdown.cancelled().await;
    *claiming.lock().await = false;

    observability
        .ready
        .store(false, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(worker = %id, "draining: no new jobs; finishing in-flight jobs, then releasing leases");
    publish_heartbeat(&ctx, &partitions, true).await;
    partitions.release_all().await;
    ctx.sessions.drop_all(&ctx).await;
    supervisor.shutdown();
    for task in tasks.into_iter().chain([manager]) {
        let _ = task.await;
    }
    publish_heartbeat(&ctx, &partitions, true).await;
    if let Err(err) = client.flush().await {
        tracing::warn!(error = %err, "NATS flush at exit failed");
    }
    tracing::info!(worker = %id, "worker stopped");
    Ok(())
}

async fn manage_partitions(
    partitions: Arc<Partitions>,
    membership: Membership,
    claiming: Arc<tokio::sync::Mutex<bool>>,
    every: Duration,
    live: Liveness,
) -> Result<(), Infallible> {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = live.cancelled() => return Ok(()),
            _ = ticks.tick() => {
                let claiming = claiming.lock().await;
                if *claiming {
                    partitions.tick(&membership).await;
                }
                live.tick();
            }
        }
    }
}

async fn beat(
    ctx: Arc<Context>,
    partitions: Arc<Partitions>,
    live: Liveness,
) -> Result<(), Infallible> {
    let mut ticks = tokio::time::interval(ctx.config.worker.heartbeat_every);
    loop {
        tokio::select! {
            _ = live.cancelled() => return Ok(()),
            _ = ticks.tick() => {
                publish_heartbeat(&ctx, &partitions, false).await;
                live.tick();
            }
        }
    }
}

async fn publish_heartbeat(ctx: &Context, partitions: &Partitions, draining: bool) {
    let heartbeat = Heartbeat {
        worker: ctx.id.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: ctx.started_at,
        sent_at: Utc::now(),
        partitions: partitions.held().await,
        leased_accounts: ctx.sessions.leased_accounts(),
        jobs_in_flight: ctx
            .jobs_in_flight
            .load(std::sync::atomic::Ordering::Relaxed),
        last_job_finished_at: ctx.last_job_finished(),
        draining,
    };
    ctx.metrics
        .set_partitions_held(heartbeat.partitions.len() as u64);
    ctx.metrics
        .set_accounts_held(heartbeat.leased_accounts.len() as u64);
    match ctx
        .client
        .publish(heartbeat_subject(&ctx.id), encode(&heartbeat).into())
        .await
    {
        Ok(()) => ctx.metrics.heartbeat_sent(),
        Err(err) => tracing::warn!(error = %err, "heartbeat not sent"),
    }
}

async fn renew_accounts(ctx: Arc<Context>, live: Liveness) -> Result<(), Infallible> {
    let mut ticks = tokio::time::interval(ctx.leases.check_every());
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = live.cancelled() => return Ok(()),
            _ = ticks.tick() => {
                ctx.sessions.renew_due(&ctx).await;
                live.tick();
            }
        }
    }
}
