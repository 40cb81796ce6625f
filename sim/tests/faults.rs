//! Injected faults over real HTTP: 5xx, rate limits, latency, nonce errors, lost order responses
//! and failing price lookups.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Alpaca, Coinbase, Kraken};
use nija_sim::{Broker, FaultSpec, LostResponse};
use serde_json::json;

#[tokio::test]
async fn server_errors_and_rate_limits_count_down() {
    let sim = common::start().await;
    let cb = Coinbase::new(&sim, "cb");
    sim.admin().set_faults(FaultSpec {
        broker: Some(Broker::Coinbase),
        server_errors: Some(2),
        ..FaultSpec::default()
    });
    assert_eq!(cb.get("/api/v3/brokerage/time").await.0, 500);
    assert_eq!(cb.get("/api/v3/brokerage/accounts").await.0, 500);
    assert_eq!(cb.get("/api/v3/brokerage/accounts").await.0, 200);

    let al = Alpaca::new(&sim, "al");
    sim.admin().set_faults(FaultSpec {
        account: Some("al".into()),
        rate_limits: Some(1),
        retry_after_s: Some(7),
        ..FaultSpec::default()
    });
    let response = al
        .client
        .get(format!("{}/v2/account", al.base))
        .header("APCA-API-KEY-ID", &al.key_id)
        .header("APCA-API-SECRET-KEY", &al.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["code"],
        42910000
    );
    assert_eq!(al.get("/v2/account").await.0, 200);
    // Another account is not affected by an account-scoped fault.
    sim.admin().set_faults(FaultSpec {
        account: Some("al".into()),
        rate_limits: Some(1),
        ..FaultSpec::default()
    });
    assert_eq!(cb.get("/api/v3/brokerage/accounts").await.0, 200);

    let mut kr = Kraken::new(&sim, "kr");
    sim.admin().set_faults(FaultSpec {
        broker: Some(Broker::Kraken),
        rate_limits: Some(1),
        ..FaultSpec::default()
    });
    assert_eq!(
        kr.private("Balance", &[]).await["error"],
        json!(["EAPI:Rate limit exceeded"])
    );
    assert_eq!(kr.private("Balance", &[]).await["error"], json!([]));
    sim.admin().clear_faults();
    assert!(sim.admin().faults().is_empty());
    sim.shutdown().await;
}

