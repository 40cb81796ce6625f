//! The running coordinator: connects, ensures the topology, rebuilds its view from the results
//! stream, then runs its tasks under supervision — the scheduler tick, the results follower, the
//! heartbeat listener, the control API, the control-flag watch, the backlog and blacklist-size
//! figures — and serves `/metrics`, `/healthz` and `/readyz`.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, ReplayPolicy, push};
use async_nats::jetstream::stream::DirectGetErrorKind;
use async_nats::{Client, HeaderMap};
use chrono::Utc;
use futures::StreamExt;
use nija_proto::messages::{Heartbeat, Job, JobResult, ResultStatus, decode};
use nija_proto::names::{HEARTBEAT_PREFIX, JOBS_PREFIX, RESULTS_PREFIX, parse_account_symbol_key};
use nija_proto::plan::AccountType;
use nija_proto::{AccountId, Symbol};
use nija_runtime::connect::{NatsSettings, connect_patiently};
use nija_runtime::stores::{Stores, TRACEPARENT_HEADER};
use nija_runtime::topology::{Topology, TopologySettings, ensure_topology};
use nija_telemetry::{
    AccountLabels, CoordinatorMetrics, Liveness, Next, Supervisor, SupervisorConfig,
};
use prometheus::Registry;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

use crate::core::{Core, Shared};
use crate::fleet::{AccountInfo, Fleet, Liveness as WorkerLiveness};
use crate::schedule::{ScheduleSettings, Scheduler};

/// Everything the coordinator needs, resolved from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub nats: NatsSettings,
    pub accounts: Vec<AccountInfo>,
    pub schedule: ScheduleSettings,
    pub topology: TopologySettings,
    pub heartbeat_every: Duration,
    /// `act` or `observe` (reported by status and a metric).
    pub observe: bool,
    pub http_listen: SocketAddr,
    /// Accounts with their own metric series (besides platform accounts).
    pub metrics_accounts: Vec<nija_proto::AccountId>,
    /// How often the scheduler looks for due jobs and stalls.
    pub tick: Duration,
    /// How long the whole start-up may wait for NATS.
    pub connect_patience: Duration,
}

