//! Figures, not a test: median and p99 latency of the adapters' calls against an in-process
//! simulator on loopback (plain HTTP). `cargo run -p nija-brokers --example sim_latency [N]`.

use std::time::{Duration, Instant};

use nija_brokers::{BrokerKind, BrokerSettings, Credentials, RateLimit, SellOrder, build_broker};
use nija_proto::{ClientOrderId, Quantity, Symbol};
use nija_sim::{AccountType, Scenario, ScenarioAccount, ScenarioHolding, Sim, SimOptions};

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    println!(
        "{:<9} {:<10} {:>10} {:>10}",
        "broker", "call", "median", "p99"
    );
    for (kind, sim_kind) in [
        (BrokerKind::Coinbase, nija_sim::Broker::Coinbase),
        (BrokerKind::Kraken, nija_sim::Broker::Kraken),
        (BrokerKind::Alpaca, nija_sim::Broker::Alpaca),
    ] {
        let scenario = Scenario {
            accounts: vec![ScenarioAccount {
                id: "bench".into(),
                kind: AccountType::User,
                broker: sim_kind,
                cash: "1000".parse()?,
                holdings: vec![ScenarioHolding {
                    asset: "BTC".into(),
                    quantity: "1000".parse()?,
                    avg_entry: None,
                }],
            }],
            ..Scenario::default()
        };
        let mut options = SimOptions::from_scenario(scenario);
        options.motion.frozen = true;
        let sim = Sim::start(options).await?;
        let json = sim
            .account("bench")
            .ok_or_else(|| anyhow::anyhow!("no account"))?
            .credentials
            .to_json()
            .to_string();
        let mut settings = BrokerSettings::new(kind);
        settings.base_url = Some(sim.base_url(sim_kind));
        settings.rate_limit = Some(RateLimit {
            ceiling: 1e9,
            decay_per_sec: 1e9,
        });
        let broker = build_broker(settings, Credentials::from_json(kind, &json, "sim")?)?;
        broker.connect().await?;
        let btc = Symbol::new("BTC-USD")?;
        let symbols = [btc.clone(), Symbol::new("ETH-USD")?];

        let mut holdings = Vec::with_capacity(n);
        let mut quotes = Vec::with_capacity(n);
        let mut sells = Vec::with_capacity(n);
        for i in 0..n {
            let t = Instant::now();
            broker.holdings(&["USD".into()]).await?;
            holdings.push(t.elapsed());
            let t = Instant::now();
            broker.quotes(&symbols).await?;
            quotes.push(t.elapsed());
            let t = Instant::now();
            broker
                .market_sell(&SellOrder {
                    symbol: btc.clone(),
                    quantity: Quantity("0.001".parse()?),
                    client_order_id: ClientOrderId::from_uuid(uuid::Uuid::from_u128(i as u128 + 1)),
                })
                .await?;
            sells.push(t.elapsed());
        }
        for (name, samples) in [
            ("holdings", &mut holdings),
            ("quotes", &mut quotes),
            ("sell", &mut sells),
        ] {
            println!(
                "{:<9} {:<10} {:>8.2}ms {:>8.2}ms",
                kind.as_str(),
                name,
                percentile(samples, 0.5).as_secs_f64() * 1e3,
                percentile(samples, 0.99).as_secs_f64() * 1e3
            );
        }
        sim.shutdown().await;
    }
    Ok(())
}
