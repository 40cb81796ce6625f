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

/// Places a resting limit sell far above the market through the venue's raw client (the trait
/// only places market orders), so open orders, holds and cancellation can be tested.
pub async fn place_resting_sell(sim: &SimHandle, kind: BrokerKind, qty: &str) -> String {
    use nija_brokers::common::http::HttpClient;
    use nija_brokers::common::rate_limit::RateLimiter;
    use reqwest::{Method, Url};

    let s = settings(sim, kind);
    let http = HttpClient::new(kind, &s.timeouts, &[]).unwrap();
    let base = Url::parse(s.base_url.as_deref().unwrap()).unwrap();
    let limiter = Arc::new(RateLimiter::new(s.rate_limit.unwrap()));
    let creds = credentials(sim, kind);
    let fingerprint = creds.fingerprint();
    let body: serde_json::Value = match creds {
        Credentials::Coinbase(c) => {
            let client = nija_brokers::coinbase::http::client::CoinbaseHttp::new(
                http,
                base,
                nija_brokers::coinbase::http::auth::JwtSigner::new(&c),
                limiter,
            );
            let order = serde_json::json!({
                "client_order_id": uuid::Uuid::new_v4().to_string(),
                "product_id": "BTC-USD",
                "side": "SELL",
                "order_configuration": {"limit_limit_gtc": {"base_size": qty, "limit_price": "1000000"}},
            });
            let resp = client
                .call(Method::POST, "/orders", &[], Some(&order))
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
            return body["success_response"]["order_id"]
                .as_str()
                .unwrap()
                .to_string();
        }
        Credentials::Kraken(c) => {
            // The key's shared nonce state, as the adapter uses it.
            let client = nija_brokers::kraken::http::client::KrakenHttp::new(
                http,
                base,
                c,
                nija_brokers::kraken::http::client::key_state(&fingerprint),
                limiter,
            );
            let resp = client
                .private_raw(
                    "AddOrder",
                    &[
                        ("ordertype", "limit"),
                        ("type", "sell"),
                        ("volume", qty),
                        ("pair", "XBTUSD"),
                        ("price", "1000000"),
                    ],
                )
                .await
                .unwrap();
            serde_json::from_str(&resp.body).unwrap()
        }
        Credentials::Alpaca(c) => {
            let client = nija_brokers::alpaca::http::client::AlpacaHttp::new(
                http,
                base.clone(),
                base,
                c,
                limiter,
            );
            let order = serde_json::json!({
                "symbol": "BTC/USD", "qty": qty, "side": "sell", "type": "limit",
                "limit_price": "1000000", "time_in_force": "gtc",
            });
            let resp = client
                .call(
                    Method::POST,
                    client.trading_url("/v2/orders"),
                    &[],
                    Some(&order),
                )
                .await
                .unwrap();
            let body: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
            return body["id"].as_str().unwrap().to_string();
        }
    };
    body["result"]["txid"][0].as_str().unwrap().to_string()
}