#[tokio::test]
async fn latency_delays_answers() {
    let sim = common::start().await;
    let al = Alpaca::new(&sim, "al");
    sim.admin().set_faults(FaultSpec {
        broker: Some(Broker::Alpaca),
        latency_ms: Some(150),
        ..FaultSpec::default()
    });
    let started = Instant::now();
    assert_eq!(al.get("/v2/clock").await.0, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
    sim.shutdown().await;
}

#[tokio::test]
async fn kraken_nonce_errors_do_not_consume_the_nonce() {
    let sim = common::start().await;
    let mut kr = Kraken::new(&sim, "kr");
    sim.admin().set_faults(FaultSpec {
        account: Some("kr".into()),
        nonce_errors: Some(1),
        ..FaultSpec::default()
    });
    let sell = [
        ("ordertype", "market"),
        ("type", "sell"),
        ("volume", "0.1"),
        ("pair", "XBTUSD"),
    ];
    assert_eq!(
        kr.private_with_nonce("AddOrder", &sell, 500).await["error"],
        json!(["EAPI:Invalid nonce"])
    );
    assert!(sim.admin().order_log().is_empty());
    assert_eq!(
        kr.private_with_nonce("AddOrder", &sell, 500).await["error"],
        json!([])
    );
    assert_eq!(sim.admin().order_log().len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn lost_order_responses_still_execute() {
    let sim = common::start().await;

    // Alpaca: the connection drops; the order exists and is found by client id.
    let al = Alpaca::new(&sim, "al");
    sim.admin().set_faults(FaultSpec {
        broker: Some(Broker::Alpaca),
        lost_responses: Some(1),
        ..FaultSpec::default()
    });
    let sell = json!({"symbol": "BTC/USD", "qty": "0.1", "side": "sell", "type": "market", "time_in_force": "gtc", "client_order_id": "lost-1"});
    let result = al
        .client
        .post(format!("{}/v2/orders", al.base))
        .header("APCA-API-KEY-ID", &al.key_id)
        .header("APCA-API-SECRET-KEY", &al.secret)
        .json(&sell)
        .send()
        .await;
    assert!(
        result.is_err(),
        "expected a dropped connection, got {result:?}"
    );
    let (status, found) = al
        .get("/v2/orders:by_client_order_id?client_order_id=lost-1")
        .await;
    assert_eq!((status, found["status"].as_str()), (200, Some("filled")));
    assert_eq!(al.post("/v2/orders", sell).await.0, 422);

    // Coinbase: a 504; re-posting the client id returns the order that executed (a resubmission
    // is no new placement, so the second lost response stays pending).
    let cb = Coinbase::new(&sim, "cb");
    sim.admin().set_faults(FaultSpec {
        broker: Some(Broker::Coinbase),
        lost_responses: Some(2),
        lost_response_mode: Some(LostResponse::GatewayTimeout),
        ..FaultSpec::default()
    });
    let order = json!({"client_order_id": "lost-2", "product_id": "BTC-USD", "side": "SELL",
                       "order_configuration": {"market_market_ioc": {"base_size": "0.1"}}});
    assert_eq!(
        cb.post("/api/v3/brokerage/orders", order.clone()).await.0,
        504
    );
    let (status, again) = cb.post("/api/v3/brokerage/orders", order).await;
    assert_eq!((status, &again["success"]), (200, &json!(true)));
    sim.admin().clear_faults();

    // Kraken: the order is found with ClosedOrders cl_ord_id.
    let mut kr = Kraken::new(&sim, "kr");
    sim.admin().set_faults(FaultSpec {
        account: Some("kr".into()),
        lost_responses: Some(1),
        ..FaultSpec::default()
    });
    let body =
        "ordertype=market&type=sell&volume=0.1&pair=XBTUSD&cl_ord_id=lost-3&nonce=1900000000000";
    let sign = nija_sim::credentials::kraken_sign(
        &kr.secret,
        "/0/private/AddOrder",
        "1900000000000",
        body.as_bytes(),
    );
    let result = kr
        .client
        .post(format!("{}/0/private/AddOrder", kr.base))
        .header("API-Key", &kr.key)
        .header("API-Sign", sign)
        .body(body)
        .send()
        .await;
    assert!(result.is_err());
    kr.nonce = 1_900_000_000_001;
    let closed = kr.private("ClosedOrders", &[("cl_ord_id", "lost-3")]).await;
    assert_eq!(closed["result"]["count"], 1);

    let log = sim.admin().order_log();
    assert_eq!(log.len(), 3);
    assert!(
        log.iter()
            .all(|o| o.order.status == nija_sim::OrderStatus::Filled)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn price_lookups_can_fail_per_broker() {
    let sim = common::start().await;
    sim.admin().set_faults(FaultSpec {
        broker: Some(Broker::Alpaca),
        price_failures: Some(["BTC-USD".to_string()].into()),
        ..FaultSpec::default()
    });
    let al = Alpaca::new(&sim, "al");
    let (_, quotes) = al
        .get("/v1beta3/crypto/us/latest/quotes?symbols=BTC/USD,ETH/USD")
        .await;
    assert!(quotes["quotes"].get("BTC/USD").is_none());
    assert!(quotes["quotes"].get("ETH/USD").is_some());
    let kr = Kraken::new(&sim, "kr");
    assert_eq!(kr.public("Ticker", "pair=XBTUSD").await["error"], json!([]));
    sim.shutdown().await;
}

#[tokio::test]
async fn partial_fills_cancel_the_remainder() {
    let sim = common::start().await;
    sim.admin().set_faults(FaultSpec {
        partial_fills: Some(3),
        partial_fill_fraction: Some("0.4".parse().unwrap()),
        ..FaultSpec::default()
    });
    let cb = Coinbase::new(&sim, "cb");
    let (_, placed) = cb
        .post(
            "/api/v3/brokerage/orders",
            json!({"client_order_id": "p-1", "product_id": "BTC-USD", "side": "SELL",
                   "order_configuration": {"market_market_ioc": {"base_size": "0.1"}}}),
        )
        .await;
    let id = placed["success_response"]["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, order) = cb
        .get(&format!("/api/v3/brokerage/orders/historical/{id}"))
        .await;
    assert_eq!(order["order"]["status"], "CANCELLED");
    assert_eq!(order["order"]["filled_size"], "0.04");

    let mut kr = Kraken::new(&sim, "kr");
    let placed = kr
        .private(
            "AddOrder",
            &[
                ("ordertype", "market"),
                ("type", "sell"),
                ("volume", "0.1"),
                ("pair", "XBTUSD"),
            ],
        )
        .await;
    let txid = placed["result"]["txid"][0].as_str().unwrap().to_string();
    let query = kr.private("QueryOrders", &[("txid", &txid)]).await;
    assert_eq!(query["result"][&txid]["status"], "canceled");
    assert_eq!(query["result"][&txid]["vol_exec"], "0.04000000");
    let balance = kr.private("Balance", &[]).await;
    assert_eq!(balance["result"]["XXBT"], "0.4600000000");

    let al = Alpaca::new(&sim, "al");
    let (_, order) = al
        .post("/v2/orders", json!({"symbol": "BTC/USD", "qty": "0.1", "side": "sell", "type": "market", "time_in_force": "ioc"}))
        .await;
    assert_eq!(
        (order["status"].as_str(), order["filled_qty"].as_str()),
        (Some("canceled"), Some("0.04"))
    );
    let (_, fills) = al.get("/v2/account/activities/FILL").await;
    assert_eq!(
        (fills[0]["type"].as_str(), fills[0]["leaves_qty"].as_str()),
        (Some("partial_fill"), Some("0.06"))
    );
    // The fault is used up: the next order fills completely.
    let (_, order) = al
        .post("/v2/orders", json!({"symbol": "BTC/USD", "qty": "0.1", "side": "sell", "type": "market", "time_in_force": "gtc"}))
        .await;
    assert_eq!(order["status"], "filled");
    sim.shutdown().await;
}
