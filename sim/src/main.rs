//! `nija-sim`: run the exchange simulator. Prints one JSON line with the bound ports on stdout
//! when ready; logs go to stderr.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use nija_sim::{Scenario, Sim, SimOptions};
use rust_decimal::Decimal;

/// Local exchange simulator serving the Coinbase, Kraken and Alpaca wire protocols
/// (plain HTTP and HTTPS on each port).
#[derive(Debug, Parser)]
#[command(name = "nija-sim", version)]
struct Args {
    /// Scenario file (JSON or TOML): accounts, balances, prices, rules, failing symbols.
    #[arg(long, conflicts_with = "accounts")]
    scenario: Option<PathBuf>,
    /// Generate this many accounts (`platform` on Kraken, then user-0001… over the three brokers).
    #[arg(long)]
    accounts: Option<usize>,
    /// Mean number of positions per generated account.
    #[arg(long, default_value_t = 6)]
    positions: usize,
    /// Seed of generation, credentials and the price walk (default: the scenario's, else 0).
    #[arg(long)]
    seed: Option<u64>,
    /// Freeze every price (exact tests).
    #[arg(long)]
    freeze_prices: bool,
    /// Interval of the price random walk.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    tick: Duration,
    /// Largest relative price move per tick (0.001 = 0.1 %).
    #[arg(long, default_value = "0.001")]
    volatility: Decimal,
    /// Relative bid/ask spread (0 = bid = ask).
    #[arg(long, default_value = "0")]
    spread: Decimal,
    /// Start with the Alpaca equity market closed.
    #[arg(long)]
    market_closed: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// Coinbase port (0 = a free port).
    #[arg(long, default_value_t = 0)]
    coinbase_port: u16,
    /// Kraken port (0 = a free port).
    #[arg(long, default_value_t = 0)]
    kraken_port: u16,
    /// Alpaca trading and market-data port (0 = a free port).
    #[arg(long, default_value_t = 0)]
    alpaca_port: u16,
    /// Admin API port (0 = a free port).
    #[arg(long, default_value_t = 0)]
    admin_port: u16,
    /// Write a nija config (and creds/<id>.json, sim-ca.pem beside it) for the seeded accounts.
    #[arg(long)]
    write_config: Option<PathBuf>,
    /// NATS URL to put in the written config.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Folder for the CA certificate (default: the written config's folder, else a temporary folder).
    #[arg(long)]
    tls_dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let mut options = match (&args.scenario, args.accounts) {
        (Some(path), _) => SimOptions::from_scenario(Scenario::load(path)?),
        (None, Some(n)) => SimOptions::generated(n, args.positions, args.seed.unwrap_or(0)),
        (None, None) => SimOptions::generated(10, args.positions, args.seed.unwrap_or(0)),
    };
    if let Some(seed) = args.seed {
        options.seed = seed;
        options.motion.seed = seed;
    }
    if args.market_closed {
        options.scenario.market_open = Some(false);
    }
    options.motion.frozen = args.freeze_prices;
    options.motion.tick = args.tick;
    options.motion.volatility = args.volatility;
    options.motion.spread = args.spread;
    options.host = args.host;
    options.coinbase_port = args.coinbase_port;
    options.kraken_port = args.kraken_port;
    options.alpaca_port = args.alpaca_port;
    options.admin_port = args.admin_port;
    options.tls_dir = args.tls_dir.clone().or_else(|| {
        args.write_config.as_ref().and_then(|c| {
            c.parent().map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            })
        })
    });

    let sim = Sim::start(options)
        .await
        .context("starting the simulator")?;
    let config = match &args.write_config {
        Some(path) => {
            sim.write_config(path, &args.nats_url)?;
            Some(path.display().to_string())
        }
        None => None,
    };
    let ready = serde_json::json!({
        "ready": true,
        "ports": sim.ports(),
        "coinbase": sim.base_url(nija_sim::Broker::Coinbase),
        "kraken": sim.base_url(nija_sim::Broker::Kraken),
        "alpaca": sim.base_url(nija_sim::Broker::Alpaca),
        "admin": sim.admin_url(),
        "ca_cert": sim.ca_cert_path(),
        "config": config,
        "accounts": sim.accounts().len(),
    });
    println!("{ready}");

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
    sim.shutdown().await;
    Ok(())
}