/// Why the coordinator could not start.
#[derive(Debug, Error)]
pub enum StartError {
    #[error(transparent)]
    Connect(#[from] nija_runtime::connect::ConnectError),
    #[error(transparent)]
    Topology(#[from] nija_runtime::topology::TopologyError),
    #[error(transparent)]
    Telemetry(#[from] nija_telemetry::TelemetryError),
    #[error("cannot read the results stream to rebuild state: {0}")]
    Rebuild(async_nats::Error),
    #[error(transparent)]
    Store(#[from] nija_runtime::stores::StoreError),
}

/// Shared handles of the running coordinator's tasks.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub client: Client,
    pub topology: Topology,
    pub stores: Stores,
    pub shared: Shared,
    pub metrics: Arc<CoordinatorMetrics>,
    pub settings: Arc<Settings>,
}

/// A started coordinator.
pub struct Running {
    pub http_addr: SocketAddr,
    supervisor: Supervisor,
    http: nija_telemetry::HttpServer,
    client: Client,
}

impl Running {
    /// Stops every task and the HTTP server, and flushes the NATS connection.
    pub async fn shutdown(self) {
        self.supervisor.shutdown();
        self.http.shutdown().await;
        let _ = self.client.flush().await;
    }
}

/// Starts the coordinator; returns once it is scheduling.
pub async fn start(settings: Settings) -> Result<Running, StartError> {
    let settings = Arc::new(settings);
    let client = connect_patiently(
        &settings.nats,
        "nija-coordinator",
        settings.connect_patience,
    )
    .await?;
    let js = async_nats::jetstream::new(client.clone());
    let topology = ensure_topology(&js, &settings.topology).await?;
    let stores = Stores::new(&topology);

    let registry = Registry::new();
    let metrics = Arc::new(CoordinatorMetrics::register(
        &registry,
        AccountLabels::new(settings.metrics_accounts.iter().cloned()),
    )?);
    metrics.set_observe_mode(settings.observe);
    let supervisor = Supervisor::new(
        &registry,
        SupervisorConfig {
            max_silence: Duration::from_secs(30).max(settings.tick * 10),
            ..Default::default()
        },
    )?;

    let now = Utc::now();
    let ids: Vec<_> = settings.accounts.iter().map(|a| a.id.clone()).collect();
    let scheduler = Scheduler::new(settings.schedule.clone(), &ids, now);
    let fleet = Fleet::new(
        settings.accounts.iter().cloned(),
        settings.topology.partitions,
        settings.heartbeat_every,
    );
    let shared = Shared::new(Core::new(scheduler, fleet, now));
    let ctx = Ctx {
        client: client.clone(),
        topology,
        stores,
        shared,
        metrics,
        settings: settings.clone(),
    };

    let rebuilt = rebuild(&ctx).await?;
    tracing::info!(
        results = rebuilt,
        accounts = settings.accounts.len(),
        "state rebuilt from the results stream"
    );
    let queued = restore_in_flight(&ctx).await?;
    if queued > 0 {
        tracing::info!(
            jobs = queued,
            "jobs still queued from before the start are in flight"
        );
    }
    let control = ctx.stores.control.watch().await?;
    ctx.shared.lock().control = control.borrow().clone();

    {
        let ctx = ctx.clone();
        supervisor.supervise("results", move |live| follow_results(ctx.clone(), live));
    }
    {
        let ctx = ctx.clone();
        supervisor.supervise("heartbeats", move |live| {
            follow_heartbeats(ctx.clone(), live)
        });
    }
    {
        let ctx = ctx.clone();
        supervisor.supervise("control-api", move |live| {
            crate::control::serve(ctx.clone(), live)
        });
    }
    {
        let ctx = ctx.clone();
        let control = control.clone();
        supervisor.supervise("control-flags", move |live| {
            follow_flags(ctx.clone(), control.clone(), live)
        });
    }
    {
        let ctx = ctx.clone();
        supervisor.supervise("scheduler", move |live| schedule_loop(ctx.clone(), live));
    }
    {
        let ctx = ctx.clone();
        supervisor.supervise("backlog", move |live| follow_backlog(ctx.clone(), live));
    }
    {
        let ctx = ctx.clone();
        supervisor.supervise("blacklist-sizes", move |live| {
            follow_blacklists(ctx.clone(), live)
        });
    }

    let ready_client = client.clone();
    let readiness: nija_telemetry::Readiness = Arc::new(move || {
        let client = ready_client.clone();
        Box::pin(async move {
            match client.connection_state() {
                async_nats::connection::State::Connected => Ok(()),
                other => Err(format!("NATS connection {other}")),
            }
        })
    });
    let http = nija_telemetry::serve(
        settings.http_listen,
        registry,
        supervisor.clone(),
        readiness,
    )
    .await?;
    let http_addr = http.local_addr();
    tracing::info!(
        accounts = settings.accounts.len(),
        partitions = settings.topology.partitions,
        metrics = %format!("http://{http_addr}/metrics"),
        "coordinator running"
    );
    Ok(Running {
        http_addr,
        supervisor,
        http,
        client,
    })
}

/// Runs until `shutdown` is cancelled.
pub async fn run(settings: Settings, shutdown: CancellationToken) -> Result<(), StartError> {
    let running = start(settings).await?;
    shutdown.cancelled().await;
    tracing::info!("coordinator stopping");
    running.shutdown().await;
    Ok(())
}

/// Reads the last result of every subject (kind × account) so status, metrics and the scheduler
/// start where the previous coordinator left off. Returns how many results were applied.
async fn rebuild(ctx: &Ctx) -> Result<u64, StartError> {
    let consumer = ctx
        .topology
        .results
        .create_consumer(push::OrderedConfig {
            deliver_subject: ctx.client.new_inbox(),
            filter_subject: format!("{RESULTS_PREFIX}.>"),
            deliver_policy: DeliverPolicy::LastPerSubject,
            replay_policy: ReplayPolicy::Instant,
            ..Default::default()
        })
        .await
        .map_err(|e| StartError::Rebuild(e.into()))?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(0);
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| StartError::Rebuild(e.into()))?;
    let mut applied = 0;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| StartError::Rebuild(e.into()))?;
        let (seq, pending) = match message.info() {
            Ok(info) => (info.stream_sequence, info.pending),
            Err(e) => return Err(StartError::Rebuild(e)),
        };
        match decode::<JobResult>(&message.payload) {
            Ok(result) => {
                let mut core = ctx.shared.lock();
                core.apply_result(&result);
                core.last_result_seq = core.last_result_seq.max(seq);
                drop(core);
                ctx.metrics.restore_result(&result);
                applied += 1;
            }
            Err(e) => {
                tracing::warn!(subject = %message.subject, error = %e, "unreadable result skipped")
            }
        }
        if pending == 0 {
            break;
        }
    }
    // Live results continue after the newest stream message, not after the newest per subject.
    let mut info = ctx.topology.results.clone();
    if let Ok(info) = info.info().await {
        let mut core = ctx.shared.lock();
        core.last_result_seq = core.last_result_seq.max(info.state.last_sequence);
    }
    Ok(applied)
}

