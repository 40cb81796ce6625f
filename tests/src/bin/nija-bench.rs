//! `nija-bench`: N accounts through a cold enforce round on the local stack, then warm rounds
//! (zero and `--latency-ms` simulated broker latency) and a normalize dry run, against this
//! machine's raw JetStream rate measured in the same run. Prints figures; asserts nothing. Build the binaries first (`cargo build --workspace --bins`; `--release` for real figures).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use nija_e2e::bench::{BenchOptions, run};

/// Pipeline benchmark on the local stack.
#[derive(Debug, Parser)]
#[command(name = "nija-bench")]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    accounts: usize,
    #[arg(long, default_value_t = 10)]
    positions: usize,
    #[arg(long, default_value_t = 2)]
    workers: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Messages for the raw JetStream measurement.
    #[arg(long, default_value_t = 20_000)]
    raw_messages: usize,
    /// Upper bound on each round.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    round_limit: std::time::Duration,
    /// Simulated broker latency (every request) for the second warm round; 0 skips that round.
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Zero-latency warm rounds to run back to back (each is reported; ratios use the median).
    #[arg(long, default_value_t = 3)]
    warm_rounds: usize,
    /// Pause before the warm rounds for the brokers' rate budgets to recover from the cold round
    /// [default: the strictest adapter limit's full recovery, about a minute].
    #[arg(long, value_parser = humantime::parse_duration)]
    settle: Option<std::time::Duration>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let report = run(BenchOptions {
        accounts: args.accounts,
        positions: args.positions,
        workers: args.workers,
        seed: args.seed,
        raw_messages: args.raw_messages,
        round_limit: args.round_limit,
        latency: std::time::Duration::from_millis(args.latency_ms),
        warm_rounds: args.warm_rounds,
        settle: args.settle.unwrap_or_else(BenchOptions::budget_recovery),
    })
    .await?;
    report.print();
    Ok(())
}
