//! A smoke run of the benchmark with a small fleet: every account goes through every round and
//! every figure is produced (the figures themselves are not asserted).

use std::time::Duration;

use nija_e2e::bench::{BenchOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_benchmark_runs_end_to_end_on_a_small_fleet() -> anyhow::Result<()> {
    let report = run(BenchOptions {
        accounts: 20,
        positions: 6,
        workers: 2,
        seed: 3,
        raw_messages: 2_000,
        round_limit: Duration::from_secs(180),
        latency: Duration::from_millis(20),
        warm_rounds: 2,
        settle: Duration::ZERO,
    })
    .await?;
    report.print();
    assert_eq!(report.cold.accounts, 20);
    assert_eq!(report.warm.len(), 2);
    assert!(report.warm.iter().all(|r| r.accounts == 20));
    assert_eq!(report.warm_latency.map(|r| r.accounts), Some(20));
    assert_eq!(report.normalize.accounts, 20);
    assert!(report.raw_msgs_per_s > 0.0);
    assert!(report.coordinator_peak_rss_kib.is_some());
    assert_eq!(report.worker_peak_rss_kib.len(), 2);
    Ok(())
}