/// Marks every job still in `NIJA_JOBS` (published, not yet acknowledged) as in flight, so a
/// restarted coordinator keeps one job per account. Reads with direct gets, message by message.
async fn restore_in_flight(ctx: &Ctx) -> Result<usize, StartError> {
    let mut stream = ctx.topology.jobs.clone();
    let state = stream
        .info()
        .await
        .map_err(|e| StartError::Rebuild(e.into()))?
        .state
        .clone();
    let mut restored = 0;
    if state.messages == 0 {
        return Ok(restored);
    }
    let mut seq = state.first_sequence;
    while seq <= state.last_sequence {
        let message = match stream
            .direct_get_next_for_subject(format!("{JOBS_PREFIX}.>"), Some(seq))
            .await
        {
            Ok(message) => message,
            Err(e) if e.kind() == DirectGetErrorKind::NotFound => break,
            Err(e) => return Err(StartError::Rebuild(e.into())),
        };
        seq = message.sequence + 1;
        match decode::<Job>(&message.payload) {
            Ok(job) => {
                if ctx.shared.lock().scheduler.restore(&job) {
                    restored += 1;
                }
            }
            Err(e) => {
                tracing::warn!(subject = %message.subject, error = %e, "undecodable queued job left to the workers' dead-letter path")
            }
        }
    }
    Ok(restored)
}

/// Follows new results (from after the last applied one), applying each.
async fn follow_results(ctx: Ctx, live: Liveness) -> Result<(), async_nats::Error> {
    let from = ctx.shared.lock().last_result_seq + 1;
    let consumer = ctx
        .topology
        .results
        .create_consumer(push::OrderedConfig {
            deliver_subject: ctx.client.new_inbox(),
            filter_subject: format!("{RESULTS_PREFIX}.>"),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            replay_policy: ReplayPolicy::Instant,
            ..Default::default()
        })
        .await?;
    let mut messages = live.follow(consumer.messages().await?);
    loop {
        let message = match messages.next().await {
            Next::Item(message) => message?,
            Next::Ended => return Err("results subscription ended".into()),
            Next::Shutdown => return Ok(()),
        };
        let seq = message.info().map(|i| i.stream_sequence)?;
        match decode::<JobResult>(&message.payload) {
            Ok(result) => on_result(&ctx, &result, seq),
            Err(e) => {
                ctx.shared.lock().last_result_seq = seq;
                tracing::warn!(subject = %message.subject, error = %e, "unreadable result skipped");
            }
        }
    }
}

fn on_result(ctx: &Ctx, result: &JobResult, seq: u64) {
    let mut core = ctx.shared.lock();
    if seq <= core.last_result_seq {
        return;
    }
    core.last_result_seq = seq;
    core.apply_result(result);
    drop(core);
    // The in-flight gauge is refreshed by the scheduler tick: counting it here would walk every
    // account for every result.
    ctx.metrics.job_result(result);
    log_result(result);
}

/// One line per result: at debug for a job that changed nothing (the steady state of thousands of
/// accounts; the worker already logged its per-account summary), else at info with what it did.
fn log_result(result: &JobResult) {
    let newly_blacklisted: Vec<String> = result
        .plan
        .iter()
        .flat_map(|p| &p.dust)
        .filter(|d| d.newly_blacklisted)
        .map(|d| d.symbol.to_string())
        .collect();
    if result.status == ResultStatus::Compliant
        && result.sold.is_empty()
        && result.errors.is_empty()
        && newly_blacklisted.is_empty()
    {
        tracing::debug!(
            account = %result.account,
            kind = %result.kind,
            job_id = %result.job_id,
            worker = %result.worker,
            "result: compliant, nothing changed"
        );
        return;
    }
    let sold: Vec<String> = result
        .sold
        .iter()
        .map(|s| format!("{} {} ({})", s.symbol, s.usd_value, s.reason.as_str()))
        .collect();
    tracing::info!(
        account = %result.account,
        kind = %result.kind,
        job_id = %result.job_id,
        status = result.status.as_str(),
        worker = %result.worker,
        triggered_by = %result.triggered_by,
        count_before = ?result.count_before,
        count_after = ?result.count_after,
        max_allowed = result.max_allowed,
        sold = ?sold,
        blacklisted = ?newly_blacklisted,
        errors = ?result
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.class, e.message))
            .collect::<Vec<_>>(),
        "result"
    );
}

