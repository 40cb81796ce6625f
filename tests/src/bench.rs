//! The pipeline benchmark behind `nija-bench`: N accounts on the local stack (real nats-server,
//! simulator, coordinator and worker processes) through
//! - a cold enforce round scheduled by the coordinator, which opens every broker session;
//! - after `settle` (the broker rate budgets the cold round spent recover), `warm_rounds` warm
//!   enforce rounds at zero simulated broker latency, then one at `latency`: their jobs are
//!   published by the bench exactly as the coordinator publishes them (subject, job id,
//!   `Nats-Msg-Id`), all at once, so the round time is the pipeline's and not the schedule's
//!   jitter;
//! - a normalize dry run requested from the coordinator (snapshot, plan and re-read per account);
//!
//! with this machine's raw JetStream publish+fetch+ack rate for the same message size measured in
//! the same run, so the figures can be compared as a ratio rather than as absolute numbers.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use async_nats::jetstream::{self, consumer, stream};
use chrono::Utc;
use futures::{StreamExt, TryStreamExt};
use nija_proto::control::{
    NormalizeReport, NormalizeReportRequest, NormalizeRequest, NormalizeStarted, VERB_NORMALIZE,
    VERB_NORMALIZE_REPORT,
};
use nija_proto::ids::JobKind;
use nija_proto::messages::{Job, ResultStatus, TriggeredBy, encode};
use nija_proto::names::{BLACKLIST_BUCKET, RESULTS_PREFIX, TRACKER_BUCKET};
use nija_proto::{AccountId, JobId, Partition};
use nija_runtime::stores::Publisher;
use nija_sim::{FaultSpec, SimOptions};

use crate::{Stack, StackOptions};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub accounts: usize,
    pub positions: usize,
    pub workers: usize,
    pub seed: u64,
    /// How long the raw JetStream measurement publishes.
    pub raw_messages: usize,
    /// Upper bound on each round.
    pub round_limit: Duration,
    /// Simulated broker latency for the second warm round (zero skips it).
    pub latency: Duration,
    /// How many zero-latency warm rounds to run back to back (at least one).
    pub warm_rounds: usize,
    /// Pause between the cold round and the warm ones, so that the broker rate budgets the cold
    /// round spent (Kraken's call counter above all) are back: a warm round is the steady state of
    /// sweeps minutes apart, not a sweep right behind a burst of sells.
    pub settle: Duration,
}

impl BenchOptions {
    /// The time a broker API key takes to recover its whole rate budget, for the strictest of
    /// the adapters' default limits: the default `settle`.
    pub fn budget_recovery() -> Duration {
        nija_brokers::RateLimit::DEFAULTS
            .iter()
            .map(nija_brokers::RateLimit::full_recovery)
            .max()
            .unwrap_or_default()
    }
}

/// One round's figures.
#[derive(Debug, Clone)]
pub struct Round {
    pub accounts: usize,
    pub wall: Duration,
    pub accounts_per_s: f64,
    /// Worker-side job duration (started → finished).
    pub job_p50: Duration,
    pub job_p99: Duration,
    /// From the round's start to each account's result.
    pub done_p50: Duration,
    pub done_p99: Duration,
    pub by_status: std::collections::BTreeMap<String, usize>,
    /// CPU time each process used during the round (see [`CpuClock`]).
    pub cpu: Vec<(String, Duration)>,
    /// The round's last result: account, status, worker, how long it ran and how long it waited
    /// before (what a long tail is made of).
    pub last: String,
}

/// Everything measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    pub options: BenchOptions,
    pub cold: Round,
    /// The zero-latency warm rounds, in the order they ran (never empty).
    pub warm: Vec<Round>,
    /// The warm round again with every broker request delayed by `options.latency`.
    pub warm_latency: Option<Round>,
    pub normalize: Round,
    pub orders: usize,
    pub coordinator_peak_rss_kib: Option<u64>,
    pub worker_peak_rss_kib: Vec<Option<u64>>,
    pub message_bytes: usize,
    /// Raw JetStream publish (256 acks in flight) + pull fetch (batch 256) + ack, msgs/s.
    pub raw_msgs_per_s: f64,
}

