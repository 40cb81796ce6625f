//! Shared set-up of the adapter tests against the simulator: a sim with a known scenario, frozen
//! prices, and broker settings with short, test-sized intervals.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use nija_brokers::{
    Broker, BrokerKind, BrokerSettings, Credentials, LookupSettings, RateLimit, RetryPolicy,
    Timeouts, build_broker,
};
use nija_proto::{ClientOrderId, Symbol};
use nija_sim::{
    AccountType, Scenario, ScenarioAccount, ScenarioHolding, Sim, SimHandle, SimOptions,
};
use rust_decimal::Decimal;

pub fn sym(s: &str) -> Symbol {
    Symbol::new(s).unwrap()
}

pub fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

pub fn sim_broker(kind: BrokerKind) -> nija_sim::Broker {
    match kind {
        BrokerKind::Coinbase => nija_sim::Broker::Coinbase,
        BrokerKind::Kraken => nija_sim::Broker::Kraken,
        BrokerKind::Alpaca => nija_sim::Broker::Alpaca,
    }
}

/// One account `acct` at `kind` with cash 1000 USD and the given holdings; prices frozen.
pub async fn start_sim(kind: BrokerKind, holdings: &[(&str, &str)]) -> SimHandle {
    let scenario = Scenario {
        seed: Some(7),
        accounts: vec![ScenarioAccount {
            id: "acct".into(),
            kind: AccountType::User,
            broker: sim_broker(kind),
            cash: dec("1000"),
            holdings: holdings
                .iter()
                .map(|(asset, qty)| ScenarioHolding {
                    asset: asset.to_string(),
                    quantity: dec(qty),
                    avg_entry: None,
                })
                .collect(),
        }],
        ..Scenario::default()
    };
    let mut options = SimOptions::from_scenario(scenario);
    options.motion.frozen = true;
    Sim::start(options).await.unwrap()
}

pub fn credentials(sim: &SimHandle, kind: BrokerKind) -> Credentials {
    let json = sim
        .account("acct")
        .unwrap()
        .credentials
        .to_json()
        .to_string();
    Credentials::from_json(kind, &json, "sim").unwrap()
}

/// Settings with short deadlines, fast retries and a short look-up window.
pub fn settings(sim: &SimHandle, kind: BrokerKind) -> BrokerSettings {
    let mut s = BrokerSettings::new(kind);
    s.account = "acct".into();
    s.base_url = Some(sim.base_url(sim_broker(kind)));
    s.timeouts = Timeouts {
        request: Duration::from_secs(3),
        connect: Duration::from_secs(2),
    };
    s.retry = RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_secs(2),
    };
    // Every test's account has the same key (same seed): a generous limit keeps them independent.
    s.rate_limit = Some(RateLimit {
        ceiling: 1000.0,
        decay_per_sec: 1000.0,
    });
    s.order_lookup = LookupSettings {
        window: Duration::from_secs(2),
        interval: Duration::from_millis(100),
    };
    s
}

pub async fn connected(sim: &SimHandle, kind: BrokerKind) -> Arc<dyn Broker> {
    let broker = build_broker(settings(sim, kind), credentials(sim, kind)).unwrap();
    broker.connect().await.unwrap();
    broker
}

pub fn cid(n: u128) -> ClientOrderId {
    ClientOrderId::from_uuid(uuid::Uuid::from_u128(
        0x6d1b_345e_2821_40e2_ad83_0000_0000_0000 + n,
    ))
}

/// Orders the simulator logged for the test account.
pub fn logged(sim: &SimHandle) -> Vec<nija_sim::LoggedOrder> {
    sim.admin()
        .order_log()
        .into_iter()
        .filter(|o| o.account == "acct")
        .collect()
}

pub mod cases;