/// Heartbeats into worker liveness.
async fn follow_heartbeats(ctx: Ctx, live: Liveness) -> Result<(), async_nats::Error> {
    let mut beats = live.follow(
        ctx.client
            .subscribe(format!("{HEARTBEAT_PREFIX}.*"))
            .await?,
    );
    loop {
        let message = match beats.next().await {
            Next::Item(message) => message,
            Next::Ended => return Err("heartbeat subscription ended".into()),
            Next::Shutdown => return Ok(()),
        };
        let hb = match decode::<Heartbeat>(&message.payload) {
            Ok(hb) => hb,
            Err(e) => {
                tracing::warn!(subject = %message.subject, error = %e, "unreadable heartbeat ignored");
                continue;
            }
        };
        let change = ctx.shared.lock().fleet.heartbeat(hb.clone(), Utc::now());
        match change {
            Some(WorkerLiveness::Joined(worker)) => tracing::info!(
                %worker,
                version = %hb.version,
                partitions = hb.partitions.len(),
                "worker joined"
            ),
            Some(WorkerLiveness::Recovered(worker)) => {
                tracing::warn!(%worker, "worker heartbeats resumed after it was declared dead")
            }
            _ => {}
        }
    }
}

/// Keeps the core's copy of the control flags current (for status and metrics).
async fn follow_flags(
    ctx: Ctx,
    mut control: tokio::sync::watch::Receiver<Arc<nija_runtime::stores::ControlState>>,
    live: Liveness,
) -> Result<(), String> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = live.cancelled() => return Ok(()),
            _ = tick.tick() => { live.tick(); continue; }
            changed = control.changed() => changed.map_err(|_| "control watch ended".to_string())?,
        }
        let state = control.borrow_and_update().clone();
        ctx.metrics.set_paused(state.paused.is_some());
        ctx.metrics
            .set_quarantined_accounts(state.quarantined.len() as u64);
        ctx.shared.lock().control = state;
    }
}