impl BenchReport {
    pub fn print(&self) {
        let o = &self.options;
        println!(
            "nija-bench: {} accounts × ~{} positions, {} workers (debug={}); warm rounds began {:.0?} after the cold round",
            o.accounts,
            o.positions,
            o.workers,
            cfg!(debug_assertions),
            o.settle
        );
        let mut rounds = vec![("cold enforce round".to_string(), &self.cold)];
        for (i, r) in self.warm.iter().enumerate() {
            let name = if self.warm.len() == 1 {
                "warm enforce round".to_string()
            } else {
                format!("warm enforce round {}/{}", i + 1, self.warm.len())
            };
            rounds.push((name, r));
        }
        if let Some(r) = &self.warm_latency {
            rounds.push((format!("warm enforce round, {:?} latency", o.latency), r));
        }
        rounds.push(("normalize, dry run".to_string(), &self.normalize));
        for (name, r) in rounds {
            println!(
                "{name:<34} {:>6} accounts in {:>8.2?}  {:>9.1} accounts/s  job p50 {:>8.2?} p99 {:>8.2?}  done p50 {:>8.2?} p99 {:>8.2?}  {:?}",
                r.accounts,
                r.wall,
                r.accounts_per_s,
                r.job_p50,
                r.job_p99,
                r.done_p50,
                r.done_p99,
                r.by_status
            );
            let cpu: Vec<String> = r
                .cpu
                .iter()
                .map(|(name, used)| format!("{name} {:.2}s", used.as_secs_f64()))
                .collect();
            println!("{:<34} CPU: {}", "", cpu.join(", "));
            println!("{:<34} last result: {}", "", r.last);
        }
        println!("orders placed in the cold round: {}", self.orders);
        println!(
            "peak RSS: coordinator {} KiB, workers {:?} KiB",
            self.coordinator_peak_rss_kib
                .map_or("?".into(), |k| k.to_string()),
            self.worker_peak_rss_kib
        );
        println!(
            "raw JetStream publish+fetch+ack ({} B messages): {:.0} msgs/s; cold round / raw = {:.4}, warm round / raw = {:.4}",
            self.message_bytes,
            self.raw_msgs_per_s,
            self.cold.accounts_per_s / self.raw_msgs_per_s.max(f64::MIN_POSITIVE),
            self.median_warm().accounts_per_s / self.raw_msgs_per_s.max(f64::MIN_POSITIVE),
        );
        if self.warm.len() > 1 {
            println!("(the warm ratio is the median warm round's)");
        }
        if let Some(r) = &self.warm_latency {
            println!(
                "warm round at {:?} latency / raw = {:.4}",
                o.latency,
                r.accounts_per_s / self.raw_msgs_per_s.max(f64::MIN_POSITIVE)
            );
        }
    }

