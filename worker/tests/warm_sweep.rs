//! Benchmark (ignored by default; it prints figures and asserts only that every job succeeded):
//! one worker, a zero-latency `nija-sim` process with N generated accounts, a real nats-server.
//! A cold sweep opens every session; then a warm sweep of one enforce job per account is timed
//! from the first publish to the last result, and a warm exit sweep likewise.
//!
//! The simulator runs as its own process (the `nija-sim` binary, built beside this test): with
//! one keep-alive connection per broker session, 10 000 accounts need more file descriptors than
//! one process may hold for both ends.
//!
//! ```text
//! cargo build --release -p nija-sim
//! NIJA_BENCH_ACCOUNTS=10000 cargo test -p nija-worker --release --test warm_sweep -- --ignored --nocapture
//! ```

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::future::IntoFuture;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use chrono::Utc;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use nija_config::{Config, MapEnv};
use nija_e2e::NatsServer;
use nija_proto::ids::JobKind;
use nija_proto::messages::{Job, JobResult, ResultStatus, TriggeredBy, decode, encode};
use nija_proto::names::job_subject;
use nija_proto::{JobId, WorkerId};
use nija_runtime::topology::{TopologySettings, ensure_topology};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(300);

struct SimProcess(Child);

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `nija-sim` with a generated fleet and waits for its ready line.
fn start_sim(accounts: usize, config: &std::path::Path, nats_url: &str) -> SimProcess {
    let bin = nija_e2e::target_bin_dir().join("nija-sim");
    let mut child = Command::new(&bin)
        .args(["--accounts", &accounts.to_string(), "--positions", "5"])
        .args(["--seed", "7", "--freeze-prices"])
        .arg("--write-config")
        .arg(config)
        .args(["--nats-url", nats_url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} (cargo build -p nija-sim): {e}",
                bin.display()
            )
        });
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    assert!(
        line.contains("ready"),
        "unexpected first line from nija-sim: {line}"
    );
    SimProcess(child)
}

fn job(config: &Config, kind: JobKind, account: &nija_proto::AccountId, slot: u64) -> Job {
    Job {
        job_id: JobId::scheduled(kind, account, slot),
        kind,
        partition: config.partition_of(account),
        account: account.clone(),
        scheduled_at: Utc::now(),
        deadline: Utc::now() + chrono::Duration::from_std(DEADLINE).unwrap(),
        triggered_by: TriggeredBy::Schedule,
        force: false,
        dry_run: false,
        max_positions: None,
    }
}

async fn sweep(
    js: &jetstream::Context,
    jobs: &[Job],
    results: &mut async_nats::Subscriber,
) -> Duration {
    let wanted: HashSet<String> = jobs.iter().map(|j| j.job_id.to_string()).collect();
    let started = Instant::now();
    let publishing = async {
        let mut acks = FuturesUnordered::new();
        for job in jobs {
            let subject = job_subject(job.partition, job.kind, &job.account);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", job.job_id.as_str());
            let ack = js
                .publish_with_headers(subject, headers, encode(job).into())
                .await
                .unwrap();
            acks.push(ack.into_future());
            if acks.len() >= 256 {
                acks.next().await.unwrap().unwrap();
            }
        }
        while let Some(ack) = acks.next().await {
            ack.unwrap();
        }
    };
    let collecting = async {
        let mut seen = HashSet::new();
        let mut failed = Vec::new();
        while seen.len() < wanted.len() {
            let message = tokio::time::timeout(Duration::from_secs(120), results.next())
                .await
                .expect("results stopped arriving")
                .unwrap();
            let result: JobResult = decode(&message.payload).unwrap();
            if wanted.contains(result.job_id.as_str())
                && seen.insert(result.job_id.to_string())
                && result.status == ResultStatus::Failed
            {
                failed.push(format!("{}: {:?}", result.account, result.errors));
            }
        }
        failed
    };
    let ((), failed) = tokio::join!(publishing, collecting);
    assert!(
        failed.is_empty(),
        "{} failed jobs in the sweep, e.g. {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints figures"]
async fn warm_sweep_of_many_accounts() {
    let accounts: usize = std::env::var("NIJA_BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nija.toml");
    let _sim = start_sim(accounts, &path, &nats.url());
    let mut config = Config::load(&path, &MapEnv::new()).unwrap().config;
    config.worker.connect_cooldown = Duration::ZERO;
    config.schedule.job_deadline = DEADLINE;

    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = jetstream::new(client.clone());
    ensure_topology(
        &js,
        &TopologySettings {
            partitions: config.worker.partitions,
            job_deadline: DEADLINE,
            ..TopologySettings::default()
        },
    )
    .await
    .unwrap();
    let mut results = client.subscribe("nija.results.>").await.unwrap();
    let stop = CancellationToken::new();
    let config = Arc::new(config);
    let worker = tokio::spawn(nija_worker::run(
        config.clone(),
        WorkerId::new("bench").unwrap(),
        nija_worker::context::Observability::register(&prometheus::Registry::new()).unwrap(),
        stop.clone(),
    ));
    let ids: Vec<_> = config.accounts.iter().map(|a| a.id.clone()).collect();
    let jobs = |kind: JobKind, slot: u64| -> Vec<Job> {
        ids.iter().map(|id| job(&config, kind, id, slot)).collect()
    };

    let took = sweep(&js, &jobs(JobKind::Enforce, 1), &mut results).await;
    println!("cold sweep: {accounts} accounts in {took:?} (sessions opened, first enforcement)");
    let took = sweep(&js, &jobs(JobKind::Enforce, 2), &mut results).await;
    println!(
        "warm sweep: {accounts} accounts in {took:?} ({:.0} jobs/s)",
        accounts as f64 / took.as_secs_f64()
    );
    let took = sweep(&js, &jobs(JobKind::ExitSweep, 3), &mut results).await;
    println!(
        "warm exit sweep: {accounts} accounts in {took:?} ({:.0} jobs/s)",
        accounts as f64 / took.as_secs_f64()
    );
    let took = sweep(&js, &jobs(JobKind::Enforce, 4), &mut results).await;
    println!(
        "warm sweep again: {accounts} accounts in {took:?} ({:.0} jobs/s)",
        accounts as f64 / took.as_secs_f64()
    );
    stop.cancel();
    worker.await.unwrap().unwrap();
}