/// Every 5 s: the jobs held in `NIJA_JOBS` (a work queue drops a job once a worker acknowledges
/// it, so this is the backlog: queued or being worked) and the messages held in `NIJA_DLQ`.
async fn follow_backlog(ctx: Ctx, live: Liveness) -> Result<(), String> {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut jobs = ctx.topology.jobs.clone();
    let mut dlq = ctx.topology.dlq.clone();
    loop {
        tokio::select! {
            _ = live.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        live.tick();
        match jobs.info().await {
            Ok(info) => ctx.metrics.set_jobs_pending(info.state.messages),
            Err(e) => tracing::warn!(error = %e, "cannot read NIJA_JOBS for the backlog figure"),
        }
        match dlq.info().await {
            Ok(info) => ctx.metrics.set_dead_letter_messages(info.state.messages),
            Err(e) => tracing::warn!(error = %e, "cannot read NIJA_DLQ for the dead-letter figure"),
        }
    }
}

/// Keeps every account's blacklist size (`nija_blacklist_size`) current from the blacklist
/// bucket: its latest entries first, then every change. Keys are `<account>.<symbol>`.
async fn follow_blacklists(ctx: Ctx, live: Liveness) -> Result<(), String> {
    use async_nats::jetstream::kv::Operation;
    let types: HashMap<AccountId, AccountType> = ctx
        .settings
        .accounts
        .iter()
        .map(|a| (a.id.clone(), a.account_type))
        .collect();
    let mut entries: HashMap<AccountId, HashSet<Symbol>> = HashMap::new();
    let mut watch = live.follow(
        ctx.topology
            .blacklist
            .watch_with_history(">")
            .await
            .map_err(|e| format!("cannot watch the blacklist bucket: {e}"))?,
    );
    loop {
        let entry = match watch.next().await {
            Next::Item(entry) => entry.map_err(|e| format!("blacklist watch: {e}"))?,
            Next::Ended => return Err("blacklist watch ended".into()),
            Next::Shutdown => return Ok(()),
        };
        let Some((account, symbol)) = parse_account_symbol_key(&entry.key) else {
            continue;
        };
        // Accounts no longer configured have no series.
        let Some(&account_type) = types.get(&account) else {
            continue;
        };
        let symbols = entries.entry(account.clone()).or_default();
        match entry.operation {
            Operation::Put => symbols.insert(symbol),
            Operation::Delete | Operation::Purge => symbols.remove(&symbol),
        };
        ctx.metrics
            .accounts
            .set_blacklist_size(&account, account_type, symbols.len() as u64);
    }
}

/// Every tick: stalls, dead workers, then due jobs (published concurrently).
async fn schedule_loop(ctx: Ctx, live: Liveness) -> Result<(), String> {
    let mut tick = tokio::time::interval(ctx.settings.tick);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = live.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        live.tick();
        let now = Utc::now();
        let (stalled, dead, ages, jobs, alive) = {
            let mut core = ctx.shared.lock();
            let stalled = core.scheduler.expire(now);
            for s in &stalled {
                core.apply_stall(s);
            }
            let dead = core.fleet.check_workers(now);
            let ages = core.fleet.heartbeat_ages(now);
            let jobs = core.scheduler.due(now);
            (stalled, dead, ages, jobs, core.fleet.workers_alive())
        };
        for s in &stalled {
            ctx.metrics.job_stalled(s.kind);
            tracing::warn!(
                account = %s.account,
                job_id = %s.job_id,
                kind = %s.kind,
                deadline = %s.deadline,
                "stall: no result before the job's deadline; the account may be scheduled again"
            );
        }
        for d in dead {
            if let WorkerLiveness::Dead {
                worker,
                last_seen,
                draining,
            } = d
            {
                ctx.metrics.forget_worker(&worker);
                if draining {
                    tracing::info!(%worker, %last_seen, "worker left (drained)");
                } else {
                    ctx.metrics.worker_lost();
                    tracing::warn!(
                        %worker,
                        %last_seen,
                        missed = 3,
                        "heartbeat fail: worker missed 3 heartbeats, considered dead"
                    );
                }
            }
        }
        for (worker, age) in ages {
            ctx.metrics.set_heartbeat_age(&worker, age);
        }
        ctx.metrics.set_workers_alive(alive as u64);
        if !jobs.is_empty() {
            publish_all(&ctx, jobs).await;
        }
        let in_flight = ctx.shared.lock().scheduler.in_flight_count();
        ctx.metrics.set_jobs_in_flight(in_flight as u64);
        ctx.metrics.scheduler_ran(now);
    }
}

/// Publishes jobs with up to 256 acknowledgements outstanding; a job that fails to publish frees
/// its account for the next tick.
pub(crate) async fn publish_all(ctx: &Ctx, jobs: Vec<Job>) {
    let publisher = ctx.stores.publisher.clone();
    let outcomes: Vec<(Job, Result<_, _>)> = futures::stream::iter(jobs)
        .map(|job| {
            let publisher = publisher.clone();
            async move {
                let span = tracing::info_span!("job", job_id = %job.job_id, account = %job.account, kind = %job.kind);
                let traceparent = {
                    let _entered = span.enter();
                    let mut headers = HeaderMap::new();
                    nija_telemetry::inject(&mut headers);
                    headers
                        .get(TRACEPARENT_HEADER)
                        .map(|v| v.as_str().to_string())
                };
                let outcome = publisher.job(&job, traceparent.as_deref()).await;
                (job, outcome)
            }
        })
        .buffer_unordered(256)
        .collect()
        .await;
    for (job, outcome) in outcomes {
        match outcome {
            Ok(published) => {
                ctx.metrics.job_published(job.kind);
                tracing::debug!(
                    job_id = %job.job_id,
                    account = %job.account,
                    kind = %job.kind,
                    partition = %job.partition,
                    duplicate = published.duplicate,
                    "job published"
                );
            }
            Err(e) => {
                tracing::error!(job_id = %job.job_id, account = %job.account, error = %e, "job not published; retrying at the next tick");
                ctx.shared.lock().scheduler.publish_failed(&job);
            }
        }
    }
}