    /// The warm round with the median wall time.
    pub fn median_warm(&self) -> &Round {
        let mut rounds: Vec<&Round> = self.warm.iter().collect();
        rounds.sort_by_key(|r| r.wall);
        rounds[rounds.len() / 2]
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// CPU time (user + system) of the stack's processes: nats-server, coordinator, workers, and
/// this process (the simulator runs in it), read from `/proc/<pid>/stat`.
struct CpuClock {
    processes: Vec<(String, u32)>,
    start: Vec<Duration>,
}

fn cpu_time(pid: u32) -> Duration {
    // Fields 14 and 15 (utime, stime) in clock ticks, counted after the command's closing paren.
    let ticks = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let rest = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .collect::<Vec<_>>();
            Some(rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    // Linux reports ticks at USER_HZ, 100 per second on every mainstream configuration.
    Duration::from_millis(ticks * 10)
}

impl CpuClock {
    fn start(stack: &Stack) -> CpuClock {
        let mut processes = vec![("bench+sim".to_string(), std::process::id())];
        processes.extend(stack.nats.pid().map(|p| ("nats-server".to_string(), p)));
        processes.extend(
            stack
                .coordinator
                .as_ref()
                .and_then(|c| c.pid())
                .map(|p| ("coordinator".to_string(), p)),
        );
        for worker in &stack.workers {
            processes.extend(worker.pid().map(|p| (worker.name.clone(), p)));
        }
        let start = processes.iter().map(|(_, pid)| cpu_time(*pid)).collect();
        CpuClock { processes, start }
    }

    fn used(&self) -> Vec<(String, Duration)> {
        self.processes
            .iter()
            .zip(&self.start)
            .map(|((name, pid), start)| (name.clone(), cpu_time(*pid).saturating_sub(*start)))
            .collect()
    }
}

fn round(results: &[(Outcome, Duration)], wall: Duration, cpu: &CpuClock) -> Round {
    let mut jobs: Vec<Duration> = results
        .iter()
        .map(|(r, _)| (r.finished_at - r.started_at).to_std().unwrap_or_default())
        .collect();
    jobs.sort();
    let mut done: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
    done.sort();
    let last = results
        .iter()
        .max_by_key(|(_, d)| *d)
        .map_or_else(String::new, |(r, d)| {
            let ran = (r.finished_at - r.started_at).to_std().unwrap_or_default();
            format!(
                "{} ({}) on {}: waited {:.2?}, ran {:.2?}",
                r.account,
                r.status.as_str(),
                r.worker,
                d.saturating_sub(ran),
                ran
            )
        });
    let mut by_status = std::collections::BTreeMap::new();
    for (r, _) in results {
        *by_status.entry(r.status.as_str().to_string()).or_default() += 1;
    }
    Round {
        accounts: results.len(),
        wall,
        accounts_per_s: results.len() as f64 / wall.as_secs_f64().max(f64::MIN_POSITIVE),
        job_p50: percentile(&jobs, 0.5),
        job_p99: percentile(&jobs, 0.99),
        done_p50: percentile(&done, 0.5),
        done_p99: percentile(&done, 0.99),
        by_status,
        cpu: cpu.used(),
        last,
    }
}

/// The fields of a `JobResult` the bench reads. The rest (the plan above all) is skipped while
/// parsing, so the bench's own decoding weighs little on the machine it measures; the
/// coordinator decodes every result in full, and its CPU is reported.
#[derive(Debug, serde::Deserialize)]
struct Outcome {
    kind: JobKind,
    account: AccountId,
    worker: nija_proto::WorkerId,
    status: ResultStatus,
    started_at: chrono::DateTime<Utc>,
    finished_at: chrono::DateTime<Utc>,
}

/// Collects one result per account of `kind` from a core subscription.
async fn collect(
    sub: &mut async_nats::Subscriber,
    kind: JobKind,
    accounts: usize,
    start: Instant,
    limit: Duration,
) -> anyhow::Result<Vec<(Outcome, Duration)>> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(accounts);
    let deadline = tokio::time::Instant::now() + limit;
    while out.len() < accounts {
        let message = tokio::time::timeout_at(deadline, sub.next())
            .await
            .map_err(|_| {
                anyhow!(
                    "round incomplete after {limit:?}: {} of {accounts} accounts",
                    out.len()
                )
            })?
            .ok_or_else(|| anyhow!("results subscription ended"))?;
        let result: Outcome = serde_json::from_slice(&message.payload)?;
        if result.kind == kind && seen.insert(result.account.clone()) {
            out.push((result, start.elapsed()));
        }
    }
    Ok(out)
}

fn peak_rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// An enforce job as the coordinator schedules it for `account` in schedule slot `slot`.
fn enforce_job(account: &AccountId, partitions: u16, slot: u64, deadline: Duration) -> Job {
    let now = Utc::now();
    Job {
        job_id: JobId::scheduled(JobKind::Enforce, account, slot),
        kind: JobKind::Enforce,
        partition: Partition::of(account, partitions),
        account: account.clone(),
        scheduled_at: now,
        deadline: now + chrono::Duration::from_std(deadline).unwrap_or(chrono::Duration::MAX),
        triggered_by: TriggeredBy::Schedule,
        force: false,
        dry_run: false,
        max_positions: None,
    }
}

/// Publishes one enforce job per account (256 acks in flight, `Nats-Msg-Id` set as the
/// coordinator sets it) and collects one result per account.
async fn enforce_round(
    stack: &Stack,
    sub: &mut async_nats::Subscriber,
    accounts: &[AccountId],
    slot: u64,
    limit: Duration,
) -> anyhow::Result<Round> {
    let publisher = Publisher::new(jetstream::new(stack.client.clone()));
    let o = &stack.options;
    let cpu = CpuClock::start(stack);
    let start = Instant::now();
    // As the coordinator publishes: `Publisher::job`, 256 acknowledgements outstanding.
    let publishing = futures::stream::iter(accounts)
        .map(|account| {
            let job = enforce_job(account, o.partitions, slot, o.job_deadline);
            let publisher = &publisher;
            async move { publisher.job(&job, None).await }
        })
        .buffer_unordered(256)
        .try_for_each(|_| async { Ok(()) });
    let (published, results) = tokio::join!(
        publishing,
        collect(sub, JobKind::Enforce, accounts.len(), start, limit)
    );
    published?;
    Ok(round(&results?, start.elapsed(), &cpu))
}

/// Waits until every consumer of the blacklist and tracker buckets (the workers' state watches)
/// has delivered all it holds: the cold round's writes reach every worker's view after the round,
/// and the warm rounds are measured on a quiet system. Returns how long that took.
async fn state_settled(stack: &Stack, limit: Duration) -> anyhow::Result<Duration> {
    let js = jetstream::new(stack.client.clone());
    let start = Instant::now();
    loop {
        let mut pending = 0;
        for bucket in [BLACKLIST_BUCKET, TRACKER_BUCKET] {
            let stream = js.get_stream(format!("KV_{bucket}")).await?;
            let mut consumers = stream.consumers();
            while let Some(info) = consumers.next().await {
                let info = info.map_err(|e| anyhow!("{e}"))?;
                pending += info.num_pending + info.num_ack_pending as u64;
            }
        }
        if pending == 0 {
            return Ok(start.elapsed());
        }
        if start.elapsed() > limit {
            bail!("state watches still hold {pending} updates after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Publishes `n` messages of `payload` (256 acks in flight) into a work-queue stream, then pulls
/// them in batches of 256 and acks each; returns msgs/s over the whole pipeline.
pub async fn raw_jetstream_rate(
    client: &async_nats::Client,
    payload: &[u8],
    n: usize,
) -> anyhow::Result<f64> {
    let js = jetstream::new(client.clone());
    let stream = js
        .create_stream(stream::Config {
            name: "BENCH_RAW".into(),
            subjects: vec!["bench.raw.>".into()],
            retention: stream::RetentionPolicy::WorkQueue,
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await?;
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("bench".into()),
            ack_policy: consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let js = &js;
            async move {
                js.publish(format!("bench.raw.{}", i % 64), payload.to_vec().into())
                    .await?
                    .await
            }
        })
        .buffer_unordered(256)
        .try_for_each(|_| async { Ok(()) })
        .await?;
    let mut received = 0;
    while received < n {
        let mut batch = consumer.fetch().max_messages(256).messages().await?;
        while let Some(message) = batch.next().await {
            message
                .map_err(|e| anyhow!("{e}"))?
                .ack()
                .await
                .map_err(|e| anyhow!("{e}"))?;
            received += 1;
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    js.delete_stream("BENCH_RAW").await?;
    Ok(rate)
}

/// Runs the benchmark.
pub async fn run(options: BenchOptions) -> anyhow::Result<BenchReport> {
    let mut stack_options = StackOptions::new(
        SimOptions::generated(options.accounts, options.positions, options.seed).scenario,
    );
    stack_options.seed = options.seed;
    stack_options.workers = options.workers;
    stack_options.coordinator = false;
    stack_options.partitions = 64;
    stack_options.enforce_every = Duration::from_secs(24 * 3600);
    stack_options.job_deadline = Duration::from_secs(300);
    stack_options.lease_ttl = Duration::from_secs(20);
    stack_options.heartbeat_every = Duration::from_secs(1);
    stack_options.scenario.market_open = Some(true);
    let mut stack = Stack::start(stack_options).await?;
    let ids = stack
        .sim
        .accounts()
        .into_iter()
        .map(|a| AccountId::new(&a.id))
        .collect::<Result<Vec<_>, _>>()?;
    let accounts = ids.len();

    let mut sub = stack
        .client
        .subscribe(format!("{RESULTS_PREFIX}.>"))
        .await?;
    let start = Instant::now();
    stack.start_coordinator()?;
    let cpu = CpuClock::start(&stack);
    let cold_results = collect(
        &mut sub,
        JobKind::Enforce,
        accounts,
        start,
        options.round_limit,
    )
    .await?;
    let cold = round(&cold_results, start.elapsed(), &cpu);
    eprintln!("nija-bench: cold round done in {:.2?}", cold.wall);
    let settled = state_settled(&stack, Duration::from_secs(120)).await?;
    eprintln!("nija-bench: state watches caught up {settled:.2?} later");
    if !options.settle.is_zero() {
        eprintln!(
            "nija-bench: waiting {:.0?} for the rate budgets the cold round spent to recover",
            options.settle
        );
        tokio::time::sleep(options.settle).await;
    }
    let orders = stack.order_log().len();

    let rounds = options.warm_rounds.max(1);
    let mut warm = Vec::with_capacity(rounds);
    for slot in 1..=rounds {
        let round = enforce_round(&stack, &mut sub, &ids, slot as u64, options.round_limit).await?;
        eprintln!("nija-bench: warm round {slot} done in {:.2?}", round.wall);
        warm.push(round);
    }
    let warm_latency = if options.latency.is_zero() {
        None
    } else {
        stack.sim.admin().set_faults(FaultSpec {
            latency_ms: Some(u64::try_from(options.latency.as_millis()).unwrap_or(u64::MAX)),
            ..FaultSpec::default()
        });
        let slot = rounds as u64 + 1;
        let round = enforce_round(&stack, &mut sub, &ids, slot, options.round_limit).await;
        stack.sim.admin().clear_faults();
        Some(round?)
    };

    let cpu = CpuClock::start(&stack);
    let start = Instant::now();
    let started: NormalizeStarted = stack
        .control(
            VERB_NORMALIZE,
            &NormalizeRequest {
                accounts: None,
                dry_run: true,
                max_positions: None,
                operator: "nija-bench".into(),
            },
            Duration::from_secs(60),
        )
        .await?
        .map_err(|e| anyhow!("normalize: {e}"))?;
    let normalize_results = collect(
        &mut sub,
        JobKind::Normalize,
        accounts,
        start,
        options.round_limit,
    )
    .await?;
    let normalize = round(&normalize_results, start.elapsed(), &cpu);
    // The coordinator follows results a moment behind the core subscription: poll its count.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let report: NormalizeReport = stack
            .control(
                VERB_NORMALIZE_REPORT,
                &NormalizeReportRequest {
                    run_id: started.run_id.clone(),
                    offset: 0,
                    limit: Some(0),
                },
                Duration::from_secs(60),
            )
            .await?
            .map_err(|e| anyhow!("normalize report: {e}"))?;
        if report.finished as usize == accounts {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the coordinator counted {} of {accounts} normalize results",
                report.finished
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let coordinator_peak_rss_kib = peak_rss_kib(stack.coordinator.as_ref().and_then(|c| c.pid()));
    let worker_peak_rss_kib = stack
        .workers
        .iter()
        .map(|w| peak_rss_kib(w.pid()))
        .collect();
    let payload = encode(&enforce_job(
        &ids[0],
        64,
        2_992_845,
        Duration::from_secs(300),
    ));
    let raw_msgs_per_s = raw_jetstream_rate(&stack.client, &payload, options.raw_messages).await?;
    stack.shutdown().await;
    Ok(BenchReport {
        options,
        cold,
        warm,
        warm_latency,
        normalize,
        orders,
        coordinator_peak_rss_kib,
        worker_peak_rss_kib,
        message_bytes: payload.len(),
        raw_msgs_per_s,
    })
}
