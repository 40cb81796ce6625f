//! Benchmark (ignored by default; it prints figures, it asserts behaviour only): one worker, a
//! zero-latency simulator and N generated accounts. A cold sweep opens every session, then a warm
//! sweep of one enforce job per account is timed from the first publish to the last result.
//!
//! `NIJA_BENCH_ACCOUNTS=10000 cargo test -p nija-worker --release --test warm_sweep -- --ignored --nocapture`

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::HashSet;
use std::future::IntoFuture;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use nija_proto::ids::JobKind;
use nija_proto::messages::{Job, JobResult, ResultStatus, decode, encode};
use nija_proto::names::job_subject;
use support::Harness;

async fn sweep(h: &Harness, jobs: &[Job], results: &mut async_nats::Subscriber) -> Duration {
    let wanted: HashSet<String> = jobs.iter().map(|j| j.job_id.to_string()).collect();
    let started = Instant::now();
    let publishing = async {
        let mut acks = FuturesUnordered::new();
        for job in jobs {
            let subject = job_subject(job.partition, job.kind, &job.account);
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", job.job_id.as_str());
            acks.push(
                h.js.publish_with_headers(subject, headers, encode(job).into())
                    .await
                    .unwrap()
                    .into_future(),
            );
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
    let _logs = nija_telemetry::init_tracing("nija-worker-bench", None).unwrap();
    let mut h = Harness::start_generated(accounts, 5, 7, Duration::from_secs(300)).await;
    h.config.worker.connect_cooldown = Duration::ZERO;
    h.config.worker.lease_ttl = Duration::from_secs(20);
    h.config.worker.heartbeat_every = Duration::from_secs(1);
    h.config.worker.partitions = 4;
    h.config.worker.price_cache_ttl = Duration::from_secs(1);
    let mut results = h.client.subscribe("nija.results.>").await.unwrap();
    let worker = h.spawn_worker("bench");
    let ids: Vec<String> = h.config.accounts.iter().map(|a| a.id.to_string()).collect();

    let cold: Vec<Job> = ids.iter().map(|id| h.job(JobKind::Enforce, id)).collect();
    let took = sweep(&h, &cold, &mut results).await;
    println!("cold sweep: {accounts} accounts in {took:?} (sessions opened, first enforcement)");
    let warm: Vec<Job> = ids.iter().map(|id| h.job(JobKind::Enforce, id)).collect();
    let took = sweep(&h, &warm, &mut results).await;
    println!(
        "warm sweep: {accounts} accounts in {took:?} ({:.0} jobs/s)",
        accounts as f64 / took.as_secs_f64()
    );
    let sweeps: Vec<Job> = ids.iter().map(|id| h.job(JobKind::ExitSweep, id)).collect();
    let took = sweep(&h, &sweeps, &mut results).await;
    println!("warm exit sweep: {accounts} accounts in {took:?}");
    worker.stop().await;
}
