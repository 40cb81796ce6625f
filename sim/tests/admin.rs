//! The admin HTTP API, generated fleets and `write_config`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Alpaca, Kraken};
use nija_sim::{Broker, Credentials, Sim, SimOptions};
use serde_json::{Value, json};

async fn admin(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[tokio::test]
async fn admin_routes_drive_the_simulator() {
    use reqwest::Method;
    let sim = common::start().await;
    let client = common::http();
    let base = sim.admin_url();

    let (_, accounts) = admin(&client, Method::GET, format!("{base}/admin/accounts"), None).await;
    assert_eq!(accounts.as_array().unwrap().len(), 3);

    assert_eq!(
        admin(
            &client,
            Method::PUT,
            format!("{base}/admin/prices/BTC-USD"),
            Some(json!({"price": "50000"}))
        )
        .await
        .0,
        204
    );
    let kr = Kraken::new(&sim, "kr");
    assert_eq!(
        kr.public("Ticker", "pair=XBTUSD").await["result"]["XXBTZUSD"]["b"][0],
        "50000.00000"
    );
    assert_eq!(
        admin(
            &client,
            Method::PUT,
            format!("{base}/admin/prices/NOPE-USD"),
            Some(json!({"price": "1"}))
        )
        .await
        .0,
        404
    );

    // External trades move balances and show in the log as external.
    let (status, trade) = admin(
        &client,
        Method::POST,
        format!("{base}/admin/accounts/kr/trades"),
        Some(json!({"symbol": "SOL-USD", "side": "sell", "quantity": "10"})),
    )
    .await;
    assert_eq!(status, 200, "{trade}");
    let (_, balances) = admin(
        &client,
        Method::GET,
        format!("{base}/admin/accounts/kr"),
        None,
    )
    .await;
    let sol = balances["balances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["asset"] == "SOL")
        .unwrap()
        .clone();
    assert_eq!(sol["total"], "0");
    let (_, bought) = admin(
        &client,
        Method::POST,
        format!("{base}/admin/accounts/kr/trades"),
        Some(json!({"symbol": "ETH-USD", "side": "buy", "quantity": "0.5"})),
    )
    .await;
    assert_eq!(bought["status"], "filled");
    let (_, log) = admin(&client, Method::GET, format!("{base}/admin/orders"), None).await;
    assert_eq!(log.as_array().unwrap().len(), 2);
    assert_eq!(log[0]["source"], "external");
    assert_eq!(log[0]["account"], "kr");
    assert_eq!(
        admin(
            &client,
            Method::DELETE,
            format!("{base}/admin/orders"),
            None
        )
        .await
        .0,
        204
    );
    assert!(sim.admin().order_log().is_empty());

    assert_eq!(
        admin(
            &client,
            Method::PUT,
            format!("{base}/admin/accounts/al/holdings/ETH"),
            Some(json!({"quantity": "3", "avg_entry": "2000"}))
        )
        .await
        .0,
        204
    );
    let al = Alpaca::new(&sim, "al");
    let (_, eth) = al.get("/v2/positions/ETHUSD").await;
    assert_eq!(eth["avg_entry_price"], "2000");

    assert_eq!(
        admin(
            &client,
            Method::POST,
            format!("{base}/admin/faults"),
            Some(json!({"broker": "alpaca", "server_errors": 1}))
        )
        .await
        .0,
        200
    );
    assert_eq!(al.get("/v2/clock").await.0, 500);
    assert_eq!(
        admin(
            &client,
            Method::DELETE,
            format!("{base}/admin/faults"),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        admin(
            &client,
            Method::POST,
            format!("{base}/admin/faults"),
            Some(json!({"bogus": 1}))
        )
        .await
        .0,
        422
    );

    assert_eq!(
        admin(
            &client,
            Method::POST,
            format!("{base}/admin/accounts/al/revoke"),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(al.get("/v2/clock").await.0, 401);
    assert_eq!(
        admin(
            &client,
            Method::POST,
            format!("{base}/admin/accounts/al/restore"),
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        admin(
            &client,
            Method::PUT,
            format!("{base}/admin/clock"),
            Some(json!({"is_open": false}))
        )
        .await
        .0,
        204
    );
    let (_, clock) = al.get("/v2/clock").await;
    assert_eq!(clock["is_open"], false);

    // A scripted path ends on its last price and stays there.
    assert_eq!(
        admin(
            &client,
            Method::POST,
            format!("{base}/admin/prices/ETH-USD/path"),
            Some(json!({"prices": ["100", "90", "80"], "every_ms": 10}))
        )
        .await
        .0,
        204
    );
    let mut last = None;
    for _ in 0..200 {
        last = sim.admin().quote("ETH-USD").map(|q| q.last.to_string());
        if last.as_deref() == Some("80") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(last.as_deref(), Some("80"));
    sim.shutdown().await;
}

#[tokio::test]
async fn prices_walk_unless_frozen() {
    let mut options = SimOptions::generated(3, 2, 1);
    options.motion.tick = Duration::from_millis(5);
    options.motion.volatility = "0.01".parse().unwrap();
    let sim = Sim::start(options).await.unwrap();
    sim.admin().freeze_prices(Some("ETH-USD"), true);
    let start = sim.admin().quote("BTC-USD").unwrap().last;
    let eth = sim.admin().quote("ETH-USD").unwrap().last;
    let mut moved = false;
    for _ in 0..400 {
        if sim.admin().quote("BTC-USD").unwrap().last != start {
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(moved);
    assert_eq!(sim.admin().quote("ETH-USD").unwrap().last, eth);
    sim.shutdown().await;
}

#[tokio::test]
async fn generated_fleet_writes_a_working_config() {
    let mut options = SimOptions::generated(12, 6, 3);
    options.motion.frozen = true;
    let sim = Sim::start(options).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nija.toml");
    sim.write_config(&path, "nats://127.0.0.1:4999").unwrap();

    let config: toml::Value = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        config["nats"]["url"].as_str(),
        Some("nats://127.0.0.1:4999")
    );
    let ca = config["tls"]["extra_ca"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(ca).unwrap(), sim.ca_cert_pem());
    let accounts = config["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 12);
    assert_eq!(accounts[0]["id"].as_str(), Some("platform"));
    assert_eq!(accounts[0]["type"].as_str(), Some("platform"));
    let mut keys = std::collections::HashSet::new();
    for account in accounts {
        let broker: Broker = account["broker"].as_str().unwrap().parse().unwrap();
        assert_eq!(account["base_url"].as_str().unwrap(), sim.base_url(broker));
        let file = dir
            .path()
            .join(account["credentials"]["file"].as_str().unwrap());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let creds: Credentials =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(creds.broker(), broker);
        assert!(keys.insert(creds.key_id().to_string()));
        let json: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let fields: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        match broker {
            Broker::Coinbase => assert_eq!(fields, ["name", "privateKey"]),
            Broker::Kraken => assert_eq!(fields, ["key", "secret"]),
            Broker::Alpaca => assert_eq!(fields, ["key_id", "secret_key"]),
        }
    }
    // The platform account's credentials from the file work against the simulator.
    let mut kr = Kraken::new(&sim, "platform");
    let balance = kr.private("Balance", &[]).await;
    assert_eq!(balance["error"], json!([]));
    sim.shutdown().await;
}
