//! `nija-bench`: N accounts through one enforce round on the local stack, then a warm round,
//! against this machine's raw JetStream rate measured in the same run. Prints figures; asserts
//! nothing. Build the binaries first (`cargo build --workspace --bins`; `--release` for real figures).

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
    })
    .await?;
    report.print();
    Ok(())
}
